"""aws_bedrock: models on Amazon Bedrock through InvokeModel, one input per
call or many inputs concurrently (Bedrock has no batch request)."""
import json

from . import json_path, request
from .arguments import in_range, one_dimensional, required
from .errors import INVALID_PARAMETER, SERVICE_FAILED, AwsMlError, sql_entry
from .services import BEDROCK
from .wait import MAX_WORKERS

EMBEDDINGS_ACCEPT = "application/json"


def _request(model_id, content_type, accept_type, model_input):
    params = {"modelId": model_id, "contentType": content_type, "body": model_input.encode()}
    if accept_type is not None:  # else Bedrock's default, application/json
        params["accept"] = accept_type
    return params


def _text(answer):
    try:
        return answer["body"].decode()
    except UnicodeDecodeError:
        raise AwsMlError(INVALID_PARAMETER, "Bedrock InvokeModel returned a body that is not UTF-8 text",
                         f"contentType of the answer: {answer.get('contentType')}",
                         "Ask the model for a text type in accept_type (most models: application/json).") from None


def _embedding(json_key):
    def decode(answer):
        try:
            document = json.loads(answer["body"])
        except ValueError:
            raise AwsMlError(SERVICE_FAILED, "Bedrock InvokeModel returned a body that is not JSON",
                             f"contentType of the answer: {answer.get('contentType')}") from None
        return json_path.vector(document, json_key)
    return decode


def _check_call(model_id, content_type):
    required("model_id", model_id)
    required("content_type", content_type)


@sql_entry
def invoke_model(model_id, content_type, accept_type, model_input):
    """The model's answer to model_input, as text; NULL for a NULL input."""
    _check_call(model_id, content_type)
    if model_input is None:
        return None
    return _text(request.call(BEDROCK, "InvokeModel", **_request(model_id, content_type, accept_type, model_input)))


@sql_entry
def invoke_model_get_embeddings(model_id, content_type, json_key, model_input):
    """The array of numbers at json_key in the model's JSON answer; NULL for a NULL input."""
    _check_call(model_id, content_type)
    required("json_key", json_key)
    if model_input is None:
        return None
    answer = request.call(BEDROCK, "InvokeModel",
                          **_request(model_id, content_type, EMBEDDINGS_ACCEPT, model_input))
    return _embedding(json_key)(answer)


@sql_entry
def batch_invoke_model(model_id, content_type, accept_type, model_inputs, max_concurrency):
    """(ordinality, model_output) per element of model_inputs, in order."""
    return _batch(model_id, content_type, accept_type, model_inputs, max_concurrency, _text)


@sql_entry
def batch_invoke_model_get_embeddings(model_id, content_type, json_key, model_inputs, max_concurrency):
    """(ordinality, embedding) per element of model_inputs, in order."""
    required("json_key", json_key)
    return _batch(model_id, content_type, EMBEDDINGS_ACCEPT, model_inputs, max_concurrency, _embedding(json_key))


def _batch(model_id, content_type, accept_type, model_inputs, max_concurrency, decode):
    """One InvokeModel per non-NULL element, at most max_concurrency at a time;
    NULL elements give NULL and are not sent."""
    _check_call(model_id, content_type)
    in_range("max_concurrency", max_concurrency, 1, MAX_WORKERS)
    if model_inputs is None:
        return []
    one_dimensional("model_inputs", model_inputs)
    requests = {ordinality: _request(model_id, content_type, accept_type, model_input)
                for ordinality, model_input in enumerate(model_inputs, 1) if model_input is not None}
    outputs = request.send_each(BEDROCK, "InvokeModel", request.client(BEDROCK), requests,
                                max_concurrency, decode) if requests else {}
    return [(ordinality, outputs.get(ordinality)) for ordinality in range(1, len(model_inputs) + 1)]
