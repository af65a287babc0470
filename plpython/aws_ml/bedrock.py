"""aws_bedrock: models on Amazon Bedrock through InvokeModel, one input per
call or many inputs concurrently (Bedrock has no batch request)."""
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, cast

from . import batch_rows, distributed, embedding_models, json_path, materialize, request
from .arguments import batch_rows_of, header_value, has_text, in_range, one_dimensional, required
from .entry import sql_entry
from .errors import INVALID_PARAMETER, SERVICE_FAILED, AwsMlError, at_ordinality
from .json_path import Json
from .services import BEDROCK
from .transport import Params
from .wait import MAX_WORKERS

EMBEDDINGS_ACCEPT = "application/json"

T = TypeVar("T")
Vector = List[float]
Inputs = Optional[List[Optional[str]]]  # an array of text, from SQL


def _request(model_id: str, content_type: str, accept_type: Optional[str], model_input: str) -> Params:
    params: Params = {"modelId": model_id, "contentType": content_type, "body": model_input.encode()}
    if accept_type is not None:  # else Bedrock's default, application/json
        params["accept"] = accept_type
    return params


def _text(answer: Dict[str, Any]) -> str:
    try:
        return answer["body"].decode()
    except UnicodeDecodeError:
        raise AwsMlError(INVALID_PARAMETER, "Bedrock InvokeModel returned a body that is not UTF-8 text",
                         f"contentType of the answer: {answer.get('contentType')}",
                         "Ask the model for a text type in accept_type (most models: application/json).") from None


def _document(answer: Dict[str, Any]) -> Json:
    try:
        return json.loads(answer["body"])
    except ValueError:
        raise AwsMlError(SERVICE_FAILED, "Bedrock InvokeModel returned a body that is not JSON",
                         f"contentType of the answer: {answer.get('contentType')}") from None


def _check_call(model_id: Optional[str], content_type: Optional[str], accept_type: Optional[str]) -> Tuple[str, str]:
    """(model_id, content_type), checked, as is accept_type."""
    model_id = required("model_id", model_id)
    content_type = required("content_type", content_type)
    header_value("content_type", content_type)
    header_value("accept_type", accept_type)
    return model_id, content_type


@sql_entry
def invoke_model(model_id: Optional[str], content_type: Optional[str], accept_type: Optional[str],
                 model_input: Optional[str]) -> Optional[str]:
    """The model's answer to model_input, as text; NULL for a NULL input.
    Text generation may answer differently each time: kept in the statement
    cache only under aws_ml.statement_cache = always."""
    model_id, content_type = _check_call(model_id, content_type, accept_type)
    if model_input is None:
        return None
    return _text(request.call(BEDROCK, "InvokeModel", varies=True,
                              **_request(model_id, content_type, accept_type, model_input)))


@sql_entry
def invoke_model_get_embeddings(model_id: Optional[str], content_type: Optional[str], json_key: Optional[str],
                                model_input: Optional[str]) -> Optional[Vector]:
    """The array of numbers at json_key in the model's JSON answer (json_key
    NULL: where the model's family puts it); NULL for a NULL input."""
    model_id, content_type = _check_call(model_id, content_type, EMBEDDINGS_ACCEPT)
    if model_input is None:
        return None
    json_key = _json_key(model_id, json_key, model_input)
    answer = request.call(BEDROCK, "InvokeModel",
                          **_request(model_id, content_type, EMBEDDINGS_ACCEPT, model_input))
    return json_path.vector(_document(answer), json_key)


def _json_key(model_id: str, json_key: Optional[str], model_input: str) -> str:
    return json_key if json_key is not None else embedding_models.first_vector_json_key(model_id, model_input)


@sql_entry
def batch_invoke_model(model_id: Optional[str], content_type: Optional[str], accept_type: Optional[str],
                       model_inputs: Inputs, max_concurrency: Optional[int]) -> List[Tuple[int, Optional[str]]]:
    """(ordinality, model_output) per element of model_inputs, in order."""
    return _batch(model_id, content_type, accept_type, model_inputs, max_concurrency, _text, varies=True)


