"""The one path every AWS call takes: settings, client, a cancellable request
on a worker thread, and errors translated for SQL."""
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody

from . import clients, lanes, settings, wait
from .errors import AwsMlError, at_ordinality, from_botocore


def _send_now(method, params):
    """Sends one request; runs on a worker thread. A streamed body is read
    here too, so that a stalled answer cannot block the backend."""
    answer = method(**params)
    for name, value in answer.items():
        if isinstance(value, StreamingBody):
            answer[name] = value.read()
    return answer


def send(service, operation, client, **params):
    """Sends operation with client and returns the decoded answer."""
    method = getattr(client, xform_name(operation))
    try:
        return wait.run(_send_now, method, params)
    except (BotoCoreError, ClientError) as error:
        raise from_botocore(service, operation, error) from None


def send_each(service, operation, client, requests, max_concurrency, decode):
    """{ordinality: decode(answer)} for requests ({ordinality: params}), with at
    most max_concurrency requests in flight. decode runs on the worker threads
    (no plpy), overlapping the other requests' waits. The first failure stops
    the requests not yet sent and is raised naming its ordinality."""
    method = getattr(client, xform_name(operation))
    ordinalities = list(requests)
    try:
        outputs = lanes.map_in_order(lambda params: decode(_send_now(method, params)),
                                     list(requests.values()), max_concurrency)
    except lanes.ItemFailed as failed:
        error = failed.error
        if isinstance(error, (BotoCoreError, ClientError)):
            error = from_botocore(service, operation, error)
        elif not isinstance(error, AwsMlError):
            raise error
        raise at_ordinality(error, ordinalities[failed.index]) from None
    return dict(zip(ordinalities, outputs))


def client(service):
    """The client for service under the current settings (reads them: call it
    on the backend's own thread)."""
    return clients.client_for(service, settings.current())


def call(service, operation, **params):
    """Calls operation of service under the current settings."""
    return send(service, operation, client(service), **params)
