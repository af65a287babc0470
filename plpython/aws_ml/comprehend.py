"""aws_comprehend: sentiment from Amazon Comprehend."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import batch_rows, distributed, materialize
from .arguments import batch_limit, batch_rows_of, has_text, one_dimensional, required
from .entry import sql_entry
from .errors import AwsMlError, at_ordinality, hint_for, sqlstate_for
from .request import Input, Requests, Unanswered
from .services import COMPREHEND
from .transport import Params

BATCH_LIMIT = 25  # documents per BatchDetectSentiment request

Sentiment = Tuple[str, float]  # (sentiment, confidence)
SqlSentiment = Tuple[Optional[str], Optional[float]]  # (NULL, NULL) for a text not sent
Document = Tuple[Optional[str], str, int]  # (text, language code, documents per request)


def _sentiment(answer: Dict[str, Any]) -> Sentiment:
    label = answer["Sentiment"]
    return label, answer["SentimentScore"][label.capitalize()]


def _document(text: str, language_code: str) -> Params:
    """A document as DetectSentiment takes it: the statement cache's key for its sentiment."""
    return {"Text": text, "LanguageCode": language_code}


@sql_entry
def detect_sentiment(input_text: Optional[str], language_code: Optional[str],
                     max_rows_per_batch: Optional[int]) -> SqlSentiment:
    """(sentiment, confidence) of one text; (NULL, NULL) for NULL or blank text.
    max_rows_per_batch is checked; a single call sends one document."""
    language_code = required("language_code", language_code)
    batch_limit(max_rows_per_batch, BATCH_LIMIT)
    if not has_text(input_text):
        return None, None
    requests = Requests(COMPREHEND, "DetectSentiment")
    document = _document(input_text, language_code)
    return requests.cached(document, lambda: _sentiment(requests.send(**document)))


@sql_entry
def detect_sentiment_rows(input_texts: Optional[List[Optional[str]]], language_codes: Optional[List[Optional[str]]],
                          max_rows_per_batch: Optional[List[Optional[int]]]) -> List[SqlSentiment]:
    """Batch mode's detect_sentiment: (sentiment, confidence) per row of the
    arrays (one element per row of a batch), as detect_sentiment answers
    each, up to the first row that fails (batch_rows)."""
    return batch_rows.answers(_rows_sentiments, batch_rows_of(
        "aws_comprehend._detect_sentiment_rows", input_text=input_texts, language_code=language_codes,
        max_rows_per_batch=max_rows_per_batch))


def _rows_sentiments(rows: List[Tuple[Optional[str], Optional[str], Optional[int]]]) -> List[SqlSentiment]:
    documents: List[Document] = []
    for ordinality, (text, language_code, size) in enumerate(rows, 1):
        try:
            documents.append((text, required("language_code", language_code), batch_limit(size, BATCH_LIMIT)))
        except AwsMlError as error:
            raise at_ordinality(error, ordinality) from None
    return [scored or (None, None) for scored in _score(documents)]


@sql_entry
def batch_detect_sentiment(input_texts: Optional[List[Optional[str]]], language_code: Optional[str],
                           max_rows_per_batch: Optional[int]) -> List[Tuple[int, Optional[str], Optional[float]]]:
    """(ordinality, sentiment, confidence) per element, in order, through
    BatchDetectSentiment; NULL or blank elements give NULLs and are not sent."""
    if input_texts is None:
        return []
    language_code = required("language_code", language_code)
    one_dimensional("input_texts", input_texts)
    size = batch_limit(max_rows_per_batch, BATCH_LIMIT)
    return [(ordinality, *(scored or (None, None)))
            for ordinality, scored in enumerate(sentiments(input_texts, language_code, size), 1)]


def sentiments(texts: Sequence[Optional[str]], language_code: str,
               size: int = BATCH_LIMIT) -> List[Optional[Sentiment]]:
    """(sentiment, confidence) per text, in order; None for a NULL or blank
    text, which is not sent."""
    return _score([(text, language_code, size) for text in texts])


def _score(documents: List[Document]) -> List[Optional[Sentiment]]:
    """(sentiment, confidence) per document (text, language code, documents
    per request), in order; None for a blank text. The documents of one
    language go out in BatchDetectSentiment requests of at most that many
    documents, aws_ml.max_concurrency at a time; each distinct document once a
    statement (unless aws_ml.statement_cache is off)."""
    requests = Requests(COMPREHEND, "BatchDetectSentiment")
    results: List[Optional[Sentiment]] = [None] * len(documents)
    unanswered: Unanswered[Tuple[str, int]] = Unanswered(requests.cache_of("DetectSentiment"))
    for index, (text, language_code, size) in enumerate(documents):
        if has_text(text):
            results[index] = unanswered.ask((language_code, size), _document(text, language_code), index, text)

    def split(group: Tuple[str, int], inputs: List[Input]) -> List[List[Input]]:
        size = group[1]
        return [inputs[start:start + size] for start in range(0, len(inputs), size)]

    def request_of(group: Tuple[str, int], inputs: List[Input]) -> Tuple[Params, int]:
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
def materialize_sentiment(table_name: Optional[str], text_column: Optional[str], language_code: Optional[str],
                          sentiment_column: Optional[str], confidence_column: Optional[str],
                          batch_size: Optional[int]) -> None:
    """CALL aws_comprehend.materialize_sentiment: fills the sentiment and
    confidence columns of the rows that have text and no sentiment yet."""
    _materialize_sentiment(table_name, text_column, language_code, sentiment_column, confidence_column, batch_size)


@sql_entry
def materialize_sentiment_shards(shards: Optional[List[str]], *arguments: Any) -> Tuple[str]:
    """CALL aws_comprehend._materialize_sentiment_shards: materialize_sentiment
    on the shards of a Citus table placed on this node (distributed.py)."""
    return materialize.fill_shards("materialize_sentiment", shards,
                                   lambda shard: _materialize_sentiment(shard, *arguments))


def _materialize_sentiment(table_name: Optional[str], text_column: Optional[str], language_code: Optional[str],
                           sentiment_column: Optional[str], confidence_column: Optional[str],
                           batch_size: Optional[int]) -> int:
    text_column = required("text_column", text_column)
    language_code = required("language_code", language_code)
    sentiment_column = required("sentiment_column", sentiment_column)
    confidence_column = required("confidence_column", confidence_column)
    tables = materialize.targets("materialize_sentiment", table_name, text_column,
                                 (sentiment_column, confidence_column), materialize.SENTIMENT_OUTPUTS)
    return materialize.backfill(
        "materialize_sentiment", tables, batch_size, lambda texts: sentiments(texts, language_code),
        distributed.ShardCall("aws_comprehend._materialize_sentiment_shards",
                              (text_column, language_code, sentiment_column, confidence_column, batch_size)))


def _document_error(refused: List[Tuple[int, Dict[str, str]]]) -> AwsMlError:
    """The error for the documents a request refused ((index, ErrorList entry)),
    naming the first."""
    index, first = min(refused, key=lambda entry: entry[0])
    code, message = first.get("ErrorCode", "Unknown"), first.get("ErrorMessage", "")
    return AwsMlError(
        sqlstate_for(code, message),
        f"Comprehend BatchDetectSentiment refused a document: {message}",
        f"AWS error code: {code}; {len(refused)} document(s) refused",
        hint_for(code, message),
        ordinality=index + 1,
    )
