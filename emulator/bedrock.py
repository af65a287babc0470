"""Amazon Bedrock runtime, REST JSON protocol: InvokeModel for every text
and embedding model family of Bedrock's model-parameter reference
(bedrock_text_models.py, bedrock_embedding_models.py), by model id,
inference profile or ARN; an unknown model is refused as Bedrock refuses it."""
import json
import re
from urllib.parse import unquote

from . import bedrock_embedding_models as embedding
from . import bedrock_text_models as text
from .bedrock_input import InvalidPrompt, MalformedInput
from .wire import json_answer, raw_path, rest_json_error

_INVOKE = re.compile(r"^/model/([^/]+)/invoke$")
_JSON_TYPES = ("", "application/json", "*/*")


def _embedding(answer):
    """An embedding model's answer, given the model's id too."""
    return lambda model_id, body: answer(body)


# The model families answered, by the start of their foundation models' ids
# (amazon.titan-embed-text-v2:0, anthropic.claude-sonnet-4-6, ...).
FAMILIES = (
    ("amazon.titan-embed-text-v1", _embedding(embedding.titan_g1)),
    ("amazon.titan-embed-g1-text-02", _embedding(embedding.titan_g1)),
    ("amazon.titan-embed-text-v2", _embedding(embedding.titan_v2)),
    ("amazon.titan-embed-image-v1", _embedding(embedding.titan_multimodal)),
    ("cohere.embed-", _embedding(embedding.cohere_embed)),
    ("amazon.titan-text-", text.titan_text),
    ("amazon.nova-micro-", text.nova),
    ("amazon.nova-lite-", text.nova),
    ("amazon.nova-pro-", text.nova),
    ("amazon.nova-premier-", text.nova),
    ("anthropic.claude-", text.claude),
    ("cohere.command-r", text.cohere_command_r),
    ("cohere.command-", text.cohere_command),
    ("meta.llama", text.llama),
    ("mistral.", text.mistral),
    ("ai21.jamba", text.jamba),
)
# An inference profile's id puts a geography first; an ARN names a
# foundation model or an inference profile after its last "/".
_GEOGRAPHY = re.compile(r"^(?:us|us-gov|eu|apac|ca|jp|au|global)\.(?=[a-z0-9-]+\.)")


def _model(request):
    """(the id of the foundation model the path names, the function
    answering it), or None."""
    model_id = unquote(_INVOKE.match(raw_path(request)).group(1))
    if model_id.startswith("arn:"):
        model_id = model_id.rsplit("/", 1)[-1]
    model_id = _GEOGRAPHY.sub("", model_id, count=1)
    return next(((model_id, answer) for prefix, answer in FAMILIES if model_id.startswith(prefix)), None)


def _validation(message):
    return rest_json_error("ValidationException", 400, {"message": message})


def _media_type(request, header):
    return (request.headers.get(header) or "").split(";")[0].strip().lower()


class BedrockRuntime:
    name = "bedrock"

    def operation(self, request):
        """Only InvokeModel is emulated; the rest goes to moto."""
        return "InvokeModel" if _INVOKE.match(raw_path(request)) else None

    def handle(self, request, signer, operation):
        found = _model(request)
        if found is None:
            return _validation("The provided model identifier is invalid."), None
        if _media_type(request, "Accept") not in _JSON_TYPES:
            return _validation("The provided Accept Type is invalid or not supported for this model"), None
        if _media_type(request, "Content-Type") not in _JSON_TYPES:
            return _validation("The provided Content Type is invalid or not supported for this model"), None
        try:
            body = json.loads(request.get_data())
        except ValueError as error:
            return _validation(f"Malformed input request: {error}, please reformat your input and try again."), None
        try:
            if not isinstance(body, dict):
                raise MalformedInput("#: expected type: JSONObject")
            model_id, model = found
            answer, items = model(model_id, body)
        except MalformedInput as error:
            return _validation(f"Malformed input request: {error}, please reformat your input and try again."), None
        except InvalidPrompt as error:
            return _validation(str(error)), None
        return json_answer(answer), items

    def error_answer(self, code, status, message):
        return rest_json_error(code, status, {"message": message})

    def fault_error(self, outcome, status):
        if outcome == "throttle":
            return rest_json_error("ThrottlingException", 429, {"message": "Too many requests, please wait before trying again."})
        if status == 500:
            return rest_json_error("InternalServerException", 500, {"message": "The server encountered an internal error."})
        return rest_json_error("ServiceUnavailableException", 503, {"message": "Service unavailable. Try your request again."})
