"""aws_comprehend: sentiment from Amazon Comprehend."""
from . import batch_rows, distributed, materialize
from .arguments import batch_limit, batch_rows_of, is_blank, one_dimensional, required
from .entry import sql_entry
from .errors import AwsMlError, at_ordinality, sqlstate_for
from .request import Requests, Unanswered
from .services import COMPREHEND

BATCH_LIMIT = 25  # documents per BatchDetectSentiment request


def _sentiment(answer):
    label = answer["Sentiment"]
    return label, answer["SentimentScore"][label.capitalize()]


def _document(text, language_code):
    """A document as DetectSentiment takes it: the statement cache's key for its sentiment."""
    return {"Text": text, "LanguageCode": language_code}


@sql_entry
def detect_sentiment(input_text, language_code, max_rows_per_batch):
    """(sentiment, confidence) of one text; (NULL, NULL) for NULL or blank text.
    max_rows_per_batch is checked; a single call sends one document."""
    required("language_code", language_code)
    batch_limit(max_rows_per_batch, BATCH_LIMIT)
    if is_blank(input_text):
        return None, None
    requests = Requests(COMPREHEND, "DetectSentiment")
    document = _document(input_text, language_code)
    return requests.cached(document, lambda: _sentiment(requests.send(**document)))


@sql_entry
def detect_sentiment_rows(input_texts, language_codes, max_rows_per_batch):
    """Batch mode's detect_sentiment: (sentiment, confidence) per row of the
    arrays (one element per row of a batch), as detect_sentiment answers
    each, up to the first row that fails (batch_rows)."""
    return batch_rows.answers(_rows_sentiments, batch_rows_of(
        "aws_comprehend._detect_sentiment_rows", input_text=input_texts, language_code=language_codes,
        max_rows_per_batch=max_rows_per_batch))


def _rows_sentiments(rows):
    documents = []
    for ordinality, (text, language_code, size) in enumerate(rows, 1):
        try:
            required("language_code", language_code)
            documents.append((text, language_code, batch_limit(size, BATCH_LIMIT)))
        except AwsMlError as error:
            raise at_ordinality(error, ordinality) from None
    return [scored or (None, None) for scored in _score(documents)]


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
    """(sentiment, confidence) per text, in order; None for a NULL or blank
    text, which is not sent."""
    return _score([(text, language_code, size) for text in texts])


def _score(documents):
    """(sentiment, confidence) per document (text, language code, documents
    per request), in order; None for a blank text. The documents of one
    language go out in BatchDetectSentiment requests of at most that many
    documents, aws_ml.max_concurrency at a time; each distinct document once a
    statement (unless aws_ml.statement_cache is off)."""
    requests = Requests(COMPREHEND, "BatchDetectSentiment")
    results = [None] * len(documents)
    unanswered = Unanswered(requests.cache_of("DetectSentiment"))
    for index, (text, language_code, size) in enumerate(documents):
        if not is_blank(text):
            results[index] = unanswered.ask((language_code, size), _document(text, language_code), index, text)

    def split(group, inputs):
        size = group[1]
        return [inputs[start:start + size] for start in range(0, len(inputs), size)]

    def request_of(group, inputs):
        return {"TextList": [same.value for same in inputs], "LanguageCode": group[0]}, len(inputs)
    sent = unanswered.send(requests, results, split, request_of,
                           lambda _, inputs, answer: {result["Index"]: _sentiment(result)
                                                      for result in answer["ResultList"]})
    refused = [(inputs[error["Index"]].indexes[0], error)
               for inputs, answer in sent for error in answer.get("ErrorList", [])]
    if refused:
        raise _document_error(refused)
    return results


@sql_entry
def materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size):
    """CALL aws_comprehend.materialize_sentiment: fills the sentiment and
    confidence columns of the rows that have text and no sentiment yet."""
    _materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size)


@sql_entry
def materialize_sentiment_shards(shards, *arguments):
    """CALL aws_comprehend._materialize_sentiment_shards: materialize_sentiment
    on the shards of a Citus table placed on this node (distributed.py)."""
    return materialize.fill_shards("materialize_sentiment", shards,
                                   lambda shard: _materialize_sentiment(shard, *arguments))


def _materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size):
    for name, value in (("text_column", text_column), ("language_code", language_code),
                        ("sentiment_column", sentiment_column), ("confidence_column", confidence_column)):
        required(name, value)
    tables = materialize.targets("materialize_sentiment", table_name, text_column,
                                 (sentiment_column, confidence_column), materialize.SENTIMENT_OUTPUTS)
    return materialize.backfill(
        "materialize_sentiment", tables, batch_size, lambda texts: sentiments(texts, language_code),
        distributed.ShardCall("aws_comprehend._materialize_sentiment_shards",
                              (text_column, language_code, sentiment_column, confidence_column, batch_size)))


def _document_error(refused):
    """The error for the documents a request refused ((index, ErrorList entry)),
    naming the first."""
    index, first = min(refused, key=lambda entry: entry[0])
    code, message = first.get("ErrorCode", "Unknown"), first.get("ErrorMessage", "")
    return AwsMlError(
        sqlstate_for(code, message),
        f"Comprehend BatchDetectSentiment refused a document: {message}",
        f"AWS error code: {code}; {len(refused)} document(s) refused",
        ordinality=index + 1,
    )
