"""aws_sagemaker: CSV rows to a SageMaker endpoint, the model's answers back
as text, one per row, in order."""
import csv
import io
import re
import sys

from . import request
from .arguments import batch_limit, is_blank, one_dimensional, required
from .batching import by_size
from .errors import SERVICE_FAILED, AwsMlError, invalid_argument, sql_entry
from .services import SAGEMAKER

MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's request payload limit
ROW_LIMIT = sys.maxsize  # the service limits a request's bytes, not its rows

# Characters that make record_in need a quoted field.
_RECORD_SPECIAL = re.compile(r'[,()"\\\s]')


@sql_entry
def invoke_endpoint_csv(endpoint_name, max_rows_per_batch, csv_rows):
    """The model's output for each CSV row (each ending in a newline), in
    order; a NULL row gives NULL and is not sent. Rows go out in text/csv
    bodies of at most max_rows_per_batch rows and 6 MB."""
    required("endpoint_name", endpoint_name)
    if is_blank(endpoint_name):
        raise invalid_argument("endpoint_name must not be empty")
    size = batch_limit(max_rows_per_batch, ROW_LIMIT)
    if csv_rows is None:
        return []
    one_dimensional("csv_rows", csv_rows)
    outputs = [None] * len(csv_rows)
    to_send = [index for index, row in enumerate(csv_rows) if row is not None]
    encoded = [csv_rows[index].encode() for index in to_send]
    for start, stop in by_size([len(row) for row in encoded], size, MAX_BODY_BYTES):
        answer = request.call(SAGEMAKER, "InvokeEndpoint", stop - start,
                              EndpointName=endpoint_name, Body=b"".join(encoded[start:stop]),
                              ContentType="text/csv", Accept="text/csv")
        for index, output in zip(to_send[start:stop], _outputs(endpoint_name, answer, stop - start)):
            outputs[index] = output
    return outputs


def _outputs(endpoint_name, answer, expected):
    records = list(csv.reader(io.StringIO(answer["Body"].decode())))
    if len(records) != expected:
        raise AwsMlError(
            SERVICE_FAILED,
            f"SageMaker endpoint {endpoint_name} answered {len(records)} line(s) for {expected} row(s)",
            "aws_ml sends text/csv with one row per line and expects one answer line per row.")
    return [model_output(fields) for fields in records]


def model_output(fields):
    """One answer line as SQL text: a single value as is; several as a record
    literal, "(a,b)", which casts to a composite type or to point."""
    if len(fields) <= 1:
        return fields[0] if fields else ""
    return "(" + ",".join(_record_field(field) for field in fields) + ")"


def _record_field(value):
    if not _RECORD_SPECIAL.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '""') + '"'
