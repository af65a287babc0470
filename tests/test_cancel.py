"""A request blocked on the network does not block the backend: Ctrl-C
(pg_cancel_backend) and statement_timeout end the statement, and
aws_ml.request_timeout_ms bounds one request, for every function that calls
AWS. The bound asserted on elapsed time only tells "stopped early" from
"waited for the 30 s hang"."""
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from emulator.client import Emulator
from tests.conftest import counter, in_flight, new_cluster, requests_in_flight, stop_when, wait_until
from tests.s3_support import transfer_process
from tests.test_materialize import run_in_thread

HANG_SECONDS = 30
TITAN_INPUT = json.dumps({"inputText": "PostgreSQL I/O monitoring views"})


def titan_inputs(count, tag):
    """Distinct inputs: a statement sends equal inputs once."""
    return [json.dumps({"inputText": f"{tag} {i}: PostgreSQL I/O monitoring views"}) for i in range(count)]
EMBED = ("SELECT ordinality, model_output FROM aws_bedrock.batch_invoke_model_get_embeddings("
         "'amazon.titan-embed-text-v1', 'application/json', 'embedding', %s, 4)")


class Call:
    def __init__(self, service, operation, sql, params=None):
        self.service, self.operation, self.sql, self.params = service, operation, sql, params

    def run(self, conn):
        return conn.execute(self.sql, self.params).fetchall()


CALLS = {
    "detect_sentiment": Call(
        "comprehend", "Comprehend DetectSentiment",
        "SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')"),
    "batch_detect_sentiment": Call(
        "comprehend", "Comprehend BatchDetectSentiment",
        "SELECT * FROM aws_comprehend.batch_detect_sentiment(ARRAY['I love it', 'bad'], 'en')"),
    "invoke_endpoint": Call(
        "sagemaker", "SageMaker InvokeEndpoint",
        "SELECT aws_sagemaker.invoke_endpoint('echo-row-count', NULL, 1, 2, 3)"),
    "batch_invoke_endpoint": Call(
        "sagemaker", "SageMaker InvokeEndpoint",
        "SELECT * FROM aws_sagemaker.batch_invoke_endpoint('echo-row-count', NULL, ARRAY[1, 2])"),
    "invoke_model": Call(
        "bedrock", "Bedrock InvokeModel",
        "SELECT aws_bedrock.invoke_model('amazon.titan-embed-text-v1', 'application/json', NULL, %s)",
        (TITAN_INPUT,)),
    "batch_invoke_model_get_embeddings": Call("bedrock", "Bedrock InvokeModel", EMBED, (titan_inputs(3, "row"),)),
}
# Requests each call has in flight while the service hangs: one, or one per input of the Bedrock batch.
REQUESTS = {call: 3 if name == "batch_invoke_model_get_embeddings" else 1 for name, call in CALLS.items()}


@pytest.fixture(params=CALLS)
def call(request, db, emulator):
    """(the call, its answer without faults) with the call's service hanging."""
    chosen = CALLS[request.param]
    answer = chosen.run(db)  # also caches the backend's client
    emulator.reset()
    emulator.set_faults(service=chosen.service, hang_seconds=HANG_SECONDS)
    yield chosen, answer
    emulator.clear_faults()


def assert_nothing_left_in_flight(emulator, service, sent):
    """The stopped statement's `sent` requests ended with it: the emulator saw
    their connections close long before the hang would have answered them."""
    wait_until(lambda: in_flight(emulator, service)[0] == 0, f"{service}'s requests to end", seconds=2)
    assert in_flight(emulator, service) == (0, sent)


def still_usable(conn, emulator, call):
    """The same backend answers the same call as before: its cached client and
    its worker threads survived the cancel."""
    chosen, answer = call
    emulator.clear_faults()
    assert chosen.run(conn) == answer


# tests/test_bedrock.py times out the Bedrock batch, and checks its queue.
@pytest.mark.parametrize("call", [name for name in CALLS if name != "batch_invoke_model_get_embeddings"],
                         indirect=True)
def test_statement_timeout_stops_a_hanging_request(db, emulator, call):
    db.execute("SET statement_timeout = '1s'")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        call[0].run(db)
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert_nothing_left_in_flight(emulator, call[0].service, REQUESTS[call[0]])
    db.execute("SET statement_timeout = 0")
    still_usable(db, emulator, call)


