"""The models behind SageMaker endpoints. A model maps the CSV rows of one
request to one list of output values per row.

A model file is either an XGBoost model saved as JSON (Booster.save_model) or
a linear model: {"kind": "linear", "coef": [..] or [[..], ..] (one list per
output), "intercept": x or [..], optional "clip": [null or [low, high], ..]
(per output)}."""
import json

import numpy as np
import xgboost

from .features import feature_matrix


class ModelFileError(ValueError):
    pass


class XGBoostModel:
    def __init__(self, booster):
        self.booster = booster
        self.booster.set_param({"nthread": 1})
        self.width = booster.num_features()

    def predict(self, rows):
        if not rows:
            return []
        matrix = np.asarray(feature_matrix(rows, self.width), dtype=np.float32)
        predictions = self.booster.inplace_predict(matrix)
        return predictions.reshape(len(rows), -1).tolist()

    def spec(self):
        return json.loads(self.booster.save_raw("json"))


class LinearModel:
    """Outputs X @ coef.T + intercept, per output optionally clipped; a missing
    (empty) feature counts as 0."""

    def __init__(self, spec):
        try:
            coef = np.atleast_2d(np.asarray(spec["coef"], dtype=np.float64))
            intercept = np.broadcast_to(np.asarray(spec.get("intercept", 0.0), dtype=np.float64), (coef.shape[0],))
            clip = spec.get("clip") or [None] * coef.shape[0]
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"not a linear model spec: {error}") from None
        if coef.ndim != 2 or len(clip) != coef.shape[0]:
            raise ModelFileError("coef must be a list or a list of lists, clip one entry per output")
        self.coef, self.intercept, self.clip = coef, intercept.copy(), clip
        self.width = coef.shape[1]

    def predict(self, rows):
        if not rows:
            return []
        matrix = np.nan_to_num(np.asarray(feature_matrix(rows, self.width), dtype=np.float64), nan=0.0)
        outputs = matrix @ self.coef.T + self.intercept
        for column, bounds in enumerate(self.clip):
            if bounds is not None:
                outputs[:, column] = np.clip(outputs[:, column], bounds[0], bounds[1])
        return outputs.tolist()

    def spec(self):
        return {
            "kind": "linear",
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "clip": self.clip,
        }


class RowWidthModel:
    """Answers each row's number of fields: a probe for the CSV codec."""

    def predict(self, rows):
        return [[len(row)] for row in rows]

    def spec(self):
        return {"kind": "row-width"}


def model_from_spec(spec):
    """A model from a parsed model file: a linear spec or an XGBoost JSON model."""
    if not isinstance(spec, dict):
        raise ModelFileError("a model file holds a JSON object")
    if spec.get("kind") == "linear":
        return LinearModel(spec)
    if "learner" in spec:
        booster = xgboost.Booster()
        try:
            booster.load_model(bytearray(json.dumps(spec).encode()))
        except xgboost.core.XGBoostError as error:
            raise ModelFileError(f"not a loadable XGBoost model: {error}") from None
        return XGBoostModel(booster)
    raise ModelFileError('unknown model: expected {"kind": "linear", ...} or an XGBoost JSON model')


def load_model_file(path):
    try:
        with open(path, encoding="utf-8") as file:
            spec = json.load(file)
    except (OSError, ValueError) as error:
        raise ModelFileError(f"cannot read model file {path}: {error}") from None
    return model_from_spec(spec)
