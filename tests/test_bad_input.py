"""Bad and unusual input to every function: each case gives its documented
result, checked against the emulator's own answer where there is one, or an
error with DESIGN.md's SQLSTATE; the backend never crashes."""
import csv
import io
import json
from dataclasses import dataclass
from typing import Callable

import psycopg
import pytest

from tests.conftest import counter

TITAN = "amazon.titan-embed-text-v1"
JSON = "application/json"
ODD_TEXTS = {
    "emoji": "I love it 😀🎉👍🏽",
    "combining": "Cafe\u0301 de\u0301licieux, I love it",
    "right_to_left": "אני אוהב את זה, مرحبا",
    "control": "I love it\x01\x1b[31m\x7f\t",
    "5000_bytes": "é" * 2500,
    "quotes_and_commas": 'say "hi", then\r\nleave',
}
LARGE = "x" * 17_000
# Names that must reach the service as one path segment, whole.
ODD_NAMES = ["a/b", "..", "with space", "100%", "what?", "#1", "modèle-é"]


@dataclass
class Error:
    sqlstate: str


@dataclass
class Rows:
    """The documented result."""
    rows: list


@dataclass
class SameAs:
    """What the emulator answers the same request sent directly with boto3."""
    answer: Callable


def sentiment(text):
    return SameAs(lambda aws: [tuple(_sentiment(aws, text))])


def _sentiment(aws, text):
    answer = aws("comprehend").detect_sentiment(Text=text, LanguageCode="en")
    return answer["Sentiment"], pytest.approx(answer["SentimentScore"][answer["Sentiment"].capitalize()], rel=1e-6)


def csv_line(fields):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


def endpoint(name, body):
    """The endpoint's answer lines for body."""
    def answer(aws):
        got = aws("sagemaker-runtime").invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body.encode())
        return got["Body"].read().decode().splitlines()
    return answer


def bedrock_text(model_input):
    def answer(aws):
        got = aws("bedrock-runtime").invoke_model(modelId=TITAN, contentType=JSON, accept=JSON,
                                                  body=model_input.encode())
        return [(got["body"].read().decode(),)]
    return SameAs(answer)


def bedrock_vector(model_input):
    def answer(aws):
        got = aws("bedrock-runtime").invoke_model(modelId=TITAN, contentType=JSON, accept=JSON,
                                                  body=model_input.encode())
        return [(json.loads(got["body"].read())["embedding"],)]
    return SameAs(answer)


def titan(text):
    return json.dumps({"inputText": text}, ensure_ascii=False)


DETECT = "SELECT sentiment, confidence FROM aws_comprehend.detect_sentiment(%s, %s, %s)"
BATCH_DETECT = "SELECT ordinality, sentiment FROM aws_comprehend.batch_detect_sentiment(%s::text[], %s, %s)"
INVOKE = "SELECT aws_sagemaker.invoke_endpoint(%s, %s, VARIADIC %s::text[])"
BATCH_INVOKE = "SELECT ordinality, model_output FROM aws_sagemaker.batch_invoke_endpoint(%s, %s, %s::text[])"
MODEL = "SELECT aws_bedrock.invoke_model(%s, %s, %s, %s)"
EMBED = "SELECT aws_bedrock.invoke_model_get_embeddings(%s, %s, %s, %s)"
MODEL_OVER_ROWS = "SELECT aws_bedrock.invoke_model(%s, %s, %s, input) FROM (VALUES (%s), ('{}')) inputs (input)"
BATCH_MODEL = "SELECT ordinality, model_output FROM aws_bedrock.batch_invoke_model(%s, %s, %s, %s::text[], %s)"
BATCH_EMBED = ("SELECT ordinality, model_output FROM "
               "aws_bedrock.batch_invoke_model_get_embeddings(%s, %s, %s, %s::text[], %s)")

