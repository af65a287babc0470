"""Training jobs through the control API: the built-in XGBoost trained on a
CSV object of the emulator's S3, served as a SageMaker endpoint."""
import csv
import io
import json
import uuid

import numpy as np
import pytest
import xgboost

from emulator.client import EmulatorError

CLASSIFIER_HYPERPARAMETERS = {"objective": "multi:softmax", "num_class": "3", "num_round": "20", "max_depth": "3"}


@pytest.fixture
def s3(client):
    return client("s3", signature_version="s3v4")


@pytest.fixture
def bucket(s3):
    name = f"training-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def csv_text(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def upload(s3, bucket, key, text):
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    return f"s3://{bucket}/{key}"


def invoke(client, endpoint, rows):
    answer = client("sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, Body=csv_text(rows),
                                                         ContentType="text/csv")
    return [float(line) for line in answer["Body"].read().decode().splitlines()]


def refusal(call):
    """(status, message) of a control call the emulator refuses."""
    with pytest.raises(EmulatorError) as refused:
        call()
    status, body = str(refused.value).split(": ", 1)[1].split(" ", 1)
    return int(status), json.loads(body)["error"]


def event_rows():
    """(category, event type, day) rows whose category two splits decide."""
    rows = []
    for n in range(300):
        event_type, day = n % 3 + 1, 19723 + (n * 7) % 366
        category = 2 if event_type == 3 else 1 if day >= 19905 else 0
        rows.append([category, event_type, day])
    return rows


def test_the_endpoint_answers_as_xgboost_trained_on_the_same_rows(client, s3, bucket, emulator):
    rng = np.random.default_rng(11)
    features = rng.normal(size=(200, 3)).round(4)
    labels = (features @ [1.0, -2.0, 0.5] > 0).astype(int)
    rows = [[label, *values] for label, values in zip(labels.tolist(), features.tolist())]
    uri = upload(s3, bucket, "churn/train.csv", csv_text(rows))
    hyperparameters = {"objective": "binary:logistic", "num_round": "15", "max_depth": "4", "eta": "0.2"}

    assert emulator.train_endpoint("trained-churn", uri, hyperparameters) == {
        "endpoint": "trained-churn", "rows": 200, "features": 3}

    expected = xgboost.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "nthread": 1},
                             xgboost.DMatrix(features.astype(np.float32), label=labels), num_boost_round=15)
    probe = rng.normal(size=(50, 3)).round(4)
    np.testing.assert_allclose(invoke(client, "trained-churn", probe.tolist()),
                               expected.inplace_predict(probe.astype(np.float32)), rtol=1e-6)
    assert "trained-churn" in emulator.endpoints()


def test_a_classifier_learns_the_events_and_reads_dates_as_days(client, s3, bucket, emulator):
    uri = upload(s3, bucket, "events/train.csv", csv_text(event_rows()))
    assert emulator.train_endpoint("event-classifier", uri, CLASSIFIER_HYPERPARAMETERS) == {
        "endpoint": "event-classifier", "rows": 300, "features": 2}
    features = [row[1:] for row in event_rows()]
    assert invoke(client, "event-classifier", features) == [row[0] for row in event_rows()]
    # 19905 days after 1970-01-01 is 2024-07-01, where category 1 starts
    assert invoke(client, "event-classifier", [[1, "2024-06-30"], [1, "2024-07-01"], [3, "2024-07-01"]]) == [0, 1, 2]


def test_training_again_replaces_the_endpoint(client, s3, bucket, emulator):
    ones = upload(s3, bucket, "ones.csv", csv_text([[1, x] for x in range(10)]))
    zeros = upload(s3, bucket, "zeros.csv", csv_text([[0, x] for x in range(10)]))
    hyperparameters = {"objective": "reg:squarederror", "num_round": "30", "base_score": "0.5"}
    emulator.train_endpoint("retrained", ones, hyperparameters)
    assert invoke(client, "retrained", [[5]]) == [pytest.approx(1, abs=1e-3)]
    emulator.train_endpoint("retrained", zeros, hyperparameters)
    assert invoke(client, "retrained", [[5]]) == [pytest.approx(0, abs=1e-3)]


def test_a_key_is_taken_as_written(s3, bucket, emulator):
    uri = upload(s3, bucket, "odd/name?v=1#2 %41.csv", csv_text([[1, 1], [0, 0]] * 5))
    hyperparameters = {"objective": "binary:hinge", "num_round": "2"}
    assert emulator.train_endpoint("odd-key", uri, hyperparameters)["rows"] == 10


