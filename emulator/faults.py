"""Fault injection: latency, hangs, throttling, server errors, any AWS error
code, dropped connections and answers cut short, set per service (or "*" for every service) through the control
API. This module decides what happens to a request; the dispatcher acts on it."""
import random
import threading
from dataclasses import dataclass

_FIELDS = {
    "latency_ms": float,
    "latency_jitter_ms": float,
    "throttle_every": int,
    "throttle_probability": float,
    "error_status": int,
    "error_every": int,
    "error_first": int,
    "hang_seconds": float,
    "drop_every": int,
    "error_code": str,
    "body_contains": str,
    "operation": str,
    "truncate_after_bytes": int,
    "stall_after_bytes": int,
}
ERROR_STATUSES = (500, 503)  # without error_code: the service's own 5xx codes


class FaultSpecError(ValueError):
    pass


@dataclass
class Plan:
    """What to do with one request: wait delay_seconds, then answer normally
    (outcome None), or answer "throttle" / "error" (with error_status, and
    error_code when one was asked for), or "drop" the connection. A normal
    answer may be cut after cut_after_bytes of its body (its Content-Length
    still the whole's): then the connection closes, or with cut_stalls it
    stays open, silent, until the client closes it."""

    delay_seconds: float = 0.0
    outcome: str = None
    error_status: int = 500
    error_code: str = None
    cut_after_bytes: int = None
    cut_stalls: bool = False


class _Fault:
    def __init__(self, spec):
        unknown = set(spec) - set(_FIELDS) - {"service"}
        if unknown:
            raise FaultSpecError(f"unknown fault fields: {sorted(unknown)}")
        self.spec = {}
        for name, kind in _FIELDS.items():
            if spec.get(name) is None:
                continue
            if name in ("body_contains", "operation"):
                if not isinstance(spec[name], str) or not spec[name]:
                    raise FaultSpecError(f"{name} must be a non-empty string")
                self.spec[name] = spec[name]
                continue
            if kind is str:
                if not isinstance(spec[name], str) or not spec[name].isidentifier():
                    raise FaultSpecError(f"{name} must be an AWS error code, like AccessDeniedException")
                self.spec[name] = spec[name]
                continue
            try:
                value = kind(spec[name])
            except (TypeError, ValueError):
                raise FaultSpecError(f"{name} must be a number") from None
            if value < 0 or ((name.endswith("_every") or name == "error_first") and value < 1):
                raise FaultSpecError(f"{name} out of range: {value}")
            self.spec[name] = value
        if "truncate_after_bytes" in self.spec and "stall_after_bytes" in self.spec:
            raise FaultSpecError("give truncate_after_bytes or stall_after_bytes, not both")
        if self.spec.get("throttle_probability", 0) > 1:
            raise FaultSpecError("throttle_probability must be within [0, 1]")
        status = self.spec.get("error_status", 500)
        if "error_code" in self.spec:
            if not 400 <= status <= 599:
                raise FaultSpecError(f"error_status must be within 400..599, not {status}")
        elif status not in ERROR_STATUSES:
            raise FaultSpecError(f"error_status must be one of {ERROR_STATUSES} (or give error_code)")
        self.seen = 0
        self.random = random.Random(0)

    def _every(self, name):
        every = self.spec.get(name)
        return every is not None and self.seen % every == 0

    def applies_to(self, operation, body):
        return (self.spec.get("operation", operation) == operation
                and ("body_contains" not in self.spec or self.spec["body_contains"].encode() in body))

    def plan(self):
        """Called under the injector's lock, once per request of the service
        that it applies to."""
        self.seen += 1
        spec = self.spec
        delay = spec.get("latency_ms", 0) / 1000
        delay += self.random.uniform(0, spec.get("latency_jitter_ms", 0)) / 1000
        delay += spec.get("hang_seconds", 0)
        outcome = None
        if self._every("drop_every"):
            outcome = "drop"
        elif self._every("throttle_every") or (
            self.random.random() < spec.get("throttle_probability", 0)
        ):
            outcome = "throttle"
        elif self._every("error_every") or self.seen <= spec.get("error_first", 0):
            outcome = "error"
        cut = spec.get("truncate_after_bytes", spec.get("stall_after_bytes"))
        return Plan(delay, outcome, spec.get("error_status", 500), spec.get("error_code"), cut,
                    "stall_after_bytes" in spec)


class FaultInjector:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = {}

    def set(self, spec):
        service = spec.get("service")
        if not isinstance(service, str) or not service:
            raise FaultSpecError('"service" is required: a service name or "*"')
        fault = _Fault(spec)
        with self._lock:
            self._faults[service] = fault

    def list(self):
        with self._lock:
            return [{"service": service, **fault.spec} for service, fault in self._faults.items()]

    def clear(self):
        with self._lock:
            self._faults = {}

    def plan(self, service, body=b"", operation=None):
        """The combined plan of the service's own fault and the "*" fault, for
        a request of operation (for the REST services moto serves, S3: its
        HTTP method) with body."""
        combined = Plan()
        with self._lock:
            for key in (service, "*"):
                fault = self._faults.get(key)
                if fault is None or not fault.applies_to(operation, body):
                    continue
                plan = fault.plan()
                combined.delay_seconds += plan.delay_seconds
                if combined.outcome is None and plan.outcome is not None:
                    combined.outcome, combined.error_status = plan.outcome, plan.error_status
                    combined.error_code = plan.error_code
                if combined.cut_after_bytes is None and plan.cut_after_bytes is not None:
                    combined.cut_after_bytes, combined.cut_stalls = plan.cut_after_bytes, plan.cut_stalls
        return combined
