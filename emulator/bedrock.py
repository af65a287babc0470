"""Amazon Bedrock runtime, REST JSON protocol: InvokeModel for the Titan and
Cohere embedding models and Claude v2 (text completions and messages)."""
import hashlib
import json
import re
from urllib.parse import unquote

from . import completion
from .embeddings import embed, words
from .wire import json_answer, raw_path, rest_json_error

_INVOKE = re.compile(r"^/model/([^/]+)/invoke$")
_JSON_TYPES = ("", "application/json", "*/*")
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V2_MAX_CHARACTERS = 50_000
TITAN_V2_EMBEDDING_TYPES = ("float", "binary")
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
COHERE_MAX_TEXTS = 96
COHERE_MAX_CHARACTERS = 2048
ANTHROPIC_VERSION = "bedrock-2023-05-31"
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


class MalformedInput(ValueError):
    pass


class InvalidPrompt(ValueError):
    """A Claude text completion prompt without its turns; Bedrock's own wording."""


def _require(body, *keys):
    for key in keys:
        if key not in body:
            raise MalformedInput(f"#: required key [{key}] not found")


def _only(body, *allowed):
    for key in body:
        if key not in allowed:
            raise MalformedInput(f"#: extraneous key [{key}] is not permitted")


def _text(body, key, max_length=None):
    value = body[key]
    if not isinstance(value, str):
        raise MalformedInput(f"#/{key}: expected type: String, found: {type(value).__name__}")
    if not value:
        raise MalformedInput(f"#/{key}: expected minLength: 1, actual: 0")
    if max_length is not None and len(value) > max_length:
        raise MalformedInput(f"#/{key}: expected maxLength: {max_length}, actual: {len(value)}")
    return value


def _titan_v1(body):
    _require(body, "inputText")
    _only(body, "inputText")
    text = _text(body, "inputText")
    return {"embedding": embed(text, 1536), "inputTextTokenCount": len(words(text))}, 1


def _titan_v2(body):
    _require(body, "inputText")
    _only(body, "inputText", "dimensions", "normalize", "embeddingTypes")
    text = _text(body, "inputText", TITAN_V2_MAX_CHARACTERS)
    dimensions = body.get("dimensions", 1024)
    if dimensions not in TITAN_V2_DIMENSIONS or isinstance(dimensions, bool):
        raise MalformedInput(f"#/dimensions: {dimensions} is not a valid enum value")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise MalformedInput("#/normalize: expected type: Boolean")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in TITAN_V2_EMBEDDING_TYPES for t in types):
        raise MalformedInput(f"#/embeddingTypes: {types} is not a valid list of {list(TITAN_V2_EMBEDDING_TYPES)}")
    vector = embed(text, dimensions, normalize)
    by_type = {"float": vector, "binary": [1 if value > 0 else 0 for value in vector]}
    answer = {"embeddingsByType": {t: by_type[t] for t in types}, "inputTextTokenCount": len(words(text))}
    if "float" in types:
        answer["embedding"] = vector
    return answer, 1


def _cohere_embed(body):
    _require(body, "texts", "input_type")
    texts = body["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise MalformedInput("#/texts: expected type: JSONArray of String")
    if len(texts) > COHERE_MAX_TEXTS:
        raise MalformedInput(f"#/texts: expected maximum item count: {COHERE_MAX_TEXTS}, found: {len(texts)}")
    for index, text in enumerate(texts):
        if len(text) > COHERE_MAX_CHARACTERS:
            raise MalformedInput(f"#/texts/{index}: expected maxLength: {COHERE_MAX_CHARACTERS}, actual: {len(text)}")
    if body["input_type"] not in COHERE_INPUT_TYPES:
        raise MalformedInput(f"#/input_type: {body['input_type']} is not a valid enum value")
    digest = hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=16).hexdigest()
    vectors = [embed(text, 1024) for text in texts]
    answer = {"id": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}", "texts": texts}
    if "embedding_types" in body:
        # only float is emulated; the other types AWS names are refused
        if body["embedding_types"] != ["float"]:
            raise MalformedInput(f"#/embedding_types: {body['embedding_types']} is not supported by the emulator")
        answer.update(embeddings={"float": vectors}, response_type="embeddings_by_type")
    else:
        answer.update(embeddings=vectors, response_type="embeddings_floats")
    return answer, len(texts)


