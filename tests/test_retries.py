"""Throttling and 5xx answers are retried by botocore's standard retry mode up
to aws_ml.max_attempts; validation errors are not. The row-by-row query scores
ROW_BY_ROW rows: each throttled request waits out botocore's backoff (about a
second), so 300 rows would take minutes."""
import psycopg
import pytest

from tests.conftest import counter

ROW_BY_ROW = 30
TEXTS = [f"Review {i}: {'I love this' if i % 3 else 'this is awful'}" for i in range(300)]


@pytest.fixture
def expected(emulator, aws_client):
    """The service's answers, without faults, straight from the emulator."""
    comprehend = aws_client("comprehend")
    answers = [comprehend.detect_sentiment(Text=text, LanguageCode="en")["Sentiment"] for text in TEXTS]
    emulator.reset()
    return answers


@pytest.fixture
def reviews(db):
    db.execute("DROP TABLE IF EXISTS reviews")
    db.execute("CREATE TABLE reviews (id int PRIMARY KEY, body text)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO reviews VALUES (%s, %s)", list(enumerate(TEXTS[:ROW_BY_ROW])))
    yield db
    db.execute("DROP TABLE reviews")


@pytest.mark.slow  # every request throttled first
def test_row_by_row_finishes_under_throttling(reviews, emulator, expected):
    reviews.execute("SET aws_ml.batch_mode = off")
    emulator.set_faults(service="comprehend", throttle_every=3)
    rows = reviews.execute("SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).sentiment "
                           "FROM reviews ORDER BY id").fetchall()
    assert [sentiment for _, sentiment in rows] == expected[:ROW_BY_ROW]
    stats = emulator.counters()["comprehend"]["DetectSentiment"]
    assert stats["throttled"] > 0
    assert stats["requests"] == ROW_BY_ROW + stats["throttled"]


def test_batch_finishes_under_throttling(db, emulator, expected):
    emulator.set_faults(service="comprehend", throttle_every=3)
    rows = db.execute("SELECT ordinality, sentiment FROM aws_comprehend.batch_detect_sentiment(%s, 'en')",
                      (TEXTS,)).fetchall()
    assert rows == [(i + 1, sentiment) for i, sentiment in enumerate(expected)]
    stats = emulator.counters()["comprehend"]["BatchDetectSentiment"]
    assert stats["throttled"] > 0
    assert stats["requests"] == 12 + stats["throttled"]


def test_server_errors_are_retried(db, emulator):
    emulator.set_faults(service="comprehend", error_status=503, error_every=2)
    for _ in range(2):  # the second call's first request fails, its retry succeeds
        assert db.execute("SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"
                          ).fetchone() == ("POSITIVE",)
    stats = emulator.counters()["comprehend"]["DetectSentiment"]
    assert (stats["requests"], stats["errors"]) == (3, 1)


def test_validation_errors_are_not_retried(db, emulator):
    with pytest.raises(psycopg.Error):
        db.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", ("x" * 5001,))
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 1


def test_sagemaker_batch_finishes_under_throttling(db, emulator, aws_client):
    rows = [(i, i % 7, i % 3, i % 11) for i in range(300)]
    answer = aws_client("sagemaker-runtime").invoke_endpoint(
        EndpointName="linear-regression", ContentType="text/csv",
        Body="".join(",".join(map(str, row)) + "\n" for row in rows).encode())
    expected = answer["Body"].read().decode().splitlines()
    emulator.reset()
    emulator.set_faults(service="sagemaker", throttle_every=3)
    got = db.execute("SELECT ordinality, model_output FROM aws_sagemaker.batch_invoke_endpoint("
                     "'linear-regression', 25, ARRAY(SELECT ROW(i, i % 7, i % 3, i % 11) "
                     "FROM generate_series(0, 299) i ORDER BY i))").fetchall()
    assert got == [(i + 1, output) for i, output in enumerate(expected)]
    stats = emulator.counters()["sagemaker"]["InvokeEndpoint"]
    assert stats["throttled"] > 0
    assert stats["requests"] == 12 + stats["throttled"]


DENIED = {
    "comprehend": ("SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')", "DetectSentiment"),
    "sagemaker": ("SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1)", "InvokeEndpoint"),
    "bedrock": ("SELECT aws_bedrock.invoke_model('amazon.titan-embed-text-v1', 'application/json', NULL, "
                "'{\"inputText\": \"denied\"}')", "InvokeModel"),
}


@pytest.mark.parametrize("service", DENIED)
def test_access_denied_is_not_retried(db, emulator, service):
    sql, operation = DENIED[service]
    emulator.set_faults(service=service, error_code="AccessDeniedException", error_status=403, error_every=1)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        db.execute(sql)
    assert "AccessDeniedException" in caught.value.diag.message_detail
    assert counter(emulator.counters(), service, operation) == 1


def test_sagemaker_validation_errors_are_not_retried(db, emulator):
    with pytest.raises(psycopg.errors.UndefinedObject):
        db.execute("SELECT aws_sagemaker.invoke_endpoint('no-such-endpoint', NULL, 1)")
    assert counter(emulator.counters(), "sagemaker", "InvokeEndpoint") == 1


def test_every_statement_gets_max_attempts_whatever_earlier_ones_spent(db, emulator):
    """botocore's retry quota (500, 14 a retry) lives in the session's cached
    client: ten statements failing after 4 retries each would spend it, and
    the last ones would not retry at all. Each statement starts with it full."""
    db.execute("SET aws_ml.max_attempts = 5")
    emulator.set_faults(service="comprehend", error_status=500, error_every=1)
    for number in range(1, 11):
        with pytest.raises(psycopg.Error) as caught:
            db.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", (f"statement {number}",))
        assert caught.value.diag.sqlstate == "38000"
        assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 5 * number
    emulator.clear_faults()
    emulator.set_faults(service="comprehend", throttle_every=2)
    assert db.execute("SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')").fetchone() == \
        ("POSITIVE",)
    db.execute("RESET aws_ml.max_attempts")
