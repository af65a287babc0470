"""What the aws_s3 test modules share: a database with aws_s3, a bucket in
the emulator's S3, and exports and errors through SQL."""
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REGION, create_database

BUCKET = "aws-s3-tests"


@pytest.fixture(scope="module")
def s3_database(cluster):
    return create_database(cluster, extension_sql="CREATE EXTENSION aws_s3 CASCADE")


@pytest.fixture
def s3db(s3_database, connect, emulator):
    emulator.reset()
    return connect(dbname=s3_database)


@pytest.fixture(scope="module")
def s3(aws_client):
    client = aws_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def new_key(suffix=""):
    return f"exports/{uuid.uuid4().hex}{suffix}"


def object_bytes(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def copy_to_stdout(conn, sql, options):
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY ({sql}) TO STDOUT" + (f" WITH ({options})" if options else "")) as copy:
            return b"".join(bytes(chunk) for chunk in copy)


def copy_from_stdin_error(conn, statement, data=b""):
    """(SQLSTATE, message) of the COPY ... FROM STDIN statement sent data, in
    a transaction (a savepoint inside one) rolled back; None if it succeeds."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(data)
    except psycopg.Error as error:
        return error.sqlstate, error.diag.message_primary
    return None


def export(conn, sql, key, options=None, bucket=BUCKET, **named):
    extra = "".join(f", {name} := %({name})s" for name in named)
    return conn.execute(f"SELECT rows_uploaded, files_uploaded, bytes_uploaded FROM aws_s3.query_export_to_s3("
                        f"%(sql)s, aws_commons.create_s3_uri(%(bucket)s, %(key)s, %(region)s), %(options)s{extra})",
                        {"sql": sql, "bucket": bucket, "key": key, "region": REGION, "options": options,
                         **named}).fetchone()


def sql_error(conn, sql, params=None):
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params)
    return caught.value.diag


def transfer_process(backend_pid):
    """The pid of the backend's transfer process, or None (an idle one that
    ended is a zombie until the backend's next transfer)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(parent) == backend_pid and state != "Z":
            return int(stat.parent.name)
    return None
