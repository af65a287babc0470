"""The PostgreSQL backend this package runs in, read through the accessors the
aws_ml C module exports (extension/src/python/backend.c), never through the server's
own symbols. PostgreSQL 15 refuses, during a parallel operation (in the
workers and in the leader alike), the subtransaction that every plpy.execute
opens; settings and pending cancels are read here instead."""
import contextlib
import ctypes
import os

from . import errors

_ACCESSORS = {
    "aws_ml_ready": (ctypes.c_bool, ()),
    "aws_ml_setting": (ctypes.c_char_p, (ctypes.c_char_p,)),
    "aws_ml_in_parallel_mode": (ctypes.c_bool, ()),
    "aws_ml_interrupt_pending": (ctypes.c_bool, ()),
    "aws_ml_transaction_start": (ctypes.c_int64, ()),
    "aws_ml_statement_start": (ctypes.c_int64, ()),
    "aws_s3_transfer_pipe": (ctypes.c_int, (ctypes.c_bool, ctypes.POINTER(ctypes.c_uint64))),
    "aws_ml_database_encoding": (ctypes.c_char_p, ()),
    "aws_ml_guard_errors": (ctypes.c_void_p, ()),
    "aws_ml_processes_sharing_requests": (ctypes.c_int, ()),
    "aws_ml_unguard_errors": (None, (ctypes.c_void_p,)),
    "aws_ml_run_as_owner": (ctypes.c_void_p, (ctypes.c_uint32,)),
    "aws_ml_end_run_as_owner": (None, (ctypes.c_void_p,)),
    "aws_ml_stop_threads_at_exit": (None, ()),
    "aws_ml_raising": (None, (ctypes.c_char_p, ctypes.c_char_p)),
}
_module = None
_ready = False


def _bind():
    """The accessors, or None while the module is not loaded. PostgreSQL loads
    modules with RTLD_GLOBAL: their symbols are the process's."""
    process = ctypes.CDLL(None, use_errno=True)
    try:
        for name, (restype, argtypes) in _ACCESSORS.items():
            accessor = getattr(process, name)
            accessor.restype, accessor.argtypes = restype, argtypes
    except AttributeError:
        return None
    return process


def _accessors():
    """The module's accessors. The module is loaded: it made this package
    importable (extension/src/python/python_path.c). A module whose _PG_init failed
    is loaded but not ready: its settings may be placeholders any user set."""
    global _module, _ready
    if _ready:
        return _module
    if _module is None:
        _module = _bind()
        if _module is None:
            raise errors.AwsMlError(errors.NOT_CONFIGURED,
                                    "the aws_ml module in $libdir/plugins lacks this package's accessors",
                                    hint="Reinstall the extension (make install), then reconnect.")
    if not _module.aws_ml_ready():
        raise errors.AwsMlError(errors.NOT_CONFIGURED, "the aws_ml module did not finish loading in this backend",
                                hint="Call an aws_ml function once in the session before any parallel query, or "
                                     "add '$libdir/plugins/aws_ml' to session_preload_libraries.")
    _ready = True
    return _module


def setting(name):
    """A setting's value as text; None when it does not exist."""
    value = _accessors().aws_ml_setting(name.encode())
    if value is None:
        return None
    # every call reads every setting: an ASCII value needs no lookup of the encoding
    return value.decode("ascii") if value.isascii() else value.decode(_codec(), "backslashreplace")


def database_encoding():
    """The name of the database's encoding, as getdatabaseencoding() gives it."""
    return _accessors().aws_ml_database_encoding().decode()


# Python's codecs for PostgreSQL's server encodings but UTF8 and SQL_ASCII.
_CODECS = {
    **{f"LATIN{n}": f"iso8859_{part}" for n, part in zip(range(1, 11), (1, 2, 3, 4, 9, 10, 13, 14, 15, 16))},
    **{f"ISO_8859_{n}": f"iso8859_{n}" for n in (5, 6, 7, 8)},
    **{f"WIN{n}": f"cp{n}" for n in (866, 874, *range(1250, 1259))},
    "KOI8R": "koi8_r", "KOI8U": "koi8_u", "EUC_JP": "euc_jp", "EUC_JIS_2004": "euc_jis_2004", "EUC_KR": "euc_kr",
    "EUC_CN": "gb2312", "GBK": "gbk", "GB18030": "gb18030", "UHC": "cp949", "JOHAB": "johab", "BIG5": "cp950",
    "SJIS": "cp932", "SHIFT_JIS_2004": "shift_jis_2004",
}


