"""Load: concurrent sessions calling aws_ml row by row against the emulator,
every answer checked against the emulator's own, and one backend's memory
over many calls.

    .venv/bin/python bench/load_bench.py [--sessions 8] [--calls 500] [--rss-calls 500 5000]

Prints a table and writes bench/results/load.json. Needs `make install`.
tests/test_load.py runs the same driver in a reduced form."""
import argparse
import concurrent.futures
import sys
import time
from pathlib import Path

import boto3
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

RSS_LIMIT = 0.10  # growth allowed between the two RSS readings
DETECT = "SELECT sentiment FROM aws_comprehend.detect_sentiment(%s, 'en')"
INVOKE = "SELECT aws_sagemaker.invoke_endpoint('linear-regression', NULL, %s, %s, 1, 2)"


def session_calls(session, calls):
    """(sql, params) of one session's calls: even sessions ask Comprehend, odd
    ones SageMaker; every call's input is distinct (no statement sends twice)."""
    if session % 2 == 0:
        return [(DETECT, (f"session {session} call {i}: {'I love it' if i % 3 else 'this is awful'}",))
                for i in range(calls)]
    return [(INVOKE, (session, i)) for i in range(calls)]


def direct_answer(clients, sql, params):
    """The emulator's answer to the same request, straight through boto3."""
    if sql == DETECT:
        return clients["comprehend"].detect_sentiment(Text=params[0], LanguageCode="en")["Sentiment"]
    body = ",".join(str(value) for value in (*params, 1, 2)) + "\n"
    answer = clients["sagemaker-runtime"].invoke_endpoint(EndpointName="linear-regression", Body=body.encode(),
                                                          ContentType="text/csv", Accept="text/csv")
    return answer["Body"].read().decode().strip()


def direct_clients(emulator):
    session = boto3.session.Session(aws_access_key_id="AKIAAWSMLLOADDIRECT1", aws_secret_access_key="direct",
                                    region_name="us-east-1")
    return {name: session.client(name, endpoint_url=emulator.url) for name in ("comprehend", "sagemaker-runtime")}


def run_session(conninfo, calls):
    """Each call's answer, in order, from one session."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return [conn.execute(sql, params).fetchone()[0] for sql, params in calls]


def concurrent_load(conninfo, emulator, sessions, calls):
    """Runs `sessions` sessions of `calls` calls at once; returns the figures
    and the calls whose answers differ from the emulator's direct ones."""
    planned = [session_calls(session, calls) for session in range(sessions)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(sessions) as pool:
        answers = list(pool.map(lambda session_plan: run_session(conninfo, session_plan), planned))
    elapsed = time.perf_counter() - started
    clients = direct_clients(emulator)
    wrong = [(sql, params, got)
             for plan, got_answers in zip(planned, answers)
             for (sql, params), got in zip(plan, got_answers)
             if got != direct_answer(clients, sql, params)]
    total = sessions * calls
    return {"sessions": sessions, "calls_per_session": calls, "calls": total,
            "answered": sum(len(a) for a in answers), "wrong": len(wrong),
            "seconds": elapsed, "calls_per_s": total / elapsed}, wrong


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def backend_rss(conninfo, checkpoints):
    """One backend's VmRSS (kB) after each number of calls in checkpoints."""
    calls = session_calls(0, max(checkpoints))
    readings = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        pid = conn.info.backend_pid
        for done, (sql, params) in enumerate(calls, 1):
            conn.execute(sql, params).fetchone()
            if done in checkpoints:
                readings[done] = rss_kb(pid)
    first, last = readings[min(checkpoints)], readings[max(checkpoints)]
    return {"rss_kb": readings, "growth": (last - first) / first, "limit": RSS_LIMIT}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rss-calls", type=int, nargs=2, default=[500, 5000])
    args = parser.parse_args()
    with common.environment() as (emulator, cluster, _):
        conninfo = cluster.conninfo()
        load, wrong = concurrent_load(conninfo, emulator, args.sessions, args.calls)
        memory = backend_rss(conninfo, set(args.rss_calls))
    results = {"machine": common.machine(), "load": load, "memory": memory, "wrong_examples": wrong[:5]}

    print(f"{'what':48} {'measured':>14} {'limit':>14}")
    print(f"{f'{args.sessions} sessions x {args.calls} calls answered':48} {load['answered']:>14,} "
          f"{load['calls']:>14,}")
    print(f"{'answers differing from the emulator direct':48} {load['wrong']:>14,} {0:>14}")
    print(f"{'throughput, calls/s (all sessions)':48} {load['calls_per_s']:>14,.0f}")
    low, high = sorted(memory["rss_kb"])
    print(f"{f'backend VmRSS after {low:,} calls, kB':48} {memory['rss_kb'][low]:>14,}")
    print(f"{f'backend VmRSS after {high:,} calls, kB':48} {memory['rss_kb'][high]:>14,}")
    print(f"{'RSS growth':48} {memory['growth']:>13.1%} {f'<= {RSS_LIMIT:.0%}':>14}")
    print(f"wrote {common.write_results('load', results)}")


if __name__ == "__main__":
    main()
