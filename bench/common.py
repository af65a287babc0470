"""What the benchmarks share: the emulator and a throwaway cluster with aws_ml
installed, timing, and the results directory.

    with common.environment() as (emulator, cluster, conn):
        ...
"""
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.client import Emulator  # noqa: E402
from tests.cluster import Cluster  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def new_cluster(emulator, **settings):
    """A cluster, not started yet, whose aws_ml settings point at emulator."""
    return Cluster(
        settings={"aws_ml.region": "us-east-1", "aws_ml.endpoint_url": emulator.url,
                  "max_worker_processes": "16", "max_parallel_workers": "8", **settings},
        environment={"AWS_ACCESS_KEY_ID": "AKIAAWSMLBENCHMARK01", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                     "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                     "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
    )


def start_cluster(emulator, **settings):
    """A started cluster whose aws_ml settings point at emulator (the caller stops it)."""
    return new_cluster(emulator, **settings).start()


@contextlib.contextmanager
def environment():
    """(emulator, cluster, an autocommit connection to a database with aws_ml);
    all stopped afterwards."""
    emulator = Emulator()
    cluster = None
    try:
        cluster = start_cluster(emulator)
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION aws_ml CASCADE")
            yield emulator, cluster, conn
    finally:
        if cluster is not None:
            cluster.stop()
        emulator.stop()


def connect(cluster):
    return psycopg.connect(cluster.conninfo(), autocommit=True)


def seconds(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def median_seconds(runs, function):
    """(median, minimum) seconds of runs calls of function."""
    times = [seconds(function) for _ in range(runs)]
    return statistics.median(times), min(times)


def machine():
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_results(name, results):
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out.relative_to(ROOT)