CASES = {
    # aws_comprehend.detect_sentiment
    "detect/null_text": (DETECT, (None, "en", None), Rows([(None, None)])),
    "detect/null_language": (DETECT, ("I love it", None, None), Error("22004")),
    "detect/null_batch_size": (DETECT, ("I love it", "en", None), sentiment("I love it")),
    "detect/zero_batch_size": (DETECT, ("I love it", "en", 0), Error("22023")),
    "detect/empty": (DETECT, ("", "en", None), Rows([(None, None)])),
    "detect/blank": (DETECT, (" \t\n ", "en", None), Rows([(None, None)])),
    "detect/5001_bytes": (DETECT, ("é" * 2500 + "a", "en", None), Error("22023")),
    "detect/bad_language": (DETECT, ("I love it", "xx", None), Error("22023")),
    "detect/empty_language": (DETECT, ("I love it", "", None), Error("22023")),
    **{f"detect/{name}": (DETECT, (text, "en", None), sentiment(text)) for name, text in ODD_TEXTS.items()},
    # aws_comprehend.batch_detect_sentiment
    "batch_detect/null_array": (BATCH_DETECT, (None, "en", None), Rows([])),
    "batch_detect/zero_batch_size": (BATCH_DETECT, (["I love it"], "en", 0), Error("22023")),
    "batch_detect/empty_array": (BATCH_DETECT, ([], "en", None), Rows([])),
    "batch_detect/null_language": (BATCH_DETECT, (["I love it"], None, None), Error("22004")),
    "batch_detect/nested_array": (BATCH_DETECT, ([["a", "b"], ["c", "d"]], "en", None), Error("22023")),
    "batch_detect/null_and_blank_elements": (BATCH_DETECT, ([None, "", "  "], "en", None),
                                             Rows([(1, None), (2, None), (3, None)])),
    "batch_detect/5001_bytes": (BATCH_DETECT, (["fine", "é" * 2500 + "a"], "en", None), Error("22023")),
    "batch_detect/odd_texts": (BATCH_DETECT, (list(ODD_TEXTS.values()), "en", 2), SameAs(
        lambda aws: [(i, _sentiment(aws, text)[0]) for i, text in enumerate(ODD_TEXTS.values(), 1)])),
    # aws_sagemaker.invoke_endpoint
    "invoke/null_name": (INVOKE, (None, None, ["1"]), Error("22004")),
    "invoke/empty_name": (INVOKE, ("", None, ["1"]), Error("22023")),
    "invoke/blank_name": (INVOKE, ("  ", None, ["1"]), Error("22023")),
    "invoke/zero_batch_size": (INVOKE, ("echo-row-count", 0, ["1"]), Error("22023")),
    "invoke/null_input": (INVOKE, ("echo-row-count", None, [None]),
                          SameAs(lambda aws: [tuple(endpoint("echo-row-count", '""\n')(aws))])),
    "invoke/no_field": (INVOKE, ("echo-row-count", None, []), Error("22023")),
    "invoke/nested_array": (INVOKE, ("echo-row-count", None, [["1", "2"], ["3", "4"]]), Error("22023")),
    "invoke/unknown_endpoint": (INVOKE, ("no-such-endpoint", None, ["1"]), Error("42704")),
    "invoke/odd_texts": (INVOKE, ("echo-row-count", None, list(ODD_TEXTS.values())), SameAs(
        lambda aws: [tuple(endpoint("echo-row-count", csv_line(ODD_TEXTS.values()))(aws))])),
    # aws_sagemaker.batch_invoke_endpoint
    "batch_invoke/null_name": (BATCH_INVOKE, (None, None, ["1"]), Error("22004")),
    "batch_invoke/null_array": (BATCH_INVOKE, ("echo-row-count", None, None), Rows([])),
    "batch_invoke/empty_array": (BATCH_INVOKE, ("echo-row-count", None, []), Rows([])),
    "batch_invoke/nested_array": (BATCH_INVOKE, ("echo-row-count", None, [["1", "2"], ["3", "4"]]), Error("22023")),
    "batch_invoke/null_elements": (BATCH_INVOKE, ("echo-row-count", None, [None, None]), Rows([(1, None), (2, None)])),
    "batch_invoke/zero_batch_size": (BATCH_INVOKE, ("echo-row-count", 0, ["1"]), Error("22023")),
    "batch_invoke/odd_texts": (BATCH_INVOKE, ("echo-row-count", 2, list(ODD_TEXTS.values())), SameAs(
        lambda aws: list(enumerate(endpoint("echo-row-count", "".join(csv_line([t]) for t in ODD_TEXTS.values()))(aws),
                                   1)))),
    # aws_bedrock.invoke_model
    "model/null_model_id": (MODEL, (None, JSON, JSON, titan("x")), Error("22004")),
    "model/null_content_type": (MODEL, (TITAN, None, JSON, titan("x")), Error("22004")),
    "model/null_accept": (MODEL, (TITAN, JSON, None, titan("x")), bedrock_text(titan("x"))),
    "model/null_input": (MODEL, (TITAN, JSON, JSON, None), Rows([(None,)])),
    "model/empty_model_id": (MODEL, ("", JSON, JSON, titan("x")), Error("22023")),
    "model/blank_model_id": (MODEL, ("  ", JSON, JSON, titan("x")), Error("42704")),
    "model/empty_input": (MODEL, (TITAN, JSON, JSON, ""), Error("22023")),
    "model/malformed_json": (MODEL, (TITAN, JSON, JSON, '{"inputText": '), Error("22023")),
    "model/5001_bytes": (MODEL, (TITAN, JSON, JSON, titan("é" * 2500 + "a")),
                         bedrock_text(titan("é" * 2500 + "a"))),
    # headers: a line break would split it, other characters break its signature
    "model/content_type_with_a_line_break": (MODEL, (TITAN, JSON + "\r\nX-Injected: 1", JSON, titan("x")),
                                             Error("22023")),
    "model/accept_with_a_control_character": (MODEL, (TITAN, JSON, JSON + "\x01", titan("x")), Error("22023")),
    "model/non_ascii_content_type": (MODEL, (TITAN, "application/jsön", JSON, titan("x")), Error("22023")),
    "model/batch_mode_accept_with_a_line_break": (MODEL_OVER_ROWS, (TITAN, JSON, JSON + "\n", titan("x")),
                                                  Error("22023")),
    **{f"model/{name}": (MODEL, (TITAN, JSON, JSON, titan(text)), bedrock_text(titan(text)))
       for name, text in ODD_TEXTS.items()},
    # aws_bedrock.invoke_model_get_embeddings
    "embed/null_model_id": (EMBED, (None, JSON, "embedding", titan("x")), Error("22004")),
    "embed/null_content_type": (EMBED, (TITAN, None, "embedding", titan("x")), Error("22004")),
    "embed/content_type_with_a_line_break": (EMBED, (TITAN, JSON + "\n", "embedding", titan("x")), Error("22023")),
    "embed/null_json_key": (EMBED, (TITAN, JSON, None, titan("x")), bedrock_vector(titan("x"))),
    "embed/empty_json_key": (EMBED, (TITAN, JSON, "", titan("x")), Error("22023")),
    "embed/json_key_into_a_scalar": (EMBED, (TITAN, JSON, "inputTextTokenCount.0", titan("x")), Error("22023")),
    "embed/json_key_into_the_vector": (EMBED, (TITAN, JSON, "embedding.0.x", titan("x")), Error("22023")),
    "embed/malformed_json": (EMBED, (TITAN, JSON, "embedding", "{not json"), Error("22023")),
    "embed/null_input": (EMBED, (TITAN, JSON, "embedding", None), Rows([(None,)])),
    "embed/odd_text": (EMBED, (TITAN, JSON, "embedding", titan(ODD_TEXTS["control"])),
                       bedrock_vector(titan(ODD_TEXTS["control"]))),
    # aws_bedrock.batch_invoke_model and batch_invoke_model_get_embeddings
    "batch_model/null_model_id": (BATCH_MODEL, (None, JSON, JSON, [titan("x")], 4), Error("22004")),
    "batch_model/null_content_type": (BATCH_MODEL, (TITAN, None, JSON, [titan("x")], 4), Error("22004")),
    "batch_model/null_accept": (BATCH_MODEL, (TITAN, JSON, None, [titan("x")], 4),
                                SameAs(lambda aws: [(1, bedrock_text(titan("x")).answer(aws)[0][0])])),
    "batch_model/accept_with_a_line_break": (BATCH_MODEL, (TITAN, JSON, JSON + "\n", [titan("x")], 4),
                                             Error("22023")),
    "batch_model/null_array": (BATCH_MODEL, (TITAN, JSON, JSON, None, 4), Rows([])),
    "batch_model/empty_array": (BATCH_MODEL, (TITAN, JSON, JSON, [], 4), Rows([])),
    "batch_model/nested_array": (BATCH_MODEL, (TITAN, JSON, JSON, [["a", "b"], ["c", "d"]], 4), Error("22023")),
    "batch_model/null_concurrency": (BATCH_MODEL, (TITAN, JSON, JSON, [titan("x")], None), Error("22004")),
    "batch_model/zero_concurrency": (BATCH_MODEL, (TITAN, JSON, JSON, [titan("x")], 0), Error("22023")),
    # requests too large for the statement cache's keys
    "batch_model/large_inputs": (BATCH_MODEL, (TITAN, JSON, JSON, [titan(LARGE + " one"), titan(LARGE + " two")], 4),
                                 SameAs(lambda aws: [(i, bedrock_text(titan(LARGE + end)).answer(aws)[0][0])
                                                     for i, end in ((1, " one"), (2, " two"))])),
    "batch_model/malformed_json": (BATCH_MODEL, (TITAN, JSON, JSON, [titan("x"), "{"], 4), Error("22023")),
    "batch_embed/null_json_key": (BATCH_EMBED, (TITAN, JSON, None, [titan("x")], 4),
                                  SameAs(lambda aws: [(1, bedrock_vector(titan("x")).answer(aws)[0][0])])),
    "batch_embed/json_key_into_a_scalar": (BATCH_EMBED, (TITAN, JSON, "inputTextTokenCount.x", [titan("x")], 4),
                                           Error("22023")),
    "batch_embed/null_elements": (BATCH_EMBED, (TITAN, JSON, "embedding", [None, None], 4),
                                  Rows([(1, None), (2, None)])),
}


