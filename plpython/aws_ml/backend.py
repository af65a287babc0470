"""The PostgreSQL backend this package runs in, read through the accessors the
aws_ml C module exports (extension/src/python/backend.c), never through the server's
own symbols. PostgreSQL 15 refuses, during a parallel operation (in the
workers and in the leader alike), the subtransaction that every plpy.execute
opens; settings and pending cancels are read here instead."""
import contextlib
import ctypes
import os
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple, overload

from . import errors


class _CallState(ctypes.Structure):
    """extension/src/python/backend.h's AwsMlCallState."""
    _fields_ = [("settings_generation", ctypes.c_uint64), ("transaction_start", ctypes.c_int64),
                ("statement_start", ctypes.c_int64), ("processes_sharing_requests", ctypes.c_int32),
                ("ready", ctypes.c_bool)]


_ACCESSORS = {
    "aws_ml_begin_call": (ctypes.c_void_p, (ctypes.POINTER(_CallState), ctypes.c_bool)),
    "aws_ml_settings": (ctypes.c_void_p, (ctypes.POINTER(ctypes.c_int),)),
    "aws_ml_database_encoding": (ctypes.c_char_p, ()),
    "aws_ml_may_commit": (ctypes.c_bool, ()),
    "aws_ml_as_plpython_reads": (ctypes.c_char_p, (ctypes.c_char_p,)),
    "aws_ml_interrupt_pending": (ctypes.c_bool, ()),
    "aws_ml_check_for_interrupts": (ctypes.c_int, (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)),
    "aws_s3_transfer_pipe": (ctypes.c_int, (ctypes.c_bool, ctypes.POINTER(ctypes.c_uint64))),
    "aws_ml_unguard_errors": (None, (ctypes.c_void_p,)),
    "aws_ml_run_as_owner": (ctypes.c_void_p, (ctypes.c_uint32,)),
    "aws_ml_end_run_as_owner": (None, (ctypes.c_void_p,)),
    "aws_ml_stop_threads_at_exit": (None, ()),
    "aws_ml_raising": (None, (ctypes.c_char_p, ctypes.c_char_p)),
    "aws_ml_check_unicode_names": (ctypes.c_int, (ctypes.c_uint32, ctypes.POINTER(ctypes.c_int16), ctypes.c_int,
                                                  ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int)),
}
_module: Optional[ctypes.CDLL] = None
_encoding: Optional[str] = None
_raw_state = _CallState()
_message = ctypes.create_string_buffer(1024)
_detail = ctypes.create_string_buffer(len(_message))


@dataclass(frozen=True)
class CallState:
    """What a call needs of the backend, read as it begins: the settings'
    generation (extension/src/settings.c: it moves when one changes), the
    statement's identity (the start times of it and of its transaction;
    parallel workers share the leader's) and the processes of a parallel
    query that share aws_ml.max_concurrency while a batch is asked for (0:
    this process alone)."""
    settings_generation: int
    statement: Tuple[int, int]
    processes_sharing_requests: int


_call: Optional[CallState] = None  # the state of the call under way (entry.py)


def _bind() -> Optional[ctypes.CDLL]:
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


def _accessors() -> ctypes.CDLL:
    """The module's accessors. The module is loaded: it made this package
    importable (extension/src/python/python_path.c)."""
    global _module
    if _module is None:
        _module = _bind()
        if _module is None:
            raise errors.AwsMlError(errors.NOT_CONFIGURED,
                                    "the aws_ml module in $libdir/plugins lacks this package's accessors",
                                    hint="Reinstall the extension (make install), then reconnect.")
    return _module


def begin_call(guard_errors: bool = False) -> Tuple[CallState, Optional[int]]:
    """The backend's state as a call begins, and with guard_errors, a guard
    (None: nothing to guard) under which errors raised beneath are made
    readable by PL/Python outside UTF8 (extension/src/python/plpython_errors.c)
    until unguard_errors(guard); in one crossing. A module whose _PG_init
    failed is loaded but not ready: its settings may be placeholders any user
    set."""
    guard = _accessors().aws_ml_begin_call(ctypes.byref(_raw_state), guard_errors)
    raw = _raw_state
    if not raw.ready:
        unguard_errors(guard)
        raise errors.AwsMlError(errors.NOT_CONFIGURED, "the aws_ml module did not finish loading in this backend",
                                hint="Call an aws_ml function once in the session before any parallel query, or "
                                     "add '$libdir/plugins/aws_ml' to session_preload_libraries.")
    return CallState(raw.settings_generation, (raw.transaction_start, raw.statement_start),
                     raw.processes_sharing_requests), guard


@contextlib.contextmanager
def call() -> Iterator[None]:
    """Within: a call from SQL (entry.py), whose state call_state() gives;
    its errors guarded. Calls nest (the SQL a call runs may call again)."""
    global _call
    outer = _call
    state, guard = begin_call(guard_errors=True)
    _call = state
    try:
        yield
    finally:
        _call = outer
        unguard_errors(guard)


def call_state() -> CallState:
    """The state of the call under way; outside one (a DO block), the backend's now."""
    return _call or begin_call()[0]


def refresh_call_state() -> None:
    """After the call committed or rolled back: its statement is identified
    by its new transaction."""
    global _call
    if _call is not None:
        _call = begin_call()[0]


def settings_values() -> Dict[str, str]:
    """The module's settings: {name: value as text}, as
    extension/src/settings.c defines them."""
    length = ctypes.c_int()
    address = _accessors().aws_ml_settings(ctypes.byref(length))
    fields = ctypes.string_at(address, length.value).split(b"\0")[:-1]
    return {name.decode("ascii"): _decoded(value) for name, value in zip(fields[::2], fields[1::2])}


