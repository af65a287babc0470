"""aws_comprehend.detect_sentiment under a parallel plan: the workers and the
leader each call the service with a client of their own (the emulator counts
requests by the pid in aws_ml's User-Agent), with the serial plan's results."""
import json

from tests.plans import explain_analyze, force_parallel_plan, workers_launched

ROWS = 2000
QUERY = ("SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM parallel_notes")


def detect_sentiment_counts(emulator):
    return emulator.counters()["comprehend"]["DetectSentiment"]


def test_workers_and_leader_each_call_with_their_own_client(db, connect, emulator):
    db.execute("DROP TABLE IF EXISTS parallel_notes")
    db.execute("CREATE TABLE parallel_notes (id int PRIMARY KEY, body text)")
    db.execute("INSERT INTO parallel_notes SELECT n, 'note ' || n || CASE n %% 3 WHEN 0 THEN ': I love it' "
               "WHEN 1 THEN ': I hate it' ELSE ': it is a table' END FROM generate_series(1, %s) n", (ROWS,))
    db.execute("ALTER TABLE parallel_notes SET (parallel_workers = 2)")
    serial = sorted(db.execute(QUERY).fetchall())
    assert len(serial) == ROWS

    conn = connect()
    conn.execute("SELECT aws_comprehend.detect_sentiment('load the module first', 'en')")
    force_parallel_plan(conn)
    emulator.reset()
    explained = explain_analyze(conn, QUERY)
    assert workers_launched(explained) == [2], json.dumps(explained)
    counts = detect_sentiment_counts(emulator)
    assert counts["requests"] == ROWS and counts["items"] == ROWS
    by_pid = counts["pids"]
    assert len(by_pid) == 3 and all(requests > 0 for requests in by_pid.values()), by_pid
    assert str(conn.info.backend_pid) in by_pid  # the leader took rows too

    emulator.reset()
    assert sorted(conn.execute(QUERY).fetchall()) == serial
    assert detect_sentiment_counts(emulator)["requests"] == ROWS