def _int_at_least(body, key, least):
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise MalformedInput(f"#/{key}: {value!r} is not greater or equal to {least}")
    return value


def _claude_completion(body):
    """Exactly the three keys Claude v2 answers a text completion with."""
    _require(body, "prompt", "max_tokens_to_sample")
    prompt = _text(body, "prompt")
    if HUMAN not in prompt:
        raise InvalidPrompt(f'Invalid prompt: prompt must start with "{HUMAN}" turn')
    if not prompt.rstrip(" ").endswith(ASSISTANT):
        raise InvalidPrompt(f'Invalid prompt: prompt must end with "{ASSISTANT}" turn')
    question = prompt.rsplit(ASSISTANT, 1)[0].split(HUMAN, 1)[1]
    reply, cut = completion.answer(question, _int_at_least(body, "max_tokens_to_sample", 0))
    if cut:
        return {"completion": " " + reply if reply else "", "stop_reason": "max_tokens", "stop": None}, 1
    return {"completion": " " + reply, "stop_reason": "stop_sequence", "stop": HUMAN}, 1


def _message_text(message):
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "\n".join(str(block.get("text", "")) for block in content)
    raise MalformedInput("#/messages: content must be a string or a list of text blocks")


def _claude_messages(body):
    _require(body, "anthropic_version", "messages", "max_tokens")
    if body["anthropic_version"] != ANTHROPIC_VERSION:
        raise MalformedInput(f"#/anthropic_version: {body['anthropic_version']} is not a valid enum value")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise MalformedInput("#/messages: expected minimum item count: 1")
    if messages[0].get("role") != "user":
        raise MalformedInput("messages: first message must use the \"user\" role")
    asked = [_message_text(m) for m in messages if m.get("role") == "user"][-1]
    max_tokens = _int_at_least(body, "max_tokens", 1)
    reply, cut = completion.answer(asked, max_tokens)
    digest = hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=12).hexdigest()
    return {
        "id": f"msg_bdrk_{digest}",
        "type": "message",
        "role": "assistant",
        "model": "claude-v2",
        "content": [{"type": "text", "text": reply}],
        "stop_reason": "max_tokens" if cut else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": completion.token_count(asked), "output_tokens": completion.token_count(reply)},
    }, 1


def _claude_v2(body):
    return _claude_messages(body) if "messages" in body else _claude_completion(body)


# The model families answered, by the start of their foundation models' ids
# (amazon.titan-embed-text-v2:0, anthropic.claude-sonnet-4-6, ...).
FAMILIES = (
    ("amazon.titan-embed-text-v1", _titan_v1),
    ("amazon.titan-embed-text-v2", _titan_v2),
    ("cohere.embed-", _cohere_embed),
    ("anthropic.claude-", _claude_v2),
)
# An inference profile's id puts a geography first; an ARN names a
# foundation model or an inference profile after its last "/".
_GEOGRAPHY = re.compile(r"^(?:us|us-gov|eu|apac|ca|jp|au|global)\.(?=[a-z0-9-]+\.)")


def _model(request):
    """The function answering the model the path names, or None."""
    model_id = unquote(_INVOKE.match(raw_path(request)).group(1))
    if model_id.startswith("arn:"):
        model_id = model_id.rsplit("/", 1)[-1]
    model_id = _GEOGRAPHY.sub("", model_id, count=1)
    return next((answer for prefix, answer in FAMILIES if model_id.startswith(prefix)), None)


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
        model = _model(request)
        if model is None:
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
            answer, items = model(body)
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