@sql_entry
def batch_invoke_model_get_embeddings(model_id: Optional[str], content_type: Optional[str], json_key: Optional[str],
                                      model_inputs: Inputs,
                                      max_concurrency: Optional[int]) -> List[Tuple[int, Optional[Vector]]]:
    """(ordinality, embedding) per element of model_inputs, in order."""
    model_id, content_type = _check_call(model_id, content_type, EMBEDDINGS_ACCEPT)
    keys = _json_keys([(model_id, json_key, model_input) for model_input in model_inputs or []])
    documents = _batch(model_id, content_type, EMBEDDINGS_ACCEPT, model_inputs, max_concurrency, _document)
    return [(ordinality, _vector_at(document, keys, ordinality)) for ordinality, document in documents]


def _json_keys(calls: List[Tuple[str, Optional[str], Optional[str]]]) -> Dict[int, str]:
    """{ordinality: json_key} of the calls (model_id, json_key, model_input) that have an input."""
    keys = {}
    for ordinality, (model_id, json_key, model_input) in enumerate(calls, 1):
        if model_input is not None:
            try:
                keys[ordinality] = _json_key(model_id, json_key, model_input)
            except AwsMlError as error:
                raise at_ordinality(error, ordinality) from None
    return keys


def _vector_at(document: Json, keys: Dict[int, str], ordinality: int) -> Optional[Vector]:
    """The vector in the answer document to the input at ordinality; None without an answer."""
    if document is None:
        return None
    try:
        return json_path.vector(document, keys[ordinality])
    except AwsMlError as error:
        raise at_ordinality(error, ordinality) from None


def _batch(model_id: Optional[str], content_type: Optional[str], accept_type: Optional[str], model_inputs: Inputs,
           max_concurrency: Optional[int], decode: Callable[[Dict[str, Any]], T],
           varies: bool = False) -> List[Tuple[int, Optional[T]]]:
    """One InvokeModel per non-NULL element, at most max_concurrency at a time;
    NULL elements give NULL and are not sent."""
    model_id, content_type = _check_call(model_id, content_type, accept_type)
    in_range("max_concurrency", max_concurrency, 1, MAX_WORKERS)
    if model_inputs is None:
        return []
    one_dimensional("model_inputs", model_inputs)
    inputs = {ordinality: _request(model_id, content_type, accept_type, model_input)
              for ordinality, model_input in enumerate(model_inputs, 1) if model_input is not None}
    outputs = _send_each(inputs, decode, varies, max_concurrency)
    return [(ordinality, outputs.get(ordinality)) for ordinality in range(1, len(model_inputs) + 1)]


def _send_each(inputs: Dict[int, Params], decode: Callable[[Dict[str, Any]], T], varies: bool,
               max_concurrency: Optional[int] = None) -> Dict[int, T]:
    return request.Requests(BEDROCK, "InvokeModel", varies).send_each(inputs, decode, max_concurrency)


@sql_entry
def invoke_model_rows(model_ids: Inputs, content_types: Inputs, accept_types: Inputs,
                      model_inputs: Inputs) -> List[Optional[str]]:
    """Batch mode's invoke_model: the answer per row of the arrays (one
    element per row of a batch), as invoke_model answers each, the rows'
    requests aws_ml.max_concurrency at a time, up to the first row that fails
    (batch_rows)."""
    return batch_rows.answers(_rows_texts, batch_rows_of(
        "aws_bedrock._invoke_model_rows", model_id=model_ids, content_type=content_types, accept_type=accept_types,
        model_input=model_inputs))


def _rows_texts(rows: List[Tuple[Optional[str], ...]]) -> List[Optional[str]]:
    outputs = _send_each(_row_inputs(rows), _text, varies=True)
    return [outputs.get(ordinality) for ordinality in range(1, len(rows) + 1)]


@sql_entry
def invoke_model_get_embeddings_rows(model_ids: Inputs, content_types: Inputs, json_keys: Inputs,
                                     model_inputs: Inputs) -> List[Optional[Vector]]:
    """Batch mode's invoke_model_get_embeddings, as invoke_model_rows."""
    rows = batch_rows_of("aws_bedrock._invoke_model_get_embeddings_rows", model_id=model_ids,
                         content_type=content_types, json_key=json_keys, model_input=model_inputs)
    return batch_rows.answers(_rows_vectors, [(model_id, content_type, EMBEDDINGS_ACCEPT, model_input, json_key)
                                              for model_id, content_type, json_key, model_input in rows])


