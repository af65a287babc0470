"""aws_bedrock through SQL against the emulator, checked against the
emulator's own answer to the same request sent directly with boto3."""
import json
import time

import psycopg
import pytest

from tests.conftest import counter, requests_in_flight, stop_when

TITAN = "amazon.titan-embed-text-v1"
TITAN_V2 = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
CLAUDE = "anthropic.claude-v2"
JSON = "application/json"

REFERENCE_CLAUDE = (
    "SELECT aws_bedrock.invoke_model ( model_id := 'anthropic.claude-v2', content_type:= 'application/json', "
    "accept_type := 'application/json', model_input := '{\"prompt\": \"\\n\\nHuman: You are a helpful assistant "
    "that answers questions directly and only using the information provided in the context below.\\nDescribe the "
    "answer in detail.\\n\\nContext: %s \\n\\nQuestion: %s \\n\\nAssistant:\",\"max_tokens_to_sample\":4096,"
    "\"temperature\":0.5,\"top_k\":250,\"top_p\":0.5,\"stop_sequences\":[]}' );")
REFERENCE_TITAN = (
    "SELECT aws_bedrock.invoke_model_get_embeddings( model_id := 'amazon.titan-embed-text-v1', content_type := "
    "'application/json', json_key := 'embedding', model_input := '{ \"inputText\": \"PostgreSQL I/O monitoring "
    "views\"}') AS embedding;")

EMBED = "SELECT aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', %s, %s)"
BATCH_EMBED = ("SELECT ordinality, model_output FROM "
               "aws_bedrock.batch_invoke_model_get_embeddings(%s, 'application/json', 'embedding', %s, %s)")


def direct(aws_client, model_id, body, content_type=JSON, accept=JSON):
    """The emulator's answer to the request, as text."""
    answer = aws_client("bedrock-runtime").invoke_model(
        modelId=model_id, contentType=content_type, accept=accept, body=body.encode())
    return answer["body"].read().decode()


def titan_input(text):
    return json.dumps({"inputText": text})


def invoke_count(emulator):
    return counter(emulator.counters(), "bedrock", "InvokeModel")


def sql_error(db, sql, params=None):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql, params)
    return caught.value.diag


def test_reference_claude_example_verbatim(db, emulator, aws_client):
    output = db.execute(REFERENCE_CLAUDE).fetchone()[0]
    assert invoke_count(emulator) == 1
    model_input = REFERENCE_CLAUDE.split("model_input := '", 1)[1].rsplit("' );", 1)[0]
    assert output == direct(aws_client, CLAUDE, model_input)
    assert "completion" in json.loads(output)


def test_reference_titan_embedding_verbatim(db, emulator, aws_client):
    embedding = db.execute(REFERENCE_TITAN).fetchone()[0]
    assert invoke_count(emulator) == 1
    want = json.loads(direct(aws_client, TITAN, '{ "inputText": "PostgreSQL I/O monitoring views"}'))["embedding"]
    assert embedding == want and len(embedding) == 1536


def test_invoke_model_returns_the_body_as_text_for_the_messages_api(db, aws_client):
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
                       "messages": [{"role": "user", "content": "Name a PostgreSQL I/O view."}]})
    output = db.execute("SELECT aws_bedrock.invoke_model(%s, %s, %s, %s)", (CLAUDE, JSON, JSON, body)).fetchone()[0]
    assert output == direct(aws_client, CLAUDE, body)
    assert json.loads(output)["content"][0]["type"] == "text"


def test_content_type_and_accept_are_sent_as_given(db):
    call = "SELECT aws_bedrock.invoke_model(%s, %s, %s, %s)"
    diag = sql_error(db, call, (TITAN, JSON, "image/png", titan_input("types")))
    assert diag.sqlstate == "22023" and "Accept Type" in diag.message_primary
    diag = sql_error(db, call, (TITAN, "text/plain", JSON, titan_input("types")))
    assert diag.sqlstate == "22023" and "Content Type" in diag.message_primary


