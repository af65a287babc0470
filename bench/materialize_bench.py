"""aws_comprehend.materialize_sentiment: rows/s filling a table, beside the
emulator's ceiling for one client (the same texts straight to
BatchDetectSentiment with boto3, 25 a request, no database).

    .venv/bin/python bench/materialize_bench.py [--rows 20000] [--batch-size 500]

Prints a table and writes bench/results/materialize.json. Needs `make install`."""
import argparse
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DOCUMENTS_PER_REQUEST = 25


def make_table(conn, rows):
    conn.execute("DROP TABLE IF EXISTS bench_notes")
    conn.execute("CREATE TABLE bench_notes (id int PRIMARY KEY, body text, sentiment varchar, confidence real, "
                 "materialized_at timestamptz)")
    conn.execute("INSERT INTO bench_notes (id, body) SELECT n, 'note ' || n || CASE n %% 3 "
                 "WHEN 0 THEN ': I love this product' WHEN 1 THEN ': this is terrible' "
                 "ELSE ': it arrived on a Tuesday' END FROM generate_series(1, %s) n", (rows,))
    return [row[0] for row in conn.execute("SELECT body FROM bench_notes ORDER BY id")]


def measure(conn, emulator, rows=20_000, batch_size=500):
    texts = make_table(conn, rows)
    conn.execute("SELECT aws_comprehend.detect_sentiment('warm up', 'en')")  # boto3 import and client
    emulator.reset()
    seconds = common.seconds(lambda: conn.execute(
        "CALL aws_comprehend.materialize_sentiment('bench_notes', 'body', 'en', batch_size => %s)", (batch_size,)))
    sent = emulator.counters()["comprehend"]["BatchDetectSentiment"]["items"]
    done = conn.execute("SELECT count(*) FROM bench_notes WHERE sentiment IS NOT NULL").fetchone()[0]
    assert sent == done == rows, (sent, done, rows)

    client = boto3.session.Session(aws_access_key_id="AKIAAWSMLBENCHDIRECT", aws_secret_access_key="direct",
                                   region_name="us-east-1").client("comprehend", endpoint_url=emulator.url)

    def direct():
        for start in range(0, rows, DOCUMENTS_PER_REQUEST):
            client.batch_detect_sentiment(TextList=texts[start:start + DOCUMENTS_PER_REQUEST], LanguageCode="en")
    direct_seconds, _ = common.median_seconds(1, direct)
    return {"rows": rows, "batch_size": batch_size, "seconds": seconds, "rows_per_s": rows / seconds,
            "direct_boto3_rows_per_s": rows / direct_seconds, "ratio_to_direct": (rows / seconds) / (rows / direct_seconds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    with common.environment() as (emulator, _, conn):
        results = measure(conn, emulator, args.rows, args.batch_size)
    print(f"materialize_sentiment: {results['rows']} rows in {results['seconds']:.2f} s, "
          f"{results['rows_per_s']:,.0f} rows/s; boto3 straight to the emulator "
          f"{results['direct_boto3_rows_per_s']:,.0f} rows/s")
    print(f"wrote {common.write_results('materialize', results)}")


if __name__ == "__main__":
    main()
