"""How a backfill names a row from the SELECT that locks it to the UPDATE
that fills it: by ctid, or by primary key where a ctid does not name one row
(a Citus reference table has a copy on every node, and the copies' ctids
differ). A pass over a table goes by increasing address ($2, the address
after which to look); the value `first` is before every row."""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

from . import sql_names
from .errors import AwsMlError

FEATURE_NOT_SUPPORTED = "0A000"

RowId = Any  # a row's address as PL/Python gives it: a ctid's text, or the key's value


@dataclass(frozen=True)
class RowAddress:
    expression: str  # SQL: ctid, or the key column
    name: str  # for messages: ctid, or the key column's name
    sql_type: str
    first: RowId
    after: str  # SQL: the row comes after $2
    order_by: str  # SQL: how the SELECT orders its rows, if it must
    last: Callable[[List[Dict[str, Any]]], RowId]  # a batch's rows -> the address to go on after

    def array_type(self) -> str:
        return f"{self.sql_type}[]"

    def label(self, row_id: RowId) -> str:
        """The row at row_id, for messages: ctid (0,27), id 42."""
        return f"{self.name} {row_id}"


def _tid_order(ctid: str) -> Tuple[int, int]:
    block, offset = ctid.strip("()").split(",")
    return int(block), int(offset)


# No ORDER BY: a sequential scan from $2 (a TID range scan) returns rows in
# ctid order, and a sort would read the rest of the table every batch.
CTID = RowAddress("ctid", "ctid", "pg_catalog.tid", "(0,0)", "ctid OPERATOR(pg_catalog.>) $2", "",
                  lambda rows: max((row["row_id"] for row in rows), key=_tid_order))

_PRIMARY_KEY = (
    "SELECT a.attname AS name, a.attnum, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
    "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(t.typname) AS type "
    "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid "
    "AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0] "
    "JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace "
    "WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary AND i.indnkeyatts OPERATOR(pg_catalog.=) 1")


def primary_key(procedure: str, relid: int, table: str, why: str) -> RowAddress:
    """The address of table (relid) by its one-column primary key. why: why
    its ctids will not do, for the error when it has no such key. The key's
    name goes into the backfill's SQL, so it must name that column alone in
    Unicode, as the columns the backfill reads and writes must."""
    import plpy
    keys = plpy.execute(plpy.prepare(_PRIMARY_KEY, ["pg_catalog.oid"]), [relid])
    if not keys:
        raise AwsMlError(FEATURE_NOT_SUPPORTED, f"{procedure} names the rows of {table} by its primary key, "
                         f"and it has no primary key of one column", why,
                         "Add a primary key of one column, or fill it with an UPDATE (docs/scaling.md).")
    sql_names.refuse_unless_named_exactly(procedure, table, relid, [keys[0]["attnum"]])
    key = sql_names.identifier(keys[0]["name"])
    return RowAddress(key, sql_names.quote_ident(keys[0]["name"]), keys[0]["type"], None,
                      f"($2 IS NULL OR {key} OPERATOR(pg_catalog.>) $2)", f" ORDER BY {key}",
                      lambda rows: rows[-1]["row_id"])
