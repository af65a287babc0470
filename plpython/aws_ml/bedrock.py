"""aws_bedrock: models on Amazon Bedrock through InvokeModel, one input per
call or many inputs concurrently (Bedrock has no batch request)."""
import json

from . import batch_rows, distributed, embedding_models, json_path, materialize, request
from .arguments import batch_rows_of, header_value, in_range, is_blank, one_dimensional, required
from .entry import sql_entry
from .errors import INVALID_PARAMETER, SERVICE_FAILED, AwsMlError, at_ordinality
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


def _document(answer):
    try:
        return json.loads(answer["body"])
    except ValueError:
        raise AwsMlError(SERVICE_FAILED, "Bedrock InvokeModel returned a body that is not JSON",
                         f"contentType of the answer: {answer.get('contentType')}") from None


def _check_call(model_id, content_type, accept_type):
    required("model_id", model_id)
    header_value("content_type", required("content_type", content_type))
    header_value("accept_type", accept_type)


@sql_entry
def invoke_model(model_id, content_type, accept_type, model_input):
    """The model's answer to model_input, as text; NULL for a NULL input.
    Text generation may answer differently each time: kept in the statement
    cache only under aws_ml.statement_cache = always."""
    _check_call(model_id, content_type, accept_type)
    if model_input is None:
        return None
    return _text(request.call(BEDROCK, "InvokeModel", varies=True,
                              **_request(model_id, content_type, accept_type, model_input)))


@sql_entry
def invoke_model_get_embeddings(model_id, content_type, json_key, model_input):
    """The array of numbers at json_key in the model's JSON answer (json_key
    NULL: where the model's family puts it); NULL for a NULL input."""
    _check_call(model_id, content_type, EMBEDDINGS_ACCEPT)
    if model_input is None:
        return None
    json_key = _json_key(model_id, json_key, model_input)
    answer = request.call(BEDROCK, "InvokeModel",
                          **_request(model_id, content_type, EMBEDDINGS_ACCEPT, model_input))
    return json_path.vector(_document(answer), json_key)


def _json_key(model_id, json_key, model_input):
    return json_key if json_key is not None else embedding_models.first_vector_json_key(model_id, model_input)


@sql_entry
def batch_invoke_model(model_id, content_type, accept_type, model_inputs, max_concurrency):
    """(ordinality, model_output) per element of model_inputs, in order."""
    return _batch(model_id, content_type, accept_type, model_inputs, max_concurrency, _text, varies=True)


@sql_entry
def batch_invoke_model_get_embeddings(model_id, content_type, json_key, model_inputs, max_concurrency):
    """(ordinality, embedding) per element of model_inputs, in order."""
    _check_call(model_id, content_type, EMBEDDINGS_ACCEPT)
    keys = _json_keys([(model_id, json_key, model_input) for model_input in model_inputs or []])
    documents = _batch(model_id, content_type, EMBEDDINGS_ACCEPT, model_inputs, max_concurrency, _document)
    return [(ordinality, _vector_at(document, keys, ordinality)) for ordinality, document in documents]


def _json_keys(calls):
    """{ordinality: json_key} of the calls (model_id, json_key, model_input) that have an input."""
    keys = {}
    for ordinality, (model_id, json_key, model_input) in enumerate(calls, 1):
        if model_input is not None:
            try:
                keys[ordinality] = _json_key(model_id, json_key, model_input)
            except AwsMlError as error:
                raise at_ordinality(error, ordinality) from None
    return keys


def _vector_at(document, keys, ordinality):
    """The vector in the answer document to the input at ordinality; None without an answer."""
    if document is None:
        return None
    try:
        return json_path.vector(document, keys[ordinality])
    except AwsMlError as error:
        raise at_ordinality(error, ordinality) from None


def _batch(model_id, content_type, accept_type, model_inputs, max_concurrency, decode, varies=False):
    """One InvokeModel per non-NULL element, at most max_concurrency at a time;
    NULL elements give NULL and are not sent."""
    _check_call(model_id, content_type, accept_type)
    in_range("max_concurrency", max_concurrency, 1, MAX_WORKERS)
    if model_inputs is None:
        return []
    one_dimensional("model_inputs", model_inputs)
    inputs = {ordinality: _request(model_id, content_type, accept_type, model_input)
              for ordinality, model_input in enumerate(model_inputs, 1) if model_input is not None}
    outputs = _send_each(inputs, decode, varies, max_concurrency)
    return [(ordinality, outputs.get(ordinality)) for ordinality in range(1, len(model_inputs) + 1)]


def _send_each(inputs, decode, varies, max_concurrency=None):
    return request.Requests(BEDROCK, "InvokeModel", varies).send_each(inputs, decode, max_concurrency)


