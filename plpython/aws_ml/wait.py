"""Network calls run on worker threads while the backend's own thread waits in
short slices and lets PostgreSQL process interrupts between them, so that
Ctrl-C (pg_cancel_backend) and statement_timeout stop a statement whose
request is blocked on a socket. A statement that stops early also stops the
requests it has in flight (inflight.py). Worker threads never call plpy,
nor anything of the server: only the backend's thread does. Before the
process exits, every thread is stopped (stop_threads)."""
import concurrent.futures
import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, List, Optional, Sequence, TypeVar

from . import backend, errors, inflight

T = TypeVar("T")

# How long a wait goes on before it checks for a cancel again.
SLICE_SECONDS = 0.05
# How long a stopping statement waits for its grounded requests to end: a
# request whose socket was shut down ends at once, one in a retry's backoff
# ends when the backoff does (and sends nothing more).
_LANDING_SECONDS = 0.5
MAX_WORKERS = 32
# How long an exiting process waits for its threads, once their sockets are
# shut down: a request ends at once, a retry's backoff when it ends (and it
# then sends nothing).
_EXIT_SECONDS = 2
_EXIT_POLL_SECONDS = 0.001
_THREAD_NAMES = ("aws_ml",)
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_pool_lock = threading.Lock()
_in_backend = True
_EVERY_SIGNAL = frozenset(signal.Signals)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """The threads started within block every signal from their first
    instruction on, as they inherit this thread's mask: PostgreSQL's signal
    handlers must run on the backend's own thread. Signals that arrive
    meanwhile wait until the mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _EVERY_SIGNAL)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def outside_a_backend() -> None:
    """This process is aws_ml's own, not a backend: aws_s3's transfer process
    (transfer_main.py), which has no server to call and leaves by os._exit,
    running no library's cleanup under its threads."""
    global _in_backend
    _in_backend = False


def pool() -> concurrent.futures.ThreadPoolExecutor:
    """The worker threads' pool; in a backend, made on the backend's thread,
    which has the process stop them before it exits."""
    global _pool
    with _pool_lock:
        if _pool is None:
            if _in_backend:
                backend.stop_threads_at_exit()
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=MAX_WORKERS,
                                                          thread_name_prefix=_THREAD_NAMES[0])
    return _pool


def stop_threads() -> int:
    """Before the process exits (extension/src/python/python_exit.c), on the
    backend's thread: every request stopped and its socket shut down, the
    tasks not started never started, and every thread of this package given
    _EXIT_SECONDS in all to end, its thread-local destructors run; how many
    are still running."""
    inflight.ground_every_flight()
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + _EXIT_SECONDS
    threads = [thread for thread in threading.enumerate()
               if thread is not threading.current_thread() and thread.name.startswith(_THREAD_NAMES)]
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    ended = [thread.native_id for thread in threads if not thread.is_alive()]
    return len(threads) - len(ended) + _still_exiting(ended, deadline)


def _still_exiting(native_ids: List[Optional[int]], deadline: float) -> int:
    """How many of the threads native_ids, which Python has seen end, the
    kernel still runs at deadline. A joined thread has not exited yet: it
    still runs its thread-local destructors, OpenSSL's among them, and the
    process's exit would clean OpenSSL up under it."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():  # not Linux: nothing to wait on
        return 0
    remaining = [tasks / str(native_id) for native_id in native_ids if native_id is not None]
    while remaining and time.monotonic() < deadline:
        remaining = [task for task in remaining if task.exists()]
        if remaining:
            time.sleep(_EXIT_POLL_SECONDS)
    return sum(task.exists() for task in remaining)


def submit(flight: inflight.Flight, task: Callable[[], T]) -> "concurrent.futures.Future[T]":
    """Starts task on a worker thread, within flight; its future."""
    with signals_blocked():  # submit may start one of the pool's threads
        return pool().submit(flight.run, task)


def check_for_interrupts() -> None:
    """Raises the server's error for a pending cancel or timeout (SQLSTATE
    57014), as PL/Python raises the errors of the SQL it runs: PostgreSQL
    processes the interrupt itself (backend.process_interrupts), in parallel
    workers too."""
    if not backend.cancel_pending():  # the usual case, in the cheapest crossing
        return
    interrupted = backend.process_interrupts()
    if interrupted is not None:
        raise errors.server_error(*interrupted)


def result_in_slices(future: "concurrent.futures.Future[T]", between: Callable[[], None]) -> T:
    """future's result; waits in short slices and calls between() after each
    slice that ended without it (between raises to stop waiting)."""
    while True:
        try:
            return future.result(SLICE_SECONDS)
        except concurrent.futures.TimeoutError:
            if future.done():  # the task's own TimeoutError
                raise
            between()


def _land(flight: inflight.Flight, pending: Collection["concurrent.futures.Future[Any]"]) -> None:
    """Stops the tasks of flight still pending: those not started never start,
    the requests in flight are grounded and given a moment to end."""
    for future in pending:
        future.cancel()
    flight.ground()
    concurrent.futures.wait(pending, _LANDING_SECONDS)


def run_all(tasks: Sequence[Callable[[], Any]], stop_on_error: bool = False) -> List["concurrent.futures.Future[Any]"]:
    """Runs each of tasks (callables) on a worker thread and waits while
    PostgreSQL can cancel the statement; returns the futures, in order. Waits
    for all or, with stop_on_error, until one has failed. On a cancel, an
    error or an early return, the tasks not yet started never start and the
    requests in flight are grounded."""
    flight = inflight.Flight()
    futures = [submit(flight, task) for task in tasks]
    mode = concurrent.futures.FIRST_EXCEPTION if stop_on_error else concurrent.futures.ALL_COMPLETED
    pending = set(futures)
    try:
        while pending:
            done, pending = concurrent.futures.wait(pending, SLICE_SECONDS, mode)
            if stop_on_error and any(not f.cancelled() and f.exception() for f in done):
                break
            if pending:
                check_for_interrupts()
    finally:
        if pending:
            _land(flight, pending)
    return futures


def run(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs function on a worker thread and returns its result, cancellably:
    run_all for one task, without the bookkeeping of many (a call a row)."""
    flight = inflight.Flight()
    future = submit(flight, lambda: function(*args, **kwargs))
    try:
        return result_in_slices(future, check_for_interrupts)
    finally:
        if not future.done():
            _land(flight, [future])
