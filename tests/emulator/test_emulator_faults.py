"""Fault injection through the control API, seen by real boto3 clients."""
import concurrent.futures
import json
import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError, ResponseStreamingError

from emulator.client import EmulatorError

CALLS = {
    "comprehend": lambda c: c.detect_sentiment(Text="I love this product", LanguageCode="en"),
    "sagemaker-runtime": lambda c: c.invoke_endpoint(EndpointName="echo-row-count", Body="1\n", ContentType="text/csv"),
    "bedrock-runtime": lambda c: c.invoke_model(
        modelId="amazon.titan-embed-text-v1", body=json.dumps({"inputText": "hi"}), contentType="application/json"
    ),
    "sts": lambda c: c.get_caller_identity(),
}
SIGNING_NAME = {"comprehend": "comprehend", "sagemaker-runtime": "sagemaker", "bedrock-runtime": "bedrock", "sts": "sts"}
OPERATION = {
    "comprehend": "DetectSentiment", "sagemaker-runtime": "InvokeEndpoint",
    "bedrock-runtime": "InvokeModel", "sts": "GetCallerIdentity",
}
THROTTLING_CODE = {
    "comprehend": "ThrottlingException", "sagemaker-runtime": "ThrottlingException",
    "bedrock-runtime": "ThrottlingException", "sts": "Throttling",
}
SERVER_ERROR_CODE = {
    ("comprehend", 500): "InternalServerException",
    ("comprehend", 503): "ServiceUnavailable",
    ("sagemaker-runtime", 500): "InternalFailure",
    ("sagemaker-runtime", 503): "ServiceUnavailable",
    ("bedrock-runtime", 500): "InternalServerException",
    ("bedrock-runtime", 503): "ServiceUnavailableException",
    ("sts", 500): "InternalFailure",
    ("sts", 503): "ServiceUnavailable",
}


@pytest.mark.parametrize("service", CALLS)
def test_standard_retries_get_through_throttling(client, emulator, service):
    emulator.set_faults(service=SIGNING_NAME[service], throttle_every=2)
    retrying = client(service, retries={"mode": "standard", "max_attempts": 3})
    for _ in range(3):
        CALLS[service](retrying)
    # requests 2 and 4 were throttled, and retried as requests 3 and 5
    counted = emulator.counters()[SIGNING_NAME[service]][OPERATION[service]]
    assert (counted["requests"], counted["throttled"]) == (5, 2)


@pytest.mark.parametrize("service", CALLS)
def test_throttling_code_without_retries(client, emulator, service):
    emulator.set_faults(service=SIGNING_NAME[service], throttle_every=2)
    once = client(service, retries={"mode": "standard", "total_max_attempts": 1})
    CALLS[service](once)
    with pytest.raises(ClientError) as refused:
        CALLS[service](once)
    assert refused.value.response["Error"]["Code"] == THROTTLING_CODE[service]


def test_botocore_max_attempts_counts_retries_not_attempts(client, emulator):
    """retries={"max_attempts": 1} is one retry on top of the first attempt."""
    emulator.set_faults(service="comprehend", throttle_every=1)
    with pytest.raises(ClientError) as refused:
        CALLS["comprehend"](client("comprehend", retries={"mode": "standard", "max_attempts": 1}))
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert emulator.counters()["comprehend"]["DetectSentiment"]["throttled"] == 2


def test_throttle_probability_one_throttles_everything(client, emulator):
    emulator.set_faults(service="comprehend", throttle_probability=1.0)
    with pytest.raises(ClientError) as refused:
        CALLS["comprehend"](client("comprehend"))
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize("service, status", sorted(SERVER_ERROR_CODE))
def test_server_errors(client, emulator, service, status):
    emulator.set_faults(service=SIGNING_NAME[service], error_every=1, error_status=status)
    with pytest.raises(ClientError) as refused:
        CALLS[service](client(service))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert refused.value.response["Error"]["Code"] == SERVER_ERROR_CODE[(service, status)]
    assert emulator.counters()[SIGNING_NAME[service]][OPERATION[service]]["errors"] == 1


@pytest.mark.parametrize("service", CALLS)
def test_error_code_answers_that_aws_error_in_the_services_protocol(client, emulator, service):
    emulator.set_faults(service=SIGNING_NAME[service], error_code="AccessDeniedException",
                        error_status=403, error_every=2)
    once = client(service, retries={"mode": "standard", "total_max_attempts": 1})
    CALLS[service](once)
    with pytest.raises(ClientError) as refused:
        CALLS[service](once)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    counted = emulator.counters()[SIGNING_NAME[service]][OPERATION[service]]
    assert (counted["requests"], counted["errors"]) == (2, 1)


def test_server_errors_are_retried(client, emulator):
    emulator.set_faults(service="sagemaker", error_every=2, error_status=503)
    retrying = client("sagemaker-runtime", retries={"mode": "standard", "max_attempts": 3})
    CALLS["sagemaker-runtime"](retrying)
    CALLS["sagemaker-runtime"](retrying)
    counted = emulator.counters()["sagemaker"]["InvokeEndpoint"]
    assert (counted["requests"], counted["errors"]) == (3, 1)


