"""boto3 clients, cached per backend by everything that shapes them: service,
region, endpoint, timeouts, attempts and credential identity. Base credentials
come from the server process's standard AWS chain; a service with a role ARN
uses STS AssumeRole credentials, cached until shortly before they expire.
Each statement starts with a client's full retry quota. Both caches keep the
most recently used entries only: a session that tries many settings does not
keep a client (and its connection pool) for each."""
import collections
import hashlib
import os
import random
import time

from . import backend, inflight, request, stats, wait
from .services import BEDROCK, COMPREHEND, S3, SAGEMAKER, STS

# S3 is called from aws_s3's transfer process (transfer_process.py), not from the backend
SERVICES = (COMPREHEND, SAGEMAKER, BEDROCK, STS)

_REFRESH_MARGIN_SECONDS = 300
_ROLE_SESSION_SECONDS = 3600

MAX_CLIENTS = 16
MAX_ROLES = 16

_session = None
_seeded_pid = None
_clients = collections.OrderedDict()  # least recently used first
_retry_quotas = {}  # client key -> [botocore's retry quota of the client, the statement that last used it]
_assumed = collections.OrderedDict()  # (role_arn, region, sts endpoint) -> (credentials dict, expiry epoch)
_given = collections.OrderedDict()  # identity -> credentials a call gave (aws_s3), while a client has them


def _base_session():
    global _session
    if _session is None:
        import boto3
        _session = boto3.session.Session()
    return _session


def client_spec(service, settings, region):
    """What shapes a client of service but its credentials, as plain values:
    aws_s3's transfer process makes its S3 clients from them."""
    return {"region": region, "endpoint_url": settings.endpoint_for(service),
            "connect_timeout_ms": settings.connect_timeout_ms,
            "read_timeout_ms": settings.request_timeout_ms_for(service),
            "max_attempts": settings.max_attempts, "pid": os.getpid()}


def config(service, spec):
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


def _identity(credentials):
    """Tells credentials apart in the client cache: the access key id, and for
    credentials a call gave, a digest of the secrets that came with it."""
    if not credentials or "Expiration" in credentials:  # none, or assumed through STS
        return credentials["AccessKeyId"] if credentials else None
    secrets = f"{credentials['SecretAccessKey']}\0{credentials.get('SessionToken') or ''}"
    return f"{credentials['AccessKeyId']}/{hashlib.sha256(secrets.encode()).hexdigest()}"


def _client(service, settings, region, credentials):
    identity = _identity(credentials)
    key = (service.client_name, region, settings.endpoint_for(service), settings.connect_timeout_ms,
           settings.request_timeout_ms_for(service), settings.max_attempts, identity)
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
        _retry_quotas[key] = [_retry_quota(client), None]
        while len(_clients) > MAX_CLIENTS:
            _forget_client(next(iter(_clients)))
    _clients.move_to_end(key)
    _renew_retry_quota(key)
    return client


def _forget_client(key):
    _clients.pop(key).close()
    del _retry_quotas[key]
    _given.pop(key[-1], None)


def _retry_quota(client):
    """botocore's standard-mode retry quota of client, which it keeps for the
    client's lifetime: in the retry handler it registers under a fixed unique
    id, with no public access (botocore is pinned; test_retries checks this)."""
    service = client.meta.service_model.service_id.hyphenize()
    handler = client.meta.events._emitter._unique_id_handlers[f"retry-config-{service}"]["handler"]
    return handler.__self__._retry_quota._quota


def _renew_retry_quota(key):
    """Refills the quota of the client under key when a new statement uses it:
    a statement may retry as aws_ml.max_attempts allows, whatever earlier
    statements of the session spent."""
    entry = _retry_quotas[key]
    statement = backend.statement_id()
    if entry[1] != statement:
        entry[0].release(entry[0].INITIAL_CAPACITY)
        entry[1] = statement


def _assume_role(role_arn, settings, region):
    key = (role_arn, region, settings.endpoint_for(STS))
    cached = _assumed.get(key)
    if cached and cached[1] - time.time() > _REFRESH_MARGIN_SECONDS:
        _assumed.move_to_end(key)
        return cached[0]
    sts = _client(STS, settings, region, None)
    answer = request.send(STS, "AssumeRole", sts, RoleArn=role_arn,
                          RoleSessionName=f"aws_ml-{os.getpid()}", DurationSeconds=_ROLE_SESSION_SECONDS)
    credentials = answer["Credentials"]
    _assumed[key] = (credentials, credentials["Expiration"].timestamp())
    _assumed.move_to_end(key)
    if cached:
        _forget_clients_of(cached[0])
    while len(_assumed) > MAX_ROLES:
        _forget_clients_of(_assumed.popitem(last=False)[1][0])
    return credentials


def _forget_clients_of(credentials):
    for stale in [key for key in _clients if key[-1] == credentials["AccessKeyId"]]:
        _forget_client(stale)


def load_models():
    """Loads what the services' clients read (models, endpoint rules) into
    the base session's caches, with placeholder credentials: nothing is
    resolved or sent."""
    for service in SERVICES:
        _base_session().client(service.client_name, region_name="us-east-1",
                               aws_access_key_id="preload", aws_secret_access_key="preload")


def known_secrets():
    """The secret keys and session tokens this backend signs with."""
    base = _session.get_credentials() if _session else None
    frozen = base.get_frozen_credentials() if base else None
    secrets = [frozen.secret_key, frozen.token] if frozen else []
    for credentials, _ in _assumed.values():
        secrets += [credentials["SecretAccessKey"], credentials["SessionToken"]]
    for credentials in _given.values():
        secrets += [credentials["SecretAccessKey"], credentials.get("SessionToken")]
    return secrets


def _reseed_after_preload():
    """A backend forked from a postmaster that preloaded the package starts
    with its random state: reseeded, backends' retry backoffs differ."""
    global _seeded_pid
    if _seeded_pid != os.getpid():
        random.seed()
        _seeded_pid = os.getpid()


def credentials_for(service, settings, region, given=None):
    """What a request to service signs with: the credentials a call gave
    ({AccessKeyId, SecretAccessKey, SessionToken}), else the role's, assumed
    through STS, else None: the server's base credentials."""
    if given:
        return given
    role_arn = settings.role_for(service)
    return _assume_role(role_arn, settings, region) if role_arn else None


def client_for(service, settings, region=None, credentials=None):
    """The client for service under the current settings (AwsMlError when
    there is none); region: the call's own, else the settings'; credentials:
    the ones the call gave, else the role's or the server's."""
    _reseed_after_preload()
    region = region or settings.resolved_region()
    if credentials:
        _given[_identity(credentials)] = credentials
    return _client(service, settings, region, credentials_for(service, settings, region, credentials))