def backend_alive(cluster, conn):
    assert conn.execute("SELECT 1").fetchone() == (1,)
    assert "terminated by signal" not in cluster.server_log()


@pytest.mark.parametrize("case", CASES)
def test_bad_input(db, cluster, aws_client, case):
    sql, params, expected = CASES[case]
    if isinstance(expected, Error):
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql, params)
        assert caught.value.diag.sqlstate == expected.sqlstate, caught.value.diag.message_primary
        assert caught.value.diag.message_primary.startswith("aws_ml")
    else:
        rows = db.execute(sql, params).fetchall()
        want = expected.rows if isinstance(expected, Rows) else expected.answer(aws_client)
        assert rows == want
    backend_alive(cluster, db)


def test_98_variadic_inputs_and_no_more(db, cluster, emulator, aws_client):
    args = ", ".join(str(i) for i in range(98))
    got = db.execute(f"SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, {args})").fetchone()
    assert list(got) == endpoint("echo-row-count", csv_line(range(98)))(aws_client)
    with pytest.raises(psycopg.errors.TooManyArguments):
        db.execute(f"SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, {args}, 98)")
    backend_alive(cluster, db)


@pytest.mark.slow  # 200,000 elements
def test_200000_element_batch(db, cluster, emulator):
    got = db.execute("SELECT count(*), count(DISTINCT model_output), min(ordinality), max(ordinality) "
                     "FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
                     "ARRAY(SELECT ROW(i, 'x') FROM generate_series(1, 200000) i))").fetchone()
    assert got == (200_000, 1, 1, 200_000)
    stats = emulator.counters()["sagemaker"]["InvokeEndpoint"]
    assert sum(stats["batch_sizes"]) == 200_000
    assert db.execute("SELECT model_output FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, "
                      "ARRAY[ROW(1, 'x')])").fetchone() == (endpoint_fields(emulator, "1,x\n"),)
    backend_alive(cluster, db)


