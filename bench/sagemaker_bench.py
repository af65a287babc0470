"""SageMaker batch scoring through SQL: rows/s end to end through
aws_sagemaker.batch_invoke_endpoint against the emulator's linear-regression
endpoint, and the in-server CSV serialization cost per field, each beside the
emulator's own time for the same request bodies sent straight with boto3; and
the reference's classify_event over a table in batch mode.

    .venv/bin/python bench/sagemaker_bench.py [--rows 100000] [--runs 5]

Prints a table and writes bench/results/sagemaker.json. Needs `make install`."""
import argparse
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plpython"))

from aws_ml.batching import by_size  # noqa: E402
from aws_ml.sagemaker import MAX_BODY_BYTES  # noqa: E402
from bench import common  # noqa: E402

ENDPOINT = "linear-regression"
FEATURES = 4
SETUP = """
CREATE TYPE bench_features AS (tenure float8, charge float8, calls float8, contract float8);
CREATE TABLE bench_rows AS
    SELECT n AS id, ROW(n % 97 / 7.0, n % 13 * 1.25, n % 5, n % 2)::bench_features AS features
    FROM generate_series(1, {rows}) n;
CREATE TABLE bench_array AS SELECT ARRAY(SELECT features FROM bench_rows ORDER BY id) AS features;
"""
END_TO_END = ("SELECT count(model_output) FROM aws_sagemaker.batch_invoke_endpoint(%s, NULL, "
              "ARRAY(SELECT features FROM bench_rows ORDER BY id))")
CSV_ROWS = "SELECT aws_sagemaker._csv_rows(features) FROM bench_array"
SERIALIZE = "SELECT cardinality(aws_sagemaker._csv_rows(features)) FROM bench_array"
DETOAST = "SELECT cardinality(features) FROM bench_array"  # what SERIALIZE costs besides the codec
EVENTS = """
CREATE TABLE bench_events AS
    SELECT n AS id, n % 3 AS event_type, date '1970-01-01' + n % 1000 AS event_day,
           CASE WHEN n % 10 = 4 THEN NULL ELSE n % 500 * 0.5 END::real AS amount
    FROM generate_series(1, {rows}) n;
"""
CLASSIFY = "SELECT count(classify_event(event_type, event_day, amount)) FROM bench_events"


def request_bodies(conn):
    """The bodies batch_invoke_endpoint sends: its CSV rows, split as it splits them."""
    rows = [line.encode() for line in conn.execute(CSV_ROWS).fetchone()[0]]
    return [b"".join(rows[start:stop]) for start, stop in by_size([len(r) for r in rows], len(rows), MAX_BODY_BYTES)]


def classify_event_rows_per_s(conn, emulator, rows, runs):
    """The reference's classify_event (4-argument form) over rows in batch mode."""
    sys.path.insert(0, str(common.ROOT))
    from tests.reference import CLASSIFY_EVENT_4
    emulator.register_endpoint("sagemaker_model_endpoint_name", model={"kind": "linear", "coef": [1.0, 1.0, 2.0]})
    conn.execute("DROP TABLE IF EXISTS bench_events")
    conn.execute("DROP FUNCTION IF EXISTS classify_event")
    conn.execute(EVENTS.format(rows=rows))
    conn.execute(CLASSIFY_EVENT_4)
    emulator.reset()
    assert conn.execute(CLASSIFY).fetchone()[0] == rows
    requests = emulator.counters()["sagemaker"]["InvokeEndpoint"]["requests"]
    median, _ = common.median_seconds(runs, lambda: conn.execute(CLASSIFY).fetchone())
    return {"rows": rows, "requests": requests, "median_s": median, "rows_per_s": rows / median,
            "target_rows_per_s": 50_000}


def measure(conn, emulator, rows=100_000, runs=5):
    """rows/s end to end and straight to the emulator, and the CSV codec's cost per field."""
    fields = rows * FEATURES
    conn.execute("DROP TABLE IF EXISTS bench_array, bench_rows; DROP TYPE IF EXISTS bench_features")
    conn.execute(SETUP.format(rows=rows))
    conn.execute(END_TO_END, (ENDPOINT,))  # warm-up: boto3 import and client in this backend
    emulator.reset()
    scored = conn.execute(END_TO_END, (ENDPOINT,)).fetchone()[0]
    assert scored == rows, scored
    requests = emulator.counters()["sagemaker"]["InvokeEndpoint"]["requests"]
    sql_median, sql_min = common.median_seconds(runs, lambda: conn.execute(END_TO_END, (ENDPOINT,)).fetchone())
    serialize_median, _ = common.median_seconds(runs, lambda: conn.execute(SERIALIZE).fetchone())
    detoast_median, _ = common.median_seconds(runs, lambda: conn.execute(DETOAST).fetchone())
    bodies = request_bodies(conn)
    assert len(bodies) == requests, (len(bodies), requests)

    client = boto3.session.Session(aws_access_key_id="AKIAAWSMLBENCHDIRECT", aws_secret_access_key="direct",
                                   region_name="us-east-1").client("sagemaker-runtime", endpoint_url=emulator.url)

    def send_direct():
        for body in bodies:
            answer = client.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="text/csv",
                                            Accept="text/csv")
            answer["Body"].read()
    send_direct()
    direct_median, direct_min = common.median_seconds(runs, send_direct)
    codec_seconds = max(serialize_median - detoast_median, 0.0)
    return {
        "rows": rows, "fields": fields, "requests": requests, "runs": runs,
        "end_to_end": {"median_s": sql_median, "min_s": sql_min, "rows_per_s": rows / sql_median,
                       "target_rows_per_s": 50_000},
        "emulator_direct": {"median_s": direct_median, "min_s": direct_min,
                            "rows_per_s": rows / direct_median},
        "serialization": {"csv_rows_median_s": serialize_median, "detoast_median_s": detoast_median,
                          "us_per_field": codec_seconds / fields * 1e6, "target_us_per_field": 2.0},
        "classify_event": classify_event_rows_per_s(conn, emulator, rows, runs),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with common.environment() as (emulator, _, conn):
        results = measure(conn, emulator, args.rows, args.runs)

    end_to_end, direct, codec = results["end_to_end"], results["emulator_direct"], results["serialization"]
    print(f"{args.rows:,} rows x {FEATURES} features, {results['requests']} request(s), median of {args.runs} runs")
    print(f"{'what':44} {'seconds':>9} {'rows/s':>10} {'target':>12}")
    print(f"{'batch_invoke_endpoint, end to end':44} {end_to_end['median_s']:9.3f} {end_to_end['rows_per_s']:10,.0f} "
          f"{'>= 50,000':>12}")
    print(f"{'same bodies straight to the emulator (boto3)':44} {direct['median_s']:9.3f} {direct['rows_per_s']:10,.0f}")
    print(f"{'_csv_rows serialization, per field':44} {'':9} {codec['us_per_field']:8.3f} us {'<= 2 us':>12}")
    classify = results["classify_event"]
    print(f"{'classify_event in batch mode':44} {classify['median_s']:9.3f} {classify['rows_per_s']:10,.0f} "
          f"{'>= 50,000':>12}")
    print(f"wrote {common.write_results('sagemaker', results)}")


if __name__ == "__main__":
    main()
