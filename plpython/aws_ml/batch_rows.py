"""Batch mode's calls (extension/src/batch_scan.c): the answers for the rows
of a batch, in order, up to the first row whose call fails. That row's error
is kept, and raised (aws_ml._raise_batch_error) only when the query reaches
that row, where row-by-row evaluation would raise it: a query that stops
before it (a LIMIT, EXISTS) never sees it, nor does any later statement."""
from . import backend
from .errors import AwsMlError, at_input_row, sql_entry

_pending = None  # (statement, the error of the row after the last answer given)


def answers(answer, rows, row_numbers):
    """The answers of the longest first part of rows that answer(rows)
    answers: answer raises AwsMlError naming the ordinality of the row it
    failed at (without one: the first row), and is asked again for the rows
    before it. row_numbers: the rows' numbers in the batching node's input,
    for the error."""
    global _pending
    count = len(rows)
    while count:
        try:
            return answer(rows[:count])
        except AwsMlError as error:
            _pending = backend.statement_id(), at_input_row(error, row_numbers)
            count = min(error.ordinality - 1, count - 1) if error.ordinality else 0
    return []


@sql_entry
def raise_pending():
    """aws_ml._raise_batch_error(): raises the error kept by answers."""
    global _pending
    pending, _pending = _pending, None
    if pending is None or pending[0] != backend.statement_id():
        raise AwsMlError("XX000", "batch mode lost the error of a row")
    raise pending[1]