def test_nested_vectors_through_a_dotted_json_key(db, aws_client):
    v2 = json.dumps({"inputText": "nested", "dimensions": 256, "normalize": True})
    got = db.execute(EMBED, (TITAN_V2, "embeddingsByType.float", v2)).fetchone()[0]
    assert got == json.loads(direct(aws_client, TITAN_V2, v2))["embeddingsByType"]["float"]
    assert len(got) == 256
    assert db.execute(EMBED, (TITAN_V2, "embedding", v2)).fetchone()[0] == got

    cohere = json.dumps({"texts": ["first text", "second text"], "input_type": "search_document"})
    answer = json.loads(direct(aws_client, COHERE, cohere))["embeddings"]
    assert db.execute(EMBED, (COHERE, "embeddings.0", cohere)).fetchone()[0] == answer[0]
    assert db.execute(EMBED, (COHERE, "embeddings.1", cohere)).fetchone()[0] == answer[1]


def test_json_key_errors_name_the_key_and_list_the_keys_there(db):
    body = titan_input("keys")
    diag = sql_error(db, EMBED, (TITAN, "embeddings", body))
    assert diag.sqlstate == "22023" and '"embeddings"' in diag.message_primary
    assert '"embedding"' in diag.message_detail and '"inputTextTokenCount"' in diag.message_detail

    diag = sql_error(db, EMBED, (TITAN, "inputTextTokenCount", body))
    assert diag.sqlstate == "22023" and "not an array of numbers" in diag.message_primary
    assert '"embedding"' in diag.message_detail

    diag = sql_error(db, EMBED, (TITAN, "inputTextTokenCount.value", body))
    assert diag.sqlstate == "22023" and "not an object or an array" in diag.message_primary

    diag = sql_error(db, EMBED, (COHERE, "embeddings", json.dumps({"texts": ["a"], "input_type": "search_query"})))
    assert diag.sqlstate == "22023" and "not an array of numbers" in diag.message_primary


def test_null_arguments(db, emulator, aws_client):
    body = titan_input("nulls")
    for args, name in [((None, JSON, body), "model_id"), ((TITAN, None, body), "content_type")]:
        diag = sql_error(db, "SELECT aws_bedrock.invoke_model(%s, %s, 'application/json', %s)", args)
        assert diag.sqlstate == "22004" and name in diag.message_primary
        diag = sql_error(db, "SELECT aws_bedrock.invoke_model_get_embeddings(%s, %s, 'embedding', %s)", args)
        assert diag.sqlstate == "22004" and name in diag.message_primary
    assert invoke_count(emulator) == 0

    assert db.execute("SELECT aws_bedrock.invoke_model(%s, %s, %s, NULL)", (TITAN, JSON, JSON)).fetchone() == (None,)
    assert db.execute(EMBED, (TITAN, "embedding", None)).fetchone() == (None,)
    assert invoke_count(emulator) == 0

    # A NULL accept_type leaves Bedrock's default, JSON.
    output = db.execute("SELECT aws_bedrock.invoke_model(%s, %s, NULL, %s)", (TITAN, JSON, body)).fetchone()[0]
    assert output == direct(aws_client, TITAN, body)


def test_unknown_model_is_42704_and_bad_input_22023(db):
    diag = sql_error(db, EMBED, ("amazon.no-such-model", "embedding", titan_input("x")))
    assert diag.sqlstate == "42704"
    assert "Bedrock InvokeModel" in diag.message_primary and "ValidationException" in diag.message_detail

    diag = sql_error(db, EMBED, (TITAN, "embedding", '{"inputText": '))
    assert diag.sqlstate == "22023" and "ValidationException" in diag.message_detail


def test_throttled_after_every_attempt_is_53400(db, emulator):
    emulator.set_faults(service="bedrock", throttle_every=1)
    db.execute("SET aws_ml.max_attempts = 2")
    diag = sql_error(db, EMBED, (TITAN, "embedding", titan_input("throttled")))
    assert diag.sqlstate == "53400" and diag.message_hint
    assert invoke_count(emulator) == 2


