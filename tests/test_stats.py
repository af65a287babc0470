"""aws_ml.stats(): per session, per service and operation, what the calls
cost; and pg_stat_user_functions as the reference's monitoring section shows."""
import psycopg
import pytest

COLUMNS = ("service", "operation", "calls", "rows", "requests", "min_batch_size", "avg_batch_size",
           "max_batch_size", "min_request_ms", "avg_request_ms", "max_request_ms", "retries",
           "throttles", "errors", "cache_hits")


def stats(conn):
    return {(row[0], row[1]): dict(zip(COLUMNS, row))
            for row in conn.execute("SELECT * FROM aws_ml.stats()").fetchall()}


@pytest.fixture
def session(db):
    db.execute("SELECT aws_ml.stats_reset()")
    return db


def test_row_and_batch_calls_are_counted_per_operation(session, emulator):
    for text in ("I love it", "I hate it", "It is a table"):
        session.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", (text,))
    texts = [f"text {i} is nice" for i in range(60)] + [None, "  "]
    session.execute("SELECT * FROM aws_comprehend.batch_detect_sentiment(%s, 'en')", (texts,)).fetchall()
    seen = stats(session)
    row = seen[("comprehend", "DetectSentiment")]
    assert (row["calls"], row["rows"], row["requests"]) == (3, 3, 3)
    assert (row["min_batch_size"], row["avg_batch_size"], row["max_batch_size"]) == (1, 1.0, 1)
    assert 0 < row["min_request_ms"] <= row["avg_request_ms"] <= row["max_request_ms"]
    batch = seen[("comprehend", "BatchDetectSentiment")]
    assert (batch["calls"], batch["rows"], batch["requests"]) == (1, 60, 3)
    assert (batch["min_batch_size"], batch["avg_batch_size"], batch["max_batch_size"]) == (10, 20.0, 25)
    assert batch["errors"] == batch["retries"] == batch["throttles"] == 0
    counters = emulator.counters()["comprehend"]
    assert counters["DetectSentiment"]["requests"] == 3
    assert sorted(counters["BatchDetectSentiment"]["batch_sizes"]) == [10, 25, 25]


def test_retries_throttles_and_errors(session, emulator):
    emulator.set_faults(service="comprehend", throttle_every=2)
    for text in ("good", "bad"):  # the second call's first attempt is throttled
        session.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", (text,))
    emulator.clear_faults()
    with pytest.raises(psycopg.Error):
        session.execute("SELECT * FROM aws_comprehend.detect_sentiment(%s, 'en')", ("x" * 5001,))
    row = stats(session)[("comprehend", "DetectSentiment")]
    assert (row["calls"], row["requests"], row["retries"], row["throttles"], row["errors"]) == (3, 3, 1, 1, 1)
    assert emulator.counters()["comprehend"]["DetectSentiment"]["requests"] == 4


def test_stats_are_per_session_and_reset(session, connect):
    session.execute("SELECT * FROM aws_comprehend.detect_sentiment('good', 'en')")
    assert stats(connect()) == {}
    assert ("comprehend", "DetectSentiment") in stats(session)
    session.execute("SELECT aws_ml.stats_reset()")
    assert stats(session) == {}


def test_sagemaker_and_bedrock_are_counted(session):
    session.execute("SELECT * FROM aws_sagemaker.batch_invoke_endpoint('linear-regression', 2, "
                    "ARRAY[ROW(1,2,3,4), ROW(2,3,4,5), ROW(3,4,5,6)])").fetchall()
    session.execute("SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
                    "'application/json', 'embedding', '{\"inputText\": \"hello\"}')")
    seen = stats(session)
    sagemaker = seen[("sagemaker", "InvokeEndpoint")]
    assert (sagemaker["calls"], sagemaker["rows"], sagemaker["requests"], sagemaker["max_batch_size"]) \
        == (1, 3, 2, 2)
    bedrock = seen[("bedrock", "InvokeModel")]
    assert (bedrock["calls"], bedrock["rows"], bedrock["requests"]) == (1, 1, 1)


def test_pg_stat_user_functions_tracks_the_functions(session):
    session.execute("SET track_functions = 'all'")
    session.execute("SELECT pg_stat_reset()")
    for _ in range(2):
        session.execute("SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')")
    session.execute("SELECT aws_sagemaker.invoke_endpoint('linear-regression', NULL, 1, 2, 3, 4)")
    session.execute("SELECT pg_stat_force_next_flush()")
    rows = dict(session.execute(
        "SELECT schemaname || '.' || funcname, calls FROM pg_stat_user_functions "
        "WHERE schemaname LIKE 'aws_%';").fetchall())
    assert rows["aws_comprehend.detect_sentiment"] == 2
    assert rows["aws_sagemaker.invoke_endpoint"] == 1