def test_pg_cancel_backend_stops_a_hanging_request(db, connect, emulator, call):
    timer = stop_when(connect, db.info.backend_pid, requests_in_flight(emulator, call[0].service, REQUESTS[call[0]]),
                      "the requests to hang")
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            call[0].run(db)
    finally:
        timer.join()
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert_nothing_left_in_flight(emulator, call[0].service, REQUESTS[call[0]])
    still_usable(db, emulator, call)


def test_a_tasks_own_timeout_error_is_raised_not_taken_for_a_wait(db):
    """wait.run waits for its worker in slices, each ended by a TimeoutError;
    a task that itself raises TimeoutError (as socket timeouts are) must
    raise it, not be waited on forever. statement_timeout ends a hang."""
    db.execute("LOAD '$libdir/plugins/aws_ml'")  # which makes the package importable
    db.execute("SET statement_timeout = '5s'")
    with pytest.raises(psycopg.errors.ExternalRoutineException) as caught:
        db.execute("""DO $$
from aws_ml import wait
def times_out():
    raise TimeoutError("the task's own")
wait.run(times_out)
$$ LANGUAGE plpython3u""")
    assert caught.value.diag.message_primary == "TimeoutError: the task's own"


STOP_THREADS_IN_A_SESSION = """DO $$
import os, ssl, threading
from aws_ml import wait
wait.run_all([ssl.create_default_context] * 32)  # the pool's threads, each having used OpenSSL
threads = [str(t.native_id) for t in threading.enumerate() if t.name.startswith("aws_ml")]
still_running = wait.stop_threads()
plpy.notice(f"{len(threads)} {still_running} {len(set(threads) & set(os.listdir('/proc/self/task')))}")
$$ LANGUAGE plpython3u"""


def test_the_threads_have_left_the_kernel_when_stop_threads_returns(connect):
    """A thread Python has joined still runs its thread-local destructors,
    OpenSSL's among them; were the process to exit then, its OpenSSL cleanup
    would run under them and crash it. stop_threads returns once the kernel
    has none of the package's threads left. Five sessions: without the wait,
    a joined thread is still in the kernel in most runs."""
    for _ in range(5):
        conn = connect()
        conn.execute("LOAD '$libdir/plugins/aws_ml'")  # which makes the package importable
        notices = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        conn.execute(STOP_THREADS_IN_A_SESSION)
        conn.close()
        started, still_running, in_the_kernel = map(int, notices[0].split())
        assert started >= 1
        assert (still_running, in_the_kernel) == (0, 0)


def test_request_timeout_ms_bounds_one_request(db, emulator, call):
    db.execute(f"SET aws_ml.{call[0].service}_request_timeout_ms = 0")  # the service's own limit: none
    db.execute("SET aws_ml.request_timeout_ms = 500")
    db.execute("SET aws_ml.max_attempts = 1")
    started = time.monotonic()
    with pytest.raises(psycopg.Error) as caught:
        call[0].run(db)
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert caught.value.diag.sqlstate == "58030"
    assert call[0].operation in caught.value.diag.message_primary
    assert_nothing_left_in_flight(emulator, call[0].service, REQUESTS[call[0]])
    still_usable(db, emulator, call)


def test_a_services_own_time_limit_comes_first(db, emulator):
    """A Bedrock answer that takes 2 s outlives aws_ml.request_timeout_ms
    (0.5 s) but not aws_ml.bedrock_request_timeout_ms (5 min by default),
    until that is lowered to 1 s."""
    call = CALLS["invoke_model"]
    answer = call.run(db)
    emulator.set_faults(service="bedrock", latency_ms=2000)
    db.execute("SET aws_ml.request_timeout_ms = 500")
    db.execute("SET aws_ml.max_attempts = 1")
    assert call.run(db) == answer
    db.execute("SET aws_ml.bedrock_request_timeout_ms = 1000")
    with pytest.raises(psycopg.Error) as caught:
        call.run(db)
    assert caught.value.diag.sqlstate == "58030"
    emulator.clear_faults()


