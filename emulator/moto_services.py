"""Every service the emulator does not answer itself (STS, IAM, S3, ...),
served by moto's server application in the same process."""
import io
import os
from urllib.parse import parse_qs

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from .wire import query_error


class MotoServices:
    name = "moto"

    def __init__(self, port):
        # moto builds some URLs (presigned, queue URLs) from the port it serves on.
        os.environ["MOTO_PORT"] = str(port)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._app = DomainDispatcherApplication(create_backend_app)

    def operation(self, request):
        """The query protocol's Action, the JSON protocol's X-Amz-Target
        operation, else (REST services) the HTTP method."""
        target = request.headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        action = request.args.get("Action")
        if action is None and request.mimetype == "application/x-www-form-urlencoded":
            action = parse_qs(request.get_data(as_text=True)).get("Action", [None])[0]
        return action or request.method

    def handle(self, request, signer, operation):
        body = request.get_data()
        environ = request.environ
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        response = Response.from_app(self._app, environ)
        return response, (1 if response.status_code < 400 else None)

    def error_answer(self, code, status, message):
        return query_error(code, message, status)

    def fault_error(self, outcome, status):
        if outcome == "throttle":
            return query_error("Throttling", "Rate exceeded")
        code = "InternalFailure" if status == 500 else "ServiceUnavailable"
        return query_error(code, "Service error", status)

    def set_iam_enforcement(self, enabled):
        """moto's documented switch: enforce IAM policies after this many more
        requests (0), or never (infinity)."""
        environ = EnvironBuilder(
            path="/moto-api/reset-auth",
            method="POST",
            data=b"0" if enabled else b"inf",
            content_type="text/plain",
        ).get_environ()
        response = Response.from_app(self._app, environ)
        if response.status_code != 200:
            raise RuntimeError(f"moto refused reset-auth: {response.get_data(as_text=True)}")
