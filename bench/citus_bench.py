"""The reference's sentiment query on a plain table against the same rows in
a Citus table over two workers, at 50 ms emulated latency: rows/s beside the
limits of the requests in flight, with and without aws_ml preloaded on the
nodes (docs/scaling.md).

    .venv/bin/python bench/citus_bench.py [--rows 8000] [--shards 32] [--runs 3]

Prints a table and writes bench/results/citus.json. Needs `make install` and
Citus (scripts/build-citus) in the PostgreSQL of $PG_CONFIG."""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from emulator.client import Emulator  # noqa: E402
from tests.citus_cluster import PRELOAD_CITUS_ONLY, PRELOAD_WITH_AWS_ML, CitusCluster  # noqa: E402
from tests.cluster import pg_bindir  # noqa: E402

LATENCY_MS = 50
DOCUMENTS_PER_REQUEST = 25
MAX_CONCURRENCY = 4  # aws_ml.max_concurrency's default
POOL_SIZE = 16  # citus.max_adaptive_executor_pool_size's default
AIM_DISTRIBUTED_TO_PLAIN = 1.7
QUERY = ("SELECT feedback, s.sentiment, s.confidence FROM {table}, aws_comprehend.detect_sentiment(feedback, 'en') s "
         "ORDER BY s.confidence DESC")
# name -> (Citus settings of the session, shard tasks in flight on a worker at
# most, whether a first query opens the connections the timed runs reuse)
CASES = {
    "Citus's defaults": ({}, POOL_SIZE, False),
    "one shard task per worker": ({"citus.max_adaptive_executor_pool_size": 1}, 1, False),
    "warm worker connections": ({"citus.max_cached_conns_per_worker": POOL_SIZE}, POOL_SIZE, True),
}


def citus_installed():
    pkglibdir = subprocess.check_output([str(pg_bindir() / "pg_config"), "--pkglibdir"], text=True).strip()
    return (Path(pkglibdir) / "citus.so").exists()


def rows_per_second(conn, table, rows, runs):
    """(median rows/s of runs runs of the query over table, each run's seconds)."""
    times = []
    for _ in range(runs):
        seconds = common.seconds(lambda: conn.execute(QUERY.format(table=table)).fetchall())
        times.append(seconds)
    return rows / statistics.median(times), times


def measure_cluster(emulator, preload, rows, shards, runs):
    cluster = CitusCluster(lambda **settings: common.new_cluster(emulator, **settings), preload=preload).start()
    try:
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
            for table in ("support_plain", "support"):
                conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, feedback text)")
            conn.execute("SELECT create_distributed_table('support', 'id', shard_count => %s)", (shards,))
            for table in ("support_plain", "support"):
                conn.execute(f"INSERT INTO {table} SELECT n, 'feedback ' || n || CASE n %% 3 WHEN 0 THEN "
                             "': I love it' WHEN 1 THEN ': I hate it' ELSE ': it came on a Tuesday' END "
                             "FROM generate_series(1, %s) n", (rows,))
            conn.execute("SELECT aws_comprehend.detect_sentiment('warm up', 'en')")
            emulator.set_faults(service="comprehend", latency_ms=LATENCY_MS)
            plain, plain_times = rows_per_second(conn, "support_plain", rows, 1)
            results = {"plain": {"rows_per_s": plain, "seconds": plain_times}}
            for case, (settings, tasks, warm_up) in CASES.items():
                with cluster.connect() as session:
                    for name, value in settings.items():
                        session.execute(f"SET {name} = {value}")
                    if warm_up:
                        session.execute(QUERY.format(table="support")).fetchall()
                    distributed, times = rows_per_second(session, "support", rows, runs)
                results[case] = {"rows_per_s": distributed, "seconds": times, "to_plain": distributed / plain,
                                 "limit_rows_per_s": len(cluster.workers) * min(tasks, shards // len(cluster.workers))
                                 * MAX_CONCURRENCY * DOCUMENTS_PER_REQUEST / (LATENCY_MS / 1000)}
            return results
    finally:
        emulator.clear_faults()
        cluster.stop()


def measure(rows=8000, shards=32, runs=3):
    emulator = Emulator()
    try:
        results = {"rows": rows, "shards": shards, "workers": 2, "latency_ms": LATENCY_MS,
                   "max_concurrency": MAX_CONCURRENCY,
                   "plain_limit_rows_per_s": MAX_CONCURRENCY * DOCUMENTS_PER_REQUEST / (LATENCY_MS / 1000),
                   "aim_distributed_to_plain": AIM_DISTRIBUTED_TO_PLAIN, "machine": common.machine()}
        for label, preload in (("aws_ml preloaded", PRELOAD_WITH_AWS_ML), ("citus only", PRELOAD_CITUS_ONLY)):
            results[label] = measure_cluster(emulator, preload, rows, shards, runs)
        return results
    finally:
        emulator.stop()


def lines(results):
    yield (f"{results['rows']:,} rows, {results['shards']} shards over {results['workers']} workers, "
           f"{results['latency_ms']} ms a request, aws_ml.max_concurrency {results['max_concurrency']}")
    for label in ("aws_ml preloaded", "citus only"):
        nodes = results[label]
        yield (f"  {label}: plain table {nodes['plain']['rows_per_s']:,.0f} rows/s "
               f"(limit {results['plain_limit_rows_per_s']:,.0f})")
        for case in CASES:
            r = nodes[case]
            yield (f"  {label}: {case}: {r['rows_per_s']:,.0f} rows/s, {r['to_plain']:.2f}x the plain table "
                   f"(limit {r['limit_rows_per_s']:,.0f}; runs {', '.join(f'{s:.2f}' for s in r['seconds'])} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not citus_installed():
        sys.exit("Citus is not installed in the PostgreSQL of $PG_CONFIG: run scripts/build-citus")
    results = measure(args.rows, args.shards, args.runs)
    for line in lines(results):
        print(line)
    print(f"wrote {common.write_results('citus', results)}")


if __name__ == "__main__":
    main()
