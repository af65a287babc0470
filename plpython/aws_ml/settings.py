"""The aws_ml.* and aws_s3.* server settings, read once per call.

The C module defines them; it is loaded (at plan time by every aws_ml
function's planner support function, by the procedures' LOAD) before the
package is even importable, so PostgreSQL enforces that only a superuser or
the server configuration sets region, endpoints, roles and the services'
time limits.
"""
import os
import re
from dataclasses import dataclass, replace

from . import backend
from .errors import NOT_CONFIGURED, PERMISSION_DENIED, AwsMlError

_NAMES = (
    "region", "endpoint_url",
    "comprehend_endpoint_url", "sagemaker_endpoint_url", "bedrock_endpoint_url", "sts_endpoint_url",
    "comprehend_role_arn", "sagemaker_role_arn", "bedrock_role_arn",
    "connect_timeout_ms", "request_timeout_ms",
    "comprehend_request_timeout_ms", "sagemaker_request_timeout_ms", "bedrock_request_timeout_ms",
    "max_attempts", "statement_cache", "max_concurrency",
)
# What botocore accepts as a region name, which becomes part of the endpoint's host name.
REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URL = re.compile(r"https?://[!-~]+", re.ASCII | re.IGNORECASE)
# aws_s3's settings: (field, setting)
_S3_NAMES = (("s3_endpoint_url", "aws_s3.endpoint_url"), ("s3_role_arn", "aws_s3.role_arn"),
             ("s3_max_file_size_kb", "aws_s3.max_file_size"))


@dataclass(frozen=True)
class Settings:
    region: str
    endpoint_url: str
    comprehend_endpoint_url: str
    sagemaker_endpoint_url: str
    bedrock_endpoint_url: str
    sts_endpoint_url: str
    comprehend_role_arn: str
    sagemaker_role_arn: str
    bedrock_role_arn: str
    connect_timeout_ms: int
    request_timeout_ms: int
    comprehend_request_timeout_ms: int  # 0: request_timeout_ms
    sagemaker_request_timeout_ms: int
    bedrock_request_timeout_ms: int
    max_attempts: int
    statement_cache: str  # off, on (every call but text generation) or always
    max_concurrency: int
    s3_endpoint_url: str
    s3_role_arn: str
    s3_max_file_size_kb: int  # an export goes on in a new file beyond this size

    def endpoint_for(self, service):
        field = f"{service.setting}_endpoint_url"
        url = getattr(self, field) or self.endpoint_url or None
        if url is not None and not _URL.fullmatch(url):
            setting = dict(_S3_NAMES).get(field) or f"aws_ml.{field if getattr(self, field) else 'endpoint_url'}"
            raise AwsMlError(NOT_CONFIGURED, f"{setting} {url!r} is not an http or https URL",
                             hint="Set it to a URL such as https://comprehend.us-east-1.amazonaws.com, or empty "
                                  "for the service's own endpoint.")
        return url

    def request_timeout_ms_for(self, service):
        """The service's own time limit for one answer, else request_timeout_ms."""
        return getattr(self, f"{service.setting}_request_timeout_ms", 0) or self.request_timeout_ms

    def role_for(self, service):
        return getattr(self, f"{service.setting}_role_arn") or None

    def resolved_region(self):
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise AwsMlError(NOT_CONFIGURED, "no AWS Region is configured",
                             hint="Set aws_ml.region in postgresql.conf (or AWS_REGION in the "
                                  "server's environment) and reload the configuration.")
        if not REGION.fullmatch(region):
            raise AwsMlError(NOT_CONFIGURED, f"the AWS Region {region!r} (aws_ml.region or AWS_REGION) is not the "
                             "name of an AWS Region", hint="Set aws_ml.region to one such as us-east-1.")
        return region


def current():
    refused = backend.setting("aws_ml.refused_settings")
    if refused:
        raise AwsMlError(
            PERMISSION_DENIED,
            f"this session tried to set {refused} without the privilege to",
            "Only a superuser or the server configuration may set them; PostgreSQL discarded the "
            "session's value.",
            "Reconnect without setting them (SET, set_config() or connection options).")
    values = {name: backend.setting(f"aws_ml.{name}") for name in _NAMES}
    values.update({field: backend.setting(name) for field, name in _S3_NAMES})
    settings = Settings(**{name: _PARSE.get(name, str)(value) for name, value in values.items()})
    sharing = backend.processes_sharing_requests()
    if sharing > 1:  # a parallel query's processes share aws_ml.max_concurrency
        settings = replace(settings, max_concurrency=max(1, settings.max_concurrency // sharing))
    return settings


_PARSE = {name: int for name in (*_NAMES, "s3_max_file_size_kb")
          if name.endswith(("_ms", "_kb")) or name in ("max_attempts", "max_concurrency")}
