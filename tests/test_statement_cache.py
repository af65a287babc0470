"""Identical requests within one statement are sent once; never across
statements; aws_ml.statement_cache = off sends each. The row functions are
called row by row here (aws_ml.batch_mode = off): batch mode's own sharing
of equal calls is in test_batch_mode.py."""
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import counter
from tests.reference import CLINICIAN_NOTES_UPDATE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plpython"))
from aws_ml import statement_cache  # noqa: E402


@pytest.fixture(autouse=True)
def row_by_row(db):
    db.execute("SET aws_ml.batch_mode = off")


@pytest.fixture
def notes(db):
    db.execute("DROP TABLE IF EXISTS clinician_notes")
    db.execute("CREATE TABLE clinician_notes (id serial PRIMARY KEY, french_notes text, "
               "sentiment varchar, confidence real)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO clinician_notes (french_notes) VALUES (%s)",
                        [(f"Note {i}: très bien, excellent",) for i in range(20)] + [(None,), (" ",)])
    yield db
    db.execute("DROP TABLE clinician_notes")


UPDATE = CLINICIAN_NOTES_UPDATE


def test_reference_update_makes_one_call_per_row(notes, emulator):
    notes.execute(UPDATE)
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 20
    assert notes.execute("SELECT count(*) FROM clinician_notes WHERE sentiment IS NOT NULL").fetchone() == (20,)
    hits = notes.execute("SELECT cache_hits FROM aws_ml.stats() WHERE operation = 'DetectSentiment'").fetchone()
    assert hits[0] >= 20


def test_statement_cache_off_sends_every_call(notes, emulator):
    notes.execute("SET aws_ml.statement_cache = off")
    notes.execute(UPDATE)
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 40


def test_identical_rows_in_one_select_are_sent_once(db, emulator):
    rows = db.execute("SELECT (aws_comprehend.detect_sentiment(t, 'en')).sentiment "
                      "FROM unnest(ARRAY['good', 'bad', 'good', 'good', 'bad']) t").fetchall()
    assert [r[0] for r in rows] == ["POSITIVE", "NEGATIVE", "POSITIVE", "POSITIVE", "NEGATIVE"]
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 2


def test_never_across_statements(db, emulator):
    for _ in range(3):
        db.execute("SELECT * FROM aws_comprehend.detect_sentiment('good', 'en')")
    db.execute("BEGIN")
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('good', 'en')")
    db.execute("SELECT * FROM aws_comprehend.detect_sentiment('good', 'en')")
    db.execute("COMMIT")
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 5


def test_bedrock_batch_sends_each_distinct_input_once(db, emulator):
    inputs = ['{"inputText": "a cat"}', '{"inputText": "a dog"}', '{"inputText": "a cat"}', None,
              '{"inputText": "a cat"}']
    rows = db.execute("SELECT ordinality, model_output FROM aws_bedrock.batch_invoke_model_get_embeddings("
                      "'amazon.titan-embed-text-v1', 'application/json', 'embedding', %s)", (inputs,)).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][1] == rows[2][1] == rows[4][1] and rows[0][1] != rows[1][1] and rows[3][1] is None
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 2


def test_cache_is_bounded_and_cleared_by_a_new_statement():
    statement_cache.store(("other", 1), (("comprehend", "X"), "warm"), {"a": 1})
    big = statement_cache.key(("comprehend", "X"), {"Text": "x" * (statement_cache.MAX_REQUEST_BYTES + 1)})
    assert big is None
    for i in range(statement_cache.MAX_ENTRIES + 5):
        statement_cache.store(("s", 1), statement_cache.key(("comprehend", "X"), {"Text": str(i)}), {"n": i})
    assert statement_cache.lookup(("s", 1), statement_cache.key(("comprehend", "X"), {"Text": "7"})) == {"n": 7}
    overflow = statement_cache.key(("comprehend", "X"), {"Text": str(statement_cache.MAX_ENTRIES + 1)})
    assert statement_cache.lookup(("s", 1), overflow) is None
    assert statement_cache.lookup(("s", 2), statement_cache.key(("comprehend", "X"), {"Text": "7"})) is None


TITAN = "amazon.titan-embed-text-v1"
CLAUDE_PROMPT = '{"prompt": "\\n\\nHuman: Say something.\\n\\nAssistant:", "max_tokens_to_sample": 50}'


def test_text_generation_is_sent_every_time_unless_all(db, emulator):
    sql = ("SELECT aws_bedrock.invoke_model('anthropic.claude-v2', 'application/json', 'application/json', %s) "
           "FROM generate_series(1, 5)")
    db.execute(sql, (CLAUDE_PROMPT,))
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 5
    db.execute("SET aws_ml.statement_cache = always")
    db.execute(sql, (CLAUDE_PROMPT,))
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 6
    db.execute("RESET aws_ml.statement_cache")
    db.execute("SELECT aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', 'embedding', "
               "'{\"inputText\": \"same\"}') FROM generate_series(1, 5)", (TITAN,))
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 7


ROLE = "arn:aws:iam::123456789012:role/cache-scope"


def test_an_answer_is_reused_only_for_the_same_endpoint_region_and_role(db, emulator):
    """A superuser changes the settings between two identical calls of one
    statement: the second is not answered from the cache."""
    same_call = "(aws_comprehend.detect_sentiment('I love it', 'en')).sentiment"
    rows = db.execute(f"SELECT {same_call}, set_config('aws_ml.comprehend_role_arn', %s, true), {same_call}",
                      (ROLE,)).fetchall()
    assert rows == [("POSITIVE", ROLE, "POSITIVE")]
    counters = emulator.counters()
    assert counter(counters, "comprehend", "DetectSentiment") == 2
    assert len(counters["comprehend"]["DetectSentiment"]["access_key_ids"]) == 2
    with pytest.raises(psycopg.Error) as caught:  # nothing listens there
        db.execute(f"SELECT {same_call}, set_config('aws_ml.comprehend_endpoint_url', 'http://127.0.0.1:9', true), "
                   f"{same_call}")
    assert caught.value.diag.sqlstate == "58030"