def _decoded(value: bytes) -> str:
    return value.decode("ascii") if value.isascii() else value.decode(_codec(), "backslashreplace")


def database_encoding() -> str:
    """The name of the database's encoding, as getdatabaseencoding() gives it."""
    global _encoding
    if _encoding is None:
        _encoding = _accessors().aws_ml_database_encoding().decode()
    return _encoding


# Python's codecs for PostgreSQL's server encodings but UTF8 and SQL_ASCII.
_CODECS = {
    **{f"LATIN{n}": f"iso8859_{part}" for n, part in zip(range(1, 11), (1, 2, 3, 4, 9, 10, 13, 14, 15, 16))},
    **{f"ISO_8859_{n}": f"iso8859_{n}" for n in (5, 6, 7, 8)},
    **{f"WIN{n}": f"cp{n}" for n in (866, 874, *range(1250, 1259))},
    "KOI8R": "koi8_r", "KOI8U": "koi8_u", "EUC_JP": "euc_jp", "EUC_JIS_2004": "euc_jis_2004", "EUC_KR": "euc_kr",
    "EUC_CN": "gb2312", "GBK": "gbk", "GB18030": "gb18030", "UHC": "cp949", "JOHAB": "johab", "BIG5": "cp950",
    "SJIS": "cp932", "SHIFT_JIS_2004": "shift_jis_2004",
}


def _codec() -> str:
    """Python's codec for the database's encoding (ASCII for one it lacks);
    SQL_ASCII's bytes are taken as UTF-8, as PL/Python takes them."""
    return _codec_of(database_encoding())


def _codec_of(encoding: str) -> str:
    return "utf-8" if encoding in ("UTF8", "SQL_ASCII") else _CODECS.get(encoding, "ascii")


@overload
def in_database_encoding(text: str) -> str: ...


@overload
def in_database_encoding(text: Optional[str]) -> Optional[str]: ...


def in_database_encoding(text: Optional[str]) -> Optional[str]:
    """text with each character the database's encoding lacks written as a
    Python escape (\\u20ac): PL/Python refuses to hand PostgreSQL a text it
    cannot convert (22P05), and an AWS message may hold any character."""
    if text is None or text.isascii():
        return text
    codec = _codec()
    return text.encode(codec, "backslashreplace").decode(codec)


def as_plpython_reads(text: str) -> str:
    """text, an argument from the database, as PL/Python reads it in an
    error raised beneath a guard (extension/src/python/plpython_errors.c)."""
    if text.isascii():
        return text
    codec = _codec()
    return _accessors().aws_ml_as_plpython_reads(text.encode(codec, "backslashreplace")).decode(codec)


def unguard_errors(guard: Optional[int]) -> None:
    if guard is not None:
        _accessors().aws_ml_unguard_errors(guard)


def announce_error(plpython_message: str, sql_message: str) -> None:
    """Tells the module the error about to be raised to PL/Python: the
    message PL/Python will make of it, and the one SQL is to read
    (extension/src/python/deliberate_errors.c)."""
    module = _module or _bind()  # also where the module's load did not finish
    if module is None:  # the module lacks the accessor: PL/Python's form stays
        return
    codec = _codec_of(module.aws_ml_database_encoding().decode())
    module.aws_ml_raising(plpython_message.encode(codec, "backslashreplace"),
                          sql_message.encode(codec, "backslashreplace"))


def may_commit() -> bool:
    """Whether the procedure under way may COMMIT: CALLed outside a
    transaction block and its callers' exception blocks."""
    return _accessors().aws_ml_may_commit()


def cancel_pending() -> bool:
    """Whether a cancel, statement_timeout or termination awaits the backend."""
    return _accessors().aws_ml_interrupt_pending()


def process_interrupts() -> Optional[Tuple[str, str, Optional[str]]]:
    """Lets PostgreSQL process a pending interrupt, without SPI: the
    (SQLSTATE, message, detail) of the error it raised for a cancel, a
    timeout or a recovery conflict, None when none was pending; a
    termination ends the process."""
    code = _accessors().aws_ml_check_for_interrupts(_message, _detail, len(_message))
    if not code:
        return None
    return errors.unpacked_sqlstate(code), _decoded(_message.value), _decoded(_detail.value) or None


# extension/src/unicode_names.h's UnicodeNames
(UNICODE_NAMES_OWN, UNICODE_NAMES_TAKEN, UNICODE_NAMES_SCHEMA_TAKEN, UNICODE_NAMES_NO_RELATION,
 UNICODE_NAMES_NO_COLUMN, UNICODE_NAMES_FAILED) = range(6)


def unicode_names(relid: int, attnums: Sequence[int]) -> int:
    """Whether the names of table relid, of its schema and of its columns
    attnums are their own in Unicode, as PL/Python passes names
    (extension/src/unicode_names.c): one of the UNICODE_NAMES_ values. The
    server's error that stopped the check (a cancel, a lock timeout) is
    raised as PL/Python raises the errors of the SQL it runs."""
    sqlerrcode = ctypes.c_int()
    answer = _accessors().aws_ml_check_unicode_names(relid, (ctypes.c_int16 * len(attnums))(*attnums), len(attnums),
                                                     ctypes.byref(sqlerrcode), _message, len(_message))
    if answer == UNICODE_NAMES_FAILED:
        raise errors.server_error(errors.unpacked_sqlstate(sqlerrcode.value), _decoded(_message.value))
    return answer


def transfer_pipe(export: bool) -> Tuple[int, int]:
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


@contextlib.contextmanager
def running_as(owner: int) -> Iterator[None]:
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


def stop_threads_at_exit() -> None:
    """Has the process run wait.stop_threads before it exits, on FATAL too
    (extension/src/python/python_exit.c); on the backend's thread."""
    _accessors().aws_ml_stop_threads_at_exit()
