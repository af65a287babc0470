"""aws_comprehend: sentiment from Amazon Comprehend."""
from . import request
from .arguments import batch_limit, is_blank, one_dimensional, required
from .errors import AwsMlError, sql_entry, sqlstate_for
from .services import COMPREHEND

BATCH_LIMIT = 25  # documents per BatchDetectSentiment request


def _sentiment(answer):
    label = answer["Sentiment"]
    return label, answer["SentimentScore"][label.capitalize()]


@sql_entry
def detect_sentiment(input_text, language_code, max_rows_per_batch):
    """(sentiment, confidence) of one text; (NULL, NULL) for NULL or blank text.
    max_rows_per_batch is accepted for Aurora compatibility: a single call
    sends one document."""
    required("language_code", language_code)
    batch_limit(max_rows_per_batch, BATCH_LIMIT)
    if is_blank(input_text):
        return None, None
    return _sentiment(request.call(COMPREHEND, "DetectSentiment", Text=input_text, LanguageCode=language_code))


@sql_entry
def batch_detect_sentiment(input_texts, language_code, max_rows_per_batch):
    """(ordinality, sentiment, confidence) per element, in order, through
    BatchDetectSentiment; NULL or blank elements give NULLs and are not sent."""
    if input_texts is None:
        return []
    required("language_code", language_code)
    one_dimensional("input_texts", input_texts)
    size = batch_limit(max_rows_per_batch, BATCH_LIMIT)
    results = [(ordinality, None, None) for ordinality in range(1, len(input_texts) + 1)]
    to_send = [index for index, text in enumerate(input_texts) if not is_blank(text)]
    for start in range(0, len(to_send), size):
        chunk = to_send[start:start + size]
        answer = request.call(COMPREHEND, "BatchDetectSentiment",
                              TextList=[input_texts[index] for index in chunk], LanguageCode=language_code)
        if answer.get("ErrorList"):
            raise _document_error(answer["ErrorList"], chunk)
        for result in answer["ResultList"]:
            index = chunk[result["Index"]]
            results[index] = (index + 1, *_sentiment(result))
    return results


def _document_error(error_list, chunk):
    first = min(error_list, key=lambda error: error["Index"])
    ordinality = chunk[first["Index"]] + 1
    code, message = first.get("ErrorCode", "Unknown"), first.get("ErrorMessage", "")
    return AwsMlError(
        sqlstate_for(code, message),
        f"Comprehend BatchDetectSentiment refused the document at ordinality {ordinality}: {message}",
        f"AWS error code: {code}; {len(error_list)} document(s) of the request refused",
    )
