"""Checks of SQL arguments shared by the service modules."""
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, TypeVar

from .errors import invalid_argument, null_argument

if TYPE_CHECKING:
    from typing_extensions import TypeGuard  # Python 3.10's typing.TypeGuard

T = TypeVar("T")


def required(name: str, value: Optional[T]) -> T:
    if value is None:
        raise null_argument(name)
    return value


# The characters str.isspace() accepts (Python 3.9 to 3.13), listed so that
# SQL tests the same set (materialize.py): the server's regular expressions
# depend on its locale.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# A SQL regular expression matching text that is not blank.
NOT_BLANK_PATTERN = "[^" + "".join(f"\\u{ord(c):04x}" for c in WHITESPACE) + "]"


def has_text(text: Optional[str]) -> "TypeGuard[str]":
    """Neither NULL, nor empty, nor only WHITESPACE: a text that is sent (the
    others are not, and are answered with NULLs)."""
    return text is not None and bool(text.strip(WHITESPACE))


def header_value(name: str, value: Optional[str]) -> Optional[str]:
    """value, which goes out as an HTTP header: printable ASCII only, as
    botocore signs it and AWS checks the signature."""
    if value is not None and not all(" " <= character <= "~" for character in value):
        raise invalid_argument(f"{name} must be printable ASCII, without control characters",
                               hint="Give a media type such as application/json.")
    return value


def batch_limit(max_rows_per_batch: Optional[int], service_limit: int) -> int:
    """Rows per request: the caller's max_rows_per_batch (NULL: no limit of its
    own) within the service's limit."""
    if max_rows_per_batch is None:
        return service_limit
    if max_rows_per_batch < 1:
        raise invalid_argument(f"max_rows_per_batch must be at least 1, not {max_rows_per_batch}")
    return min(max_rows_per_batch, service_limit)


def one_dimensional(name: str, values: List[Any]) -> List[Any]:
    if any(isinstance(value, list) for value in values):
        raise invalid_argument(f"{name} must be a one-dimensional array")
    return values


def batch_rows_of(function: str, **arrays: Any) -> List[Tuple[Any, ...]]:
    """The rows of batch mode's arrays (one per argument of function, named
    as its arguments; one element per row of a batch): each array given,
    one-dimensional, and all of one length, or 22023 naming function."""
    for name, values in arrays.items():
        if values is None:
            raise invalid_argument(f"{function}: {name} must be an array, not NULL")
        one_dimensional(f"{function}: {name}", values)
    if len({len(values) for values in arrays.values()}) > 1:
        lengths = ", ".join(f"{name} {len(values)}" for name, values in arrays.items())
        raise invalid_argument(f"{function}: the arrays must have one element per row each, and they have "
                               f"{lengths}")
    return list(zip(*arrays.values()))


def in_range(name: str, value: Optional[int], low: int, high: int) -> int:
    value = required(name, value)
    if not low <= value <= high:
        raise invalid_argument(f"{name} must be between {low} and {high}, not {value}")
    return value
