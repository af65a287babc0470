"""The package is found without changing the environment of the server's
processes: the programs the server starts (COPY ... TO PROGRAM in a
session, the archiver's archive_command) inherit no trace of aws_ml, with
the module preloaded by the postmaster or loaded by a session."""
import psycopg
import pytest

from tests.conftest import new_cluster, wait_until

CALL = "SELECT sentiment FROM aws_comprehend.detect_sentiment('I love it', 'en')"


@pytest.fixture(scope="module", params=["loaded by a session", "preloaded"])
def archiving(emulator, request):
    """A cluster whose archive_command writes its environment beside the data
    directory, one file per WAL segment."""
    settings = {"archive_mode": "on", "archive_command": "env > ../%f.env"}
    if request.param == "preloaded":
        settings["shared_preload_libraries"] = "$libdir/plugins/aws_ml"
    server = new_cluster(emulator, **settings).start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
    yield server
    server.stop()


def environment_of_copy_to_program(server, conn, name):
    # the program reads COPY's row: one that exited first broke the server's pipe
    conn.execute(f"COPY (SELECT 1) TO PROGRAM 'env > ../{name}.env; cat > /dev/null'")
    return (server.dir / f"{name}.env").read_text()


def assert_no_trace(environment):
    assert "PYTHONPATH" not in environment and "aws_ml-python" not in environment, environment
    assert "PATH=" in environment  # the program's environment was written


def test_copy_to_program_inherits_nothing(archiving):
    """After planning an aws_ml call (which loads the module), after a call,
    and after a backfill (which loads it from Python)."""
    with psycopg.connect(archiving.conninfo(), autocommit=True) as conn:
        conn.execute(f"EXPLAIN {CALL}")
        assert_no_trace(environment_of_copy_to_program(archiving, conn, "planned"))
        assert conn.execute(CALL).fetchone() == ("POSITIVE",)
        assert_no_trace(environment_of_copy_to_program(archiving, conn, "called"))
    with psycopg.connect(archiving.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS reviews (body text, sentiment varchar, confidence real)")
        conn.execute("INSERT INTO reviews VALUES ('I love it')")
        conn.execute("CALL aws_comprehend.materialize_sentiment('reviews', 'body', 'en')")
        assert conn.execute("SELECT sentiment FROM reviews").fetchone() == ("POSITIVE",)
        assert_no_trace(environment_of_copy_to_program(archiving, conn, "backfilled"))


def test_archive_command_inherits_nothing(archiving):
    with psycopg.connect(archiving.conninfo(), autocommit=True) as conn:
        assert conn.execute(CALL).fetchone() == ("POSITIVE",)
        conn.execute("CREATE TABLE IF NOT EXISTS wal_filler AS SELECT 1 AS one")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
    archived = archiving.dir / f"{segment}.env"
    wait_until(archived.exists, f"the archiver to archive {segment}")
    wait_until(lambda: "PATH=" in archived.read_text(), f"the archive_command of {segment} to finish")
    assert_no_trace(archived.read_text())
