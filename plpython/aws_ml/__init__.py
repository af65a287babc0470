"""aws_ml: the Python layer behind the aws_ml PostgreSQL extension.

Every SQL function body imports one entry point from the service modules
(comprehend, sagemaker, bedrock) and calls it. Those go through one path:
settings -> credentials -> client cache -> request (cancellable) -> decode.
"""