def test_latency_is_applied(client, emulator):
    comprehend = client("comprehend")
    emulator.set_faults(service="comprehend", latency_ms=300, latency_jitter_ms=50)
    started = time.monotonic()
    CALLS["comprehend"](comprehend)
    assert time.monotonic() - started >= 0.3


def test_a_fault_applies_to_its_service_only_and_star_to_all(client, emulator):
    emulator.set_faults(service="bedrock", throttle_every=1)
    CALLS["comprehend"](client("comprehend"))
    emulator.set_faults(service="*", error_every=1)
    with pytest.raises(ClientError) as refused:
        CALLS["comprehend"](client("comprehend"))
    assert refused.value.response["Error"]["Code"] == "InternalServerException"
    assert {f["service"] for f in emulator.faults()} == {"bedrock", "*"}
    emulator.clear_faults()
    assert emulator.faults() == []
    CALLS["comprehend"](client("comprehend"))


def test_hang_makes_a_short_read_timeout_expire(client, emulator):
    emulator.set_faults(service="comprehend", hang_seconds=2)
    impatient = client("comprehend", read_timeout=0.5)
    with pytest.raises(ReadTimeoutError):
        CALLS["comprehend"](impatient)


def test_hang_then_answers_normally(client, emulator):
    emulator.set_faults(service="comprehend", hang_seconds=0.3)
    assert CALLS["comprehend"](client("comprehend"))["Sentiment"] == "POSITIVE"


def test_drop_closes_the_connection_without_an_answer(client, emulator):
    emulator.set_faults(service="comprehend", drop_every=2)
    comprehend = client("comprehend")
    CALLS["comprehend"](comprehend)
    with pytest.raises(ConnectionClosedError):
        CALLS["comprehend"](comprehend)
    CALLS["comprehend"](comprehend)
    counted = emulator.counters()["comprehend"]["DetectSentiment"]
    assert (counted["requests"], counted["errors"]) == (3, 1)


@pytest.mark.parametrize(
    "fault",
    [{}, {"error_status": 404, "error_every": 1}, {"error_code": "Denied", "error_status": 302},
     {"error_code": "not a code", "error_every": 1}, {"error_code": 5, "error_every": 1}, {"throttle_every": 0}, {"throttle_probability": 2}, {"bogus": 1},
     {"truncate_after_bytes": 1, "stall_after_bytes": 1}, {"truncate_after_bytes": -1}],
)
def test_bad_fault_specs_are_refused(emulator, fault):
    with pytest.raises(EmulatorError, match="400"):
        emulator.set_faults(service="comprehend", **fault) if fault else emulator._call("PUT", "faults", {})


def test_a_hang_ends_when_the_client_closes_its_connection(client, emulator):
    """in_flight counts the requests being answered; a client that gives up
    during a hang is seen at once (abandoned), not after the hang."""
    emulator.set_faults(service="comprehend", hang_seconds=30)
    impatient = client("comprehend", read_timeout=0.5, retries={"mode": "standard", "total_max_attempts": 1})
    with pytest.raises(ReadTimeoutError):
        CALLS["comprehend"](impatient)  # urllib3 closes the connection of a timed-out request
    deadline = time.monotonic() + 5
    while emulator.counters()["comprehend"]["DetectSentiment"]["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    counted = emulator.counters()["comprehend"]["DetectSentiment"]
    assert (counted["in_flight"], counted["abandoned"]) == (0, 1)


def test_max_in_flight_is_the_most_requests_answered_at_once(client, emulator):
    emulator.set_faults(service="bedrock", latency_ms=300)
    bedrock = client("bedrock-runtime")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: CALLS["bedrock-runtime"](bedrock), range(3)))
    CALLS["bedrock-runtime"](bedrock)
    counted = emulator.counters()["bedrock"]["InvokeModel"]
    assert (counted["requests"], counted["max_in_flight"], counted["in_flight"]) == (4, 3, 0)


@pytest.mark.parametrize("fault", ["truncate_after_bytes", "stall_after_bytes"])
def test_an_answer_cut_short(client, emulator, fault):
    """The body stops after that many bytes, its Content-Length the whole's:
    the connection then closes, or stalls until the client gives up."""
    s3 = client("s3", read_timeout=0.5)
    s3.create_bucket(Bucket="cut")
    s3.put_object(Bucket="cut", Key="k", Body=b"x" * 10000)
    emulator.set_faults(service="s3", operation="GET", **{fault: 1000})
    body = s3.get_object(Bucket="cut", Key="k")["Body"]
    if fault == "truncate_after_bytes":
        with pytest.raises(ResponseStreamingError, match="1000 bytes read, 9000 more expected"):
            body.read()
    else:
        assert body.read(1000) == b"x" * 1000
        with pytest.raises(ReadTimeoutError):
            body.read()
    emulator.clear_faults()
    assert s3.get_object(Bucket="cut", Key="k")["Body"].read() == b"x" * 10000
