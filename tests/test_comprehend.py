"""aws_comprehend through SQL against the emulator."""
import psycopg
import pytest

from tests.conftest import counter
from tests.reference import CLINICIAN_NOTES_UPDATE

SUPPORT_FEEDBACK = [
    "Thank you for the excellent customer support!",
    "The latest version of this product stinks!",
    "Your support team is just awesome! I am blown away.",
    "Your product is too complex, but your support is great.",
    "Your support tech helped me in fifteen minutes.",
    "My problem was never resolved!",
    "When will the new version of this product be released?",
    "I cannot stand that chatbot.",
    "Your support tech talked down to me.",
    "It took me way too long to get a real person.",
]


def expected_sentiment(aws_client, text, language="en"):
    answer = aws_client("comprehend").detect_sentiment(Text=text, LanguageCode=language)
    return answer["Sentiment"], answer["SentimentScore"][answer["Sentiment"].capitalize()]


@pytest.fixture
def support(db):
    db.execute("DROP TABLE IF EXISTS support")
    db.execute("CREATE TABLE support (id serial PRIMARY KEY, feedback text)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO support (feedback) VALUES (%s)", [(t,) for t in SUPPORT_FEEDBACK])
    yield db
    db.execute("DROP TABLE support")


def test_reference_support_query_verbatim(support, emulator, aws_client):
    rows = support.execute(
        "SELECT feedback, s.sentiment,s.confidence FROM support,aws_comprehend.detect_sentiment(feedback, 'en') s "
        "ORDER BY s.confidence DESC;").fetchall()
    assert sorted(r[0] for r in rows) == sorted(SUPPORT_FEEDBACK)
    # batch mode: the ten rows in one BatchDetectSentiment request
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "batch_sizes") == [10]
    confidences = [r[2] for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    for feedback, sentiment, confidence in rows:
        want_sentiment, want_confidence = expected_sentiment(aws_client, feedback)
        assert sentiment == want_sentiment, feedback
        assert confidence == pytest.approx(want_confidence, rel=1e-6)
    by_text = {r[0]: r[1] for r in rows}
    assert by_text["Thank you for the excellent customer support!"] == "POSITIVE"
    assert by_text["The latest version of this product stinks!"] == "NEGATIVE"


def test_reference_clinician_notes_update_verbatim(db, emulator, aws_client):
    db.execute("DROP TABLE IF EXISTS clinician_notes")
    db.execute("CREATE TABLE clinician_notes (id serial PRIMARY KEY, french_notes text, "
               "sentiment varchar, confidence real)")
    notes = ["Le patient est très heureux et se sent bien.", "   ", None, "Terrible douleur, très mauvais."]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO clinician_notes (french_notes) VALUES (%s)", [(n,) for n in notes])
    db.execute("UPDATE clinician_notes SET sentiment = 'POSITIVE', confidence = 0.5 WHERE id = 1")
    db.execute("INSERT INTO clinician_notes (french_notes) VALUES ('Bonjour, tout va bien. I love it.')")
    emulator.reset()
    db.execute(CLINICIAN_NOTES_UPDATE)
    rows = db.execute("SELECT id, french_notes, sentiment, confidence FROM clinician_notes ORDER BY id").fetchall()
    # batch mode: one document per row although each row calls twice
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 0
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment", "batch_sizes") == [2]
    assert rows[0][2:] == ("POSITIVE", 0.5)  # already materialized: untouched
    assert rows[1][2:] == (None, None) and rows[2][2:] == (None, None)
    for _, text, sentiment, confidence in (rows[3], rows[4]):
        want_sentiment, want_confidence = expected_sentiment(aws_client, text, "fr")
        assert (sentiment, confidence) == (want_sentiment, pytest.approx(want_confidence, rel=1e-6))
    db.execute("DROP TABLE clinician_notes")


def test_detect_sentiment_polarity_and_null_inputs(db, emulator):
    assert db.execute("SELECT * FROM aws_comprehend.detect_sentiment('I love this product', 'en')").fetchone()[0] \
        == "POSITIVE"
    assert db.execute("SELECT (aws_comprehend.detect_sentiment('This is terrible', 'en', 10)).sentiment"
                      ).fetchone()[0] == "NEGATIVE"
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 2
    for blank in (None, "", "   ", "\t\n"):
        row = db.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", (blank,)).fetchone()
        assert row == (None, None)
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 2


def test_batch_detect_sentiment_chunks_keeps_order_and_skips_nulls(db, emulator, aws_client):
    texts = [None if i % 7 == 3 else ("   " if i % 11 == 5 else f"Review {i}: {'I love it' if i % 2 else 'awful, I hate it'}")
             for i in range(1, 101)]
    sent = [t for t in texts if t and t.strip()]
    rows = db.execute("SELECT ordinality, sentiment, confidence FROM "
                      "aws_comprehend.batch_detect_sentiment(%s, 'en')", (texts,)).fetchall()
    assert [r[0] for r in rows] == list(range(1, 101))
    for (ordinality, sentiment, confidence), text in zip(rows, texts):
        if text is None or not text.strip():
            assert (sentiment, confidence) == (None, None)
        else:
            assert sentiment == ("POSITIVE" if "love" in text else "NEGATIVE"), text
    counters = emulator.counters()
    requests = -(-len(sent) // 25)
    assert counter(counters, "comprehend", "BatchDetectSentiment") == requests
    assert counter(counters, "comprehend", "BatchDetectSentiment", "items") == len(sent)
    assert counter(counters, "comprehend", "DetectSentiment") == 0


def test_batch_of_100_texts_sends_4_requests(db, emulator):
    texts = [f"Text number {i} is great" for i in range(100)]
    rows = db.execute("SELECT count(*) FROM aws_comprehend.batch_detect_sentiment(%s, 'en')", (texts,)).fetchone()
    assert rows[0] == 100
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment") == 4
    assert emulator.counters()["comprehend"]["BatchDetectSentiment"]["batch_sizes"] == [25, 25, 25, 25]


def test_batch_respects_max_rows_per_batch(db, emulator):
    texts = [f"good {i}" for i in range(23)]
    db.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment(%s, 'en', 10)", (texts,)).fetchall()
    assert sorted(emulator.counters()["comprehend"]["BatchDetectSentiment"]["batch_sizes"]) == [3, 10, 10]


def test_batch_of_null_array_and_empty_array(db, emulator):
    assert db.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment(NULL, 'en')").fetchall() == []
    assert db.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment('{}', 'en')").fetchall() == []
    assert emulator.counters().get("comprehend", {}) == {}


def sql_error(db, sql, params=None):
    with pytest.raises(psycopg.Error) as caught:
        db.execute(sql, params)
    return caught.value.diag


def test_errors_carry_sqlstate_detail_and_hint(db):
    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'xx')")
    assert diag.sqlstate == "22023"
    assert "Comprehend DetectSentiment" in diag.message_primary and "[en, es, fr" in diag.message_primary
    assert diag.message_detail == "AWS error code: ValidationException (HTTP 400)"
    assert diag.message_hint == "Give one of the language codes the message lists."

    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", ("x" * 5001,))
    assert diag.sqlstate == "22023"
    assert diag.message_detail == "AWS error code: TextSizeLimitExceededException (HTTP 400)"
    assert "left(text, 1250)" in diag.message_hint

    # the hint's advice: 1,250 characters of 4 bytes each are 5,000 bytes, which the service takes
    assert db.execute("SELECT sentiment FROM aws_comprehend.detect_sentiment(left(%s, 1250), 'en')",
                      ("\U0001F600" * 2000,)).fetchone()[0] is not None
    assert db.execute("SELECT sentiment FROM aws_comprehend.detect_sentiment(%s, 'en')",
                      ("é" * 2500,)).fetchone()[0] is not None  # 5,000 bytes: accepted

    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', NULL)")
    assert diag.sqlstate == "22004" and "language_code" in diag.message_primary

    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'en', 0)")
    assert diag.sqlstate == "22023" and "max_rows_per_batch" in diag.message_primary


