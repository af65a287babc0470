"""A local emulator of the AWS ML services aws_ml calls (Comprehend, SageMaker
runtime, Bedrock runtime), with moto serving STS, IAM, S3 and the rest, all on
one port. A development, test and demo tool: never loaded in the server."""
