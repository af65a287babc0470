"""Names in the text of SQL that this package writes. PL/Python hands a
query's text to PostgreSQL as UTF-8 whatever the database's encoding, so in
a database whose encoding is neither UTF8 nor SQL_ASCII (which takes bytes
as they come) a non-ASCII name is written with Unicode escapes (U&"..."),
which PostgreSQL converts to the database's encoding; and refused when that
conversion would not give the name back (EUC_JP maps two characters to one
code point)."""
from typing import Callable, Dict

from . import backend
from .errors import AwsMlError

FEATURE_NOT_SUPPORTED = "0A000"
_TAKEN_AS_WRITTEN = ("UTF8", "SQL_ASCII")


def _escaping() -> bool:
    return backend.database_encoding() not in _TAKEN_AS_WRITTEN


def _escaped(text: str, escape: Callable[[int], str]) -> str:
    """text with each non-ASCII character written escape(code point)."""
    return "".join(c if c.isascii() else escape(ord(c)) for c in text)


def identifier(name: str) -> str:
    """name quoted as an identifier, for a query's text."""
    quoted = name.replace('"', '""')
    if quoted.isascii() or not _escaping():
        return f'"{quoted}"'
    return 'U&"' + _escaped(quoted.replace("\\", "\\\\"),
                            lambda code: f"\\{code:04X}" if code <= 0xFFFF else f"\\+{code:06X}") + '"'


# Whether the names of a table ($1), of its schema and of its columns $2 (in
# order) are those {written}, and whether no other table of the schema and no
# other column of the table has a name with the same Unicode.
_CATALOG_NAMES = (
    "SELECT ARRAY[n.nspname::pg_catalog.text, c.relname::pg_catalog.text] OPERATOR(pg_catalog.||) "
    "ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest($2::pg_catalog.int2[]) WITH ORDINALITY "
    "AS k(attnum, i) JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid "
    "AND a.attnum OPERATOR(pg_catalog.=) k.attnum ORDER BY k.i) OPERATOR(pg_catalog.=) "
    "ARRAY[{written}]::pg_catalog.text[] AS whole, "
    "NOT EXISTS (SELECT FROM pg_catalog.pg_class o WHERE o.relnamespace OPERATOR(pg_catalog.=) c.relnamespace "
    "AND o.oid OPERATOR(pg_catalog.<>) c.oid AND pg_catalog.convert_to(o.relname::pg_catalog.text, 'UTF8') "
    "OPERATOR(pg_catalog.=) pg_catalog.convert_to(c.relname::pg_catalog.text, 'UTF8')) "
    "AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attribute o "
    "ON o.attrelid OPERATOR(pg_catalog.=) a.attrelid AND o.attnum OPERATOR(pg_catalog.<>) a.attnum "
    "WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) ANY ($2) "
    "AND o.attnum OPERATOR(pg_catalog.>) 0 AND NOT o.attisdropped "
    "AND pg_catalog.convert_to(o.attname::pg_catalog.text, 'UTF8') "
    "OPERATOR(pg_catalog.=) pg_catalog.convert_to(a.attname::pg_catalog.text, 'UTF8')) AS unique "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
    "WHERE c.oid OPERATOR(pg_catalog.=) $1")


def refuse_unless_named_exactly(what: str, relid: int, schema: str, table: str, columns: Dict[int, str]) -> None:
    """Raises unless identifier() writes the names of table relid, of its
    schema and of its columns ({attnum: name}) so that they name them and
    nothing else. PL/Python gave those names converted to Unicode: a name
    that another table or column shares in Unicode may not be the one the
    caller meant. Each is written with escapes in a literal, which
    PostgreSQL converts back as it converts U&"..." identifiers, and compared
    with the catalog's. what: how to name them in the error."""
    import plpy
    names = [schema, table, *columns.values()]
    if all(name.isascii() for name in names) or not _escaping():
        return
    written = ", ".join("E'" + _escaped(name.replace("\\", "\\\\").replace("'", "''"),
                                        lambda code: f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
                        + "'" for name in names)
    plan = plpy.prepare(_CATALOG_NAMES.format(written=written), ["pg_catalog.oid", "pg_catalog.int2[]"])
    found = plpy.execute(plan, [relid, list(columns)])[0]
    if not (found["whole"] and found["unique"]):
        raise AwsMlError(FEATURE_NOT_SUPPORTED,
                         f"{what} cannot be named in SQL in this database's encoding "
                         f"({backend.database_encoding()}): a character of a name converts to another, or another "
                         "table or column has a name that is the same in Unicode",
                         hint="Rename them with characters that have a Unicode code point of their own, "
                              "or use a UTF8 database.")


def quote_ident(name: str) -> str:
    """name as pg_catalog.quote_ident writes it, for messages (plpy.quote_ident
    reads its argument as UTF-8 whatever the database's encoding)."""
    import plpy
    plan = plpy.prepare("SELECT pg_catalog.quote_ident($1) AS name", ["pg_catalog.text"])
    return plpy.execute(plan, [name])[0]["name"]