def test_batch_error_names_the_ordinality(db):
    texts = ["fine", None, "good", "x" * 5001, "ok"]
    diag = sql_error(db, "SELECT * FROM aws_comprehend.batch_detect_sentiment(%s, 'en')", (texts,))
    assert diag.sqlstate == "22023"
    assert "ordinality 4" in diag.message_primary
    assert "TEXT_SIZE_LIMIT_EXCEEDED" in diag.message_detail
    assert "left(text, 1250)" in diag.message_hint

    diag = sql_error(db, "SELECT * FROM aws_comprehend.batch_detect_sentiment('{{a,b},{c,d}}', 'en')")
    assert diag.sqlstate == "22023" and "one-dimensional" in diag.message_primary


def test_throttled_after_every_attempt_is_53400(db, emulator):
    emulator.set_faults(service="comprehend", throttle_every=1)
    db.execute("SET aws_ml.max_attempts = 2")
    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'en')")
    assert diag.sqlstate == "53400"
    assert "ThrottlingException" in diag.message_detail and diag.message_hint
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 2


def test_server_errors_are_38000_and_unreachable_endpoint_58030(db, emulator):
    emulator.set_faults(service="comprehend", error_status=500, error_every=1)
    db.execute("SET aws_ml.max_attempts = 1")
    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'en')")
    assert diag.sqlstate == "38000"
    emulator.clear_faults()
    db.execute("SET aws_ml.comprehend_endpoint_url = 'http://127.0.0.1:9'")
    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'en')")
    assert diag.sqlstate == "58030"
    assert "Comprehend DetectSentiment" in diag.message_primary and diag.message_hint


def test_no_region_is_55000_naming_the_setting(db):
    db.execute("SET aws_ml.region = ''")
    diag = sql_error(db, "SELECT * FROM aws_comprehend.detect_sentiment('hello', 'en')")
    assert diag.sqlstate == "55000" and "aws_ml.region" in diag.message_hint