def test_cancelled_bedrock_batch_never_sends_its_queue_later(db, connect, emulator):
    """The 4 lanes' requests are in flight when the cancel comes; the other 16
    inputs stay queued. The cancel closes the 4 requests' connections, and
    no lane takes a queued input: a follow-up call and a wait past the hang
    see only that call's own requests."""
    db.execute(EMBED, (titan_inputs(1, "warm-up"),))  # the backend's client, ready
    emulator.reset()
    emulator.set_faults(service="bedrock", hang_seconds=2)
    timer = stop_when(connect, db.info.backend_pid, requests_in_flight(emulator, "bedrock", 4), "4 requests to hang")
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute(EMBED, (titan_inputs(20, "queued"),))
    finally:
        timer.join()
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 4
    assert_nothing_left_in_flight(emulator, "bedrock", 4)
    emulator.clear_faults()
    assert len(db.execute(EMBED, (titan_inputs(3, "follow-up"),)).fetchall()) == 3
    time.sleep(2.5)  # absence: past the hang, nothing of the cancelled statement arrives late
    assert counter(emulator.counters(), "bedrock", "InvokeModel") == 4 + 3


def test_a_cancelled_statement_sends_no_more_retries(db, connect, emulator):
    """Every attempt takes 1 s and is then throttled; botocore would retry up
    to aws_ml.max_attempts, the first backoff being at most 1 s. The cancel
    comes during the first attempt, so the second would start within 2 s of
    the statement's end: it must not."""
    db.execute("SELECT aws_comprehend.detect_sentiment('warm-up', 'en')")  # the backend's client, ready
    emulator.reset()
    emulator.set_faults(service="comprehend", latency_ms=1000, throttle_every=1)
    timer = stop_when(connect, db.info.backend_pid, requests_in_flight(emulator, "comprehend", 1),
                      "the first attempt")
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            db.execute("SELECT aws_comprehend.detect_sentiment('I love it', 'en')")
    finally:
        timer.join()
    time.sleep(2.5)  # absence: past a retry's first backoff, no second attempt comes
    assert counter(emulator.counters(), "comprehend", "DetectSentiment") == 1
    assert in_flight(emulator, "comprehend") == (0, 1)


def test_a_failed_bedrock_batch_stops_its_other_requests(db, emulator):
    """Three inputs hang, the fourth is refused at once: the statement fails
    with the fourth's error and the hanging requests end with it. Under load
    the fourth may fail before the third is sent, which is then never sent."""
    emulator.reset()
    emulator.set_faults(service="bedrock", hang_seconds=HANG_SECONDS, body_contains="slow")
    inputs = [*titan_inputs(3, "slow"), '{"inputText": ""}']
    started = time.monotonic()
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        db.execute(EMBED, (inputs,))
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert "ordinality 4" in caught.value.diag.message_primary
    wait_until(lambda: in_flight(emulator, "bedrock")[0] == 0, "bedrock's requests to end", seconds=2)
    sent = counter(emulator.counters(), "bedrock", "InvokeModel")
    assert sent <= 4
    assert in_flight(emulator, "bedrock") == (0, sent - 1)


# --- Over HTTPS, as to AWS --------------------------------------------------

@pytest.fixture(scope="module")
def tls_server():
    """An emulator serving HTTPS with a certificate made here, and a cluster
    whose server trusts it through AWS_CA_BUNDLE; (emulator, cluster)."""
    directory = Path(tempfile.mkdtemp(prefix="aws_ml_tls_"))
    certificate, key = directory / "emulator.pem", directory / "emulator.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    directory.chmod(0o755)
    certificate.chmod(0o644)
    tls_emulator = Emulator(tls=(certificate, key))
    server = new_cluster(tls_emulator)
    server.environment["AWS_CA_BUNDLE"] = str(certificate)
    server.start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_ml CASCADE")
    yield tls_emulator, server
    server.stop()
    tls_emulator.stop()
    shutil.rmtree(directory)


@pytest.mark.parametrize("stop", ["pg_cancel_backend", "pg_terminate_backend"])
def test_a_stopped_backend_ends_its_https_requests(tls_server, stop):
    """The same call and its stop, over TLS: the sockets shut down under the
    TLS layer end the requests within 2 s of the stop, against a 30 s hang."""
    tls_emulator, server = tls_server
    call = CALLS["detect_sentiment"]
    conn = psycopg.connect(server.conninfo(), autocommit=True)
    answer = call.run(conn)
    assert answer[0][0] == "POSITIVE" and tls_emulator.url.startswith("https://")
    tls_emulator.reset()
    tls_emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
    timer = stop_when(lambda: psycopg.connect(server.conninfo(), autocommit=True), conn.info.backend_pid,
                      requests_in_flight(tls_emulator, "comprehend", 1), "the request to hang", stop)
    started = time.monotonic()
    try:
        with pytest.raises((psycopg.errors.QueryCanceled, psycopg.errors.AdminShutdown,
                            psycopg.OperationalError)):
            call.run(conn)
    finally:
        timer.join()
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert_nothing_left_in_flight(tls_emulator, "comprehend", 1)
    tls_emulator.clear_faults()
    if stop == "pg_cancel_backend":
        assert call.run(conn) == answer
    conn.close()


