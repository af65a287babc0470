"""The entry points from SQL: how a call of the package's functions begins
and how its errors reach SQL (docs/design.md, decision 5)."""
import functools
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, cast

from . import backend, stats
from .errors import SERVICE_FAILED, AwsMlError, as_spidata, spidata_of, unpacked_sqlstate

Function = TypeVar("Function", bound=Callable[..., Any])


def entry_of(extension: str) -> Callable[[Function], Function]:
    """Marks the entry points from SQL of extension's functions ("aws_ml",
    "aws_s3"): one SQL call in the stats; an AwsMlError reported as a
    PostgreSQL error with its SQLSTATE, DETAIL and HINT and a message that
    starts with the extension's name; an error of the SQL the package ran
    (the caller's query, COPY, a trigger) passed on as the server reported
    it; neither with PL/Python's traceback in CONTEXT (extension/src/python/
    deliberate_errors.c); and the errors of the SQL it runs readable by
    PL/Python in every encoding."""
    def mark(function: Function) -> Function:
        @functools.wraps(function)
        def entry(*args: Any, **kwargs: Any) -> Any:
            stats.begin_sql_call()
            try:
                with backend.call():
                    return function(*args, **kwargs)
            except AwsMlError as error:
                raise _aws_ml_error(extension, error) from None
            except Exception as error:
                if not _is_server_error(error):
                    raise
                raise _server_error(extension, error, [*args, *kwargs.values()]) from None
        return cast(Function, entry)
    return mark


sql_entry = entry_of("aws_ml")

_error_classes: Dict[Tuple[str, bool], type] = {}


def _for_sql(extension: str, text: str, sql_message: str, sqlstate: str, spidata: Optional[Tuple[Any, ...]] = None,
             **fields: Optional[str]) -> Exception:
    """A plpy.Error of text with the fields PL/Python reports (detail, hint,
    the object names), announced to the module as the error whose message
    SQL reads as sql_message. PL/Python prefixes text with the exception's
    type name, so the type is named after the extension. With spidata (a
    server error's, errors.as_spidata), a plpy.SPIError: PL/Python
    reports its fields, the internal query and position too, from there."""
    kind = (extension, spidata is not None)
    if kind not in _error_classes:
        import plpy
        _error_classes[kind] = type(extension, (plpy.SPIError if spidata is not None else plpy.Error,),
                                    {"__module__": "builtins"})
    error = _error_classes[kind](text)
    error.sqlstate = sqlstate
    for name, value in fields.items():
        setattr(error, name, value)
    if spidata is not None:
        error.spidata = spidata
    backend.announce_error(f"{extension}: {text}", sql_message)
    return error


def _aws_ml_error(extension: str, error: AwsMlError) -> Exception:
    text = backend.in_database_encoding(error.full_message())
    return _for_sql(extension, text, f"{extension}: {text}", error.sqlstate,
                    detail=backend.in_database_encoding(error.detail), hint=backend.in_database_encoding(error.hint))


def _is_server_error(error: Exception) -> bool:
    plpy = sys.modules.get("plpy")
    return plpy is not None and isinstance(error, plpy.SPIError)


_REPORTED_FIELDS = ("detail", "hint", "schema_name", "table_name", "column_name", "datatype_name", "constraint_name")


def _server_error(extension: str, error: Exception, arguments: List[Any]) -> Exception:
    """The server's error, as it reported it: its SQLSTATE, message, DETAIL,
    HINT and object names, without the internal query (the SQL the package
    built around the caller's) and its position, unless that query is one
    of the caller's arguments: aws_s3's COPY points a syntax error into the
    argument it is in (extension/src/s3/copy_arguments.c); outside UTF8
    PL/Python reads that argument as plpython_errors.c writes it."""
    spidata = spidata_of(error)
    if spidata:
        sqlstate = unpacked_sqlstate(spidata["sqlerrcode"])
    else:  # raised in Python as a plpy.spiexceptions class
        sqlstate = getattr(error, "sqlstate", None) or SERVICE_FAILED
    text = str(error.args[0]) if error.args else str(error)
    reported = {name: spidata[name] for name in _REPORTED_FIELDS if spidata.get(name) is not None}
    query = spidata.get("internal_query")
    if query is not None and any(query in (argument, backend.as_plpython_reads(argument))
                                 for argument in arguments if isinstance(argument, str)):
        return _for_sql(extension, text, text, sqlstate, spidata=as_spidata(spidata),
                        **reported)
    return _for_sql(extension, text, text, sqlstate, **reported)
