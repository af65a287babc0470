"""The SageMaker runtime through boto3: built-in and registered endpoints,
the CSV codec, limits and errors."""
import csv
import io
import json
import math

import numpy as np
import pytest
import xgboost
from botocore.exceptions import ClientError


@pytest.fixture
def runtime(client):
    return client("sagemaker-runtime")


def invoke(runtime, endpoint, body):
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")
    assert answer["ContentType"] == "text/csv"
    return answer["Body"].read().decode()


def csv_body(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def booster_of(emulator, endpoint):
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(emulator.endpoint_model(endpoint)).encode()))
    return booster


def test_1000_rows_match_xgboost_itself(runtime, emulator):
    features = np.random.default_rng(7).normal(size=(1000, 4)).astype(np.float32)
    features[::50, 1] = np.nan  # missing values, sent as empty fields
    rows = [["" if math.isnan(v) else repr(float(v)) for v in row] for row in features]
    lines = invoke(runtime, "xgboost-churn", csv_body(rows)).splitlines()
    expected = booster_of(emulator, "xgboost-churn").inplace_predict(features)
    assert len(lines) == 1000
    np.testing.assert_allclose([float(line) for line in lines], expected, rtol=1e-6, atol=1e-7)
    assert emulator.counters()["sagemaker"]["InvokeEndpoint"]["items"] == 1000


def test_classifier_answers_integral_classes(runtime):
    assert invoke(runtime, "xgboost-classifier", "0,0\n3,3\n-3,3\n") == "0\n1\n2\n"


def test_linear_regression_follows_its_spec(runtime, emulator):
    spec = emulator.endpoint_model("linear-regression")
    row = [1.0, 2.0, -1.0, 0.5]
    expected = float(np.dot(spec["coef"][0], row) + spec["intercept"][0])
    assert float(invoke(runtime, "linear-regression", csv_body([row]))) == pytest.approx(expected, rel=1e-8)


def test_company_forecasts_answers_two_values_with_a_clipped_probability(runtime):
    lines = invoke(runtime, "company-forecasts", "0.5,0.5\n0,100\n").splitlines()
    values = [[float(v) for v in line.split(",")] for line in lines]
    assert [len(v) for v in values] == [2, 2]
    assert 0 <= values[0][1] <= 1
    assert values[1][1] == 1.0


def test_echo_row_count_reads_rfc4180_quoting(runtime):
    rows = [["a", "b,c", 'say "hi"', "two\nlines"], ["1"], ["", ""]]
    assert invoke(runtime, "echo-row-count", csv_body(rows)) == "4\n1\n2\n"


@pytest.mark.parametrize(
    "field, value",
    [("2.5", 2.5), ("-1e3", -1000.0), ("1970-01-02", 1.0), ("2024-01-01", 19723.0),
     ("t", 1.0), ("false", 0.0), ("", 0.0)],
)
def test_feature_values(runtime, emulator, field, value):
    emulator.register_endpoint("identity", model={"kind": "linear", "coef": [1.0], "intercept": 0.0})
    assert float(invoke(runtime, "identity", csv_body([[field]]))) == value


def test_answers_are_formatted_with_9_significant_digits(runtime, emulator):
    emulator.register_endpoint("format", model={"kind": "linear", "coef": [1.0], "intercept": 0.0})
    assert invoke(runtime, "format", "1\n0.1234567890123\n123456789012\n") == "1\n0.123456789\n1.23456789e+11\n"


@pytest.mark.parametrize("name", ["my model", "modèle-ü", "50%", "what?", "a#b", "a/b"])
def test_registered_model_file_under_any_name(runtime, emulator, tmp_path, name):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(100, 3)).astype(np.float32)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2},
        xgboost.DMatrix(features, label=features @ np.array([1.0, 2.0, 3.0], dtype=np.float32)),
        num_boost_round=5,
    )
    path = tmp_path / "model.json"
    booster.save_model(path)
    emulator.register_endpoint(name, model_file=str(path))
    assert name in emulator.endpoints()
    lines = invoke(runtime, name, csv_body(features[:5].tolist())).splitlines()
    np.testing.assert_allclose([float(v) for v in lines], booster.inplace_predict(features[:5]), rtol=1e-6)


def test_multi_output_linear_model_file(runtime, emulator, tmp_path):
    path = tmp_path / "linear.json"
    path.write_text(json.dumps({"kind": "linear", "coef": [[1, 0], [0, 2]], "intercept": [0.5, 0]}))
    emulator.register_endpoint("two-outputs", model_file=str(path))
    assert invoke(runtime, "two-outputs", "1,2\n") == "1.5,4\n"


def test_unknown_endpoint(runtime):
    with pytest.raises(ClientError) as refused:
        invoke(runtime, "no such/endpoint", "1\n")
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "Endpoint no such/endpoint of account 123456789012 not found."
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_body_over_6_mb_is_refused_like_the_service(runtime):
    six_mb = 6 * 1024 * 1024
    assert invoke(runtime, "echo-row-count", b"x" * six_mb) == "1\n"
    with pytest.raises(ClientError) as refused:
        invoke(runtime, "echo-row-count", b"x" * (six_mb + 1))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert refused.value.response["Error"]["Code"] == "413"


@pytest.mark.parametrize(
    "body, named",
    [("1,2,abc,4\n", "'abc'"), ("1,2,3\n", "expects 4 features, got 3"), ("1,2,3,4,5\n", "got 5")],
)
def test_model_error(runtime, body, named):
    with pytest.raises(ClientError) as refused:
        invoke(runtime, "xgboost-churn", body)
    answer = refused.value.response
    assert answer["Error"]["Code"] == "ModelError"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert answer["OriginalStatusCode"] == 400
    assert named in answer["OriginalMessage"]
    assert answer["Error"]["Message"].startswith('Received client error (400) from primary with message "')
    assert answer["LogStreamArn"].endswith("log-group:/aws/sagemaker/Endpoints/xgboost-churn")


def test_a_content_type_other_than_csv_is_a_model_error(runtime):
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(
            EndpointName="xgboost-churn", Body="{}", ContentType="application/json"
        )
    assert refused.value.response["Error"]["Code"] == "ModelError"
    assert refused.value.response["OriginalStatusCode"] == 415


def test_the_last_20_bodies_are_recorded_oldest_first(runtime, emulator):
    for number in range(25):
        invoke(runtime, "echo-row-count", f"{number}\n")
    assert emulator.sagemaker_bodies() == [f"{number}\n" for number in range(5, 25)]
    emulator.reset()
    assert emulator.sagemaker_bodies() == []
