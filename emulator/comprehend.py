"""Amazon Comprehend, JSON 1.1 protocol: DetectSentiment and BatchDetectSentiment."""
import json

from . import sentiment
from .wire import json_answer, json_rpc_error

TARGET_PREFIX = "Comprehend_20171127."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_TEXT_BYTES = 5000
MAX_BATCH = 25
# The service model's LanguageCode enum; sentiment is offered in all of them.
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW")


class _Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _validation(message):
    return _Invalid("ValidationException", f"1 validation error detected: {message}")


def _check_language(request):
    language = request.get("LanguageCode")
    if language is None:
        raise _validation("Value null at 'languageCode' failed to satisfy constraint: Member must not be null")
    if language not in LANGUAGES:
        raise _validation(
            f"Value '{language}' at 'languageCode' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(LANGUAGES)}]"
        )


def _text_too_long(text):
    size = len(text.encode("utf-8"))
    if size <= MAX_TEXT_BYTES:
        return None
    return (
        f"Input text size exceeds limit. Max length of request text allowed is "
        f"{MAX_TEXT_BYTES} bytes while in this request the text size is {size} bytes"
    )


def _scored(text):
    label, scores = sentiment.detect(text)
    return {"Sentiment": label, "SentimentScore": scores}


def _detect_sentiment(request):
    text = request.get("Text")
    if not isinstance(text, str) or not text:
        raise _validation("Value at 'text' failed to satisfy constraint: Member must have length greater than or equal to 1")
    _check_language(request)
    too_long = _text_too_long(text)
    if too_long:
        raise _Invalid("TextSizeLimitExceededException", too_long)
    return _scored(text), 1


def _batch_detect_sentiment(request):
    texts = request.get("TextList")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _validation("Value at 'textList' failed to satisfy constraint: Member must have length greater than or equal to 1")
    _check_language(request)
    if len(texts) > MAX_BATCH:
        raise _Invalid(
            "BatchSizeLimitExceededException",
            f"Input batch size exceeds limit. Max batch size allowed is {MAX_BATCH} "
            f"while in this request the batch size is {len(texts)}",
        )
    results, errors = [], []
    for index, text in enumerate(texts):
        too_long = _text_too_long(text)
        if too_long:
            errors.append({"Index": index, "ErrorCode": "TEXT_SIZE_LIMIT_EXCEEDED", "ErrorMessage": too_long})
        else:
            results.append({"Index": index, **_scored(text)})
    return {"ResultList": results, "ErrorList": errors}, len(texts)


_OPERATIONS = {
    "DetectSentiment": _detect_sentiment,
    "BatchDetectSentiment": _batch_detect_sentiment,
}


class Comprehend:
    name = "comprehend"

    def operation(self, request):
        """The emulated operation named by X-Amz-Target; None sends the
        request to moto."""
        target = request.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
        return operation if operation in _OPERATIONS else None

    def handle(self, request, signer, operation):
        """(response, items) for one request."""
        handler = _OPERATIONS[operation]
        try:
            body = json.loads(request.get_data() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return json_rpc_error("SerializationException", "Request body is not valid JSON"), None
        try:
            answer, items = handler(body)
        except _Invalid as invalid:
            return json_rpc_error(invalid.code, invalid.message), None
        return json_answer(answer, content_type=CONTENT_TYPE), items

    def error_answer(self, code, status, message):
        return json_rpc_error(code, message, status)

    def fault_error(self, outcome, status):
        if outcome == "throttle":
            return json_rpc_error("ThrottlingException", "Rate exceeded")
        code = "InternalServerException" if status == 500 else "ServiceUnavailable"  # AWS's common error
        return json_rpc_error(code, "Internal server error" if status == 500 else "Service unavailable", status)
