"""Whatever the array (duplicates, NULLs, blanks, any characters or
numbers), a batch function answers each element as its row function does,
sends nothing for NULLs and, for Bedrock, each distinct input once."""
import json

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import counter

TITAN = "amazon.titan-embed-text-v1"
# PostgreSQL text holds any character but NUL; surrogates are not UTF-8.
characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
words = st.sampled_from(["I love it", "terrible", "  ", "", "fine, I guess", "😀"])
elements = st.one_of(st.none(), words, st.text(alphabet=characters, max_size=40))
arrays = st.lists(elements, max_size=30)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def conn(cluster, database):
    with psycopg.connect(cluster.conninfo(database), autocommit=True) as connection:
        yield connection


def blank(text):
    return text is None or not text.strip()


@EXAMPLES
@given(arrays)
def test_batch_detect_sentiment_answers_as_detect_sentiment(conn, texts):
    batch = conn.execute("SELECT ordinality, sentiment, confidence FROM aws_comprehend.batch_detect_sentiment("
                         "%s::text[], 'en')", (texts,)).fetchall()
    rows = [conn.execute("SELECT sentiment, confidence FROM aws_comprehend.detect_sentiment(%s, 'en')",
                         (text,)).fetchone() for text in texts]
    assert batch == [(i, *row) for i, row in enumerate(rows, 1)]
    assert all(row == (None, None) for text, row in zip(texts, rows) if blank(text))
    assert all(row[0] is not None for text, row in zip(texts, rows) if not blank(text))


@EXAMPLES
@given(st.lists(elements.filter(lambda text: text != ""), max_size=30), st.integers(1, 8))
def test_bedrock_batch_answers_as_the_row_function_and_sends_each_input_once(conn, emulator, texts, lanes):
    """(Titan refuses an empty inputText, as AWS does.)"""
    inputs = [None if text is None else json.dumps({"inputText": text}) for text in texts]
    emulator.reset()
    batch = conn.execute("SELECT ordinality, model_output FROM aws_bedrock.batch_invoke_model_get_embeddings("
                         "%s, 'application/json', 'embedding', %s::text[], %s)", (TITAN, inputs, lanes)).fetchall()
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == len({i for i in inputs if i is not None})
    rows = [conn.execute("SELECT aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', 'embedding', %s)",
                         (TITAN, model_input)).fetchone()[0] for model_input in inputs]
    assert batch == list(enumerate(rows, 1))
    assert all((row is None) == (model_input is None) for model_input, row in zip(inputs, rows))


floats = st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
feature_rows = st.lists(st.one_of(st.none(), st.tuples(floats, floats, floats, floats)), max_size=40)


def features_literal(rows):
    """rows as a features4[] literal: '{"(1.5,2,3,4)",NULL}'."""
    return "{" + ",".join("NULL" if r is None else '"(' + ",".join(map(repr, r)) + ')"' for r in rows) + "}"


@EXAMPLES
@given(feature_rows, st.one_of(st.none(), st.integers(1, 12)))
def test_batch_invoke_endpoint_answers_as_invoke_endpoint(conn, emulator, rows, rows_per_batch):
    """Rows go in requests of at most rows_per_batch; NULL rows are not sent.
    With the statement cache off, so that equal requests are each sent and
    counted (the cache's own tests are in test_statement_cache.py)."""
    conn.execute("DO $$ BEGIN CREATE TYPE features4 AS (a float8, b float8, c float8, d float8); "
                 "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    emulator.reset()
    with conn.transaction():
        conn.execute("SET LOCAL aws_ml.statement_cache = off")
        batch = conn.execute("SELECT ordinality, model_output FROM aws_sagemaker.batch_invoke_endpoint("
                             "'linear-regression', %s, %s::features4[])",
                             (rows_per_batch, features_literal(rows))).fetchall()
    batch_sizes = emulator.counters().get("sagemaker", {}).get("InvokeEndpoint", {}).get("batch_sizes", [])
    assert sum(batch_sizes) == sum(r is not None for r in rows)
    if rows_per_batch:
        assert max(batch_sizes, default=0) <= rows_per_batch
    singles = [None if r is None else conn.execute(
        "SELECT aws_sagemaker.invoke_endpoint('linear-regression', NULL, %s::float8, %s::float8, %s::float8, "
        "%s::float8)", r).fetchone()[0] for r in rows]
    assert batch == list(enumerate(singles, 1))


# --- batch mode -------------------------------------------------------------

table_texts = st.lists(st.one_of(st.none(), words, st.text(alphabet=characters, max_size=200)), max_size=40)
SHAPES = {
    "select_list": "SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM random_notes",
    "field": "SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment FROM random_notes",
    "where": "SELECT id FROM random_notes WHERE (aws_comprehend.detect_sentiment(body, 'en')).sentiment <> 'NEUTRAL'",
    "having": "SELECT body, count(*) FROM random_notes GROUP BY body "
              "HAVING (aws_comprehend.detect_sentiment(body, 'en')).confidence > 0.5",
    "case": "SELECT id, CASE (aws_comprehend.detect_sentiment(body, 'en')).sentiment WHEN 'POSITIVE' THEN 1 "
            "WHEN 'NEGATIVE' THEN -1 END FROM random_notes",
    "lateral": "SELECT id, s.sentiment, s.confidence FROM random_notes, aws_comprehend.detect_sentiment(body, 'en') s",
    "aggregate": "SELECT count((aws_comprehend.detect_sentiment(body, 'en')).sentiment), "
                 "round(sum((aws_comprehend.detect_sentiment(body, 'en')).confidence)::numeric, 4) FROM random_notes",
    "update": "UPDATE random_notes SET sentiment = (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
              "RETURNING id, sentiment",
    "sagemaker": "SELECT id, aws_sagemaker.invoke_endpoint('echo-row-count', 3, body, id, length(body)) "
                 "FROM random_notes",
    "bedrock": "SELECT id, aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
               "'application/json', 'embedding', json_build_object('inputText', coalesce(nullif(body, ''), 'x'))::text) "
               "FROM random_notes",
}


def run_both_ways(conn, sql):
    """sql's rows in batch mode and row by row, in a transaction rolled back each time."""
    results = []
    for mode in ("on", "off"):
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL aws_ml.batch_mode = {mode}")
            results.append(sorted(conn.execute(sql).fetchall(), key=repr))
    return results


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_mode_answers_as_row_by_row(conn, shape):
    conn.execute("DROP TABLE IF EXISTS random_notes")
    conn.execute("CREATE TABLE random_notes (id int, body text, sentiment varchar)")
    with conn.transaction(force_rollback=True):
        plan = " ".join(row[0] for row in conn.execute(f"EXPLAIN (COSTS OFF) {SHAPES[shape]}"))
    assert "AwsMlBatch" in plan, plan

    @EXAMPLES
    @given(table_texts)
    def check(texts):
        conn.execute("DROP TABLE IF EXISTS random_notes")
        conn.execute("CREATE TABLE random_notes (id int, body text, sentiment varchar)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO random_notes (id, body) VALUES (%s, %s)", list(enumerate(texts)))
        batched, row_by_row = run_both_ways(conn, SHAPES[shape])
        assert batched == row_by_row
    check()
