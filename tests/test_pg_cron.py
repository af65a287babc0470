"""docs/materialize.md's scheduled backfills, on a server with pg_cron
preloaded (scripts/setup installs postgresql-15-cron): the doc's blocks run as
written, its jobs fill the tables through the emulator, and two overlapping
runs on one table score each row once."""
import subprocess
import time

import psycopg
import pytest

from tests.conftest import ROOT, counter, new_cluster
from tests.test_docs import sql_blocks

pytestmark = pytest.mark.slow  # a cluster with pg_cron, jobs at the minute

DOC = ROOT / "docs" / "materialize.md"
ROWS = 1010            # support's rows once the doc's blocks have run
PASSAGES = 40
TITAN_V2_DIMENSIONS = 1024
# A run that starts at the next minute takes at most a minute to come, and
# then a few seconds.
WAIT_SECONDS = 150


@pytest.fixture(scope="module")
def cron_server(emulator):
    server = new_cluster(emulator, shared_preload_libraries="pg_cron",
                         **{"cron.database_name": "postgres", "cron.host": "127.0.0.1"}).start()
    yield server
    server.stop()


def doc_blocks():
    """(the blocks test_docs runs, the pg_cron block it leaves to this test)"""
    blocks = sql_blocks(DOC)
    run = [sql for _, sql, reason in blocks if reason is None]
    cron = [sql for _, sql, reason in blocks if reason and "test_pg_cron.py" in reason]
    assert len(cron) == 1
    return run, cron[0]


def psql(server, script, *options):
    done = subprocess.run([str(server.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *options,
                           "-d", server.conninfo()], input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def finished_runs(conn):
    return conn.execute("SELECT j.jobname, d.status, d.return_message, d.start_time, d.end_time "
                        "FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                        "WHERE d.status IN ('succeeded', 'failed') ORDER BY j.jobname").fetchall()


def test_scheduled_jobs_fill_the_tables_once_each_row(cron_server, emulator):
    run_blocks, cron_block = doc_blocks()
    emulator.reset()
    psql(cron_server, "CREATE EXTENSION aws_ml CASCADE;\n" + "\n".join(run_blocks))
    conn = psycopg.connect(cron_server.conninfo(), autocommit=True)
    # every support row to do again, the passages never filled
    conn.execute("UPDATE support SET sentiment = NULL, confidence = NULL, materialized_at = NULL")
    assert conn.execute("SELECT count(*) FROM passages WHERE embedding IS NULL").fetchone() == (PASSAGES,)

    emulator.reset()
    assert conn.execute("SELECT count(*), count(sentiment) FROM support_sentiment").fetchone() == (ROWS, ROWS)
    # the view's live branch in batch mode: 25 documents a request
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment") == -(-ROWS // 25)

    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=300)  # long enough runs to overlap
    # One transaction: the doc's jobs, the embeddings job every minute rather
    # than every 5, and a second job on support that starts with the first.
    psql(cron_server, cron_block + """
        SELECT cron.alter_job(jobid, schedule := '* * * * *') FROM cron.job WHERE jobname = 'passage-embeddings';
        SELECT cron.schedule('support-sentiment-small-batches', '* * * * *',
            $$CALL aws_comprehend.materialize_sentiment('support', 'feedback', 'en', batch_size => 50)$$);
    """, "--single-transaction")
    deadline = time.monotonic() + WAIT_SECONDS
    while len(runs := finished_runs(conn)) < 3 and time.monotonic() < deadline:
        time.sleep(1)
    conn.execute("SELECT cron.unschedule(jobid) FROM cron.job")

    assert [(name, status, message) for name, status, message, *_ in runs] == [
        ("passage-embeddings", "succeeded", "CALL"),
        ("support-sentiment", "succeeded", "CALL"),
        ("support-sentiment-small-batches", "succeeded", "CALL"),
    ]
    (_, _, _, first_start, first_end), (_, _, _, second_start, second_end) = runs[1:]
    assert first_start < second_end and second_start < first_end, "the two support runs did not overlap"

    counters = emulator.counters()
    assert counter(counters, "comprehend", "BatchDetectSentiment", "items") == ROWS  # no row scored twice
    assert counter(counters, "bedrock", "InvokeModel") == PASSAGES
    assert conn.execute("SELECT count(*) FROM support WHERE sentiment IS NULL OR materialized_at IS NULL"
                        ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM passages WHERE cardinality(embedding) = %s",
                        (TITAN_V2_DIMENSIONS,)).fetchone() == (PASSAGES,)

    emulator.clear_faults()
    emulator.reset()
    assert conn.execute("SELECT count(*) FROM support_sentiment").fetchone() == (ROWS,)
    assert counter(emulator.counters(), "comprehend", "BatchDetectSentiment") == 0  # nothing left to do
    # each row holds its own answer
    assert conn.execute("SELECT count(*) FROM support, aws_comprehend.detect_sentiment(feedback, 'en') AS s "
                        "WHERE (s.sentiment, s.confidence) IS DISTINCT FROM (support.sentiment, support.confidence)"
                        ).fetchone() == (0,)
    conn.close()


def test_a_failing_jobs_message_is_the_error_a_later_call_of_a_session_gets(cron_server, emulator):
    """Each run of a job is the first call of a new session: a backfill the
    table's trigger stops is recorded with the trigger's own message, as a
    later call of a session reports it, not with PL/Python's form of it."""
    conn = psycopg.connect(cron_server.conninfo(), autocommit=True)
    # the extensions this test creates go with it: the doc's blocks create them
    created = [name for name in ("aws_ml", "pg_cron")
               if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone()]
    for name in created:
        conn.execute(f"CREATE EXTENSION {name} CASCADE")
    conn.execute("DROP TABLE IF EXISTS guarded")
    conn.execute("CREATE TABLE guarded (body text, sentiment varchar, confidence real)")
    conn.execute("INSERT INTO guarded VALUES ('I love it')")
    conn.execute("CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'no update of %', NEW.body; END $$")
    conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON guarded FOR EACH ROW EXECUTE FUNCTION refuse()")
    call = "CALL aws_comprehend.materialize_sentiment('guarded', 'body', 'en')"
    messages = []
    for _ in range(2):
        with pytest.raises(psycopg.errors.RaiseException) as caught:
            conn.execute(call)
        messages.append(caught.value.diag.message_primary)
    assert messages == ["no update of I love it"] * 2
    emulator.reset()
    conn.execute("SELECT cron.schedule('guarded-sentiment', '* * * * *', %s)", (call,))
    deadline = time.monotonic() + WAIT_SECONDS
    while not (runs := [run for run in finished_runs(conn) if run[0] == "guarded-sentiment"]) \
            and time.monotonic() < deadline:
        time.sleep(1)
    conn.execute("SELECT cron.unschedule('guarded-sentiment')")
    # before aws_ml 2.2: "ERROR:  aws_ml: no update of I love it\nCONTEXT:  Traceback (most recent call last): ..."
    assert [(status, message) for _, status, message, *_ in runs[:1]] == [
        ("failed", "ERROR:  no update of I love it\n")]
    conn.execute("DROP TABLE guarded")
    conn.execute("DROP FUNCTION refuse()")
    for name in created:
        conn.execute(f"DROP EXTENSION {name}")
    conn.close()
