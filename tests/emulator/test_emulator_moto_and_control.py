"""moto behind the same port (STS, IAM enforcement, S3) and the control API."""
import json
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from emulator.client import EmulatorError

ROLE_ARN = "arn:aws:iam::123456789012:role/aws-ml-comprehend"


def test_assume_role_credentials_work_on_the_same_endpoint(client, emulator, access_key_id):
    credentials = client("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="emulator-test")["Credentials"]
    assumed = dict(
        access_key_id=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
    assert client("comprehend", **assumed).detect_sentiment(Text="great", LanguageCode="en")["Sentiment"]
    identity = client("sts", **assumed).get_caller_identity()
    assert identity["Arn"].endswith(":assumed-role/aws-ml-comprehend/emulator-test")

    counters = emulator.counters()
    assert counters["sts"]["AssumeRole"]["access_key_ids"] == {access_key_id: 1}
    assert counters["comprehend"]["DetectSentiment"]["access_key_ids"] == {credentials["AccessKeyId"]: 1}
    assert counters["sts"]["GetCallerIdentity"]["requests"] == 1


def test_s3_is_served_too_and_presigned_urls_are_counted(client, emulator, access_key_id):
    s3 = client("s3", signature_version="s3v4")
    bucket = f"emulator-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.csv", Body=b"1,2\n")
    assert s3.get_object(Bucket=bucket, Key="a/b.csv")["Body"].read() == b"1,2\n"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a/b.csv"})
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"1,2\n"
    assert emulator.counters()["s3"]["GET"]["access_key_ids"] == {access_key_id: 2}


@pytest.fixture
def enforcement(emulator):
    yield emulator.set_iam_enforcement
    emulator.set_iam_enforcement(False)


def test_iam_enforcement_on_and_off(client, enforcement):
    iam = client("iam")
    name = f"unprivileged-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    unprivileged = client("iam", access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])

    enforcement(True)
    with pytest.raises(ClientError) as refused:
        unprivileged.list_users()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    enforcement(False)
    assert any(user["UserName"] == name for user in unprivileged.list_users()["Users"])


def test_health(emulator):
    assert emulator.health() == {"status": "ok"}


def test_reset_clears_counters_faults_and_bodies_not_endpoints(client, emulator):
    emulator.register_endpoint("kept", model={"kind": "linear", "coef": [2.0], "intercept": 0})
    client("sagemaker-runtime").invoke_endpoint(EndpointName="kept", Body="1\n", ContentType="text/csv")
    emulator.set_faults(service="bedrock", latency_ms=1)
    emulator.reset()
    assert (emulator.counters(), emulator.faults(), emulator.sagemaker_bodies()) == ({}, [], [])
    assert "kept" in emulator.endpoints()


def test_builtin_endpoints_are_listed(emulator):
    assert {"xgboost-churn", "xgboost-classifier", "linear-regression", "company-forecasts", "echo-row-count"} <= set(
        emulator.endpoints()
    )


def test_control_errors(emulator):
    with pytest.raises(EmulatorError, match="404"):
        emulator.endpoint_model("no-such-endpoint")
    with pytest.raises(EmulatorError, match="400"):
        emulator.register_endpoint("bad", model={"kind": "quantum"})
    with pytest.raises(EmulatorError, match="400"):
        emulator.register_endpoint("bad", model_file="/nonexistent/model.json")
    with pytest.raises(EmulatorError, match="404"):
        emulator._call("GET", "nothing-here")
    with pytest.raises(EmulatorError, match="405"):
        emulator._call("DELETE", "counters")


def test_control_api_speaks_plain_json(emulator):
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/faults", data=json.dumps({"service": "sts", "latency_ms": 5}).encode(), method="PUT"
    )
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer) == {"faults": [{"service": "sts", "latency_ms": 5.0}]}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{emulator.url}/_emulator/faults", data=b"[", method="PUT"))
    assert refused.value.code == 400
