"""The PostgreSQL backend this package runs in, asked directly through the
C symbols it exports. PostgreSQL 15 refuses, during a parallel operation (in
the workers and in the leader alike), the subtransaction that every
plpy.execute opens; settings and pending cancels are then read here."""
import ctypes

_process = None


def _symbols():
    global _process
    if _process is None:
        # The postgres executable and the modules it loaded (RTLD_GLOBAL).
        _process = ctypes.CDLL(None)
        _process.IsInParallelMode.restype = ctypes.c_bool
        _process.GetConfigOption.restype = ctypes.c_char_p
        _process.GetConfigOption.argtypes = (ctypes.c_char_p, ctypes.c_bool, ctypes.c_bool)
        _process.GetCurrentTransactionStartTimestamp.restype = ctypes.c_int64
        _process.GetCurrentStatementStartTimestamp.restype = ctypes.c_int64
    return _process


def in_parallel_mode():
    return _symbols().IsInParallelMode()


def module_loaded():
    """Whether the aws_ml C module, which defines the aws_ml.* settings, is
    loaded (it exports aws_sagemaker_invoke_endpoint)."""
    return hasattr(_symbols(), "aws_sagemaker_invoke_endpoint")


def setting(name):
    """A setting's value as text (GetConfigOption with missing_ok: never raises)."""
    value = _symbols().GetConfigOption(name.encode(), True, False)
    return None if value is None else value.decode()


def cancel_pending():
    """Whether a cancel, statement_timeout or termination awaits the backend."""
    symbols = _symbols()
    return any(ctypes.c_int.in_dll(symbols, flag).value for flag in ("QueryCancelPending", "ProcDiePending"))


def statement_id():
    """Identifies the current top-level statement (parallel workers share the
    leader's): the start times of it and of its transaction."""
    symbols = _symbols()
    return symbols.GetCurrentTransactionStartTimestamp(), symbols.GetCurrentStatementStartTimestamp()
