"""aws_s3 when things go wrong: an export changes nothing in S3 unless it
succeeds, and then exactly its own files; data moves while the query
computes; network faults, cancels and terminations during a transfer reach
SQL as such; the transfer process of a backend (docs/s3.md)."""
import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REGION, counter, wait_until
from tests.s3_support import (BUCKET, copy_to_stdout, export, new_key, object_bytes, s3,  # noqa: F401 (fixtures)
                              s3_database, s3db, sql_error, transfer_process)

EXPORT = "SELECT * FROM aws_s3.query_export_to_s3(%s, %s, %s)"
IMPORT = "SELECT aws_s3.table_import_from_s3(%s, '', 'format csv', %s, %s, %s)"
LOCK = 4242
# a full part (8 MiB) of rows, then a row that waits for the advisory lock LOCK
ROWS_THEN_WAIT = ("SELECT n, repeat('s', 1000) FROM generate_series(1, 9000) n "
                  f"UNION ALL SELECT 0, CASE WHEN pg_advisory_lock({LOCK}) IS NOT NULL THEN 'end' END")


def files_under(s3, prefix):
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {each["Key"]: object_bytes(s3, each["Key"]) for each in listed}


def open_uploads(s3, key):
    return [upload for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
            if upload["Key"].startswith(key)]


def waiting_for_the_lock(conn):
    return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone() == (1,)


class InThread:
    """Runs the statement sql on conn in a thread; .error is the psycopg
    error it raised (None if none), .row its first row."""

    def __init__(self, conn, sql, params):
        self.error = self.row = None

        def run():
            try:
                self.row = conn.execute(sql, params).fetchone()
            except psycopg.Error as error:
                self.error = error
        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self):
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self


@pytest.fixture
def lock_holder(connect, s3_database):
    holder = connect(dbname=s3_database)
    holder.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    return holder


def test_a_failed_export_leaves_the_files_of_the_last_one_as_they_were(s3db, s3):
    """An export into six 1 MB files, then the same export failing at its
    4,000th row of 6,000: the six files stay byte for byte, none is added,
    no upload is left open."""
    s3db.execute("SET aws_s3.max_file_size = '1MB'")
    key = new_key(".csv")
    export(s3db, "SELECT n, repeat(md5(n::text), 30) FROM generate_series(1, 6000) n", key)
    before = files_under(s3, key)
    assert sorted(before) == [key] + [f"{key}_part{n}" for n in range(2, 7)]
    diag = sql_error(s3db, EXPORT, ("SELECT n, CASE WHEN n = 4000 THEN (1 / (n - 4000))::text "
                                    "ELSE repeat(md5((n + 1)::text), 30) END FROM generate_series(1, 6000) n",
                                    BUCKET, key))
    assert diag.sqlstate == "22012"
    assert files_under(s3, key) == before
    assert open_uploads(s3, key) == []


def test_a_failed_export_never_touches_another_sessions_file(s3db, s3, connect, s3_database, lock_holder):
    """Session B's export has sent a file to the key when it waits; session
    A exports to the same key and succeeds; then B fails: A's file stays."""
    key = new_key(".csv")
    b = connect(dbname=s3_database)
    b.execute("SET aws_s3.max_file_size = '1MB'")
    # eight times what the pipe holds (1 MiB), in files of 1 MB
    failing = InThread(b, EXPORT, ("SELECT n, repeat('b', 500) FROM generate_series(1, 16000) n UNION ALL SELECT 0, "
                                   f"CASE WHEN pg_advisory_lock({LOCK}) IS NOT NULL "
                                   "THEN (1 / (pg_backend_pid() - pg_backend_pid()))::text END", BUCKET, key))
    wait_until(lambda: waiting_for_the_lock(lock_holder), "B waiting for the lock")
    assert export(s3db, "SELECT 'A''s data'", key) == (1, 1, 9)
    lock_holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    assert failing.join().error.sqlstate == "22012"
    assert files_under(s3, key) == {key: b"A's data\n"}
    assert open_uploads(s3, key) == []


def test_parts_go_out_while_the_query_computes(s3db, s3, emulator, lock_holder):
    key = new_key()
    exporting = InThread(s3db, EXPORT, (ROWS_THEN_WAIT, BUCKET, key))
    wait_until(lambda: waiting_for_the_lock(lock_holder), "the query waiting for the lock")
    # the first 8 MiB part is sent while the query waits
    wait_until(lambda: counter(emulator.counters(), "s3", "PUT") == 1, "a part sent", seconds=30)
    assert waiting_for_the_lock(lock_holder)
    lock_holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    expected = copy_to_stdout(lock_holder, ROWS_THEN_WAIT.replace(f"pg_advisory_lock({LOCK})", "1"), None)
    assert exporting.join().row == (9001, 1, len(expected))
    assert object_bytes(s3, key) == expected


