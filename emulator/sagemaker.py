"""Amazon SageMaker runtime, REST JSON protocol: InvokeEndpoint with text/csv
bodies, answered by the models registered under endpoint names."""
import re
import threading
from collections import deque
from urllib.parse import unquote

from .features import FeatureError, format_line, parse_rows
from .wire import ACCOUNT_ID, raw_path, rest_json_error, text_answer

MAX_BODY_BYTES = 6 * 1024 * 1024
BODIES_KEPT = 20
_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")
_CSV_TYPES = ("text/csv", "")


class SageMakerRuntime:
    name = "sagemaker"

    def __init__(self, models):
        self._lock = threading.Lock()
        self._models = dict(models)
        self._bodies = deque(maxlen=BODIES_KEPT)

    def register(self, name, model):
        with self._lock:
            self._models[name] = model

    def endpoint_names(self):
        with self._lock:
            return sorted(self._models)

    def model(self, name):
        with self._lock:
            return self._models.get(name)

    def bodies(self):
        with self._lock:
            return list(self._bodies)

    def forget_bodies(self):
        with self._lock:
            self._bodies.clear()

    def operation(self, request):
        """Only InvokeEndpoint is emulated; the rest goes to moto."""
        return "InvokeEndpoint" if _INVOCATIONS.match(raw_path(request)) else None

    def handle(self, request, signer, operation):
        body = request.get_data()
        if len(body) > MAX_BODY_BYTES:
            # What the service's front end answers: a bare 413 that botocore
            # reports with the status as the error code.
            return text_answer(f"HTTP content length exceeded {MAX_BODY_BYTES} bytes.", 413), None
        text = body.decode("utf-8", errors="replace")
        with self._lock:
            self._bodies.append(text)
        name = unquote(_INVOCATIONS.match(raw_path(request)).group(1))
        model = self.model(name)
        if model is None:
            message = f"Endpoint {name} of account {ACCOUNT_ID} not found."
            return rest_json_error("ValidationError", 400, {"message": message}), None
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in _CSV_TYPES:
            return _model_error(signer, name, 415, f"Content type {content_type} is not supported: use text/csv"), None
        try:
            rows = parse_rows(text)
            outputs = model.predict(rows)
        except FeatureError as error:
            return _model_error(signer, name, 400, str(error)), None
        answer = "".join(format_line(values) + "\n" for values in outputs)
        return text_answer(answer, content_type="text/csv"), len(rows)

    def error_answer(self, code, status, message):
        return rest_json_error(code, status, {"message": message})

    def fault_error(self, outcome, status):
        if outcome == "throttle":
            return rest_json_error("ThrottlingException", 400, {"message": "Rate exceeded"})
        code = "InternalFailure" if status == 500 else "ServiceUnavailable"
        return rest_json_error(code, status, {"message": "An internal error occurred" if status == 500 else "Service unavailable"})


def _model_error(signer, endpoint, original_status, original_message):
    """The service's answer when the model container refuses a request."""
    region = signer.region
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    log_url = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={log_group}"
    return rest_json_error(
        "ModelError",
        424,
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
            "Message": (
                f'Received client error ({original_status}) from primary with message "{original_message}". '
                f"See {log_url} in account {ACCOUNT_ID} for more information."
            ),
        },
    )
