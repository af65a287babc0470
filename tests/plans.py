"""Forcing and reading parallel plans, for the parallel-query tests."""

_FORCE_PARALLEL = ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                   "max_parallel_workers_per_gather = 2")


def force_parallel_plan(conn):
    for setting in _FORCE_PARALLEL:
        conn.execute(f"SET {setting}")


def explain_analyze(conn, query):
    """The plan EXPLAIN (ANALYZE, FORMAT JSON) gives for query: the query runs."""
    return conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}").fetchone()[0]


def workers_launched(explained):
    """"Workers Launched" of each Gather node of the plan."""
    stack, launched = [explained[0]["Plan"]], []
    while stack:
        node = stack.pop()
        if "Workers Launched" in node:
            launched.append(node["Workers Launched"])
        stack.extend(node.get("Plans", []))
    return launched
