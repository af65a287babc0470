"""shared_preload_libraries = '$libdir/plugins/aws_ml': the postmaster loads
the package, botocore and the services' models before it forks the backends
where the Python PL/Python links allows it (extension/src/python/
python_preload.c, preload_plan.c, aws_ml/preload.py)."""
import ctypes
import re
import subprocess

import psycopg
import pytest

from tests.cluster import pg_bindir
from tests.conftest import ROOT, new_cluster, requests_in_flight, stop_when
from tests.test_cancel import CALLS, HANG_SECONDS, assert_nothing_left_in_flight
from tests.test_materialize import module_loaded, outcome_of

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
    assert re.search(r"LOG:  aws_ml: preloaded the aws_ml Python package into Python 3\.11\.\d+, started in the "
                     r"postmaster", preloaded.server_log())


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
        timer = stop_when(lambda: psycopg.connect(preloaded.conninfo(), autocommit=True), conn.info.backend_pid,
                          requests_in_flight(emulator, call.service, 1), "the request to hang")
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                call.run(conn)
        finally:
            timer.join()
        assert_nothing_left_in_flight(emulator, call.service, 1)
        emulator.clear_faults()
        assert call.run(conn) == answer


@pytest.mark.slow  # a cluster of its own, shut down
def test_a_fast_shutdown_still_stops_the_server(emulator):
    """The postmaster's own SIGINT (fast shutdown) survives Python's start."""
    server = new_cluster(emulator, shared_preload_libraries="$libdir/plugins/aws_ml").start()
    try:
        server.stop_fast()
        assert "database system is shut down" in server.server_log()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def preload_plan(tmp_path_factory):
    """python/preload_plan.c's preload_plan, compiled alone: the decision
    by the PL/Python and the Python of the server (only 3.11 runs here)."""
    library = tmp_path_factory.mktemp("preload_plan") / "preload_plan.so"
    server_headers = subprocess.check_output([pg_bindir() / "pg_config", "--includedir-server"], text=True).strip()
    subprocess.run(["cc", "-shared", "-fPIC", "-I", server_headers, "-I", ROOT / "extension" / "src",
                    ROOT / "extension" / "src" / "python" / "preload_plan.c", "-o", library], check=True)
    plan = ctypes.CDLL(str(library)).preload_plan
    plan.restype, plan.argtypes = ctypes.c_int, (ctypes.c_bool, ctypes.c_bool, ctypes.c_char_p)
    names = re.findall(r"^\t(PRELOAD_\w+)", (ROOT / "extension/src/python/preload_plan.h").read_text(), re.MULTILINE)
    return lambda *args: names[plan(*args)]


@pytest.mark.parametrize("plpython_loaded, python_started, version, plan", [
    # PL/Python of 15 to 17 starts Python in each backend, after PyImport_AppendInittab("plpy"),
    # which 3.12 and later refuse once Python runs
    (True, False, b"3.9.18 (main, Jan 1 2024, 00:00:00) [GCC 10.2.1]", "PRELOAD_START_AND_IMPORT"),
    (True, False, b"3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]", "PRELOAD_START_AND_IMPORT"),
    (True, False, b"3.12.3 (main, Nov 6 2024, 18:32:19) [GCC 13.2.0]", "PRELOAD_LIBRARIES_ONLY"),
    (True, False, b"3.13.1 (main, Dec 4 2024, 08:54:15) [GCC 14.2.0]", "PRELOAD_LIBRARIES_ONLY"),
    (True, False, b"3.14.0rc1", "PRELOAD_LIBRARIES_ONLY"),
    (True, False, b"", "PRELOAD_LIBRARIES_ONLY"),
    # PL/Python of 18 starts Python when it loads: importing into it is safe on every Python
    (True, True, b"3.13.1 (main, Dec 4 2024, 08:54:15) [GCC 14.2.0]", "PRELOAD_IMPORT"),
    (True, True, b"3.11.2", "PRELOAD_IMPORT"),
    (False, False, None, "PRELOAD_NOTHING"),
])
def test_preloading_does_per_python_only_what_is_safe_there(preload_plan, plpython_loaded, python_started,
                                                             version, plan):
    assert preload_plan(plpython_loaded, python_started, version) == plan


# --- a backfill's first CALL of a session, where the module is not preloaded, against a preloaded server -------