@pytest.mark.parametrize("status, code, sqlstate", [
    (403, "AccessDeniedException", "42501"),
    (404, "ResourceNotFoundException", "42704"),
    (408, "ModelTimeoutException", "53400"),
    (424, "ModelErrorException", "38000"),
])
def test_bedrock_errors_map_to_their_sqlstate(db, emulator, status, code, sqlstate):
    emulator.set_faults(service="bedrock", error_code=code, error_status=status, error_every=1)
    db.execute("SET aws_ml.max_attempts = 1")
    for sql, params in [(EMBED, (TITAN, "embedding", titan_input("refused"))),
                        (BATCH_EMBED, (TITAN, [titan_input("refused")], 4))]:
        diag = sql_error(db, sql, params)
        assert diag.sqlstate == sqlstate, sql
        assert "Bedrock InvokeModel" in diag.message_primary and code in diag.message_detail
    if code == "AccessDeniedException":
        assert "Bedrock console" in diag.message_hint and "bedrock:InvokeModel" in diag.message_hint


def batch_inputs(count, null_every=None):
    return [None if null_every and i % null_every == 3 else titan_input(f"row {i}: PostgreSQL I/O monitoring views")
            for i in range(1, count + 1)]


def test_batch_keeps_input_order_under_random_latency(db, emulator, aws_client):
    inputs = batch_inputs(60, null_every=7)
    emulator.set_faults(service="bedrock", latency_ms=5, latency_jitter_ms=30)
    rows = db.execute(BATCH_EMBED, (TITAN, inputs, 8)).fetchall()
    assert invoke_count(emulator) == sum(i is not None for i in inputs)
    emulator.clear_faults()
    assert [ordinality for ordinality, _ in rows] == list(range(1, 61))
    for (ordinality, embedding), model_input in zip(rows, inputs):
        if model_input is None:
            assert embedding is None
        else:
            assert embedding == json.loads(direct(aws_client, TITAN, model_input))["embedding"], ordinality


def test_batch_invoke_model_returns_each_body_as_text(db, emulator, aws_client):
    prompts = [json.dumps({"prompt": f"\n\nHuman: question {i}\n\nAssistant:", "max_tokens_to_sample": 50})
               for i in range(10)]
    prompts[4] = None
    rows = db.execute("SELECT * FROM aws_bedrock.batch_invoke_model(%s, %s, %s, %s)",
                      (CLAUDE, JSON, JSON, prompts)).fetchall()
    assert invoke_count(emulator) == 9
    assert rows == [(i + 1, None if p is None else direct(aws_client, CLAUDE, p)) for i, p in enumerate(prompts)]


def test_batch_failure_names_its_ordinality_and_stops_the_queue(db, emulator):
    inputs = batch_inputs(40)
    inputs[4] = '{"inputText": '  # ordinality 5: malformed
    diag = sql_error(db, BATCH_EMBED, (TITAN, inputs, 1))
    assert diag.sqlstate == "22023" and "ordinality 5" in diag.message_primary
    assert "ValidationException" in diag.message_detail
    assert invoke_count(emulator) == 5


def test_batch_failure_stops_every_lane(db, emulator):
    inputs = batch_inputs(100)
    inputs[1] = '{"inputText": '  # ordinality 2
    emulator.set_faults(service="bedrock", latency_ms=100)
    diag = sql_error(db, BATCH_EMBED, (TITAN, inputs, 4))
    assert "ordinality 2" in diag.message_primary
    # Lanes run only while the backend waits in Python: a lane that was not
    # stopped would go on sending the queued inputs during this next call.
    db.execute(BATCH_EMBED, (TITAN, batch_inputs(3), 1)).fetchall()
    # The first 4 requests, at most one more per other lane (taken before the
    # failure was seen), and the 3 of the second call.
    assert invoke_count(emulator) <= 4 + 3 + 3