@sql_entry
def invoke_model_rows(model_ids, content_types, accept_types, model_inputs):
    """Batch mode's invoke_model: the answer per row of the arrays (one
    element per row of a batch), as invoke_model answers each, the rows'
    requests aws_ml.max_concurrency at a time, up to the first row that fails
    (batch_rows)."""
    return batch_rows.answers(_rows_texts, batch_rows_of(
        "aws_bedrock._invoke_model_rows", model_id=model_ids, content_type=content_types, accept_type=accept_types,
        model_input=model_inputs))


def _rows_texts(rows):
    outputs = _send_each(_row_inputs(rows), _text, varies=True)
    return [outputs.get(ordinality) for ordinality in range(1, len(rows) + 1)]


@sql_entry
def invoke_model_get_embeddings_rows(model_ids, content_types, json_keys, model_inputs):
    """Batch mode's invoke_model_get_embeddings, as invoke_model_rows."""
    rows = batch_rows_of("aws_bedrock._invoke_model_get_embeddings_rows", model_id=model_ids,
                         content_type=content_types, json_key=json_keys, model_input=model_inputs)
    return batch_rows.answers(_rows_vectors, [(model_id, content_type, EMBEDDINGS_ACCEPT, model_input, json_key)
                                              for model_id, content_type, json_key, model_input in rows])


def _rows_vectors(rows):
    inputs = _row_inputs(rows)
    keys = _json_keys([(model_id, json_key, model_input) for model_id, _, _, model_input, json_key in rows])
    documents = _send_each(inputs, _document, varies=False)
    return [_vector_at(documents.get(ordinality), keys, ordinality) for ordinality in range(1, len(rows) + 1)]


def _row_inputs(rows):
    """{ordinality: request} for the rows (model_id, content_type, accept_type,
    model_input[, json_key]) that have an input, each checked as its row
    function checks it."""
    inputs = {}
    for ordinality, (model_id, content_type, accept_type, model_input, *_) in enumerate(rows, 1):
        try:
            _check_call(model_id, content_type, accept_type)
        except AwsMlError as error:
            raise at_ordinality(error, ordinality) from None
        if model_input is not None:
            inputs[ordinality] = _request(model_id, content_type, accept_type, model_input)
    return inputs


def embeddings(model_id, texts, json_key, max_concurrency):
    """The embedding of each text, in order, with request bodies built for the
    model's family (embedding_models) and at most max_concurrency requests in
    flight; None for a NULL or blank text, which is not sent."""
    model = embedding_models.family(model_id)
    json_key = json_key or model.json_key
    to_send = [index for index, text in enumerate(texts) if not is_blank(text)]
    groups = [to_send[start:start + model.texts_per_request]
              for start in range(0, len(to_send), model.texts_per_request)]
    requests = {number: _request(model_id, "application/json", EMBEDDINGS_ACCEPT,
                                 model.body([texts[index] for index in group]))
                for number, group in enumerate(groups, 1)}

    def at_first_text(error, number):
        """error of request number, raised for the first of its texts."""
        return at_ordinality(error, groups[number - 1][0] + 1)
    try:
        documents = _send_each(requests, _document, False, max_concurrency)
    except AwsMlError as error:
        if error.ordinality is None:
            raise
        raise at_first_text(error, error.ordinality) from None
    results = [None] * len(texts)
    for number, group in enumerate(groups, 1):
        try:
            vectors = model.vectors(documents[number], json_key, len(group))
        except AwsMlError as error:
            raise at_first_text(error, number) from None
        for index, vector in zip(group, vectors):
            results[index] = vector
    return results


@sql_entry
def materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size,
                           max_concurrency):
    """CALL aws_bedrock.materialize_embeddings: fills the embedding column of
    the rows that have input text and no embedding yet."""
    _materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size,
                            max_concurrency)


@sql_entry
def materialize_embeddings_shards(shards, *arguments):
    """CALL aws_bedrock._materialize_embeddings_shards: materialize_embeddings
    on the shards of a Citus table placed on this node (distributed.py)."""
    return materialize.fill_shards("materialize_embeddings", shards,
                                   lambda shard: _materialize_embeddings(shard, *arguments))


def _materialize_embeddings(table_name, input_column, embedding_column, model_id, json_key, batch_size,
                            max_concurrency):
    for name, value in (("input_column", input_column), ("embedding_column", embedding_column),
                        ("model_id", model_id)):
        required(name, value)
    in_range("max_concurrency", max_concurrency, 1, MAX_WORKERS)
    embedding_models.family(model_id)
    tables = materialize.targets("materialize_embeddings", table_name, input_column, (embedding_column,),
                                 materialize.EMBEDDING_OUTPUTS)
    return materialize.backfill(
        "materialize_embeddings", tables, batch_size,
        lambda texts: [None if vector is None else (vector,)
                       for vector in embeddings(model_id, texts, json_key, max_concurrency)],
        distributed.ShardCall("aws_bedrock._materialize_embeddings_shards",
                              (input_column, embedding_column, model_id, json_key, batch_size, max_concurrency)))
