"""One function over many items on at most n of the pool's worker threads
("lanes"), results in item order. Each lane takes the next item not yet taken;
once an item fails or the wait is cancelled, no lane takes another, so the
items still queued are never sent, and the requests in flight are grounded
(wait.run_all). The function runs on worker threads: it must not call plpy."""
import itertools
import threading
from typing import Callable, List, Optional, Sequence, TypeVar, cast

from . import inflight, wait

Item = TypeVar("Item")
Result = TypeVar("Result")


class ItemFailed(Exception):
    """function raised error for items[index]."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def map_in_order(function: Callable[[Item], Result], items: Sequence[Item], lanes: int) -> List[Result]:
    """[function(item) for item in items], at most `lanes` at a time. The first
    item (in order) of those that failed, not counting those grounded because
    another failed, is raised as ItemFailed; cancels of the wait propagate."""
    results: List[Optional[Result]] = [None] * len(items)
    failures: List[ItemFailed] = []
    stop = threading.Event()
    take_lock = threading.Lock()
    next_index = itertools.count()

    def lane() -> None:
        while not stop.is_set():
            with take_lock:
                index = next(next_index)
            if index >= len(items):
                return
            try:
                results[index] = function(items[index])
            except Exception as error:
                stop.set()
                failed = ItemFailed(index, error)
                failures.append(failed)
                raise failed from None

    try:
        wait.run_all([lane] * min(lanes, len(items)), stop_on_error=True)
    finally:
        stop.set()
    if failures:
        # the requests a failure grounded fail too, after it
        failed_themselves = [failed for failed in failures if not isinstance(failed.error, inflight.Grounded)]
        raise min(failed_themselves or failures, key=lambda failed: failed.index)
    return cast(List[Result], results)  # every item's, none having failed
