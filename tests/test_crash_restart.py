"""A backend terminated in the middle of a batch loses nothing committed and
leaves no lock behind; after a server restart the extension works with no
manual step (on a cluster of its own, so the shared one is untouched)."""
import psycopg
import pytest

from tests.conftest import new_cluster, requests_in_flight, stop_when, wait_until

ROWS = 40
TEXTS = [f"Review {i}: {'I love this' if i % 3 else 'this is awful'}" for i in range(ROWS)]
SCORE_PER_ROW = """
CREATE PROCEDURE score_reviews() LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT id FROM reviews WHERE sentiment IS NULL ORDER BY id LOOP
        UPDATE reviews SET sentiment = (aws_comprehend.detect_sentiment(body, 'en')).sentiment WHERE id = r.id;
        COMMIT;
    END LOOP;
END
$$"""
SCORE_IN_ONE_STATEMENT = """
UPDATE reviews SET sentiment = s.sentiment
FROM aws_comprehend.batch_detect_sentiment(ARRAY(SELECT body FROM reviews ORDER BY id), 'en', 2) s
WHERE reviews.id = s.ordinality - 1"""


@pytest.fixture
def reviews(db, aws_client, emulator):
    """The reviews table, unscored, and each review's sentiment from the emulator."""
    comprehend = aws_client("comprehend")
    expected = [comprehend.detect_sentiment(Text=text, LanguageCode="en")["Sentiment"] for text in TEXTS]
    emulator.reset()
    db.execute("DROP TABLE IF EXISTS reviews")
    db.execute("DROP PROCEDURE IF EXISTS score_reviews")
    db.execute("CREATE TABLE reviews (id int PRIMARY KEY, body text, sentiment text)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO reviews (id, body) VALUES (%s, %s)", list(enumerate(TEXTS)))
    db.execute(SCORE_PER_ROW)
    yield expected
    db.execute("DROP TABLE reviews")
    db.execute("DROP PROCEDURE score_reviews")


def terminated_during(connect, sql, reached, what):
    """Runs sql in a new session, terminating its backend once reached()."""
    victim = connect()
    pid = victim.info.backend_pid
    timer = stop_when(connect, pid, reached, what, "pg_terminate_backend")
    try:
        with pytest.raises(psycopg.OperationalError):
            victim.execute(sql)
    finally:
        timer.join()
    return pid


def no_lock_is_left(db, pid):
    wait_until(lambda: not db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone(),
               "the terminated backend to exit")
    assert db.execute("SELECT count(*) FROM pg_locks WHERE relation = 'reviews'::regclass").fetchone() == (0,)
    db.execute("SET lock_timeout = '1s'")
    db.execute("UPDATE reviews SET body = body")
    db.execute("RESET lock_timeout")


@pytest.mark.parametrize("sql, commits_per_row", [("CALL score_reviews()", True), (SCORE_IN_ONE_STATEMENT, False)])
def test_terminated_batch_keeps_what_was_committed(db, connect, cluster, emulator, reviews, sql, commits_per_row):
    # 40 rows one by one, or 20 requests aws_ml.max_concurrency (4) at a time: 20 s or 2.5 s.
    # Terminated once 3 rows are committed, or once the statement's requests are in flight.
    emulator.set_faults(service="comprehend", latency_ms=500)
    watcher = connect()
    if commits_per_row:
        reached = lambda: watcher.execute("SELECT count(sentiment) >= 3 FROM reviews").fetchone()[0]  # noqa: E731
    else:
        reached = requests_in_flight(emulator, "comprehend", 1)
    pid = terminated_during(connect, sql, reached, "the batch to be under way")
    emulator.clear_faults()
    scored = db.execute("SELECT id, sentiment FROM reviews WHERE sentiment IS NOT NULL ORDER BY id").fetchall()
    if commits_per_row:
        assert 0 < len(scored) < ROWS
        assert scored == [(i, reviews[i]) for i in range(len(scored))]
    else:
        assert scored == []
    no_lock_is_left(db, pid)
    assert "terminated by signal" not in cluster.server_log()
    db.execute("CALL score_reviews()")  # resumes where it stopped
    assert db.execute("SELECT sentiment FROM reviews ORDER BY id").fetchall() == [(s,) for s in reviews]


RESTART_CALLS = [
    "SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')",
    "SELECT aws_sagemaker.invoke_endpoint('linear-regression', NULL, 1, 2, 3, 4)",
    "SELECT aws_bedrock.invoke_model_get_embeddings('amazon.titan-embed-text-v1', 'application/json', "
    "'embedding', '{\"inputText\": \"restart\"}')",
]


@pytest.mark.slow  # a cluster of its own, restarted
def test_extension_works_after_a_restart(emulator):
    server = new_cluster(emulator).start()
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
            before = [conn.execute(sql).fetchone() for sql in RESTART_CALLS]
        server.restart()
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            assert [conn.execute(sql).fetchone() for sql in RESTART_CALLS] == before
        assert "terminated by signal" not in server.server_log()
    finally:
        server.stop()
