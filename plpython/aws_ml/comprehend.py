"""aws_comprehend: sentiment from Amazon Comprehend."""
from . import materialize, request
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
    return [(ordinality, *(scored or (None, None)))
            for ordinality, scored in enumerate(sentiments(input_texts, language_code, size), 1)]


def sentiments(texts, language_code, size=BATCH_LIMIT):
    """(sentiment, confidence) per text, in order, through BatchDetectSentiment
    requests of at most size documents; None for a NULL or blank text, which
    is not sent."""
    results = [None] * len(texts)
    to_send = [index for index, text in enumerate(texts) if not is_blank(text)]
    for start in range(0, len(to_send), size):
        chunk = to_send[start:start + size]
        answer = request.call(COMPREHEND, "BatchDetectSentiment", len(chunk),
                              TextList=[texts[index] for index in chunk], LanguageCode=language_code)
        if answer.get("ErrorList"):
            raise _document_error(answer["ErrorList"], chunk)
        for result in answer["ResultList"]:
            results[chunk[result["Index"]]] = _sentiment(result)
    return results


@sql_entry
def materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size):
    """CALL aws_comprehend.materialize_sentiment: fills the sentiment and
    confidence columns of the rows that have text and no sentiment yet."""
    for name, value in (("text_column", text_column), ("language_code", language_code),
                        ("sentiment_column", sentiment_column), ("confidence_column", confidence_column)):
        required(name, value)
    target = materialize.Target("materialize_sentiment", table_name, text_column,
                                (sentiment_column, confidence_column), ("varchar", "real"))
    materialize.backfill(target, batch_size, lambda texts: sentiments(texts, language_code))


def _document_error(error_list, chunk):
    first = min(error_list, key=lambda error: error["Index"])
    ordinality = chunk[first["Index"]] + 1
    code, message = first.get("ErrorCode", "Unknown"), first.get("ErrorMessage", "")
    return AwsMlError(
        sqlstate_for(code, message),
        f"Comprehend BatchDetectSentiment refused a document: {message}",
        f"AWS error code: {code}; {len(error_list)} document(s) of the request refused",
        ordinality=ordinality,
    )
