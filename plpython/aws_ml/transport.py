"""Requests on the wire: each sent on a worker thread while the backend
waits cancellably (wait.py), recorded in the stats, and botocore's errors
translated for SQL without the secrets they were signed with."""
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody

from . import clients, lanes, stats, wait
from .errors import AwsMlError, at_ordinality, from_botocore
from .services import Service

Params = Dict[str, Any]


def _retries(response: Dict[str, Any]) -> int:
    return response.get("ResponseMetadata", {}).get("RetryAttempts", 0)


Record = Callable[[str, str, int, float, int, bool], None]


def recorded(service: Service, operation: str, items: int, call: Callable[[], Dict[str, Any]],
             record: Record = stats.record_request) -> Dict[str, Any]:
    """call()'s answer, the request recorded as operation's with items rows
    or documents: record(service, operation, items, milliseconds, retries,
    failed), by default in this process's stats (aws_s3's transfer process
    sends its records to its backend's)."""
    started = time.monotonic()
    retries, failed = 0, True
    try:
        answer = call()
        retries, failed = _retries(answer), False
        return answer
    except ClientError as error:
        retries = _retries(error.response)
        raise
    finally:
        record(service.setting, operation, items, (time.monotonic() - started) * 1000, retries, failed)


def _whole(answer: Dict[str, Any]) -> Dict[str, Any]:
    """answer with its streamed body read, on the worker thread: a stalled
    answer cannot block the backend."""
    for name, value in answer.items():
        if isinstance(value, StreamingBody):
            answer[name] = value.read()
    return answer


def send(service: Service, operation: str, client: Any, items: int = 1, **params: Any) -> Dict[str, Any]:
    """Sends operation with client and returns the decoded answer; items is
    the number of rows or documents the request carries."""
    method = getattr(client, xform_name(operation))
    try:
        return wait.run(recorded, service, operation, items, lambda: _whole(method(**params)))
    except (BotoCoreError, ClientError) as error:
        raise from_botocore(service, operation, error, clients.known_secrets()) from None


def send_all(service: Service, operation: str, client: Any, requests: List[Tuple[Params, int]],
             max_concurrency: int, decode: Optional[Callable[[Any], Any]] = None,
             keep: Optional[Callable[[int, Any], None]] = None) -> List[Any]:
    """[decode(answer)] for requests, a list of (params, items), in order,
    with at most max_concurrency in flight. decode runs on the worker threads
    (no plpy), overlapping the other requests' waits, and so does
    keep(ordinality, decode(answer)), given each answer as it arrives: what
    it keeps stays when a later request fails. The first failure stops the
    requests not yet sent and is raised naming its request's ordinality
    (1-based)."""
    method = getattr(client, xform_name(operation))

    def send_one(numbered: Tuple[int, Tuple[Params, int]]) -> Any:
        number, (params, items) = numbered
        answer = recorded(service, operation, items, lambda: _whole(method(**params)))
        result = decode(answer) if decode else answer
        if keep:
            keep(number, result)
        return result
    try:
        return lanes.map_in_order(send_one, list(enumerate(requests, 1)), max_concurrency)
    except lanes.ItemFailed as failed:
        error = failed.error
        if isinstance(error, (BotoCoreError, ClientError)):
            error = from_botocore(service, operation, error, clients.known_secrets())
        elif not isinstance(error, AwsMlError):
            raise error
        raise at_ordinality(error, failed.index + 1) from None
