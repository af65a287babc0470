"""aws_sagemaker: CSV rows to a SageMaker endpoint, the model's answers back
as text, one per row, in order."""
import csv
import io
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

from . import batch_rows
from .arguments import batch_limit, batch_rows_of, has_text, one_dimensional, required
from .batching import by_size
from .entry import sql_entry
from .errors import SERVICE_FAILED, AwsMlError, at_ordinality, invalid_argument
from .request import Input, Requests, Unanswered
from .services import SAGEMAKER
from .transport import Params

MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request payload limit
ROW_LIMIT = sys.maxsize  # the service limits a request's bytes, not its rows

# Characters that make record_in need a quoted field.
_RECORD_SPECIAL = re.compile(r'[,()"\\\s]')

Row = Tuple[Optional[str], Optional[int], Optional[str]]  # (endpoint name, max rows per request, CSV row or NULL)
Group = Tuple[str, int]  # (endpoint name, max rows per request): the rows that may share a request


@sql_entry
def invoke_endpoint_csv(endpoint_name: Optional[str], max_rows_per_batch: Optional[int],
                        csv_rows: Optional[List[Optional[str]]]) -> List[Optional[str]]:
    """The model's output for each CSV row (one row ending in a newline), in
    order; a NULL row gives NULL and is not sent. Rows go out in text/csv
    bodies of at most max_rows_per_batch rows and 6 MB."""
    _endpoint_and_size(endpoint_name, max_rows_per_batch)
    if csv_rows is None:
        return []
    one_dimensional("csv_rows", csv_rows)
    return _invoke([(endpoint_name, max_rows_per_batch, row) for row in csv_rows])


@sql_entry
def invoke_endpoint_rows(endpoint_names: Optional[List[Optional[str]]],
                         max_rows_per_batch: Optional[List[Optional[int]]],
                         csv_rows: Optional[List[Optional[str]]]) -> List[Optional[str]]:
    """Batch mode's invoke_endpoint: the model's output per row of the arrays
    (one element per row of a batch), as invoke_endpoint answers each, up to
    the first row that fails (batch_rows)."""
    return batch_rows.answers(_invoke, batch_rows_of(
        "aws_sagemaker._invoke_endpoint_rows", endpoint_name=endpoint_names, max_rows_per_batch=max_rows_per_batch,
        csv_rows=csv_rows))


def _endpoint_and_size(endpoint_name: Optional[str], max_rows_per_batch: Optional[int]) -> Group:
    endpoint_name = required("endpoint_name", endpoint_name)
    if not has_text(endpoint_name):
        raise invalid_argument("endpoint_name must not be empty")
    return endpoint_name, batch_limit(max_rows_per_batch, ROW_LIMIT)


def _check_row(row: str) -> None:
    """row must hold exactly one CSV record, ending in a newline."""
    if not row.endswith("\n") or ('"' not in row and row.count("\n") != 1) or \
            ('"' in row and len(list(csv.reader(io.StringIO(row)))) != 1):
        raise invalid_argument("each CSV row must be exactly one record ending in a newline",
                               hint="aws_sagemaker.invoke_endpoint and batch_invoke_endpoint write the rows; "
                                    "call those instead.")


def _invoke(rows: List[Row]) -> List[Optional[str]]:
    """The model's output for each (endpoint name, max rows per request, CSV
    row or NULL), in order; NULL for a NULL row, which is not sent. The rows
    of one endpoint and size go out in bodies of at most that many rows and
    6 MB, aws_ml.max_concurrency requests at a time; each distinct row once a
    statement (unless aws_ml.statement_cache is off)."""
    requests = Requests(SAGEMAKER, "InvokeEndpoint")
    outputs: List[Optional[str]] = [None] * len(rows)
    unanswered: Unanswered[Group] = Unanswered(requests.cache)
    for index, (endpoint_name, max_rows_per_batch, row) in enumerate(rows):
        try:
            group = _endpoint_and_size(endpoint_name, max_rows_per_batch)
            if row is None:
                continue
            _check_row(row)
        except AwsMlError as error:
            raise at_ordinality(error, index + 1) from None
        outputs[index] = unanswered.ask(group, {"EndpointName": endpoint_name, "Row": row}, index, row.encode())

    def split(group: Group, inputs: List[Input]) -> List[List[Input]]:
        try:
            ranges = by_size([len(same.value) for same in inputs], group[1], MAX_BODY_BYTES)
        except AwsMlError as error:
            if error.ordinality is None:
                raise
            raise at_ordinality(error, inputs[error.ordinality - 1].indexes[0] + 1) from None
        return [inputs[start:stop] for start, stop in ranges]

    def request_of(group: Group, inputs: List[Input]) -> Tuple[Params, int]:
        return {"EndpointName": group[0], "Body": b"".join(same.value for same in inputs),
                "ContentType": "text/csv", "Accept": "text/csv"}, len(inputs)
    unanswered.send(requests, outputs, split, request_of,
                    lambda group, inputs, answer: dict(enumerate(_outputs(group[0], answer, len(inputs)))))
    return outputs


def _outputs(endpoint_name: str, answer: Dict[str, Any], expected: int) -> List[str]:
    records = list(csv.reader(io.StringIO(answer["Body"].decode())))
    if len(records) != expected:
        raise AwsMlError(
            SERVICE_FAILED,
            f"SageMaker endpoint {endpoint_name} answered {len(records)} line(s) for {expected} row(s)",
            "aws_ml sends text/csv with one row per line and expects one answer line per row.")
    return [model_output(fields) for fields in records]


def model_output(fields: List[str]) -> str:
    """One answer line as SQL text: a single value as is; several as a record
    literal, "(a,b)", which casts to a composite type or to point."""
    if len(fields) <= 1:
        return fields[0] if fields else ""
    return "(" + ",".join(_record_field(field) for field in fields) + ")"


def _record_field(value: str) -> str:
    if not _RECORD_SPECIAL.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '""') + '"'
