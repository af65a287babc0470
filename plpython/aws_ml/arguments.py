"""Checks of SQL arguments shared by the service modules."""
from .errors import invalid_argument, null_argument


def required(name, value):
    if value is None:
        raise null_argument(name)
    return value


def is_blank(text):
    return text is None or not text.strip()


def batch_limit(max_rows_per_batch, service_limit):
    """Rows per request: the caller's max_rows_per_batch (NULL: no limit of its
    own) within the service's limit."""
    if max_rows_per_batch is None:
        return service_limit
    if max_rows_per_batch < 1:
        raise invalid_argument(f"max_rows_per_batch must be at least 1, not {max_rows_per_batch}")
    return min(max_rows_per_batch, service_limit)


def one_dimensional(name, values):
    if any(isinstance(value, list) for value in values):
        raise invalid_argument(f"{name} must be a one-dimensional array")
    return values


def in_range(name, value, low, high):
    required(name, value)
    if not low <= value <= high:
        raise invalid_argument(f"{name} must be between {low} and {high}, not {value}")
    return value
