"""Batch mode's calls (extension/src/batch/batch_scan.c): the answers for the rows
of a batch, in order, up to the first row whose call fails because of its
input. The node evaluates that row row by row when the query reaches it, so
that its error is the row function's own, raised where row-by-row
evaluation raises it, and a query that stops before it (a LIMIT, EXISTS)
never sees it. An error that is not about the input (throttling, the
network, permissions) fails the batch at once."""
from typing import Any, Callable, List, Tuple

from . import request
from .errors import AwsMlError


def answers(answer: Callable[[List[Any]], List[Any]], rows: List[Any]) -> List[Any]:
    """The answers of the longest first part of rows whose calls succeed.
    answer(rows) answers rows in order, or raises AwsMlError naming the
    ordinality of the row it failed at (without one: the first row); an
    error for a request of several rows (request_rows) is narrowed down by
    asking again for the first half of that request's rows, then the rest.
    The answers received meanwhile are kept: asked again, a row is not sent
    again."""
    with request.answers_retained():
        return _longest_answered(answer, rows)[0]


def _longest_answered(answer: Callable[[List[Any]], List[Any]], rows: List[Any]) -> Tuple[List[Any], bool]:
    """(answers of the longest first part of rows whose calls succeed,
    whether a row failed)."""
    if not rows:
        return [], False
    try:
        return answer(rows), False
    except AwsMlError as error:
        if not error.about_input:
            raise
        request = error.request_rows
        if request and len(request) > 1:
            middle = request[len(request) // 2] - 1
            first, failed = _longest_answered(answer, rows[:middle])
            if failed:
                return first, True
            rest, failed = _longest_answered(answer, rows[middle:])
            return first + rest, failed
        failed_at = (error.ordinality or 1) - 1
        return _longest_answered(answer, rows[:failed_at])[0], True