def _rows_vectors(rows: List[Tuple[Optional[str], ...]]) -> List[Optional[Vector]]:
    inputs = _row_inputs(rows)  # each row checked: one with an input has a model_id
    keys = _json_keys([(cast(str, model_id), json_key, model_input)
                       for model_id, _, _, model_input, json_key in rows])
    documents = _send_each(inputs, _document, varies=False)
    return [_vector_at(documents.get(ordinality), keys, ordinality) for ordinality in range(1, len(rows) + 1)]


def _row_inputs(rows: List[Tuple[Optional[str], ...]]) -> Dict[int, Params]:
    """{ordinality: request} for the rows (model_id, content_type, accept_type,
    model_input[, json_key]) that have an input, each checked as its row
    function checks it."""
    inputs = {}
    for ordinality, (model_id, content_type, accept_type, model_input, *_) in enumerate(rows, 1):
        try:
            model_id, content_type = _check_call(model_id, content_type, accept_type)
        except AwsMlError as error:
            raise at_ordinality(error, ordinality) from None
        if model_input is not None:
            inputs[ordinality] = _request(model_id, content_type, accept_type, model_input)
    return inputs


def embeddings(model_id: str, texts: Sequence[Optional[str]], json_key: Optional[str],
               max_concurrency: int) -> List[Optional[Vector]]:
    """The embedding of each text, in order, with request bodies built for the
    model's family (embedding_models) and at most max_concurrency requests in
    flight; None for a NULL or blank text, which is not sent."""
    model = embedding_models.family(model_id)
    json_key = json_key or model.json_key
    to_send = {index: text for index, text in enumerate(texts) if has_text(text)}
    indexes = list(to_send)
    groups = [indexes[start:start + model.texts_per_request]
              for start in range(0, len(indexes), model.texts_per_request)]
    requests = {number: _request(model_id, "application/json", EMBEDDINGS_ACCEPT,
                                 model.body([to_send[index] for index in group]))
                for number, group in enumerate(groups, 1)}

    def at_first_text(error: AwsMlError, number: int) -> AwsMlError:
        """error of request number, raised for the first of its texts."""
        return at_ordinality(error, groups[number - 1][0] + 1)
    try:
        documents = _send_each(requests, _document, False, max_concurrency)
    except AwsMlError as error:
        if error.ordinality is None:
            raise
        raise at_first_text(error, error.ordinality) from None
    results: List[Optional[Vector]] = [None] * len(texts)
    for number, group in enumerate(groups, 1):
        try:
            vectors = model.vectors(documents[number], json_key, len(group))
        except AwsMlError as error:
            raise at_first_text(error, number) from None
        for index, vector in zip(group, vectors):
            results[index] = vector
    return results


@sql_entry
def materialize_embeddings(table_name: Optional[str], input_column: Optional[str], embedding_column: Optional[str],
                           model_id: Optional[str], json_key: Optional[str], batch_size: Optional[int],
                           max_concurrency: Optional[int]) -> None:
    """CALL aws_bedrock.materialize_embeddings: fills the embedding column of
    the rows that have input text and no embedding yet."""
    _materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size,
                            max_concurrency)


@sql_entry
def materialize_embeddings_shards(shards: Optional[List[str]], *arguments: Any) -> Tuple[str]:
    """CALL aws_bedrock._materialize_embeddings_shards: materialize_embeddings
    on the shards of a Citus table placed on this node (distributed.py)."""
    return materialize.fill_shards("materialize_embeddings", shards,
                                   lambda shard: _materialize_embeddings(shard, *arguments))


def _materialize_embeddings(table_name: Optional[str], input_column: Optional[str], embedding_column: Optional[str],
                            model_id: Optional[str], json_key: Optional[str], batch_size: Optional[int],
                            max_concurrency: Optional[int]) -> int:
    input_column = required("input_column", input_column)
    embedding_column = required("embedding_column", embedding_column)
    model_id = required("model_id", model_id)
    max_concurrency = in_range("max_concurrency", max_concurrency, 1, MAX_WORKERS)
    embedding_models.family(model_id)
    tables = materialize.targets("materialize_embeddings", table_name, input_column, (embedding_column,),
                                 materialize.EMBEDDING_OUTPUTS)
    return materialize.backfill(
        "materialize_embeddings", tables, batch_size,
        lambda texts: [None if vector is None else (vector,)
                       for vector in embeddings(model_id, texts, json_key, max_concurrency)],
        distributed.ShardCall("aws_bedrock._materialize_embeddings_shards",
                              (input_column, embedding_column, model_id, json_key, batch_size, max_concurrency)))