@pytest.mark.parametrize("fault, reason", [
    ({"truncate_after_bytes": 100001}, "the connection ended before the whole object (588890 bytes) came"),
    ({"stall_after_bytes": 100001}, "the connection stalled: no data came for 1 s"),
])
def test_an_object_cut_short_is_a_network_failure(s3db, s3, emulator, fault, reason):
    key = new_key()
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"".join(b"%d\n" % n for n in range(100000)))
    s3db.execute("CREATE TABLE IF NOT EXISTS cut_short (n int)")
    s3db.execute("SET aws_ml.request_timeout_ms = 1000")
    emulator.set_faults(service="s3", operation="GET", **fault)
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3('cut_short', '', '', %s, %s, %s)",
                     (BUCKET, key, REGION))
    assert (diag.sqlstate, diag.message_primary) == ("58030", f"aws_s3: S3 GetObject of s3://{BUCKET}/{key} failed: "
                                                              f"{reason}")
    assert diag.message_hint
    assert s3db.execute("SELECT count(*) FROM cut_short").fetchone() == (0,)


def test_a_connection_dropped_during_an_export_is_a_network_failure(s3db, s3, emulator):
    key = new_key()
    s3db.execute("SET aws_ml.max_attempts = 2")
    emulator.set_faults(service="s3", operation="PUT", drop_every=1)
    diag = sql_error(s3db, EXPORT, ("SELECT 1", BUCKET, key))
    assert diag.sqlstate == "58030"
    assert diag.message_primary.startswith(f"aws_s3: S3 PutObject of s3://{BUCKET}/{key} failed: ")
    assert counter(emulator.counters(), "s3", "PUT") == 2
    assert files_under(s3, key) == {}


def test_a_missing_file_or_bucket_says_so(s3db, s3):
    s3db.execute("CREATE TABLE IF NOT EXISTS missing (n int)")
    diag = sql_error(s3db, "SELECT aws_s3.table_import_from_s3('missing', '', '', %s, 'no/such/file.csv', %s)",
                     (BUCKET, REGION))
    assert (diag.sqlstate, diag.message_detail) == ("42704", "AWS error code: NoSuchKey (HTTP 404)")
    # as AWS's own samples test it
    assert s3db.execute("SELECT %s LIKE '%%file does not exist%%'", (diag.message_primary,)).fetchone() == (True,)
    assert f"s3://{BUCKET}/no/such/file.csv" in diag.message_primary
    for sql in ("SELECT aws_s3.table_import_from_s3('missing', '', '', 'no-such-bucket-here', 'k', %s)",
                "SELECT aws_s3.query_export_to_s3('SELECT 1', 'no-such-bucket-here', 'k', %s)"):
        diag = sql_error(s3db, sql, (REGION,))
        assert diag.sqlstate == "42704" and "bucket does not exist" in diag.message_primary
        assert diag.message_detail == "AWS error code: NoSuchBucket (HTTP 404)"


def test_a_backend_keeps_one_transfer_process_which_ends_with_it(s3db, s3, connect, s3_database):
    conn = connect(dbname=s3_database)
    export(conn, "SELECT 1", new_key())
    pid = transfer_process(conn.info.backend_pid)
    export(conn, "SELECT 2", new_key())
    assert transfer_process(conn.info.backend_pid) == pid
    # one that ended (as an idle one does) is started again
    os.kill(pid, signal.SIGKILL)
    key = new_key()
    assert export(conn, "SELECT 3", key) == (1, 1, 2)
    assert object_bytes(s3, key) == b"3\n"
    pid = transfer_process(conn.info.backend_pid)
    conn.close()
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the transfer process to end with its backend")


def slow_to_fill(conn, name, before_each_row):
    """A table whose BEFORE INSERT trigger runs before_each_row (SQL) for each row."""
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (n int)")
    conn.execute(f"CREATE OR REPLACE FUNCTION {name}_row() RETURNS trigger LANGUAGE plpgsql AS "
                 f"$$ BEGIN {before_each_row}; RETURN NEW; END $$")
    conn.execute(f"CREATE TRIGGER slow BEFORE INSERT ON {name} FOR EACH ROW EXECUTE FUNCTION {name}_row()")


def import_into(conn, table, key):
    return conn.execute(IMPORT, (table, BUCKET, key, REGION)).fetchone()


def threads_of(pid):
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_an_import_whose_copy_outlasts_its_download_keeps_its_transfer_process(s3db, s3):
    """An import's download ends as soon as its bytes are in COPY's pipe; its
    COPY may go on for long after (triggers, foreign keys). The transfer
    process waits its idle time from then, not the second it waits between
    two looks at its transfers, which had it end under a slow COPY, failing
    the import at its end with 58000."""
    key = new_key(".csv")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n2\n")
    slow_to_fill(s3db, "slow_rows", "PERFORM pg_sleep(1.5)")  # 3 s of COPY after the download
    assert import_into(s3db, "slow_rows", key)[0].startswith("2 rows imported")
    pid = transfer_process(s3db.info.backend_pid)
    assert pid is not None
    assert import_into(s3db, "slow_rows", key)[0].startswith("2 rows imported")
    assert transfer_process(s3db.info.backend_pid) == pid
    assert s3db.execute("SELECT count(*) FROM slow_rows").fetchone() == (4,)


