"""SageMaker training jobs of the built-in XGBoost algorithm, run at once on a
CSV object in moto's S3: as the algorithm reads text/csv, the label is the
first column and there is no header; the hyperparameters are strings, as
CreateTrainingJob passes them, num_round required."""
import csv
import io
import math
import re

import numpy as np
import xgboost

from .models import XGBoostModel

# An XGBoostError's first line starts with where in libxgboost it was raised.
_XGBOOST_LOCATION = re.compile(r"^\[[0-9:]+\] \S+:\d+: (Check failed: \S+: )?")


class TrainingError(ValueError):
    """A training job the algorithm refuses: its input or its hyperparameters."""


def parse_s3_uri(uri):
    """(bucket, key) of s3://bucket/key; the key as written (S3 URIs are not
    percent-encoded: '?' and '#' belong to it)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise TrainingError(f"not an S3 object URI (s3://bucket/key): {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise TrainingError(f"not an S3 object URI (s3://bucket/key): {uri!r}")
    return bucket, key


def read_s3_object(bucket, key):
    """The object's bytes, straight from moto's S3 backend in this process."""
    # Imported here, as moto_services imports moto: after MOTO_PORT is set.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    try:
        found = backend.get_object(bucket, key)
    except MissingBucket:
        raise TrainingError(f"no S3 bucket named {bucket!r}") from None
    if found is None:
        raise TrainingError(f"no S3 object s3://{bucket}/{key}")
    return found.value


def _number(field, row_number, column_number):
    """A CSV field as a float; empty is a missing value."""
    if field == "":
        return math.nan
    try:
        return float(field)
    except ValueError:
        raise TrainingError(
            f"row {row_number}, column {column_number}: {field[:40]!r} is not a number "
            "(the built-in XGBoost reads numbers only, the label first, with no header line)"
        ) from None


def _csv_rows(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TrainingError(f"the object is not UTF-8 text: {error}") from None
    try:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise TrainingError(f"the object is not CSV: {error}") from None


def training_matrix(data):
    """The DMatrix of a CSV object: the first column the label, the others the features."""
    rows = _csv_rows(data)
    if not rows:
        raise TrainingError("the object holds no rows")
    width = len(rows[0])
    if width < 2:
        raise TrainingError("row 1 has no feature: expected the label, then at least one feature")
    values = []
    for row_number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise TrainingError(f"row {row_number} has {len(row)} columns, row 1 has {width}")
        values.append([_number(field, row_number, column) for column, field in enumerate(row, start=1)])
    labels = np.asarray(values, dtype=np.float32)[:, 0]
    if np.isnan(labels).any():
        row_number = int(np.flatnonzero(np.isnan(labels))[0]) + 1
        raise TrainingError(f"row {row_number} has no label (column 1 is empty)")
    return xgboost.DMatrix(np.asarray(values, dtype=np.float32)[:, 1:], label=labels)


def _num_round(hyperparameters):
    value = hyperparameters.get("num_round")
    if value is None:
        raise TrainingError('the hyperparameter "num_round" is required')
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise TrainingError(f'"num_round" must be a positive integer, not {value!r}')
    return int(value)


def booster_parameters(hyperparameters):
    """(XGBoost parameters, number of rounds) of a training job's hyperparameters."""
    if not isinstance(hyperparameters, dict) or not all(
            isinstance(name, str) and isinstance(value, str) for name, value in hyperparameters.items()):
        raise TrainingError("hyperparameters are a JSON object of strings, as SageMaker passes them")
    parameters = {name: value for name, value in hyperparameters.items() if name != "num_round"}
    # One thread keeps training from competing with the requests the emulator serves.
    parameters.setdefault("nthread", "1")
    return parameters, _num_round(hyperparameters)


def _xgboost_message(error):
    first_line = str(error).strip().splitlines()[0]
    return _XGBOOST_LOCATION.sub("", first_line)


def train_xgboost(matrix, parameters, num_round):
    """An XGBoostModel trained on a training_matrix with booster_parameters."""
    try:
        booster = xgboost.train(parameters, matrix, num_boost_round=num_round)
    except xgboost.core.XGBoostError as error:
        raise TrainingError(f"XGBoost refused the training job: {_xgboost_message(error)}") from None
    return XGBoostModel(booster)
