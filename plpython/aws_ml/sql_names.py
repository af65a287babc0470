"""Names in the text of SQL that this package writes. PL/Python hands a
query's text to PostgreSQL as UTF-8 whatever the database's encoding, so in
a database whose encoding is neither UTF8 nor SQL_ASCII (which takes bytes
as they come) a non-ASCII name is written with Unicode escapes (U&"..."),
which PostgreSQL converts to the database's encoding; and refused when that
conversion would not give the name back, or the name is another's in
Unicode (EUC_JP maps two characters to one code point)."""
from typing import Sequence

from . import backend
from .errors import AwsMlError

FEATURE_NOT_SUPPORTED = "0A000"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
_TAKEN_AS_WRITTEN = ("UTF8", "SQL_ASCII")
_HINT = "Rename them with characters that have a Unicode code point of their own, or use a UTF8 database."


def _escaping() -> bool:
    return backend.database_encoding() not in _TAKEN_AS_WRITTEN


def _unicode_escape(character: str) -> str:
    """character as U&"..." writes a code point."""
    code = ord(character)
    return f"\\{code:04X}" if code <= 0xFFFF else f"\\+{code:06X}"


def identifier(name: str) -> str:
    """name quoted as an identifier, for a query's text."""
    quoted = name.replace('"', '""')
    if quoted.isascii() or not _escaping():
        return f'"{quoted}"'
    return 'U&"' + "".join(c if c.isascii() else _unicode_escape(c) for c in quoted.replace("\\", "\\\\")) + '"'


def refuse_unless_named_exactly(procedure: str, table: str, relid: int, attnums: Sequence[int]) -> None:
    """Raises unless the names of table relid (table: as messages name it),
    of its schema and of its columns attnums are their own in Unicode
    (extension/src/unicode_names.c): PL/Python gave those names converted to
    Unicode, so a name that converts back to another, or that another
    schema, table or column shares in Unicode, may not be the one the caller
    meant, and identifier() would not name it."""
    answer = backend.unicode_names(relid, attnums)
    cannot = (f"{procedure}: {table} and its columns cannot be named in SQL in this database's encoding "
              f"({backend.database_encoding()})")
    if answer == backend.UNICODE_NAMES_TAKEN:
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"{cannot}: a character of a name converts to another, or another "
                                                "table or column has a name that is the same in Unicode", hint=_HINT)
    if answer == backend.UNICODE_NAMES_SCHEMA_TAKEN:
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"{cannot}: another schema has a name that is the same in Unicode as "
                                                "the table's schema", hint=_HINT)
    if answer == backend.UNICODE_NAMES_NO_RELATION:
        raise AwsMlError(UNDEFINED_TABLE, f"{procedure}: {table} was dropped")
    if answer == backend.UNICODE_NAMES_NO_COLUMN:
        raise AwsMlError(UNDEFINED_COLUMN, f"{procedure}: a column of {table} that it reads or writes was dropped")


def quote_ident(name: str) -> str:
    """name as pg_catalog.quote_ident writes it, for messages (plpy.quote_ident
    reads its argument as UTF-8 whatever the database's encoding)."""
    import plpy
    plan = plpy.prepare("SELECT pg_catalog.quote_ident($1) AS name", ["pg_catalog.text"])
    return plpy.execute(plan, [name])[0]["name"]