def test_an_import_whose_transfer_process_ends_after_its_download_succeeds(s3db, s3, lock_holder):
    """The transfer process ends (as an idle one does) once the download has
    ended and said so, while COPY still runs: the import takes the answer
    the process sent before it ended."""
    key = new_key(".csv")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n2\n")
    slow_to_fill(s3db, "locked_rows", f"PERFORM pg_advisory_lock_shared({LOCK})")
    importing = InThread(s3db, IMPORT, ("locked_rows", BUCKET, key, REGION))
    wait_until(lambda: waiting_for_the_lock(lock_holder), "COPY to wait in its trigger")
    pid = transfer_process(s3db.info.backend_pid)
    wait_until(lambda: threads_of(pid) == 1, "the download's thread to end")  # it has sent its answer
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: transfer_process(s3db.info.backend_pid) is None, "the transfer process to end")
    lock_holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    importing.join()
    assert importing.error is None, importing.error
    assert importing.row[0].startswith("2 rows imported")
    assert s3db.execute("SELECT count(*) FROM locked_rows").fetchone() == (2,)


def test_a_terminated_export_leaves_nothing(s3db, s3, emulator, connect, s3_database, lock_holder):
    """The backend ends in the middle of an export: its transfer process
    aborts the upload."""
    key = new_key()
    doomed = connect(dbname=s3_database)
    exporting = InThread(doomed, EXPORT, (ROWS_THEN_WAIT, BUCKET, key))
    wait_until(lambda: counter(emulator.counters(), "s3", "PUT") == 1, "a part sent", seconds=30)
    assert len(open_uploads(s3, key)) == 1
    lock_holder.execute("SELECT pg_terminate_backend(%s)", (doomed.info.backend_pid,))
    assert exporting.join().error.sqlstate == "57P01"
    wait_until(lambda: open_uploads(s3, key) == [], "the upload aborted")
    assert files_under(s3, key) == {}


@pytest.mark.slow  # the transfer process's cleanup waits out its 10 s
@pytest.mark.parametrize("stop", ["pg_cancel_backend", "pg_terminate_backend"])
def test_a_cancel_or_termination_ends_the_wait_for_a_cleanup(s3db, s3, emulator, cluster, connect, s3_database,
                                                              stop):
    """S3 does not answer the cleanup of a failed export (AbortMultipartUpload,
    a DELETE): a cancel or a termination ends the backend's wait for it (up to
    10 s) at once; the transfer process finishes it alone and logs what is
    left."""
    key = new_key()
    emulator.set_faults(service="s3", hang_seconds=60, operation="DELETE")
    failing = connect(dbname=s3_database)
    pid = failing.info.backend_pid
    exporting = InThread(failing, EXPORT, ("SELECT n, repeat('x', 1000), 1 / (20000 - n) FROM "
                                           "generate_series(1, 20000) n", BUCKET, key))
    wait_until(lambda: counter(emulator.counters(), "s3", "DELETE", "in_flight") == 1, "the cleanup under way")
    started = time.monotonic()
    s3db.execute(f"SELECT {stop}(%s)", (pid,))
    exporting.join()
    # within about a second; the cleanup's own limit is 10 s
    assert time.monotonic() - started < 5
    assert exporting.error.sqlstate == {"pg_cancel_backend": "57014", "pg_terminate_backend": "57P01"}[stop]
    [upload] = open_uploads(s3, key)
    if stop == "pg_cancel_backend":
        assert failing.execute("SELECT 41 + 1").fetchone() == (42,)
    else:
        wait_until(lambda: f"could not remove the multipart upload {upload['UploadId']}" in cluster.server_log(),
                   "the transfer process to log the upload left", seconds=30)
    emulator.clear_faults()
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])


def test_an_export_whose_transfer_process_is_killed_fails(s3db, s3, emulator, lock_holder):
    """The backend's COPY then writes into a pipe no one reads: 58000. The
    upload stays open, as documented: nothing visible."""
    key = new_key()
    exporting = InThread(s3db, EXPORT, (ROWS_THEN_WAIT, BUCKET, key))
    wait_until(lambda: counter(emulator.counters(), "s3", "PUT") == 1, "a part sent", seconds=30)
    os.kill(transfer_process(s3db.info.backend_pid), signal.SIGKILL)
    lock_holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    error = exporting.join().error
    assert (error.sqlstate, error.diag.message_primary) == ("58000",
                                                            "aws_s3: the transfer process ended unexpectedly")
    assert error.diag.message_detail == "It was killed by signal 9 (SIGKILL)."
    assert files_under(s3, key) == {}
    [upload] = open_uploads(s3, key)
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
    # the next export starts another
    assert export(s3db, "SELECT 1", key) == (1, 1, 2)
