"""Network calls run on worker threads while the backend's own thread waits in
short slices and lets PostgreSQL process interrupts between them, so that
Ctrl-C (pg_cancel_backend) and statement_timeout stop a statement whose
request is blocked on a socket. Worker threads never call plpy."""
import concurrent.futures
import signal
import threading

from . import backend

_SLICE_SECONDS = 0.05
MAX_WORKERS = 32
_pool = None
_pool_lock = threading.Lock()
_interrupt_check = None


def _block_signals():
    # PostgreSQL's signal handlers must run on the backend's own thread.
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))


def pool():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=MAX_WORKERS, thread_name_prefix="aws_ml", initializer=_block_signals)
    return _pool


def _check_for_interrupts():
    """Raises plpy's QueryCanceled (SQLSTATE 57014) when a cancel is pending."""
    global _interrupt_check
    import plpy
    if backend.in_parallel_mode():
        if backend.cancel_pending():
            raise plpy.spiexceptions.QueryCanceled("canceling statement during a parallel operation")
        return
    if _interrupt_check is None:
        _interrupt_check = plpy.prepare("SELECT 1")
    plpy.execute(_interrupt_check)


def wait_all(futures, stop_on_error=False):
    """Waits for futures while PostgreSQL can cancel the statement. Returns when
    all are done or, with stop_on_error, when one has failed. On a cancel, an
    error or an early return, the futures not yet started are cancelled."""
    mode = concurrent.futures.FIRST_EXCEPTION if stop_on_error else concurrent.futures.ALL_COMPLETED
    pending = set(futures)
    try:
        while pending:
            done, pending = concurrent.futures.wait(pending, _SLICE_SECONDS, mode)
            if stop_on_error and any(not f.cancelled() and f.exception() for f in done):
                break
            if pending:
                _check_for_interrupts()
    finally:
        for future in pending:
            future.cancel()


def run(function, *args, **kwargs):
    """Runs function on a worker thread and returns its result, cancellably."""
    future = pool().submit(function, *args, **kwargs)
    wait_all([future])
    return future.result()
