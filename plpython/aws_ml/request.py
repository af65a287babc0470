"""The one path every AWS call takes: settings, the statement cache, client,
a cancellable request on a worker thread, stats, and errors translated for
SQL."""
import time

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody

from . import backend, clients, lanes, settings, stats, statement_cache, wait
from .errors import AwsMlError, at_ordinality, from_botocore


def _retries(response):
    return response.get("ResponseMetadata", {}).get("RetryAttempts", 0)


def _send_now(service, operation, method, params, items):
    """Sends one request and records it; runs on a worker thread. A streamed
    body is read here too, so that a stalled answer cannot block the backend."""
    started = time.monotonic()
    retries, failed = 0, True
    try:
        answer = method(**params)
        for name, value in answer.items():
            if isinstance(value, StreamingBody):
                answer[name] = value.read()
        retries, failed = _retries(answer), False
        return answer
    except ClientError as error:
        retries = _retries(error.response)
        raise
    finally:
        stats.record_request(service.setting, operation, items, (time.monotonic() - started) * 1000,
                             retries, failed)


def send(service, operation, client, items=1, **params):
    """Sends operation with client and returns the decoded answer; items is
    the number of rows or documents the request carries."""
    method = getattr(client, xform_name(operation))
    try:
        return wait.run(_send_now, service, operation, method, params, items)
    except (BotoCoreError, ClientError) as error:
        raise from_botocore(service, operation, error) from None


class _Cache:
    """The statement cache as one call sees it: off, or bound to the statement."""

    def __init__(self, current, service, operation):
        self.on = current.statement_cache
        self.statement = backend.statement_id() if self.on else None
        self.service, self.operation = service, operation

    def key(self, params):
        return statement_cache.key(self.service, self.operation, params) if self.on else None

    def lookup(self, key, items):
        answer = statement_cache.lookup(self.statement, key) if key else None
        if answer is not None:
            stats.record_cache_hit(self.service.setting, self.operation, items)
        return answer

    def store(self, key, answer):
        if self.on and key:
            statement_cache.store(self.statement, key, answer)


def call(service, operation, items=1, **params):
    """Calls operation of service under the current settings; an identical
    request earlier in the statement is answered from the statement cache."""
    current = settings.current()
    cache = _Cache(current, service, operation)
    key = cache.key(params)
    answer = cache.lookup(key, items)
    if answer is None:
        answer = send(service, operation, clients.client_for(service, current), items, **params)
        cache.store(key, answer)
    return answer


def send_each(service, operation, requests, max_concurrency, decode):
    """{ordinality: decode(answer)} for requests ({ordinality: params}), with at
    most max_concurrency requests in flight; identical requests (in the batch
    or earlier in the statement) are sent once. decode runs on the worker
    threads (no plpy), overlapping the other requests' waits. The first
    failure stops the requests not yet sent and is raised naming its
    ordinality."""
    current = settings.current()
    method = getattr(clients.client_for(service, current), xform_name(operation))
    cache = _Cache(current, service, operation)
    outputs = {}
    to_send = {}  # ordinality sent -> (its cache key or None, the ordinalities it answers)
    sender = {}  # cache key -> ordinality sent
    for ordinality, params in requests.items():
        key = cache.key(params)
        cached = cache.lookup(key, 1)
        if cached is not None:
            outputs[ordinality] = decode(cached)
            continue
        sent = sender.setdefault(key, ordinality) if key else ordinality
        to_send.setdefault(sent, (key, []))[1].append(ordinality)
    firsts = list(to_send)

    def send_one(ordinality):
        answer = _send_now(service, operation, method, requests[ordinality], 1)
        return answer, decode(answer)
    try:
        answers = lanes.map_in_order(send_one, firsts, max_concurrency)
    except lanes.ItemFailed as failed:
        error = failed.error
        if isinstance(error, (BotoCoreError, ClientError)):
            error = from_botocore(service, operation, error)
        elif not isinstance(error, AwsMlError):
            raise error
        raise at_ordinality(error, firsts[failed.index]) from None
    for (key, ordinalities), (answer, output) in zip(to_send.values(), answers):
        cache.store(key, answer)
        for ordinality in ordinalities:
            outputs[ordinality] = output
    return outputs
