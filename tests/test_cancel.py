"""A request blocked on the network does not block the backend: Ctrl-C
(pg_cancel_backend) and statement_timeout end the statement, and
aws_ml.request_timeout_ms bounds one request. The bound asserted on elapsed
time only tells "stopped early" from "waited for the 30 s hang"."""
import threading
import time

import psycopg
import pytest

HANG_SECONDS = 30
CALLS = {
    "detect_sentiment": "SELECT * FROM aws_comprehend.detect_sentiment('I love it', 'en')",
    "batch_detect_sentiment":
        "SELECT * FROM aws_comprehend.batch_detect_sentiment(ARRAY['I love it', 'bad'], 'en')",
}


@pytest.fixture
def hanging(db, emulator):
    emulator.set_faults(service="comprehend", hang_seconds=HANG_SECONDS)
    yield db
    emulator.clear_faults()


def still_usable(conn, emulator):
    emulator.clear_faults()
    assert conn.execute(CALLS["detect_sentiment"]).fetchone()[0] == "POSITIVE"


@pytest.mark.parametrize("call", CALLS)
def test_statement_timeout_stops_a_hanging_request(hanging, emulator, call):
    hanging.execute("SET statement_timeout = '1s'")
    started = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        hanging.execute(CALLS[call])
    assert time.monotonic() - started < HANG_SECONDS / 3
    hanging.execute("SET statement_timeout = 0")
    still_usable(hanging, emulator)


@pytest.mark.parametrize("call", CALLS)
def test_pg_cancel_backend_stops_a_hanging_request(hanging, connect, emulator, call):
    pid = hanging.info.backend_pid
    canceller = connect()
    timer = threading.Timer(1.0, lambda: canceller.execute("SELECT pg_cancel_backend(%s)", (pid,)))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            hanging.execute(CALLS[call])
    finally:
        timer.join()
    assert time.monotonic() - started < HANG_SECONDS / 3
    still_usable(hanging, emulator)


def test_request_timeout_ms_bounds_one_request(hanging, emulator):
    hanging.execute("SET aws_ml.request_timeout_ms = 500")
    hanging.execute("SET aws_ml.max_attempts = 1")
    with pytest.raises(psycopg.Error) as caught:
        hanging.execute(CALLS["detect_sentiment"])
    assert caught.value.diag.sqlstate == "58030"
    assert "Comprehend DetectSentiment" in caught.value.diag.message_primary
    still_usable(hanging, emulator)