def test_batch_output_error_names_its_ordinality(db):
    two = json.dumps({"texts": ["a", "b"], "input_type": "search_query"})
    one = json.dumps({"texts": ["a"], "input_type": "search_query"})
    diag = sql_error(db, "SELECT * FROM aws_bedrock.batch_invoke_model_get_embeddings(%s, %s, 'embeddings.1', %s)",
                     (COHERE, JSON, [two, two, one, two]))
    assert diag.sqlstate == "22023"
    assert '"embeddings.1"' in diag.message_primary and "ordinality 3" in diag.message_primary


def test_batch_arguments(db, emulator):
    for bad in (0, 33, -1):
        diag = sql_error(db, BATCH_EMBED, (TITAN, ["{}"], bad))
        assert diag.sqlstate == "22023" and "max_concurrency" in diag.message_primary
    diag = sql_error(db, BATCH_EMBED, (TITAN, ["{}"], None))
    assert diag.sqlstate == "22004" and "max_concurrency" in diag.message_primary
    diag = sql_error(db, "SELECT * FROM aws_bedrock.batch_invoke_model_get_embeddings(%s, %s, 'embedding', "
                         "'{{a,b},{c,d}}')", (TITAN, JSON))
    assert diag.sqlstate == "22023" and "one-dimensional" in diag.message_primary
    diag = sql_error(db, "SELECT * FROM aws_bedrock.batch_invoke_model(NULL, 'application/json', NULL, '{}')")
    assert diag.sqlstate == "22004" and "model_id" in diag.message_primary
    assert db.execute(BATCH_EMBED, (TITAN, None, 4)).fetchall() == []
    assert db.execute(BATCH_EMBED, (TITAN, [], 4)).fetchall() == []
    assert db.execute(BATCH_EMBED, (TITAN, [None, None], 4)).fetchall() == [(1, None), (2, None)]
    assert invoke_count(emulator) == 0


def test_a_cancel_stops_a_batch_and_its_queue(db, connect, emulator):
    """Cancelled once max_concurrency requests hang (statement_timeout cancels the same way)."""
    hang_seconds = 30
    emulator.set_faults(service="bedrock", hang_seconds=hang_seconds)
    canceller = stop_when(connect, db.info.backend_pid, requests_in_flight(emulator, "bedrock", 4),
                          "4 requests to hang")
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute(BATCH_EMBED, (TITAN, batch_inputs(20), 4))
    finally:
        canceller.join()
    # Only tells "stopped early" from "waited for the hang".
    assert time.monotonic() - started < hang_seconds / 3
    # max_concurrency requests were in flight together; the rest were never sent.
    assert invoke_count(emulator) == 4
    emulator.clear_faults()
    assert db.execute(BATCH_EMBED, (TITAN, batch_inputs(3), 4)).fetchone()[0] == 1


# Each form of a model identifier AWS accepts, and the foundation model it names.
MODEL_ID_FORMS = {
    "versioned id": ("amazon.titan-embed-text-v2:0", TITAN_V2),
    "geography inference profile": ("us.amazon.titan-embed-text-v2:0", TITAN_V2),
    "global inference profile": ("global.cohere.embed-english-v3", COHERE),
    "foundation-model ARN": ("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v1", TITAN),
    "inference-profile ARN": ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.cohere.embed-english-v3",
                              COHERE),
}