def test_an_empty_feature_is_a_missing_value(client, s3, bucket, emulator):
    rows = [[0, 1, ""], [1, 5, 2], [0, 1, 3], [1, 5, ""]] * 10
    uri = upload(s3, bucket, "missing.csv", csv_text(rows))
    hyperparameters = {"objective": "binary:hinge", "num_round": "5"}
    assert emulator.train_endpoint("with-missing", uri, hyperparameters)["rows"] == 40
    assert invoke(client, "with-missing", [[1, ""], [5, ""]]) == [0, 1]


@pytest.mark.parametrize("text, message", [
    ("label,x\n1,2\n", "row 1, column 1: 'label' is not a number "
                       "(the built-in XGBoost reads numbers only, the label first, with no header line)"),
    ("1,2\n0,2024-01-01\n", "row 2, column 2: '2024-01-01' is not a number "
                            "(the built-in XGBoost reads numbers only, the label first, with no header line)"),
    ("1,2\n0,3,4\n", "row 2 has 3 columns, row 1 has 2"),
    ("1,2\n,3\n", "row 2 has no label (column 1 is empty)"),
    ("1\n0\n", "row 1 has no feature: expected the label, then at least one feature"),
    ("\n\n", "the object holds no rows"),
    ("3,1\n", "XGBoost refused the training job: SoftmaxMultiClassObj: "
              "label must be discrete values in the range of [0, num_class)."),
])
def test_a_bad_csv_is_refused_and_registers_nothing(s3, bucket, emulator, text, message):
    uri = upload(s3, bucket, "bad.csv", text)
    assert refusal(lambda: emulator.train_endpoint("bad-csv", uri, CLASSIFIER_HYPERPARAMETERS)) == (400, message)
    assert "bad-csv" not in emulator.endpoints()


def test_a_missing_object_or_bucket_is_refused(s3, bucket, emulator):
    assert refusal(lambda: emulator.train_endpoint("e", f"s3://{bucket}/nothing.csv", CLASSIFIER_HYPERPARAMETERS)) == (
        400, f"no S3 object s3://{bucket}/nothing.csv")
    assert refusal(lambda: emulator.train_endpoint("e", "s3://no-such-bucket-here/a.csv", CLASSIFIER_HYPERPARAMETERS)
                   ) == (400, "no S3 bucket named 'no-such-bucket-here'")


@pytest.mark.parametrize("uri", ["https://bucket/key", "s3://bucket", "s3://bucket/", "bucket/key", None])
def test_a_uri_that_names_no_object_is_refused(emulator, uri):
    assert refusal(lambda: emulator.train_endpoint("e", uri, CLASSIFIER_HYPERPARAMETERS)) == (
        400, f"not an S3 object URI (s3://bucket/key): {uri!r}")


@pytest.mark.parametrize("hyperparameters, message", [
    ({"objective": "multi:softmax", "num_class": "3"}, 'the hyperparameter "num_round" is required'),
    ({"num_round": "0"}, '"num_round" must be a positive integer, not \'0\''),
    ({"num_round": "ten"}, '"num_round" must be a positive integer, not \'ten\''),
    ({"num_round": 10}, "hyperparameters are a JSON object of strings, as SageMaker passes them"),
    (None, "hyperparameters are a JSON object of strings, as SageMaker passes them"),
    ({"num_round": "5", "objective": "multi:softmax"},
     "XGBoost refused the training job: value 0 for Parameter num_class should be greater equal to 1"),
    ({"num_round": "5", "max_depth": "deep"},
     "XGBoost refused the training job: Invalid Parameter format for max_depth expect int but value='deep'"),
])
def test_bad_hyperparameters_are_refused(s3, bucket, emulator, hyperparameters, message):
    uri = upload(s3, bucket, "train.csv", csv_text(event_rows()))
    assert refusal(lambda: emulator.train_endpoint("bad-hyperparameters", uri, hyperparameters)) == (400, message)
    assert "bad-hyperparameters" not in emulator.endpoints()


def test_the_endpoint_name_is_required(emulator):
    assert refusal(lambda: emulator._call("POST", "sagemaker/training-jobs", {"s3_uri": "s3://b/k"})) == (
        400, '"endpoint" is required')
