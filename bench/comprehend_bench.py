"""Comprehend through SQL: the per-call cost of detect_sentiment against a
plain boto3 loop on the same emulator endpoint (no latency); with emulated
latency, the same plain query in batch mode against batch_detect_sentiment and
against row by row (aws_ml.batch_mode = off); and a backend's first call
against a warm one.

    .venv/bin/python bench/comprehend_bench.py [--calls 1000] [--texts 2000] [--latency-ms 5] [--runs 3]

Prints a table and writes bench/results/comprehend.json. Needs `make install`."""
import argparse
import math
import statistics
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

BATCH_LIMIT = 25  # documents per BatchDetectSentiment request
# The plain query: batched in batch mode, one DetectSentiment a row with it off.
PLAIN = "SELECT count((aws_comprehend.detect_sentiment(body, 'en')).sentiment) FROM bench_texts WHERE id <= %s"
BATCH = ("SELECT count(sentiment) FROM aws_comprehend.batch_detect_sentiment("
         "ARRAY(SELECT body FROM bench_texts WHERE id <= %s ORDER BY id), 'en')")
ONE_CALL = "SELECT aws_comprehend.detect_sentiment('Is the first call slow?', 'en')"


def make_texts(conn, rows):
    """bench_texts: rows distinct texts (identical ones could be served from a cache)."""
    conn.execute("DROP TABLE IF EXISTS bench_texts")
    conn.execute("CREATE TABLE bench_texts AS SELECT n AS id, 'review ' || n || CASE n %% 3 "
                 "WHEN 0 THEN ': I love this product' WHEN 1 THEN ': this is terrible' "
                 "ELSE ': it arrived on a Tuesday' END AS body FROM generate_series(1, %s) n", (rows,))
    return [row[0] for row in conn.execute("SELECT body FROM bench_texts ORDER BY id")]


def counted(conn, emulator, operation, sql, params, documents, latency_ms=0, batch_mode="on"):
    """Seconds of one run of sql with the emulator answering after latency_ms,
    after checking it sent each document once."""
    emulator.reset()  # counters and faults
    emulator.set_faults(service="comprehend", latency_ms=latency_ms)
    conn.execute(f"SET aws_ml.batch_mode = {batch_mode}")
    try:
        elapsed = common.seconds(lambda: conn.execute(sql, params).fetchone())
    finally:
        conn.execute("RESET aws_ml.batch_mode")
    sent = emulator.counters()["comprehend"][operation]["items"]
    assert sent == documents, (operation, sent, documents)
    return elapsed


def direct_client(emulator):
    return boto3.session.Session(aws_access_key_id="AKIAAWSMLBENCHDIRECT", aws_secret_access_key="direct",
                                 region_name="us-east-1").client("comprehend", endpoint_url=emulator.url)


def per_call_cost(conn, emulator, texts, runs):
    """Seconds per call: detect_sentiment in SQL and a boto3 loop, no latency."""
    calls = len(texts)
    client = direct_client(emulator)

    def boto3_loop():
        for text in texts:
            client.detect_sentiment(Text=text, LanguageCode="en")
    boto3_loop()
    conn.execute(PLAIN, (10,))  # boto3 import and client in this backend
    sql = statistics.median(counted(conn, emulator, "DetectSentiment", PLAIN, (calls,), calls, batch_mode="off")
                            for _ in range(runs))
    direct, _ = common.median_seconds(runs, boto3_loop)
    return sql / calls, direct / calls


def row_by_row_and_batch(conn, emulator, texts, latency_ms, runs):
    """Seconds for texts row by row (one run), through batch_detect_sentiment,
    through the plain query in batch mode, and the same batches sent by a
    boto3 loop (medians of runs)."""
    bodies = [row[0] for row in conn.execute("SELECT body FROM bench_texts WHERE id <= %s ORDER BY id", (texts,))]
    client = direct_client(emulator)

    def boto3_batches():
        for start in range(0, texts, BATCH_LIMIT):
            client.batch_detect_sentiment(TextList=bodies[start:start + BATCH_LIMIT], LanguageCode="en")
    try:
        rows = counted(conn, emulator, "DetectSentiment", PLAIN, (texts,), texts, latency_ms, batch_mode="off")
        batch = statistics.median(counted(conn, emulator, "BatchDetectSentiment", BATCH, (texts,), texts, latency_ms)
                                  for _ in range(runs))
        plain = statistics.median(counted(conn, emulator, "BatchDetectSentiment", PLAIN, (texts,), texts, latency_ms)
                                  for _ in range(runs))
        direct, _ = common.median_seconds(runs, boto3_batches)
    finally:
        emulator.clear_faults()
    return rows, batch, plain, direct


