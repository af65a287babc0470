"""The WSGI application: the control API, then each request dispatched by the
service name of its SigV4 credential scope, counted, and put through the
fault injector."""
import re
import socket

from werkzeug.wrappers import Request

from .builtin_models import builtin_models
from .bedrock import BedrockRuntime
from .comprehend import Comprehend
from .control import PREFIX, Control
from .counters import Counters
from .faults import FaultInjector
from .httpserver import CUT_BODY_ENVIRON_KEY, SOCKET_ENVIRON_KEY, client_closes
from .moto_services import MotoServices
from .sagemaker import SageMakerRuntime
from .signing import SIGNATURE_ERROR_CODES, signature_mismatch_message, signer_of

_USER_AGENT_PID = re.compile(r"\bpid/(\d+)")


class EmulatorApp:
    def __init__(self, port, endpoints=None):
        """endpoints: {name: model} registered on top of the built-in ones."""
        self.counters = Counters()
        self.faults = FaultInjector()
        self.sagemaker = SageMakerRuntime({**builtin_models(), **(endpoints or {})})
        self.moto = MotoServices(port)
        self.services = {"comprehend": Comprehend(), "sagemaker": self.sagemaker, "bedrock": BedrockRuntime()}
        self.control = Control(self.counters, self.faults, self.sagemaker, self.moto)

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith(PREFIX):
            return self.control(request)(environ, start_response)
        if request.path.startswith("/moto-api"):
            return self.moto.handle(request, None, None)[0](environ, start_response)
        return self._serve(request)(environ, start_response)

    def _serve(self, request):
        signer = signer_of(request.environ)
        service = self.services.get(signer.service)
        operation = service.operation(request) if service else None
        if operation is None:
            service = self.moto
            operation = service.operation(request)
        name = signer.service
        plan = self.faults.plan(name, request.get_data(), operation)
        counted = self.counters.request(name, operation, signer.access_key_id, _client_pid(request))
        try:
            return self._answer(request, signer, service, operation, counted, plan)
        finally:
            self.counters.finished(counted)

    def _answer(self, request, signer, service, operation, counted, plan):
        if plan.delay_seconds and client_closes(request.environ[SOCKET_ENVIRON_KEY], plan.delay_seconds):
            self.counters.abandoned(counted)
            raise ConnectionAbortedError("the client closed the connection while the emulator delayed its answer")
        if plan.outcome == "drop":
            self.counters.outcome(counted, error=True)
            _drop_connection(request.environ)
        if plan.outcome is not None:
            self.counters.outcome(
                counted, error=plan.outcome == "error", throttled=plan.outcome == "throttle"
            )
            if plan.outcome == "error" and plan.error_code:
                message = (signature_mismatch_message(request) if plan.error_code in SIGNATURE_ERROR_CODES
                           else f"{plan.error_code} (injected by the emulator)")
                return service.error_answer(plan.error_code, plan.error_status, message)
            return service.fault_error(plan.outcome, plan.error_status)

        response, items = service.handle(request, signer, operation)
        failed = response.status_code >= 400
        self.counters.outcome(counted, items=None if failed else items, error=failed)
        if plan.cut_after_bytes is not None and not failed:
            request.environ[CUT_BODY_ENVIRON_KEY] = (plan.cut_after_bytes, plan.cut_stalls)
        return response


def _client_pid(request):
    """The process id a client put in its User-Agent as pid/<n> (aws_ml does), or None."""
    found = _USER_AGENT_PID.search(request.headers.get("User-Agent", ""))
    return found.group(1) if found else None


def _drop_connection(environ):
    """Close the client's connection without an answer. The server treats the
    ConnectionAbortedError as a connection the client dropped: no answer."""
    connection = environ[SOCKET_ENVIRON_KEY]
    connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("connection dropped by fault injection")