BACKFILL_TABLES = [
    "DROP TABLE IF EXISTS notes, documents, typed, guarded",
    "CREATE TABLE notes (body text, sentiment varchar, confidence real)",
    "INSERT INTO notes VALUES ('I love it'), (NULL), ('I hate it')",
    "CREATE TABLE documents (body text, embedding float8[])",
    "INSERT INTO documents VALUES ('document about PostgreSQL'), ('another document')",
    "CREATE TABLE typed (body text, sentiment int, confidence real, embedding int)",
    "INSERT INTO typed VALUES ('I love it')",
    "CREATE TABLE guarded (body text, sentiment varchar, confidence real)",
    "INSERT INTO guarded VALUES ('I love it')",
    "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'no update of %', NEW.body USING HINT = 'Ask the owner.', ERRCODE = 'P0042'; END $$",
    "CREATE TRIGGER refuse BEFORE UPDATE ON guarded FOR EACH ROW EXECUTE FUNCTION refuse()",
    "CREATE OR REPLACE PROCEDURE commits_around() LANGUAGE plpgsql AS $$ BEGIN COMMIT; "
    "CALL aws_comprehend.materialize_sentiment('notes', 'nosuch', 'en'); COMMIT; END $$",
    "CREATE OR REPLACE PROCEDURE as_owner() LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN "
    "CALL aws_comprehend.materialize_sentiment('notes', 'body', 'en'); END $$",
]
SENTIMENT = "CALL aws_comprehend.materialize_sentiment"
EMBEDDINGS = "CALL aws_bedrock.materialize_embeddings"
TITAN = "'amazon.titan-embed-text-v1'"
FIRST_CALLS = {
    "NULL table": [f"{SENTIMENT}(NULL, 'body', 'en')"],
    "NULL model": [f"{EMBEDDINGS}('documents', 'body', 'embedding', NULL)"],
    "named arguments": [f"{SENTIMENT}(language_code => 'en', text_column => 'body', table_name => 'notes', "
                        "batch_size => -1)"],
    "column of the wrong type": [f"{SENTIMENT}('typed', 'body', 'en')"],
    "embedding column of the wrong type": [f"{EMBEDDINGS}('typed', 'body', 'embedding', {TITAN})"],
    "trigger that raises": [f"{SENTIMENT}('guarded', 'body', 'en')"],
    "service failure": [f"{SENTIMENT}('notes', 'body', 'en')"],
    # one request at a time: of concurrent requests that all fail, the one named is the first to fail
    "access denied": [f"{EMBEDDINGS}('documents', 'body', 'embedding', {TITAN}, max_concurrency => 1)"],
    "statement_timeout": ["SET statement_timeout = '300ms'", f"{SENTIMENT}('notes', 'body', 'en')"],
    "caught in an EXCEPTION block": [
        "DO $$ DECLARE context text; message text; BEGIN "
        f"{SENTIMENT}('notes', 'nosuch', 'en'); EXCEPTION WHEN OTHERS THEN "
        "GET STACKED DIAGNOSTICS context = PG_EXCEPTION_CONTEXT, message = MESSAGE_TEXT; "
        "RAISE EXCEPTION 'caught: % [%]', message, context; END $$"],
    "procedure that commits around it": ["CALL commits_around()"],
    "SECURITY DEFINER procedure": ["CALL as_owner()"],
    "progress notices": [f"{SENTIMENT}('notes', 'body', 'en')"],
}
FAULTS = {
    "service failure": ("comprehend", {"error_every": 1, "error_status": 500}),
    "access denied": ("bedrock", {"error_every": 1, "error_status": 403, "error_code": "AccessDeniedException"}),
    "statement_timeout": ("comprehend", {"latency_ms": 5000}),
}


@pytest.mark.parametrize("case", FIRST_CALLS)
def test_a_backfills_first_call_answers_as_later_ones_and_as_a_preloaded_servers(preloaded, emulator, connect,
                                                                                 case):
    """The same call, through the same callers, under the same faults: on a
    session's first use of aws_ml where the module is not preloaded, on its
    second, and on a server that preloads it."""
    def make_tables(conn):
        with conn:
            for statement in BACKFILL_TABLES:
                conn.execute(statement)
    make_tables(connect())
    make_tables(psycopg.connect(preloaded.conninfo(), autocommit=True))
    if case in FAULTS:
        service, fault = FAULTS[case]
        emulator.set_faults(service=service, **fault)
    first_session = connect()
    assert not module_loaded(first_session)
    first = outcome_of(first_session, FIRST_CALLS[case])
    make_tables(connect())  # the same rows again, at the same ctids
    again = outcome_of(first_session, FIRST_CALLS[case])
    with psycopg.connect(preloaded.conninfo(), autocommit=True) as conn:
        on_preloaded = outcome_of(conn, FIRST_CALLS[case])
    assert first == again == on_preloaded
    error, notices = first
    if case == "progress notices":
        assert error is None and [notice[:2] for notice in notices] == [("NOTICE", "materialize_sentiment: 2 / 2 rows")]
    else:
        assert error[0] in ("57014", "P0001", "P0042") or error[1].startswith("aws_ml: "), error
        assert error[4] is None or "Traceback" not in error[4] and "PL/Python" not in error[4], error
