"""Writes refused where the transaction cannot write, before anything is
sent or downloaded: on a hot standby, and in a read-only transaction (BEGIN
READ ONLY, default_transaction_read_only) unless every table written is a
temporary table of this session, which PostgreSQL lets such a transaction
write. PostgreSQL itself refuses only when the statement that writes runs
(a backfill's SELECT ... FOR UPDATE, an import's COPY FROM, once the
import's download has started), with a message that names neither the
function nor what to do instead."""
from typing import Sequence

from .errors import AwsMlError

READ_ONLY_SQL_TRANSACTION = "25006"

# $1: the tables to write; one no longer in pg_class is not a temporary table of this session
_REFUSED = (
    "SELECT pg_catalog.pg_is_in_recovery() AS standby, "
    "pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' AND EXISTS ("
    "SELECT FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS t(relid) "
    "LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid "
    "WHERE c.relnamespace IS DISTINCT FROM pg_catalog.pg_my_temp_schema()) AS read_only")


def refuse_writes(relids: Sequence[int], refused: str, instead: str) -> None:
    """Raises 25006 when this transaction cannot write the tables relids:
    "<refused> on a hot standby" with the hint
    "<instead> on the primary: ...", or "<refused> in a read-only
    transaction" with the hint "<instead> in a read-write transaction: ..."."""
    import plpy
    state = plpy.execute(plpy.prepare(_REFUSED, ["pg_catalog.oid[]"]), [list(relids)])[0]
    if state["standby"]:
        raise AwsMlError(READ_ONLY_SQL_TRANSACTION, f"{refused} on a hot standby",
                         hint=f"{instead} on the primary: its rows reach the standbys by replication.")
    if state["read_only"]:
        raise AwsMlError(READ_ONLY_SQL_TRANSACTION, f"{refused} in a read-only transaction",
                         hint=f"{instead} in a read-write transaction: outside BEGIN READ ONLY, with "
                              "default_transaction_read_only off.")
