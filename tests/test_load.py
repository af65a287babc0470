"""Concurrent sessions all get correct answers, and a backend's memory stays
flat over many calls: the reduced form of bench/load_bench.py (8 sessions x
500 calls, RSS after 500 vs 5,000 calls): 8 x 60 calls, RSS after 200 vs
2,000 calls."""
import pytest

from bench.load_bench import RSS_LIMIT, backend_rss, concurrent_load

pytestmark = pytest.mark.slow  # 8 sessions and thousands of calls

SESSIONS = 8
CALLS = 60


def test_concurrent_sessions_all_answer_correctly(cluster, database, emulator):
    load, wrong = concurrent_load(cluster.conninfo(database), emulator, SESSIONS, CALLS)
    assert load["answered"] == SESSIONS * CALLS
    assert wrong == []


def test_backend_memory_stays_flat(cluster, database):
    memory = backend_rss(cluster.conninfo(database), {200, 2000})
    assert memory["growth"] <= RSS_LIMIT, memory
