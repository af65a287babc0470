"""Bedrock embeddings through SQL: the concurrent batch form against its limit,
and the same inputs row by row. The emulator answers every InvokeModel after
LATENCY_MS, so `calls x latency / concurrency` is the fastest any client can go.

    .venv/bin/python bench/bedrock_bench.py [--rows 200] [--concurrency 8] [--latency-ms 50] [--runs 3]

Prints a table and writes bench/results/bedrock.json. Needs `make install`."""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.client import Emulator  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

MODEL = "amazon.titan-embed-text-v1"
BATCH = ("SELECT count(model_output) FROM aws_bedrock.batch_invoke_model_get_embeddings("
         "%s, 'application/json', 'embedding', %s, %s)")
ROW_BY_ROW = ("SELECT count(aws_bedrock.invoke_model_get_embeddings(%s, 'application/json', 'embedding', input)) "
              "FROM unnest(%s::text[]) AS input")


def start(emulator):
    return Cluster(
        settings={"aws_ml.region": "us-east-1", "aws_ml.endpoint_url": emulator.url},
        environment={"AWS_ACCESS_KEY_ID": "AKIAAWSMLBENCHMARK01", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                     "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                     "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
    ).start()


def timed(conn, emulator, latency_ms, sql, params, rows):
    """Seconds for one run, after checking every input got its embedding in one request."""
    emulator.reset()
    emulator.set_faults(service="bedrock", latency_ms=latency_ms)
    started = time.perf_counter()
    embedded = conn.execute(sql, params).fetchone()[0]
    seconds = time.perf_counter() - started
    requests = emulator.counters()["bedrock"]["InvokeModel"]["requests"]
    assert embedded == rows and requests == rows, (embedded, requests)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    inputs = [json.dumps({"inputText": f"row {i}: PostgreSQL I/O monitoring views"}) for i in range(args.rows)]
    latency = args.latency_ms / 1000
    cases = [
        ("batch_invoke_model_get_embeddings", args.concurrency, BATCH, (MODEL, inputs, args.concurrency)),
        ("invoke_model_get_embeddings, row by row", 1, ROW_BY_ROW, (MODEL, inputs)),
    ]
    emulator = Emulator()
    cluster = start(emulator)
    results = []
    try:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
            conn.execute(BATCH, (MODEL, inputs[:args.concurrency], args.concurrency))  # boto3 import, client
            for name, concurrency, sql, params in cases:
                runs = [timed(conn, emulator, args.latency_ms, sql, params, args.rows) for _ in range(args.runs)]
                limit = args.rows * latency / concurrency
                median = statistics.median(runs)
                results.append({"case": name, "calls": args.rows, "concurrency": concurrency,
                                "latency_ms": args.latency_ms, "runs_s": [round(r, 3) for r in runs],
                                "median_s": round(median, 3), "limit_s": round(limit, 3),
                                "ratio_to_limit": round(median / limit, 2)})
    finally:
        cluster.stop()
        emulator.stop()

    print(f"{'case':42} {'calls':>5} {'conc':>4} {'median s':>9} {'limit s':>8} {'x limit':>7}")
    for r in results:
        print(f"{r['case']:42} {r['calls']:>5} {r['concurrency']:>4} {r['median_s']:>9.3f} "
              f"{r['limit_s']:>8.3f} {r['ratio_to_limit']:>7.2f}")
    out = ROOT / "bench" / "results" / "bedrock.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