def endpoint_fields(emulator, body):
    """echo-row-count's answer for body, from the body recorded by the emulator."""
    assert emulator.sagemaker_bodies()[-1] == body
    return str(len(next(csv.reader(io.StringIO(body)))))


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_endpoint_names_reach_their_endpoint(db, cluster, emulator, aws_client, name):
    emulator.register_endpoint(name, model={"kind": "linear", "coef": [2.0], "intercept": 1.0})
    got = db.execute("SELECT aws_sagemaker.invoke_endpoint(%s, NULL, 20)", (name,)).fetchone()
    assert list(got) == endpoint(name, "20\n")(aws_client)
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint", "errors") == 0
    backend_alive(cluster, db)


def test_a_name_cannot_reach_another_path(db, cluster, emulator):
    """'../model/x/invoke' is one endpoint name, unknown, whatever the paths
    it spells; likewise a Bedrock model id."""
    for sql, params in [(INVOKE, ("../model/x/invoke", None, ["1"])),
                        (INVOKE, ("../echo-row-count", None, ["1"])),
                        (INVOKE, ("../../endpoints/echo-row-count/invocations", None, ["1"])),
                        (MODEL, (f"../model/{TITAN}", JSON, JSON, titan("x"))),
                        (MODEL, (f"x/../../model/{TITAN}/invoke", JSON, JSON, titan("x")))]:
        with pytest.raises(psycopg.errors.UndefinedObject) as caught:
            db.execute(sql, params)
        if sql == INVOKE:  # Bedrock's message does not name the model
            assert params[0] in caught.value.diag.message_primary
    counters = emulator.counters()
    assert counter(counters, "sagemaker", "InvokeEndpoint", "errors") == 3
    assert counter(counters, "bedrock", "InvokeModel", "errors") == 2
    backend_alive(cluster, db)


