"""Identical inputs within one SQL statement are sent once (setting
aws_ml.statement_cache, on by default): the reference's clinician_notes UPDATE
calls detect_sentiment twice per row. Never across statements, since an
answer may change between them. Bounded in entries and bytes; large inputs
are not kept."""
import threading
from typing import Any, Dict, Optional, Tuple

MAX_ENTRIES = 10_000
MAX_BYTES = 16 * 1024 * 1024
MAX_REQUEST_BYTES = 16 * 1024

_lock = threading.Lock()
_statement = None
_answers: Dict[Any, Any] = {}
_bytes = 0


def key(scope: Tuple[Any, ...], params: Any) -> Optional[Tuple[Any, ...]]:
    """The cache key of params within scope (a tuple of what else shapes the
    request), or None for params too large to keep."""
    text = repr(sorted(params.items()))
    return None if len(text) > MAX_REQUEST_BYTES else (scope, text)


def _enter(statement: Any) -> None:
    global _statement, _bytes
    if statement != _statement:
        _statement = statement
        _answers.clear()
        _bytes = 0


def lookup(statement: Any, request_key: Any) -> Any:
    with _lock:
        _enter(statement)
        return _answers.get(request_key)


def store(statement: Any, request_key: Any, answer: Any) -> None:
    global _bytes
    size = len(request_key[1]) + len(repr(answer))
    with _lock:
        _enter(statement)
        if len(_answers) < MAX_ENTRIES and _bytes + size <= MAX_BYTES:
            _answers[request_key] = answer
            _bytes += size
