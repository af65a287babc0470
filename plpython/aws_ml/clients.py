"""boto3 clients, cached per backend by everything that shapes them: service,
region, endpoint, timeouts, attempts and the credentials they sign with (the
server's standard AWS chain, or a role's: credentials.py). Each statement
starts with a client's full retry quota. The cache keeps the most recently
used clients only: a session that tries many settings does not keep a client
(and its connection pool) for each."""
import collections
import os
import random
from typing import Any, Dict, List, Optional, Tuple

from . import backend, inflight, stats, wait
from .services import BEDROCK, COMPREHEND, S3, SAGEMAKER, STS, Service
from .settings import Settings

# S3 is called from aws_s3's transfer process (transfer_process.py), not from the backend
SERVICES = (COMPREHEND, SAGEMAKER, BEDROCK, STS)

MAX_CLIENTS = 16

Credentials = Dict[str, Any]  # STS's: AccessKeyId, SecretAccessKey, SessionToken, Expiration
ClientSpec = Dict[str, Any]  # client_spec()'s
# (service, region, endpoint, connect and request time limits, attempts, access key id)
ClientKey = Tuple[str, str, Optional[str], int, int, int, Optional[str]]

_session: Any = None  # boto3's Session
_seeded_pid: Optional[int] = None
_clients: "collections.OrderedDict[ClientKey, Any]" = collections.OrderedDict()  # least recently used first
_credentials: Dict[ClientKey, Optional[Credentials]] = {}  # what the client signs with (None: the chain's)
_retry_quotas: Dict[ClientKey, List[Any]] = {}  # [the client's retry quota, the statement that last used it]


def _base_session() -> Any:
    global _session
    if _session is None:
        import boto3
        _session = boto3.session.Session()
    return _session


def client_spec(service: Service, settings: Settings, region: str) -> ClientSpec:
    """What shapes a client of service but its credentials, as plain values:
    aws_s3's transfer process makes its S3 clients from them."""
    return {"region": region, "endpoint_url": settings.endpoint_for(service),
            "connect_timeout_ms": settings.connect_timeout_ms,
            "read_timeout_ms": settings.request_timeout_ms_for(service),
            "max_attempts": settings.max_attempts, "pid": os.getpid()}


def config(service: Service, spec: ClientSpec) -> Any:
    """botocore's Config for a client of service shaped by spec (client_spec)."""
    from botocore.config import Config
    return Config(
        region_name=spec["region"],
        connect_timeout=spec["connect_timeout_ms"] / 1000.0,
        read_timeout=spec["read_timeout_ms"] / 1000.0,
        retries={"mode": "standard", "total_max_attempts": spec["max_attempts"]},
        max_pool_connections=wait.MAX_WORKERS,
        user_agent_extra=f"aws_ml-postgresql pid/{spec['pid']}",
        # S3-compatible endpoints (moto, MinIO) serve buckets under the path
        s3={"addressing_style": "path"} if service is S3 and spec["endpoint_url"] else None,
    )


def client(service: Service, settings: Settings, region: str, credentials: Optional[Credentials]) -> Any:
    """The client of service under settings in region that signs with
    credentials (None: the server's standard AWS chain)."""
    _reseed_after_preload()
    key: ClientKey = (service.client_name, region, settings.endpoint_for(service), settings.connect_timeout_ms,
                      settings.request_timeout_ms_for(service), settings.max_attempts,
                      credentials["AccessKeyId"] if credentials else None)
    client = _clients.get(key)
    if client is None:
        explicit = {}
        if credentials:
            explicit = {"aws_access_key_id": credentials["AccessKeyId"],
                        "aws_secret_access_key": credentials["SecretAccessKey"],
                        "aws_session_token": credentials.get("SessionToken")}
        client = _base_session().client(service.client_name, endpoint_url=settings.endpoint_for(service),
                                        config=config(service, client_spec(service, settings, region)), **explicit)
        # First, so that it sees every attempt before the retry handler answers.
        client.meta.events.register_first("needs-retry", stats.throttle_observer(service))
        inflight.track(client)
        _clients[key] = client
        _credentials[key] = credentials
        _retry_quotas[key] = [_retry_quota(client), None]
        while len(_clients) > MAX_CLIENTS:
            _forget_client(next(iter(_clients)))
    _clients.move_to_end(key)
    _renew_retry_quota(key)
    return client


def _forget_client(key: ClientKey) -> None:
    _clients.pop(key).close()
    del _retry_quotas[key], _credentials[key]


def forget_clients_of(credentials: Credentials) -> None:
    """Closes the clients that sign with credentials: they expire, or are dropped."""
    for stale in [key for key, theirs in _credentials.items() if theirs and
                  theirs["AccessKeyId"] == credentials["AccessKeyId"]]:
        _forget_client(stale)


def _retry_quota(client: Any) -> Any:
    """botocore's standard-mode retry quota of client, which it keeps for the
    client's lifetime: in the retry handler it registers under a fixed unique
    id, with no public access (botocore is pinned; test_retries checks this)."""
    service = client.meta.service_model.service_id.hyphenize()
    handler = client.meta.events._emitter._unique_id_handlers[f"retry-config-{service}"]["handler"]
    return handler.__self__._retry_quota._quota


def _renew_retry_quota(key: ClientKey) -> None:
    """Refills the quota of the client under key when a new statement uses it:
    a statement may retry as aws_ml.max_attempts allows, whatever earlier
    statements of the session spent."""
    entry = _retry_quotas[key]
    statement = backend.call_state().statement
    if entry[1] != statement:
        entry[0].release(entry[0].INITIAL_CAPACITY)
        entry[1] = statement


def load_models() -> None:
    """Loads what the services' clients read (models, endpoint rules) into
    the base session's caches, with placeholder credentials: nothing is
    resolved or sent."""
    for service in SERVICES:
        _base_session().client(service.client_name, region_name="us-east-1",
                               aws_access_key_id="preload", aws_secret_access_key="preload")


def known_secrets() -> List[Optional[str]]:
    """The secret keys and session tokens this backend's clients sign with."""
    base = _session.get_credentials() if _session else None
    frozen = base.get_frozen_credentials() if base else None
    secrets = [frozen.secret_key, frozen.token] if frozen else []
    for credentials in _credentials.values():
        if credentials:
            secrets += [credentials["SecretAccessKey"], credentials["SessionToken"]]
    return secrets


def _reseed_after_preload() -> None:
    """A backend forked from a postmaster that preloaded the package starts
    with its random state: reseeded, backends' retry backoffs differ."""
    global _seeded_pid
    if _seeded_pid != os.getpid():
        random.seed()
        _seeded_pid = os.getpid()


