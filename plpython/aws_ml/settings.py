"""The aws_ml.* and aws_s3.* server settings as a call sees them.

The C module defines them (extension/src/settings.c): their names, types,
defaults and who may set them are written there only. It is loaded (at plan
time by every aws_ml function's planner support function, by the
procedures' LOAD) before the package is even importable, so PostgreSQL
enforces that only a superuser or the server configuration sets region,
endpoints, roles and the services' time limits. The package reads them all
in one crossing, and again only once one of them has changed.
"""
import os
import re
from typing import Dict, Optional

from . import backend
from .errors import NOT_CONFIGURED, PERMISSION_DENIED, AwsMlError
from .services import Service

# What botocore accepts as a region name, which becomes part of the endpoint's host name.
REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URL = re.compile(r"https?://[!-~]+", re.ASCII | re.IGNORECASE)


class Settings:
    """The settings at one moment ({name: value as text}); max_concurrency
    is this process's share of aws_ml.max_concurrency."""

    def __init__(self, values: Dict[str, str], sharing: int = 0) -> None:
        self.values = values
        self.connect_timeout_ms = int(values["aws_ml.connect_timeout_ms"])
        self.max_attempts = int(values["aws_ml.max_attempts"])
        self.statement_cache = values["aws_ml.statement_cache"]  # off, on (every call but text generation) or always
        self.s3_max_file_size_kb = int(values["aws_s3.max_file_size"])  # an export goes on in a new file beyond it
        self.max_concurrency = int(values["aws_ml.max_concurrency"])
        if sharing > 1:  # a parallel query's processes share aws_ml.max_concurrency
            self.max_concurrency = max(1, self.max_concurrency // sharing)

    def endpoint_for(self, service: Service) -> Optional[str]:
        own = service.setting_name("endpoint_url")
        setting = own if self.values[own] else "aws_ml.endpoint_url"
        url = self.values[setting] or None
        if url is not None and not _URL.fullmatch(url):
            raise AwsMlError(NOT_CONFIGURED, f"{setting} {url!r} is not an http or https URL",
                             hint="Set it to a URL such as https://comprehend.us-east-1.amazonaws.com, or empty "
                                  "for the service's own endpoint.")
        return url

    def request_timeout_ms_for(self, service: Service) -> int:
        """The service's own time limit for one answer, else request_timeout_ms."""
        own = self.values.get(service.setting_name("request_timeout_ms"), "0")
        return int(own) or int(self.values["aws_ml.request_timeout_ms"])

    def role_for(self, service: Service) -> Optional[str]:
        return self.values[service.setting_name("role_arn")] or None

    def resolved_region(self) -> str:
        region = self.values["aws_ml.region"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise AwsMlError(NOT_CONFIGURED, "no AWS Region is configured",
                             hint="Set aws_ml.region in postgresql.conf (or AWS_REGION in the "
                                  "server's environment) and reload the configuration.")
        if not REGION.fullmatch(region):
            raise AwsMlError(NOT_CONFIGURED, f"the AWS Region {region!r} (aws_ml.region or AWS_REGION) is not the "
                             "name of an AWS Region", hint="Set aws_ml.region to one such as us-east-1.")
        return region


_snapshot: Optional[Settings] = None
_snapshot_key = None  # (settings generation, processes sharing requests) it was read at


def current() -> Settings:
    """The settings for the call under way; refused (42501) in a session
    that tried to set a locked one without the privilege to."""
    global _snapshot, _snapshot_key
    state = backend.call_state()
    key = (state.settings_generation, state.processes_sharing_requests)
    if _snapshot is None or key != _snapshot_key:
        _snapshot, _snapshot_key = Settings(backend.settings_values(), state.processes_sharing_requests), key
    refused = _snapshot.values["aws_ml.refused_settings"]
    if refused:
        raise AwsMlError(
            PERMISSION_DENIED,
            f"this session tried to set {refused} without the privilege to",
            "Only a superuser or the server configuration may set them; PostgreSQL discarded the "
            "session's value.",
            "Reconnect without setting them (SET, set_config() or connection options).")
    return _snapshot