def total_requests(emulator):
    return sum(o["requests"] for operations in emulator.counters().values() for o in operations.values())


def terminate_once(server, emulator, sql, params, started, threads=True):
    """Runs sql on a new connection, terminates its backend once started(),
    and waits for the backend to have exited; the requests the emulator had
    seen from it by then, and the pid of the backend's transfer process
    (None if it has none). threads: the backend ran the package's threads,
    which it stops before it exits."""
    conn = psycopg.connect(server.conninfo(), autocommit=True, options="-c log_min_messages=debug1")
    pid = conn.info.backend_pid
    running, errors = run_in_thread(conn, sql, params)
    try:
        wait_until(started, "the statement's requests to be in flight")
        helper = transfer_process(pid)
        with psycopg.connect(server.conninfo(), autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s, 30000)", (pid,)).fetchone() == (True,)
            exited = total_requests(emulator)
    finally:
        running.join()
        conn.close()
    assert errors, "the statement finished before it was terminated"
    if threads:
        assert f"[{pid}] DEBUG:  aws_ml: stopped this process's threads before it exits (0 still running)" \
            in server.server_log()
    return exited, helper


def ended(pid):
    """Whether process pid has ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow  # its own TLS server and a backend terminated
def test_a_terminated_backend_stops_its_threads_before_it_exits(tls_server):
    """pg_terminate_backend during HTTPS requests (a Bedrock batch, 32 at a
    time): the backend stops its threads before it exits, so none is inside
    OpenSSL when the process's exit cleans OpenSSL up (the postmaster would
    report the crash and restart every backend), and the emulator sees no
    request of it after. During an aws_s3 export's uploads: the backend has
    no thread of its own to stop, its data moves in its transfer process
    (docs/s3.md), which then aborts the upload, leaves nothing in S3 and
    ends (it leaves by os._exit, which runs no OpenSSL cleanup)."""
    tls_emulator, server = tls_server
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS aws_s3")
    import boto3
    s3 = boto3.client("s3", endpoint_url=tls_emulator.url, region_name="us-east-1",
                      aws_access_key_id="AKIATESTDIRECTCLIENT", aws_secret_access_key="direct-client-secret",
                      verify=server.environment["AWS_CA_BUNDLE"])
    s3.create_bucket(Bucket="exits")
    batch = (EMBED.replace(", 4)", ", 32)"), (titan_inputs(2000, "exit"),))
    export = ("SELECT * FROM aws_s3.query_export_to_s3('SELECT repeat(''x'', 1000) FROM generate_series(1, 200000)', "
              "aws_commons.create_s3_uri('exits', 'big.csv', 'us-east-1'))", None)
    for round in range(4):
        tls_emulator.reset()
        tls_emulator.set_faults(service="bedrock", latency_ms=50, latency_jitter_ms=50)
        exited, _ = terminate_once(server, tls_emulator, *batch, lambda: in_flight(tls_emulator, "bedrock")[0] >= 16)
        wait_until(lambda: in_flight(tls_emulator, "bedrock")[0] == 0, "the requests to end", seconds=2)
        assert total_requests(tls_emulator) == exited

        tls_emulator.reset()
        _, helper = terminate_once(server, tls_emulator, *export,
                                   lambda: counter(tls_emulator.counters(), "s3", "PUT") >= 1, threads=False)
        assert helper is not None
        wait_until(lambda: ended(helper), "the transfer process to end", seconds=15)
        # AbortMultipartUpload, retried if its pooled connection was one the stop shut down
        assert counter(tls_emulator.counters(), "s3", "DELETE") >= 1
        assert s3.list_multipart_uploads(Bucket="exits").get("Uploads", []) == []
        assert s3.list_objects_v2(Bucket="exits").get("KeyCount") == 0
    tls_emulator.clear_faults()
    assert "terminated by signal" not in server.server_log()
