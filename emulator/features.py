"""The CSV codec of the SageMaker endpoints: request rows in, answer lines out."""
import csv
import datetime
import io
import math
import re

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = datetime.date(1970, 1, 1)
_BOOLEANS = {"t": 1.0, "true": 1.0, "f": 0.0, "false": 0.0}
# One field may be a whole request body (6 MB); the csv module's default
# limit is 128 KB.
csv.field_size_limit(8 * 1024 * 1024)


class FeatureError(ValueError):
    """A row a numeric model cannot read; the message names the bad value."""


def parse_rows(text):
    """The CSV rows of a body (RFC 4180: quoted fields may hold commas, quotes
    and newlines). Blank lines carry no row."""
    try:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise FeatureError(f"Unable to read the body as CSV: {error}") from None


def feature(field, row_number, column_number):
    """A field as a model feature: a number, an ISO date (days since
    1970-01-01), a boolean (1/0), or NaN for an empty field (missing)."""
    if field == "":
        return math.nan
    try:
        return float(field)
    except ValueError:
        pass
    if _DATE.fullmatch(field):
        try:
            return float((datetime.date.fromisoformat(field) - _EPOCH).days)
        except ValueError:
            pass
    boolean = _BOOLEANS.get(field.lower())
    if boolean is not None:
        return boolean
    raise FeatureError(
        f"Unable to parse value {field!r} in row {row_number}, column {column_number} as a feature: "
        "expected a number, a date (YYYY-MM-DD) or a boolean"
    )


def feature_matrix(rows, width):
    """A list of feature lists; every row must have exactly width fields."""
    matrix = []
    for row_number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise FeatureError(
                f"Feature size mismatch in row {row_number}: the model expects {width} features, got {len(row)}"
            )
        matrix.append([feature(field, row_number, column) for column, field in enumerate(row, start=1)])
    return matrix


def format_line(values):
    """One answer line: the row's values comma-separated, each as '%.9g'."""
    return ",".join("%.9g" % value for value in values)