def first_and_warm_call(cluster, runs):
    """Milliseconds of a new backend's first call (boto3 import, settings, client) and of its next call."""
    first, warm = [], []
    for _ in range(runs):
        with common.connect(cluster) as conn:
            conn.execute("SELECT 1")
            first.append(common.seconds(lambda: conn.execute(ONE_CALL).fetchone()) * 1000)
            warm.append(common.seconds(lambda: conn.execute(ONE_CALL).fetchone()) * 1000)
    return statistics.median(first), statistics.median(warm)


def first_call_preloaded(emulator, runs):
    """A new backend's first call when the postmaster preloaded the package
    (shared_preload_libraries), in milliseconds."""
    cluster = common.start_cluster(emulator, shared_preload_libraries="$libdir/plugins/aws_ml")
    try:
        with common.connect(cluster) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
        return first_and_warm_call(cluster, runs)[0]
    finally:
        cluster.stop()


def measure(conn, emulator, cluster, calls=1000, texts=2000, latency_ms=5, runs=3):
    make_texts(conn, max(calls, texts))
    sql_call, boto3_call = per_call_cost(conn, emulator,
                                         [row[0] for row in conn.execute(
                                             "SELECT body FROM bench_texts WHERE id <= %s ORDER BY id", (calls,))],
                                         runs)
    rows_s, batch_s, plain_s, boto3_batch_s = row_by_row_and_batch(conn, emulator, texts, latency_ms, runs)
    batch_limit_s = math.ceil(texts / BATCH_LIMIT) * latency_ms / 1000
    first_ms, warm_ms = first_and_warm_call(cluster, runs)
    preloaded_ms = first_call_preloaded(emulator, runs)
    return {
        "per_call": {"calls": calls, "sql_ms": sql_call * 1000, "boto3_ms": boto3_call * 1000,
                     "ratio": sql_call / boto3_call, "aim_ratio_at_most": 1.25},
        "row_by_row_vs_batch": {"texts": texts, "latency_ms": latency_ms, "row_by_row_s": rows_s,
                                "batch_s": batch_s, "boto3_batch_s": boto3_batch_s, "speedup": rows_s / batch_s,
                                "aim_speedup_at_least": 15,
                                "batch_limit_s": batch_limit_s, "batch_to_limit": batch_s / batch_limit_s,
                                "aim_batch_to_limit_at_most": 1.3},
        "batch_mode": {"texts": texts, "latency_ms": latency_ms, "plain_s": plain_s,
                       "to_batch_function": plain_s / batch_s, "aim_to_batch_function_at_most": 1.2,
                       "speedup": rows_s / plain_s, "aim_speedup_at_least": 15},
        "first_call": {"first_ms": first_ms, "warm_ms": warm_ms, "preloaded_ms": preloaded_ms,
                       "aim_preloaded_ms_at_most": 50, "runs": runs},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with common.environment() as (emulator, cluster, conn):
        results = measure(conn, emulator, cluster, args.calls, args.texts, args.latency_ms, args.runs)
    call, batch, first = results["per_call"], results["row_by_row_vs_batch"], results["first_call"]
    print(f"detect_sentiment per call: SQL {call['sql_ms']:.3f} ms, boto3 {call['boto3_ms']:.3f} ms, "
          f"ratio {call['ratio']:.2f} (aim <= 1.25)")
    print(f"{batch['texts']} texts at {batch['latency_ms']} ms: row by row {batch['row_by_row_s']:.2f} s, "
          f"batch {batch['batch_s']:.3f} s ({batch['speedup']:.1f}x, aim >= 15x; "
          f"{batch['batch_to_limit']:.2f}x the limit {batch['batch_limit_s']:.2f} s, aim <= 1.3x; "
          f"the same batches from boto3 {batch['boto3_batch_s']:.3f} s)")
    plain = results["batch_mode"]
    print(f"the plain query in batch mode {plain['plain_s']:.3f} s: {plain['to_batch_function']:.2f}x "
          f"batch_detect_sentiment (aim <= 1.2x), {plain['speedup']:.1f}x faster than row by row (aim >= 15x)")
    print(f"first call of a backend {first['first_ms']:.0f} ms, with the package preloaded "
          f"{first['preloaded_ms']:.0f} ms (aim <= 50), warm call {first['warm_ms']:.2f} ms")
    print(f"wrote {common.write_results('comprehend', results)}")


if __name__ == "__main__":
    main()
