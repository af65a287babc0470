"""Start an emulator for a test session and drive its control API.

    emulator = Emulator()          # a fresh server on a free port
    boto3.client("comprehend", endpoint_url=emulator.url, ...)
    emulator.set_faults(service="comprehend", throttle_every=2)
    emulator.counters()["comprehend"]["DetectSentiment"]["requests"]
    emulator.stop()
"""
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10


class EmulatorError(RuntimeError):
    pass


class Emulator:
    def __init__(self, host="127.0.0.1", endpoints=None, python=sys.executable, tls=None):
        """endpoints: {name: model file path} registered at start; tls:
        (certificate file, key file) to serve HTTPS."""
        command = [python, "-m", "emulator", "--host", host, "--port", "0"]
        for name, path in (endpoints or {}).items():
            command += ["--endpoint", f"{name}={path}"]
        if tls:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        self._context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        self._log = tempfile.NamedTemporaryFile(prefix="aws-ml-emulator-", suffix=".log", delete=False)
        self.log_path = self._log.name
        self._process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        line = self._first_line()
        if not line.startswith("aws_ml emulator listening on "):
            log = self._log_text()
            self.stop()
            raise EmulatorError(f"the emulator did not start: {line!r}; log: {log}")
        self.url = line.rsplit(" ", 1)[1]

    def _first_line(self):
        lines = []
        reader = threading.Thread(target=lambda: lines.append(self._process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_SECONDS)
        return lines[0].strip() if lines else ""

    def _log_text(self):
        return Path(self.log_path).read_text(errors="replace")[-4000:]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._context) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:
            raise EmulatorError(f"{method} /_emulator/{path}: {error.code} {error.read().decode()}") from None

    @property
    def pid(self):
        return self._process.pid

    def health(self):
        return self._call("GET", "health")

    def counters(self):
        return self._call("GET", "counters")

    def reset(self):
        """Clear counters, faults and recorded SageMaker bodies (not endpoints)."""
        return self._call("POST", "reset")

    def set_faults(self, service, **fault):
        """service: "comprehend", "sagemaker", "bedrock", "sts", ... or "*";
        fault: latency_ms, latency_jitter_ms, throttle_every,
        throttle_probability, error_status, error_every, error_first,
        error_code, hang_seconds, drop_every. error_code (with error_every or
        error_first) answers that AWS error code, with error_status (any 4xx
        or 5xx, default 500).
        body_contains: the fault applies only to requests whose body holds
        that text; operation: only to that operation's requests (S3's: its
        HTTP method). truncate_after_bytes / stall_after_bytes: a normal
        answer's body stops after that many bytes (its Content-Length still
        the whole's), and the connection closes, or stays open and silent
        until the client closes it."""
        return self._call("PUT", "faults", {"service": service, **fault})

    def faults(self):
        return self._call("GET", "faults")["faults"]

    def clear_faults(self):
        return self._call("DELETE", "faults")

    def register_endpoint(self, name, model_file=None, model=None):
        """A SageMaker endpoint from a model file (absolute path) or an inline
        linear model spec; replaces any endpoint of that name."""
        if (model_file is None) == (model is None):
            raise ValueError("give exactly one of model_file and model")
        body = {"name": name}
        if model_file is not None:
            body["model_file"] = os.path.abspath(model_file)
        else:
            body["model"] = model
        return self._call("POST", "sagemaker/endpoints", body)

    def train_endpoint(self, name, s3_uri, hyperparameters):
        """Trains the built-in XGBoost algorithm on a CSV object of the
        emulator's S3 (the label first, no header) with SageMaker's string
        hyperparameters (num_round required), and serves the model as the
        endpoint name. Answers {"endpoint", "rows", "features"}."""
        body = {"endpoint": name, "s3_uri": s3_uri, "hyperparameters": hyperparameters}
        return self._call("POST", "sagemaker/training-jobs", body)

    def endpoints(self):
        return self._call("GET", "sagemaker/endpoints")["endpoints"]

    def endpoint_model(self, name):
        """The endpoint's model as saved: XGBoost JSON or a linear spec."""
        return self._call("GET", f"sagemaker/endpoints/{quote(name, safe='')}/model")

    def sagemaker_bodies(self):
        """The last 20 InvokeEndpoint request bodies, oldest first."""
        return self._call("GET", "sagemaker/requests")["bodies"]

    def set_iam_enforcement(self, enabled):
        return self._call("PUT", "iam-enforcement", {"enabled": bool(enabled)})

    def stop(self):
        """SIGTERM, then SIGKILL if the server has not exited in 10 s; its log is removed."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()
        self._log.close()
        Path(self.log_path).unlink(missing_ok=True)
        return self._process.returncode