SENTIMENT_ARGS = {"table_name": "odd_notes", "text_column": "note text", "language_code": "en",
                  "sentiment_column": "sentiment", "confidence_column": "confidence", "batch_size": 500}
EMBEDDINGS_ARGS = {"table_name": "odd_notes", "input_column": "note text", "embedding_column": "embedding",
                   "model_id": TITAN, "json_key": None, "batch_size": 100, "max_concurrency": 4}


def call(procedure, arguments):
    return f"CALL {procedure}({', '.join(f'{name} => %({name})s' for name in arguments)})"


SENTIMENT = call("aws_comprehend.materialize_sentiment", SENTIMENT_ARGS)
EMBEDDINGS = call("aws_bedrock.materialize_embeddings", EMBEDDINGS_ARGS)
TOO_LONG = "é" * 2500 + "a"


def sentiment_args(**changes):
    return {**SENTIMENT_ARGS, **changes}


def embeddings_args(**changes):
    return {**EMBEDDINGS_ARGS, **changes}


@dataclass
class Stopped:
    """An error naming the row it stopped at (the one with text `at`)."""
    sqlstate: str
    at: str


PROCEDURE_CASES = {
    "sentiment/null_table": (SENTIMENT, sentiment_args(table_name=None), Error("22004")),
    "sentiment/null_text_column": (SENTIMENT, sentiment_args(text_column=None), Error("22004")),
    "sentiment/null_language": (SENTIMENT, sentiment_args(language_code=None), Error("22004")),
    "sentiment/null_sentiment_column": (SENTIMENT, sentiment_args(sentiment_column=None), Error("22004")),
    "sentiment/null_batch_size": (SENTIMENT, sentiment_args(batch_size=None), Error("22004")),
    "sentiment/zero_batch_size": (SENTIMENT, sentiment_args(batch_size=0), Error("22023")),
    "sentiment/huge_batch_size": (SENTIMENT, sentiment_args(batch_size=10_001), Error("22023")),
    "sentiment/no_such_table": (SENTIMENT, sentiment_args(table_name="no_such_table"), Error("42P01")),
    "sentiment/a_view": (SENTIMENT, sentiment_args(table_name="odd_notes_view"), Error("42809")),
    "sentiment/no_such_column": (SENTIMENT, sentiment_args(text_column="nope"), Error("42703")),
    "sentiment/no_such_output_column": (SENTIMENT, sentiment_args(confidence_column="nope"), Error("42703")),
    "sentiment/integer_input": (SENTIMENT, sentiment_args(text_column="n"), Error("42804")),
    "sentiment/integer_output": (SENTIMENT, sentiment_args(sentiment_column="n"), Error("42804")),
    "sentiment/bad_language": (SENTIMENT, sentiment_args(language_code="xx"), Error("22023")),
    "sentiment/odd_texts": (SENTIMENT, SENTIMENT_ARGS, "sentiments"),
    "sentiment/5001_bytes": (SENTIMENT, SENTIMENT_ARGS, Stopped("22023", TOO_LONG)),
    "embeddings/null_model_id": (EMBEDDINGS, embeddings_args(model_id=None), Error("22004")),
    "embeddings/null_embedding_column": (EMBEDDINGS, embeddings_args(embedding_column=None), Error("22004")),
    "embeddings/unknown_model_family": (EMBEDDINGS, embeddings_args(model_id="meta.llama3"), Error("22023")),
    "embeddings/zero_concurrency": (EMBEDDINGS, embeddings_args(max_concurrency=0), Error("22023")),
    "embeddings/33_concurrency": (EMBEDDINGS, embeddings_args(max_concurrency=33), Error("22023")),
    "embeddings/integer_output": (EMBEDDINGS, embeddings_args(embedding_column="n"), Error("42804")),
    "embeddings/json_key_into_a_scalar": (EMBEDDINGS, embeddings_args(json_key="inputTextTokenCount.x"),
                                          Stopped("22023", ODD_TEXTS["emoji"])),
    "embeddings/odd_texts": (EMBEDDINGS, EMBEDDINGS_ARGS, "embeddings"),
}


