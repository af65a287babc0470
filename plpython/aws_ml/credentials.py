"""What a request signs with: the credentials a call gave, else the
service's role's (STS AssumeRole, cached until shortly before they expire),
else the server process's standard AWS chain. The cache keeps the most
recently used roles only."""
import collections
import os
import time
from typing import Any, Optional, Tuple

from . import clients, transport
from .clients import Credentials
from .services import STS, Service
from .settings import Settings

_REFRESH_MARGIN_SECONDS = 300
_ROLE_SESSION_SECONDS = 3600
MAX_ROLES = 16

# (role_arn, region, sts endpoint) -> (credentials, expiry epoch), least recently used first
_assumed: "collections.OrderedDict[Tuple[str, str, Optional[str]], Tuple[Credentials, float]]" = \
    collections.OrderedDict()


def _assume_role(role_arn: str, settings: Settings, region: str) -> Credentials:
    key = (role_arn, region, settings.endpoint_for(STS))
    cached = _assumed.get(key)
    if cached and cached[1] - time.time() > _REFRESH_MARGIN_SECONDS:
        _assumed.move_to_end(key)
        return cached[0]
    sts = clients.client(STS, settings, region, None)
    answer = transport.send(STS, "AssumeRole", sts, RoleArn=role_arn,
                            RoleSessionName=f"aws_ml-{os.getpid()}", DurationSeconds=_ROLE_SESSION_SECONDS)
    credentials = answer["Credentials"]
    _assumed[key] = (credentials, credentials["Expiration"].timestamp())
    _assumed.move_to_end(key)
    if cached:
        clients.forget_clients_of(cached[0])
    while len(_assumed) > MAX_ROLES:
        clients.forget_clients_of(_assumed.popitem(last=False)[1][0])
    return credentials


def credentials_for(service: Service, settings: Settings, region: str,
                    given: Optional[Credentials] = None) -> Optional[Credentials]:
    """What a request to service signs with: the credentials a call gave
    ({AccessKeyId, SecretAccessKey, SessionToken}), else the role's, assumed
    through STS, else None: the server's base credentials."""
    if given:
        return given
    role_arn = settings.role_for(service)
    return _assume_role(role_arn, settings, region) if role_arn else None


def client_for(service: Service, settings: Settings) -> Any:
    """The client for service under settings, in their region, signing with
    the role's credentials or the server's (AwsMlError when there are none)."""
    region = settings.resolved_region()
    return clients.client(service, settings, region, credentials_for(service, settings, region))
