"""The AWS services aws_ml calls and what a SQL user needs to know about each."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    setting: str       # prefix of its aws_ml.<setting>_endpoint_url / _role_arn settings; its name in the stats
    client_name: str   # boto3's name for it
    display: str       # its name in messages
    access_hint: str   # what to do about AccessDenied
    extension: str = "aws_ml"  # whose settings are its own: aws_s3.endpoint_url, aws_s3.role_arn

    def setting_name(self, suffix: str) -> str:
        """The name of the service's own setting suffix (endpoint_url, role_arn, request_timeout_ms)."""
        return f"aws_ml.{self.setting}_{suffix}" if self.extension == "aws_ml" else f"{self.extension}.{suffix}"


COMPREHEND = Service(
    "comprehend", "comprehend", "Comprehend",
    "Allow comprehend:DetectSentiment and comprehend:BatchDetectSentiment to the role in "
    "aws_ml.comprehend_role_arn, or to the server's base credentials when it is not set.")
SAGEMAKER = Service(
    "sagemaker", "sagemaker-runtime", "SageMaker",
    "Allow sagemaker:InvokeEndpoint on the endpoint to the role in aws_ml.sagemaker_role_arn, "
    "or to the server's base credentials when it is not set.")
BEDROCK = Service(
    "bedrock", "bedrock-runtime", "Bedrock",
    "Request access to the model in the Bedrock console and allow bedrock:InvokeModel on it to "
    "the role in aws_ml.bedrock_role_arn, or to the server's base credentials when it is not set.")
S3 = Service(
    "s3", "s3", "S3",
    "Allow s3:PutObject and s3:AbortMultipartUpload for exports and s3:GetObject for imports on the "
    "object to the role in aws_s3.role_arn, or to the server's base credentials when it is not set "
    "(or to the credentials given to the call).", "aws_s3")
STS = Service(
    "sts", "sts", "STS",
    "Let the server's base credentials assume the role: sts:AssumeRole in their policy and the "
    "role's trust policy naming them.")
