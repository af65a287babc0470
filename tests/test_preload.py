"""shared_preload_libraries = '$libdir/plugins/aws_ml': the postmaster loads
the package, botocore and the services' models before it forks the backends
(extension/src/python/python_path.c, aws_ml/preload.py)."""
import psycopg
import pytest

from tests.conftest import new_cluster
from tests.test_cancel import CALLS, HANG_SECONDS, assert_nothing_left_in_flight, cancel_after

# What a session's Python holds before its first aws_ml call, and its random state.
BEFORE_FIRST_CALL = """DO $$
import random, sys
plpy.notice(f"{'aws_ml.comprehend' in sys.modules} {'botocore.client' in sys.modules} {random.random()}")
$$ LANGUAGE plpython3u"""


@pytest.fixture(scope="module")
def preloaded(emulator):
    server = new_cluster(emulator, shared_preload_libraries="$libdir/plugins/aws_ml").start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
    yield server
    server.stop()


def notice_of(conn, sql):
    notices = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    conn.execute(sql)
    return notices[-1]


def test_a_new_session_has_the_package_before_its_first_call(preloaded):
    with psycopg.connect(preloaded.conninfo(), autocommit=True) as conn:
        assert notice_of(conn, BEFORE_FIRST_CALL).split()[:2] == ["True", "True"]
        for call in CALLS.values():
            assert call.run(conn)
    assert "could not preload" not in preloaded.server_log()


def test_sessions_do_not_share_the_postmasters_random_state(preloaded):
    """botocore's retry jitter draws from it: after a call, each session's own."""
    draws = []
    for _ in range(2):
        with psycopg.connect(preloaded.conninfo(), autocommit=True) as conn:
            CALLS["detect_sentiment"].run(conn)
            draws.append(notice_of(conn, BEFORE_FIRST_CALL).split()[2])
    assert draws[0] != draws[1]


def test_a_cancel_still_stops_a_hanging_request(preloaded, emulator, connect):
    call = CALLS["detect_sentiment"]
    with psycopg.connect(preloaded.conninfo(), autocommit=True) as conn:
        answer = call.run(conn)
        emulator.reset()
        emulator.set_faults(service=call.service, hang_seconds=HANG_SECONDS)
        timer = cancel_after(lambda: psycopg.connect(preloaded.conninfo(), autocommit=True),
                             conn.info.backend_pid, 1.0)
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                call.run(conn)
        finally:
            timer.join()
        assert_nothing_left_in_flight(emulator, call.service, 1)
        emulator.clear_faults()
        assert call.run(conn) == answer


def test_a_fast_shutdown_still_stops_the_server(emulator):
    """The postmaster's own SIGINT (fast shutdown) survives Python's start."""
    server = new_cluster(emulator, shared_preload_libraries="$libdir/plugins/aws_ml").start()
    try:
        server.stop_fast()
        assert "database system is shut down" in server.server_log()
    finally:
        server.stop()
