"""A local Citus cluster for the tests and benchmarks: a coordinator and
workers, each a throwaway PostgreSQL (tests/cluster.py) on this machine with
citus and, by default, aws_ml preloaded, as docs/scaling.md says. Citus must
be installed in the PostgreSQL of $PG_CONFIG (scripts/build-citus)."""
import threading

import psycopg

# Every node: Citus writes to several nodes with two-phase commit.
NODE_SETTINGS = {"max_prepared_transactions": "100", "max_connections": "200"}
PRELOAD_WITH_AWS_ML = "citus,$libdir/plugins/aws_ml"
PRELOAD_CITUS_ONLY = "citus"


def _in_parallel(function, items):
    errors = []

    def run(item):
        try:
            function(item)
        except Exception as error:  # re-raised below, in this thread
            errors.append(error)
    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class CitusCluster:
    def __init__(self, new_node, workers=2, preload=PRELOAD_WITH_AWS_ML):
        """new_node(**settings): a Cluster, not started, with the aws_ml
        settings and AWS environment every node must share."""
        settings = {**NODE_SETTINGS, "shared_preload_libraries": preload}
        self.coordinator = new_node(**settings)
        self.workers = [new_node(**settings) for _ in range(workers)]
        self.nodes = [self.coordinator, *self.workers]

    def start(self, dbname="postgres"):
        """Starts every node, creates citus in dbname on each and adds the
        workers to the coordinator's metadata."""
        try:
            _in_parallel(lambda node: node.start(), self.nodes)
            for node in self.nodes:
                with psycopg.connect(node.conninfo(dbname), autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION citus")
            with self.connect(dbname) as conn:
                conn.execute("SELECT pg_catalog.citus_set_coordinator_host('127.0.0.1', %s)",
                             (self.coordinator.port,))
                for worker in self.workers:
                    conn.execute("SELECT pg_catalog.citus_add_node('127.0.0.1', %s)", (worker.port,))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        _in_parallel(lambda node: node.stop(), self.nodes)

    def connect(self, dbname="postgres", user="postgres", node=None):
        """An autocommit connection to node (the coordinator by default)."""
        return psycopg.connect((node or self.coordinator).conninfo(dbname, user), autocommit=True)
