"""The one path every AWS call takes: settings, client, a cancellable request
on a worker thread, and errors translated for SQL."""
from botocore import xform_name

from . import clients, settings, wait
from .errors import from_botocore


def send(service, operation, client, **params):
    """Sends operation with client and returns the decoded answer."""
    from botocore.exceptions import BotoCoreError, ClientError
    method = getattr(client, xform_name(operation))
    try:
        return wait.run(method, **params)
    except (BotoCoreError, ClientError) as error:
        raise from_botocore(service, operation, error) from None


def call(service, operation, **params):
    """Calls operation of service under the current settings."""
    return send(service, operation, clients.client_for(service, settings.current()), **params)
