"""Bedrock embeddings through SQL: the concurrent batch form against its limit,
the plain query in batch mode (aws_ml.max_concurrency at a time) against its
limit, and the same inputs row by row (aws_ml.batch_mode = off). The emulator answers every InvokeModel after
LATENCY_MS, so `calls x latency / concurrency` is the fastest any client can go.

    .venv/bin/python bench/bedrock_bench.py [--rows 200] [--concurrency 8] [--latency-ms 50] [--runs 3]

Prints a table and writes bench/results/bedrock.json. Needs `make install`."""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

MODEL = "amazon.titan-embed-text-v1"
BATCH = ("SELECT count(model_output) FROM aws_bedrock.batch_invoke_model_get_embeddings("
         "%s, 'application/json', 'embedding', %s, %s)")
PLAIN = ("SELECT count(aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', 'embedding', input)) "
         "FROM unnest(%s::text[]) AS input")


def timed(conn, emulator, latency_ms, sql, params, rows, settings):
    """Seconds for one run under settings, after checking every input got its embedding in one request."""
    emulator.reset()
    emulator.set_faults(service="bedrock", latency_ms=latency_ms)
    for name, value in settings.items():
        conn.execute(f"SET {name} = {value}")
    started = time.perf_counter()
    embedded = conn.execute(sql, params).fetchone()[0]
    seconds = time.perf_counter() - started
    for name in settings:
        conn.execute(f"RESET {name}")
    requests = emulator.counters()["bedrock"]["InvokeModel"]["requests"]
    assert embedded == rows and requests == rows, (embedded, requests)
    return seconds


def measure(conn, emulator, rows=200, concurrency=8, latency_ms=50, runs=3):
    """One result per case: the median seconds beside the limit."""
    inputs = [json.dumps({"inputText": f"row {i}: PostgreSQL I/O monitoring views"}) for i in range(rows)]
    cases = [  # (name, lanes, sql, params, settings, aim: the most times the limit)
        ("batch_invoke_model_get_embeddings", concurrency, BATCH, (MODEL, inputs, concurrency), {}, None),
        ("invoke_model_get_embeddings in batch mode", 4, PLAIN, (MODEL, inputs), {}, 1.3),
        ("invoke_model_get_embeddings in batch mode", concurrency, PLAIN, (MODEL, inputs),
         {"aws_ml.max_concurrency": concurrency}, 1.3),
        ("invoke_model_get_embeddings, row by row", 1, PLAIN, (MODEL, inputs), {"aws_ml.batch_mode": "off"}, None),
    ]
    conn.execute(BATCH, (MODEL, inputs[:concurrency], concurrency))  # boto3 import, client
    results = []
    try:
        for name, lanes, sql, params, settings, aim in cases:
            times = [timed(conn, emulator, latency_ms, sql, params, rows, settings) for _ in range(runs)]
            limit = rows * latency_ms / 1000 / lanes
            median = statistics.median(times)
            results.append({"case": name, "calls": rows, "concurrency": lanes,
                            "latency_ms": latency_ms, "runs_s": [round(t, 3) for t in times],
                            "median_s": round(median, 3), "limit_s": round(limit, 3),
                            "ratio_to_limit": round(median / limit, 2),
                            **({"aim_ratio_at_most": aim} if aim else {})})
    finally:
        emulator.clear_faults()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with common.environment() as (emulator, _, conn):
        results = measure(conn, emulator, args.rows, args.concurrency, args.latency_ms, args.runs)

    print(f"{'case':42} {'calls':>5} {'conc':>4} {'median s':>9} {'limit s':>8} {'x limit':>7}")
    for r in results:
        print(f"{r['case']:42} {r['calls']:>5} {r['concurrency']:>4} {r['median_s']:>9.3f} "
              f"{r['limit_s']:>8.3f} {r['ratio_to_limit']:>7.2f}")
    print(f"wrote {common.write_results('bedrock', results)}")


if __name__ == "__main__":
    main()