@pytest.fixture
def odd_notes(db):
    """A table with a row for each odd text, an empty one and a NULL one; a
    view over it."""
    db.execute("DROP TABLE IF EXISTS odd_notes CASCADE")
    db.execute('CREATE TABLE odd_notes (id int, "note text" text, sentiment varchar, confidence real, n int, '
               "embedding float8[])")
    db.execute("CREATE VIEW odd_notes_view AS SELECT * FROM odd_notes")
    texts = [*ODD_TEXTS.values(), "", None]
    with db.cursor() as cur:
        cur.executemany('INSERT INTO odd_notes (id, "note text") VALUES (%s, %s)', list(enumerate(texts)))
    return texts


def filled_as_aws_does(db, aws_client, texts, expected):
    if expected == "sentiments":
        got = db.execute("SELECT sentiment, confidence FROM odd_notes ORDER BY id").fetchall()
        want = [(None, None) if not text else tuple(_sentiment(aws_client, text)) for text in texts]
    else:
        got = db.execute("SELECT embedding FROM odd_notes ORDER BY id").fetchall()
        want = [(None,) if not text else bedrock_vector(titan(text)).answer(aws_client)[0] for text in texts]
    assert got == want


@pytest.mark.parametrize("case", PROCEDURE_CASES)
def test_bad_input_to_the_procedures(db, cluster, aws_client, odd_notes, case):
    sql, params, expected = PROCEDURE_CASES[case]
    if isinstance(expected, Stopped):
        if expected.at == TOO_LONG:
            db.execute('INSERT INTO odd_notes (id, "note text") VALUES (100, %s)', (TOO_LONG,))
        at = db.execute('SELECT ctid::text FROM odd_notes WHERE "note text" = %s', (expected.at,)).fetchone()[0]
    if isinstance(expected, str):
        db.execute(sql, params)
        filled_as_aws_does(db, aws_client, odd_notes, expected)
    else:
        with pytest.raises(psycopg.Error) as caught:
            db.execute(sql, params)
        assert caught.value.diag.sqlstate == expected.sqlstate, caught.value.diag.message_primary
        if expected.sqlstate != "42P01":  # PostgreSQL's own, from the regclass argument
            assert caught.value.diag.message_primary.startswith("aws_ml")
        if isinstance(expected, Stopped):
            assert f"stopped at the row at ctid {at} of public.odd_notes" in caught.value.diag.message_primary
    backend_alive(cluster, db)


def test_a_procedure_refuses_a_transaction_block_before_any_request(db, emulator, odd_notes):
    db.execute("BEGIN")
    with pytest.raises(psycopg.errors.InvalidTransactionTermination) as caught:
        db.execute(SENTIMENT, SENTIMENT_ARGS)
    db.execute("ROLLBACK")
    assert "transaction block" in caught.value.diag.message_primary
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment") == 0


BATCH_MODE_FORMS = ("SELECT p.oid::regprocedure::text, p.proargtypes::regtype[]::text[] FROM pg_proc p "
                    "WHERE p.pronamespace::regnamespace::text LIKE 'aws\\_%' AND p.proname LIKE '\\_%\\_rows' AND p.proretset "
                    "ORDER BY 1")


def test_batch_modes_internal_forms_check_their_arrays(db, cluster, emulator):
    """Members can call the _..._rows functions batch mode calls: NULL
    arrays, arrays of two dimensions and arrays of unequal lengths are 22023
    naming the function; NULL elements get the row function's own answer or
    error, never a Python error (38000). Nothing is sent."""
    forms = db.execute(BATCH_MODE_FORMS).fetchall()
    assert len(forms) == 4, forms
    for function, types in forms:
        name = function.split("(")[0]
        call = f"SELECT * FROM {name}({{}})".format
        cases = {
            "NULL arrays": [f"NULL::{t}" for t in types],
            "two dimensions": [f"ARRAY[[NULL], [NULL]]::{types[0]}", *(f"ARRAY[NULL, NULL]::{t}" for t in types[1:])],
            "unequal lengths": [f"ARRAY[NULL, NULL]::{types[0]}", *(f"ARRAY[NULL]::{t}" for t in types[1:])],
        }
        for case, arguments in cases.items():
            with pytest.raises(psycopg.Error) as caught:
                db.execute(call(", ".join(arguments)))
            assert caught.value.diag.sqlstate == "22023", (function, case, caught.value.diag.message_primary)
            assert name in caught.value.diag.message_primary, (function, case)
        try:
            db.execute(call(", ".join(f"ARRAY[NULL]::{t}" for t in types))).fetchall()
        except psycopg.Error as error:
            assert error.diag.sqlstate in ("22004", "22023"), (function, error.diag.message_primary)
    assert emulator.counters() == {}
    backend_alive(cluster, db)
