"""json_key: where the vector is in a model's JSON answer. A top-level key as
on Aurora (`embedding`), or a dotted path of object keys and array indexes
for models that nest their vectors (`embeddingsByType.float`, `embeddings.0`).
Pure: parsed JSON in, floats or an AwsMlError out."""
import re
from typing import Any, List, Tuple

from .errors import INVALID_PARAMETER, AwsMlError

Json = Any  # a parsed JSON value: dict, list, str, int, float, bool or None

_INDEX = re.compile(r"[0-9]+")


def vector(document: Json, json_key: str) -> List[float]:
    """The array of numbers at json_key in document, as floats."""
    parent, value = _resolve(document, json_key)
    if isinstance(value, list):
        try:
            return [_as_float(number) for number in value]
        except (TypeError, OverflowError):
            pass
    raise _error(json_key, f"the value is {_kind(value)}, not an array of numbers", parent)


def _resolve(document: Json, json_key: str) -> Tuple[Json, Json]:
    """(the object or array holding the value, the value) at json_key."""
    # Aurora's json_key is a top-level key, whatever characters it has.
    if isinstance(document, dict) and json_key in document:
        return document, document[json_key]
    parent, value = None, document
    walked: List[str] = []
    for segment in json_key.split("."):
        parent, value = value, _step(value, segment, json_key, walked)
        walked.append(segment)
    return parent, value


def _step(value: Json, segment: str, json_key: str, walked: List[str]) -> Json:
    where = ".".join(walked) if walked else "the top level"
    if isinstance(value, dict):
        if segment not in value:
            raise _error(json_key, f'no key "{segment}" at {where}', value)
        return value[segment]
    if isinstance(value, list):
        if not _INDEX.fullmatch(segment) or int(segment) >= len(value):
            raise _error(json_key, f'no element "{segment}" at {where}', value)
        return value[int(segment)]
    raise _error(json_key, f"{where} is {_kind(value)}, not an object or an array", None)


def _as_float(number: Json) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise TypeError(number)
    return float(number)  # OverflowError for an integer beyond float8


def _kind(value: Json) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array with an element that is not a float8 number"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else "a string"


def _error(json_key: str, problem: str, container: Json) -> AwsMlError:
    if isinstance(container, dict):
        detail = "The keys there are: " + (", ".join(f'"{key}"' for key in container) or "none") + "."
    elif isinstance(container, list):
        detail = f"The array there has {len(container)} element(s)."
    else:
        detail = None
    return AwsMlError(INVALID_PARAMETER, f'json_key "{json_key}": {problem} in the model output', detail)
