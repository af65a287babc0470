"""Only the backend's own thread calls into the server: the package's other
threads (request workers) never call the C module's accessors, which read
the server's state; aws_s3's data moves in a process of its own."""
import psycopg

# Records, for each accessor call, whether the backend's thread made it,
# while an export, an import and a Bedrock batch run; then reports the
# accessors called from another thread.
RECORDED = """DO $$
import threading
from aws_ml import backend
unpatched = backend._accessors
bound = unpatched()
calls = []

class Recording:
    def __getattr__(self, name):
        accessor = getattr(bound, name)
        def recorded(*args):
            calls.append((name, threading.current_thread() is threading.main_thread()))
            return accessor(*args)
        return recorded

backend._accessors = Recording
try:
    for sql in (
            "SELECT * FROM aws_s3.query_export_to_s3('SELECT i, repeat(''x'', 200) FROM generate_series(1, 100000) i', "
            "aws_commons.create_s3_uri('threads', 'rows.csv', 'us-east-1'))",
            "CREATE TEMP TABLE imported (i int, x text)",
            "SELECT aws_s3.table_import_from_s3('imported', '', '', "
            "aws_commons.create_s3_uri('threads', 'rows.csv', 'us-east-1'))",
            "SELECT count(*) FROM aws_bedrock.batch_invoke_model_get_embeddings('amazon.titan-embed-text-v1', "
            "'application/json', 'embedding', ARRAY(SELECT '{\\"inputText\\": \\"text ' || i || '\\"}' "
            "FROM generate_series(1, 40) i), 8)"):
        plpy.execute(sql)
finally:
    backend._accessors = unpatched
plpy.notice(f"{len(calls)} {sorted({name for name, on_backends_thread in calls if not on_backends_thread})}")
$$ LANGUAGE plpython3u"""


def test_only_the_backends_thread_calls_the_server(cluster, fresh_database, aws_client, emulator):
    aws_client("s3").create_bucket(Bucket="threads")
    name = fresh_database("CREATE EXTENSION aws_ml CASCADE; CREATE EXTENSION aws_s3")
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        notices = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        conn.execute("LOAD '$libdir/plugins/aws_ml'")
        conn.execute(RECORDED)
        assert conn.execute("SELECT count(*) FROM imported").fetchone() == (100000,)
    count, off_thread = notices[-1].split(" ", 1)
    assert int(count) > 0 and off_thread == "[]", notices[-1]
