"""The control API under /_emulator/: counters, faults, endpoints, training
jobs, IAM enforcement. JSON in and out."""
import json
import re
from urllib.parse import unquote

from .faults import FaultSpecError
from .models import ModelFileError, load_model_file, model_from_spec
from .training import TrainingError, booster_parameters, parse_s3_uri, read_s3_object, train_xgboost, training_matrix
from .wire import json_answer, raw_path

PREFIX = "/_emulator/"
_ENDPOINT_MODEL = re.compile(r"^sagemaker/endpoints/([^/]+)/model$")


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def _json_body(request):
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


class Control:
    def __init__(self, counters, faults, sagemaker, moto):
        self.counters, self.faults, self.sagemaker, self.moto = counters, faults, sagemaker, moto
        self._routes = {
            ("GET", "health"): lambda request: {"status": "ok"},
            ("GET", "counters"): lambda request: self.counters.snapshot(),
            ("POST", "reset"): self._reset,
            ("GET", "faults"): lambda request: {"faults": self.faults.list()},
            ("PUT", "faults"): self._set_faults,
            ("DELETE", "faults"): self._clear_faults,
            ("GET", "sagemaker/endpoints"): lambda request: {"endpoints": self.sagemaker.endpoint_names()},
            ("POST", "sagemaker/endpoints"): self._register_endpoint,
            ("POST", "sagemaker/training-jobs"): self._run_training_job,
            ("GET", "sagemaker/requests"): lambda request: {"bodies": self.sagemaker.bodies()},
            ("PUT", "iam-enforcement"): self._set_iam_enforcement,
        }

    def __call__(self, request):
        route = raw_path(request)[len(PREFIX):]
        try:
            handler = self._routes.get((request.method, route))
            if handler is None:
                handler = self._endpoint_model_route(request, route)
            return json_answer(handler(request))
        except ControlError as error:
            return json_answer({"error": error.message}, error.status)

    def _endpoint_model_route(self, request, route):
        match = _ENDPOINT_MODEL.match(route)
        if match and request.method == "GET":
            return lambda request: self._endpoint_model(unquote(match.group(1)))
        if any(path == route for _, path in self._routes) or match:
            raise ControlError(405, f"{request.method} is not allowed on {PREFIX}{route}")
        raise ControlError(404, f"no such control resource: {PREFIX}{route}")

    def _reset(self, request):
        self.counters.clear()
        self.faults.clear()
        self.sagemaker.forget_bodies()
        return {"status": "ok"}

    def _set_faults(self, request):
        try:
            self.faults.set(_json_body(request))
        except FaultSpecError as error:
            raise ControlError(400, str(error)) from None
        return {"faults": self.faults.list()}

    def _clear_faults(self, request):
        self.faults.clear()
        return {"faults": []}

    def _register_endpoint(self, request):
        body = _json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ControlError(400, '"name" is required')
        if ("model_file" in body) == ("model" in body):
            raise ControlError(400, 'give exactly one of "model_file" and "model"')
        try:
            model = load_model_file(body["model_file"]) if "model_file" in body else model_from_spec(body["model"])
        except ModelFileError as error:
            raise ControlError(400, str(error)) from None
        self.sagemaker.register(name, model)
        return {"endpoints": self.sagemaker.endpoint_names()}

    def _run_training_job(self, request):
        """Trains the built-in XGBoost on a CSV object in S3 and serves the
        model as the endpoint, as CreateTrainingJob, CreateModel and
        CreateEndpoint would, at once."""
        body = _json_body(request)
        name = body.get("endpoint")
        if not isinstance(name, str) or not name:
            raise ControlError(400, '"endpoint" is required')
        try:
            parameters, num_round = booster_parameters(body.get("hyperparameters"))
            matrix = training_matrix(read_s3_object(*parse_s3_uri(body.get("s3_uri"))))
            model = train_xgboost(matrix, parameters, num_round)
        except TrainingError as error:
            raise ControlError(400, str(error)) from None
        self.sagemaker.register(name, model)
        return {"endpoint": name, "rows": matrix.num_row(), "features": matrix.num_col()}

    def _endpoint_model(self, name):
        model = self.sagemaker.model(name)
        if model is None:
            raise ControlError(404, f"no endpoint named {name!r}")
        return model.spec()

    def _set_iam_enforcement(self, request):
        enabled = _json_body(request).get("enabled")
        if not isinstance(enabled, bool):
            raise ControlError(400, '"enabled" must be true or false')
        self.moto.set_iam_enforcement(enabled)
        return {"enabled": enabled}
