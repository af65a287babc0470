"""aws_comprehend.detect_sentiment under a parallel plan: the workers and the
leader each call the service with a client of their own (the emulator counts
requests by the pid in aws_ml's User-Agent), with the serial plan's results;
in batch mode each batches its own rows."""
import json
import re

import pytest

from tests.plans import explain_analyze, force_parallel_plan, workers_launched

ROWS = 2000
QUERY = ("SELECT id, (aws_comprehend.detect_sentiment(body, 'en')).* FROM parallel_notes")


def detect_sentiment_counts(emulator, operation="DetectSentiment"):
    return emulator.counters()["comprehend"][operation]


@pytest.fixture
def parallel_notes(db):
    db.execute("DROP TABLE IF EXISTS parallel_notes")
    db.execute("CREATE TABLE parallel_notes (id int PRIMARY KEY, body text)")
    db.execute("INSERT INTO parallel_notes SELECT n, 'note ' || n || CASE n %% 3 WHEN 0 THEN ': I love it' "
               "WHEN 1 THEN ': I hate it' ELSE ': it is a table' END FROM generate_series(1, %s) n", (ROWS,))
    db.execute("ALTER TABLE parallel_notes SET (parallel_workers = 2)")
    serial = sorted(db.execute(QUERY).fetchall())
    assert len(serial) == ROWS
    return serial


@pytest.mark.slow
def test_workers_and_leader_each_call_with_their_own_client(parallel_notes, connect, emulator):
    serial = parallel_notes
    conn = connect()
    conn.execute("SET aws_ml.batch_mode = off")
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


def test_in_batch_mode_each_process_batches_its_own_rows(parallel_notes, connect, emulator):
    """No single-document request: the batching node runs under the Gather,
    in each worker and in the leader."""
    conn = connect()
    force_parallel_plan(conn)
    emulator.reset()
    explained = explain_analyze(conn, QUERY)
    assert workers_launched(explained) == [2], json.dumps(explained)
    counters = emulator.counters()["comprehend"]
    assert "DetectSentiment" not in counters
    batches = counters["BatchDetectSentiment"]
    assert batches["items"] == ROWS
    assert max(batches["batch_sizes"]) == 25
    assert len(batches["pids"]) >= 2, batches["pids"]  # the workers, each with its own batches

    # EXPLAIN ANALYZE's line counts the batches of every process
    [processing] = batch_processing(explained[0]["Plan"])
    batches, average = re.match(r"num batches=(\d+) avg/min/max batch size=([\d.]+)/", processing).groups()
    assert int(batches) >= 3 and round(int(batches) * float(average)) == ROWS, processing

    emulator.reset()
    assert sorted(conn.execute(QUERY).fetchall()) == parallel_notes
    assert detect_sentiment_counts(emulator, "BatchDetectSentiment")["items"] == ROWS


def batch_processing(node):
    """The Batch Processing lines of the plan's batching nodes."""
    found = [node["Batch Processing"]] if "Batch Processing" in node else []
    for child in node.get("Plans", []):
        found += batch_processing(child)
    return found


def test_the_workers_and_the_leader_share_max_concurrency(parallel_notes, connect, emulator):
    """aws_ml.max_concurrency bounds the requests in flight of the whole query:
    2 workers and the leader take a share each of 6, 2 at a time."""
    conn = connect()
    conn.execute("SELECT aws_comprehend.detect_sentiment('load the module first', 'en')")
    conn.execute("SET aws_ml.max_concurrency = 6")
    force_parallel_plan(conn)
    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=100)
    explained = explain_analyze(conn, QUERY)
    assert workers_launched(explained) == [2], json.dumps(explained)
    batches = detect_sentiment_counts(emulator, "BatchDetectSentiment")
    assert batches["items"] == ROWS
    assert len(batches["pids"]) == 3, batches["pids"]
    assert batches["max_in_flight"] <= 6
    emulator.clear_faults()