def _codec():
    """Python's codec for the database's encoding (ASCII for one it lacks);
    SQL_ASCII's bytes are taken as UTF-8, as PL/Python takes them."""
    return _codec_of(database_encoding())


def _codec_of(encoding):
    return "utf-8" if encoding in ("UTF8", "SQL_ASCII") else _CODECS.get(encoding, "ascii")


def in_database_encoding(text):
    """text with each character the database's encoding lacks written as a
    Python escape (\\u20ac): PL/Python refuses to hand PostgreSQL a text it
    cannot convert (22P05), and an AWS message may hold any character."""
    if text is None or text.isascii():
        return text
    codec = _codec()
    return text.encode(codec, "backslashreplace").decode(codec)


def guard_errors():
    """Until unguard_errors(guard), errors raised beneath are made readable by
    PL/Python outside UTF8 (extension/src/python/plpython_errors.c); the guard."""
    return _accessors().aws_ml_guard_errors()


def unguard_errors(guard):
    if guard is not None:
        _accessors().aws_ml_unguard_errors(guard)


def processes_sharing_requests():
    """The processes of a parallel query that share aws_ml.max_concurrency
    while a batch is asked for (0: this process alone)."""
    return _accessors().aws_ml_processes_sharing_requests()


def announce_error(plpython_message, sql_message):
    """Tells the module the error about to be raised to PL/Python: the
    message PL/Python will make of it, and the one SQL is to read
    (extension/src/python/deliberate_errors.c)."""
    module = _module or _bind()  # also where the module's load did not finish
    if module is None:  # the module lacks the accessor: PL/Python's form stays
        return
    codec = _codec_of(module.aws_ml_database_encoding().decode())
    module.aws_ml_raising(plpython_message.encode(codec, "backslashreplace"),
                          sql_message.encode(codec, "backslashreplace"))


def in_parallel_mode():
    return _accessors().aws_ml_in_parallel_mode()


def cancel_pending():
    """Whether a cancel, statement_timeout or termination awaits the backend."""
    return _accessors().aws_ml_interrupt_pending()


def transfer_pipe(export):
    """A new pipe between this package and aws_s3's COPY in the module
    (extension/src/s3/s3_copy.c), which keeps the other end: (the end to read an
    export from, or to write an import to, which the caller closes; the
    transfer's token, as the bigint the _copy_ functions take)."""
    token = ctypes.c_uint64()
    fd = _accessors().aws_s3_transfer_pipe(export, ctypes.byref(token))
    if fd < 0:
        raise errors.AwsMlError(errors.NOT_CONFIGURED,
                                f"could not create a pipe: {os.strerror(ctypes.get_errno())}")
    return fd, ctypes.c_int64(token.value).value


def statement_id():
    """Identifies the current top-level statement (parallel workers share the
    leader's): the start times of it and of its transaction."""
    accessors = _accessors()
    return accessors.aws_ml_transaction_start(), accessors.aws_ml_statement_start()


@contextlib.contextmanager
def running_as(owner):
    """Within: this backend runs as the role owner (an OID) in a
    security-restricted operation, as PostgreSQL's maintenance commands run a
    table's code as its owner (extension/src/python/run_as_owner.c)."""
    saved = _accessors().aws_ml_run_as_owner(owner)
    if saved is None:
        raise errors.AwsMlError(errors.OUT_OF_MEMORY, "aws_ml: out of memory")
    try:
        yield
    finally:
        _accessors().aws_ml_end_run_as_owner(saved)


def stop_threads_at_exit():
    """Has the process run wait.stop_threads before it exits, on FATAL too
    (extension/src/python/python_exit.c); on the backend's thread."""
    _accessors().aws_ml_stop_threads_at_exit()
