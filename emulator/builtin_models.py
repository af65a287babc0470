"""The endpoints every emulator starts with, trained on synthetic data with a
fixed seed so that every start builds the same models."""
import numpy as np
import xgboost

from .models import LinearModel, RowWidthModel, XGBoostModel

SEED = 20171127


def _churn(rng):
    """Binary classifier on 4 features (say tenure, monthly charge, support
    calls, has contract); answers the probability of churn."""
    features = rng.normal(size=(600, 4))
    logit = -0.8 * features[:, 0] + 1.2 * features[:, 1] + 0.9 * features[:, 2] - 1.5 * features[:, 3]
    labels = (rng.random(600) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    data = xgboost.DMatrix(features.astype(np.float32), label=labels)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": SEED, "nthread": 1}
    return XGBoostModel(xgboost.train(params, data, num_boost_round=20))


def _classifier(rng):
    """Three-class classifier on 2 features (three Gaussian blobs); answers the class."""
    centres = np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 3.0]])
    labels = rng.integers(0, 3, size=450)
    features = centres[labels] + rng.normal(size=(450, 2))
    data = xgboost.DMatrix(features.astype(np.float32), label=labels.astype(np.float32))
    params = {"objective": "multi:softmax", "num_class": 3, "max_depth": 3, "eta": 0.3, "seed": SEED, "nthread": 1}
    return XGBoostModel(xgboost.train(params, data, num_boost_round=10))


def _least_squares(features, targets):
    """(coef per output, intercept per output) of an ordinary least-squares fit."""
    design = np.hstack([features, np.ones((features.shape[0], 1))])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution[:-1].T, solution[-1]


def _linear_regression(rng):
    features = rng.normal(size=(300, 4))
    targets = features @ np.array([1.5, -2.0, 0.5, 3.0]) + 10.0 + rng.normal(scale=0.1, size=300)
    coef, intercept = _least_squares(features, targets.reshape(-1, 1))
    return LinearModel({"kind": "linear", "coef": coef.tolist(), "intercept": intercept.tolist()})


def _company_forecasts(rng):
    """2 inputs (say revenue growth, debt ratio) to six_month_estimated_return
    and one_year_bankruptcy_probability (clipped to [0, 1])."""
    features = rng.uniform(0, 1, size=(300, 2))
    returns = 0.12 * features[:, 0] - 0.05 * features[:, 1] + 0.02
    bankruptcy = 0.6 * features[:, 1] - 0.2 * features[:, 0] + 0.1
    targets = np.column_stack([returns, bankruptcy]) + rng.normal(scale=0.01, size=(300, 2))
    coef, intercept = _least_squares(features, targets)
    return LinearModel(
        {"kind": "linear", "coef": coef.tolist(), "intercept": intercept.tolist(), "clip": [None, [0.0, 1.0]]}
    )


def builtin_models():
    """{endpoint name: model}, the same on every call."""
    rng = np.random.default_rng(SEED)
    return {
        "xgboost-churn": _churn(rng),
        "xgboost-classifier": _classifier(rng),
        "linear-regression": _linear_regression(rng),
        "company-forecasts": _company_forecasts(rng),
        "echo-row-count": RowWidthModel(),
    }