@pytest.mark.parametrize("form", MODEL_ID_FORMS)
def test_every_form_of_model_id_reaches_its_model_and_its_family(db, emulator, aws_client, form):
    """From SQL through the emulator: the call, and materialize_embeddings,
    which must build the request body of the model's family."""
    model_id, model = MODEL_ID_FORMS[form]
    body = titan_input("forms") if model != COHERE else json.dumps({"texts": ["forms"], "input_type": "search_query"})
    key = "embedding" if model != COHERE else "embeddings.0"
    got = db.execute(EMBED, (model_id, key, body)).fetchone()[0]
    answer = json.loads(direct(aws_client, model, body))
    assert got == pytest.approx(answer["embeddings"][0] if model == COHERE else answer["embedding"])
    db.execute("DROP TABLE IF EXISTS forms")
    db.execute("CREATE TABLE forms (id int, body text, embedding float8[])")
    db.execute("INSERT INTO forms VALUES (1, 'PostgreSQL I/O monitoring views')")
    emulator.reset()
    db.execute("CALL aws_bedrock.materialize_embeddings('forms', 'body', 'embedding', %s)", (model_id,))
    assert db.execute("SELECT embedding IS NOT NULL FROM forms").fetchone() == (True,)
    assert invoke_count(emulator) == 1
    db.execute("DROP TABLE forms")


def test_claude_through_a_global_inference_profile(db, aws_client):
    """AWS's own Aurora sample calls global.anthropic.claude-sonnet-4-6."""
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "Name a PostgreSQL I/O view."}]})
    output = db.execute("SELECT aws_bedrock.invoke_model('global.anthropic.claude-sonnet-4-6', %s, %s, %s)",
                        (JSON, JSON, body)).fetchone()[0]
    assert json.loads(output)["content"][0]["type"] == "text"
    assert output == direct(aws_client, "global.anthropic.claude-sonnet-4-6", body)


def test_an_application_inference_profile_needs_the_json_key_for_backfills(db):
    """Its ARN does not name the model: materialize_embeddings cannot tell the
    family, and says what to do instead."""
    db.execute("DROP TABLE IF EXISTS forms")
    db.execute("CREATE TABLE forms (id int, body text, embedding float8[])")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        db.execute("CALL aws_bedrock.materialize_embeddings('forms', 'body', 'embedding', "
                   "'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6')")
    assert "batch_invoke_model_get_embeddings" in caught.value.diag.message_hint
    db.execute("DROP TABLE forms")


BATCH_EMBED_KEYED = ("SELECT ordinality, model_output FROM "
                     "aws_bedrock.batch_invoke_model_get_embeddings(%s, 'application/json', %s, %s, %s)")


@pytest.mark.parametrize("model, body, path", [
    (TITAN, titan_input("no key"), ("embedding",)),
    (COHERE, json.dumps({"texts": ["no key", "second"], "input_type": "search_query"}), ("embeddings", 0)),
    (COHERE, json.dumps({"texts": ["no key"], "input_type": "search_query", "embedding_types": ["float"]}),
     ("embeddings", "float", 0)),
])
def test_a_null_json_key_takes_the_first_vector_where_the_family_puts_it(db, emulator, aws_client, model, body, path):
    want = json.loads(direct(aws_client, model, body))
    for step in path:
        want = want[step]
    assert db.execute(EMBED, (model, None, body)).fetchone()[0] == pytest.approx(want)
    assert db.execute(BATCH_EMBED_KEYED, (model, None, [body, None], 4)).fetchall() == \
        [(1, pytest.approx(want)), (2, None)]
    in_batch_mode = ("SELECT aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', NULL, body) "
                     "FROM unnest(%s::text[]) WITH ORDINALITY AS u(body, n) ORDER BY n")
    emulator.reset()
    assert db.execute(in_batch_mode, (model, [body, None, body])).fetchall() == \
        [(pytest.approx(want),), (None,), (pytest.approx(want),)]
    assert invoke_count(emulator) == 1  # one batch: the same input is sent once


def test_a_null_json_key_for_an_unknown_family_says_what_to_pass(db, emulator):
    emulator.reset()
    for sql, params in [(EMBED, ("meta.llama3-70b-instruct-v1:0", None, "{}")),
                        (BATCH_EMBED_KEYED, ("meta.llama3-70b-instruct-v1:0", None, ["{}"], 4))]:
        diag = sql_error(db, sql, params)
        assert diag.sqlstate == "22023" and "json_key is NULL" in diag.message_primary
        assert "'embedding'" in diag.message_hint
    assert invoke_count(emulator) == 0
