"""Per-session statistics of the service calls, per service and operation:
what Aurora prints as "Batch Processing" under EXPLAIN ANALYZE, and more.
Requests are recorded on worker threads too, hence the lock; each backend
(a parallel worker included) keeps its own."""
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from . import errors
from .services import Service

_lock = threading.Lock()
_operations: Dict[Tuple[str, str], "_Operation"] = {}
_counted_calls: Set[Tuple[str, str]] = set()  # (service, operation) already counted in this SQL call

# one of rows(), as aws_ml.stats() returns it
Row = Tuple[str, str, int, int, int, Optional[int], Optional[float], Optional[int],
            Optional[float], Optional[float], Optional[float], int, int, int, int]


@dataclass
class _Operation:
    calls: int = 0
    rows: int = 0
    requests: int = 0
    sent_rows: int = 0
    min_batch: int = 0
    max_batch: int = 0
    min_ms: float = 0.0
    max_ms: float = 0.0
    total_ms: float = 0.0
    retries: int = 0
    throttles: int = 0
    errors: int = 0
    cache_hits: int = 0


def _operation(service: str, operation: str) -> _Operation:
    """The entry of (service, operation), counting this SQL call once."""
    key = (service, operation)
    entry = _operations.setdefault(key, _Operation())
    if key not in _counted_calls:
        _counted_calls.add(key)
        entry.calls += 1
    return entry


def begin_sql_call() -> None:
    with _lock:
        _counted_calls.clear()


def record_request(service: str, operation: str, items: int, milliseconds: float, retries: int,
                   failed: bool) -> None:
    with _lock:
        entry = _operation(service, operation)
        first = entry.requests == 0
        entry.requests += 1
        entry.rows += items
        entry.sent_rows += items
        entry.min_batch = items if first else min(entry.min_batch, items)
        entry.max_batch = max(entry.max_batch, items)
        entry.min_ms = milliseconds if first else min(entry.min_ms, milliseconds)
        entry.max_ms = max(entry.max_ms, milliseconds)
        entry.total_ms += milliseconds
        entry.retries += retries
        entry.errors += failed


def record_throttle(service: str, operation: str) -> None:
    with _lock:
        _operations.setdefault((service, operation), _Operation()).throttles += 1


def throttle_observer(service: Service, record: Callable[[str, str], None] = record_throttle) -> Callable[..., None]:
    """A botocore needs-retry handler counting the attempts AWS throttled,
    with record(service, operation)."""
    def observe(response: Optional[Tuple[Any, Dict[str, Any]]] = None, operation: Any = None, **_: Any) -> None:
        if response is not None:
            http_response, parsed = response
            if errors.is_throttling(parsed.get("Error", {}).get("Code"), http_response.status_code):
                record(service.setting, operation.name)
    return observe


def record_cache_hit(service: str, operation: str, items: int) -> None:
    with _lock:
        entry = _operation(service, operation)
        entry.cache_hits += 1
        entry.rows += items


def rows() -> List[Row]:
    """(service, operation, calls, rows, requests, min/avg/max batch size,
    min/avg/max request ms, retries, throttles, errors, cache hits)."""
    with _lock:
        return [
            (service, operation, e.calls, e.rows, e.requests,
             e.min_batch if e.requests else None, e.sent_rows / e.requests if e.requests else None,
             e.max_batch if e.requests else None,
             e.min_ms if e.requests else None, e.total_ms / e.requests if e.requests else None,
             e.max_ms if e.requests else None, e.retries, e.throttles, e.errors, e.cache_hits)
            for (service, operation), e in sorted(_operations.items())
        ]


def reset() -> None:
    with _lock:
        _operations.clear()
        _counted_calls.clear()
