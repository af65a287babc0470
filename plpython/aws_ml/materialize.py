"""Backfills: fill a table's output columns from a service, batch by batch,
each batch its own transaction.

A batch is selected with FOR UPDATE SKIP LOCKED, scored, updated and
committed, so that two runs and the application's own writes get along and a
run stopped half-way loses at most its current batch. Rows are addressed by
ctid: the row lock taken by the SELECT is held until the batch commits, so no
one can update, delete or move the row in between and its ctid stays valid
(no primary key needed). A row must take its answer: its UPDATE returns
the row's new version, and the batch checks, before it commits, that each
version still holds its answer (a trigger, rule or policy may undo or skip
the write, and the row would be selected and paid for again and again). On
a table the caller does not own, the statements run as the table's owner
in a security-restricted operation (backend.running_as), so that the
table's own code (triggers, rules, index and generated expressions,
policies) never runs with the caller's privileges. A ctid addresses a row
within one table only, so a table with inheritance children or partitions
is filled table by table, each with ONLY; Citus tables as distributed.py
says (a reference table's rows by primary key, row_address.py). Every
identifier is quoted; the procedures cannot have SET search_path
(PostgreSQL forbids COMMIT in a procedure with a SET clause), so every
function, operator and type here is schema-qualified."""
import contextlib
import json
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple, cast

from . import backend, distributed, read_only, sql_names
from .arguments import NOT_BLANK_PATTERN, in_range, required
from .errors import AwsMlError, spidata_of
from .progress import Progress
from .row_address import RowId

TIMESTAMP_COLUMN = "materialized_at"
MAX_BATCH_SIZE = 10_000
_TEXT_CATEGORY = "S"
UNDEFINED_TABLE = "42P01"
UNDEFINED_COLUMN = "42703"
DATATYPE_MISMATCH = "42804"
WRONG_OBJECT_TYPE = "42809"
FEATURE_NOT_SUPPORTED = "0A000"
INSUFFICIENT_PRIVILEGE = "42501"
NOT_IN_PREREQUISITE_STATE = "55000"
INVALID_TRANSACTION_TERMINATION = "2D000"
QUERY_CANCELED = "57014"

Row = Dict[str, Any]  # a row as plpy.execute gives it
Outputs = Sequence[Optional[Tuple[Any, ...]]]  # a batch's: one tuple of output values per input, None: not sent
Score = Callable[[List[str]], Outputs]  # the inputs of a batch -> their outputs


@dataclass(frozen=True)
class Output:
    """An output column: the SQL type of the values written to it, what its
    column's type must be (accepts(column), given the column's row of
    _COLUMNS: type, length, category, element) and how to say so."""
    sql_type: str
    accepts: Callable[[Row], bool]
    wanted: str


_FLOATS = ("real", "double precision")
_TIMESTAMPS = ("timestamp with time zone", "timestamp without time zone")


def _holds_sentiment(column: Row) -> bool:
    # POSITIVE, NEGATIVE, NEUTRAL, MIXED: at most 8 characters
    return column["category"] == _TEXT_CATEGORY and (column["length"] is None or column["length"] >= 8)


def _holds_confidence(column: Row) -> bool:
    return column["type"] in _FLOATS or column["type"] == "numeric"


def _holds_embedding(column: Row) -> bool:
    return column["element"] in (*_FLOATS, "numeric") if column["element"] else column["category"] != "A"


SENTIMENT_OUTPUTS = (
    Output("pg_catalog.varchar", _holds_sentiment, "a text type of at least 8 characters"),
    Output("pg_catalog.float4", _holds_confidence, "real, double precision or numeric without a scale"),
)
EMBEDDING_OUTPUTS = (
    Output("pg_catalog.float8[]", _holds_embedding,
           "an array of real, double precision or numeric, or a type float8[] casts to (such as vector)"),
)

_COLUMNS = (
    "SELECT a.attname AS name, a.attnum, t.typcategory AS category, "
    "pg_catalog.format_type(a.atttypid, a.atttypmod) AS full_type, pg_catalog.format_type(a.atttypid, NULL) AS type, "
    "CASE WHEN a.atttypmod OPERATOR(pg_catalog.>=) 4 AND t.typcategory OPERATOR(pg_catalog.=) 'S' "
    "THEN a.atttypmod OPERATOR(pg_catalog.-) 4 END AS length, "
    "CASE WHEN t.typelem OPERATOR(pg_catalog.<>) 0 AND t.typcategory OPERATOR(pg_catalog.=) 'A' "
    "THEN pg_catalog.format_type(t.typelem, NULL) END AS element, "
    "a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.numeric'::pg_catalog.regtype "
    "AND a.atttypmod OPERATOR(pg_catalog.<>) -1 AS scaled "
    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
    "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped")

# The table and its inheritance children and partitions, at any depth.
_TABLES = (
    "WITH RECURSIVE tree(relid) AS (SELECT $1::pg_catalog.oid UNION ALL SELECT i.inhrelid "
    "FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) "
    "SELECT c.oid AS relid, n.nspname AS schema, c.relname AS relname, pg_catalog.quote_ident(n.nspname) "
    "OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) AS name, c.relkind AS kind, "
    "c.relowner AS owner, pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) CURRENT_USER AS owned "
    "FROM tree JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tree.relid "
    "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace")

# Whether the caller may read and write the columns as the backfill does,
# and whether row security applies to the caller: $1 the table, $2 columns,
# $3 the privilege wanted on each.
_CALLER_MAY = (
    "SELECT pg_catalog.bool_and(pg_catalog.has_column_privilege($1, c.name, c.privilege)) AS allowed, "
    "pg_catalog.row_security_active($1) AS row_security "
    "FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])) "
    "AS c(name, privilege)")


class Target:
    """A table whose rows procedure fills: input_column in, output_columns
    (Output each) out; the first output column NULL marks a row still to do.
    Only this table's own rows (ONLY), whatever its children. shards: for a
    distributed table (Citus), its shards, which their nodes fill; address:
    how the rows of a table filled here are named."""

    def __init__(self, procedure: str, table: Row, input_column: str, output_columns: Sequence[str],
                 outputs: Sequence[Output]) -> None:
        """table: its row of _TABLES."""
        import plpy
        self.procedure = procedure
        self.table = table["name"]
        self.sql_table = f"{sql_names.identifier(table['schema'])}.{sql_names.identifier(table['relname'])}"
        relid = table["relid"]
        columns = {row["name"]: row for row in plpy.execute(plpy.prepare(_COLUMNS, ["pg_catalog.oid"]), [relid])}
        for column in (input_column, *output_columns):
            if column not in columns:
                raise AwsMlError(UNDEFINED_COLUMN,
                                 f"{procedure}: {self.table} has no column {sql_names.quote_ident(column)}")
        if columns[input_column]["category"] != _TEXT_CATEGORY:
            raise AwsMlError(DATATYPE_MISMATCH, f"{procedure} reads text, and column "
                             f"{sql_names.quote_ident(input_column)} of {self.table} is "
                             f"{columns[input_column]['full_type']}",
                             hint="Give a text or varchar column; for another type, add a generated column "
                                  "that casts it to text.")
        for column, output in zip(output_columns, outputs):
            row = columns[column]
            if row["scaled"] or not output.accepts(row):
                raise AwsMlError(DATATYPE_MISMATCH, f"{procedure}: column {sql_names.quote_ident(column)} of "
                                 f"{self.table} is {row['full_type']}, which would not hold its results whole",
                                 hint=f"Give a column of {output.wanted}.")
        self.stamped = TIMESTAMP_COLUMN in columns
        if self.stamped and columns[TIMESTAMP_COLUMN]["type"] not in _TIMESTAMPS:
            raise AwsMlError(DATATYPE_MISMATCH, f"{procedure} stamps each row it fills in column "
                             f"{TIMESTAMP_COLUMN}, and that column of {self.table} is "
                             f"{columns[TIMESTAMP_COLUMN]['full_type']}",
                             hint="Make it timestamp with time zone, or rename it.")
        sql_names.refuse_unless_named_exactly(procedure, self.table, relid,
                                              [columns[column]["attnum"] for column in (input_column, *output_columns)])
        self.input = sql_names.identifier(input_column)
        self.outputs = [sql_names.identifier(column) for column in output_columns]
        self.output_types = [output.sql_type for output in outputs]
        self.marker = sql_names.quote_ident(output_columns[0])  # NULL: to do
        self.owner: Optional[int] = None if table["owned"] else table["owner"]
        if self.owner is not None:
            self._check_the_caller_may(relid, input_column, output_columns)
        self.shards, self.address = distributed.placement(procedure, relid, self.table)

    def _check_the_caller_may(self, relid: int, input_column: str, output_columns: Sequence[str]) -> None:
        """What PostgreSQL checks of the caller when the statements run as the
        caller, checked here: they run as the table's owner."""
        import plpy
        written = [*output_columns, *([TIMESTAMP_COLUMN] if self.stamped else [])]
        columns = [input_column, output_columns[0], *written]
        privileges = ["SELECT", "SELECT", *["UPDATE"] * len(written)]
        caller = plpy.execute(plpy.prepare(_CALLER_MAY, ["pg_catalog.oid", "pg_catalog.text[]", "pg_catalog.text[]"]),
                              [relid, columns, privileges])[0]
        if not caller["allowed"]:
            raise AwsMlError(INSUFFICIENT_PRIVILEGE, f"{self.procedure}: permission denied for table {self.table}",
                             f"It reads column {sql_names.quote_ident(input_column)} and updates "
                             f"{', '.join(sql_names.quote_ident(column) for column in written)}.")
        if caller["row_security"]:
            raise AwsMlError(INSUFFICIENT_PRIVILEGE,
                             f"{self.procedure} runs the code of {self.table} as the table's owner, and the table's "
                             "row security policies apply to you",
                             hint="CALL it as the table's owner.")

    def running_its_code(self) -> ContextManager[None]:
        """Within: the statements that run the table's code, as its owner
        when the caller is not."""
        return contextlib.nullcontext() if self.owner is None else backend.running_as(self.owner)

    def _to_do(self) -> str:
        """$1: NOT_BLANK_PATTERN."""
        return f"{self.outputs[0]} IS NULL AND {self.input} OPERATOR(pg_catalog.~) $1"

    def count_sql(self) -> str:
        return f"SELECT pg_catalog.count(*) AS rows FROM ONLY {self.sql_table} WHERE {self._to_do()}"

    def select_sql(self) -> str:
        """$2: the address after which to look, $3: addresses not to take, $4: rows."""
        address = self.address
        return (f"SELECT {address.expression} AS row_id, {self.input} AS input FROM ONLY {self.sql_table} "
                f"WHERE {self._to_do()} AND {address.after} "
                f"AND {address.expression} OPERATOR(pg_catalog.<>) ALL ($3){address.order_by} "
                f"LIMIT $4 FOR UPDATE SKIP LOCKED")

    def update_sql(self) -> str:
        """$1: the row's address, $2...: the output columns' values. Returns
        the address of the row's new version and whether it holds its answer."""
        assignments = [f"{column} = ${index}" for index, column in enumerate(self.outputs, 2)]
        if self.stamped:
            assignments.append(f"{TIMESTAMP_COLUMN} = pg_catalog.now()")
        return (f"UPDATE ONLY {self.sql_table} SET {', '.join(assignments)} "
                f"WHERE {self.address.expression} OPERATOR(pg_catalog.=) $1 "
                f"RETURNING {self.address.expression} AS row_id, {self.outputs[0]} IS NOT NULL AS answered")

    def answered_sql(self) -> str:
        """$1: the addresses of rows' new versions; those still holding their answer."""
        return (f"SELECT {self.address.expression} AS row_id FROM ONLY {self.sql_table} "
                f"WHERE {self.address.expression} OPERATOR(pg_catalog.=) ANY ($1) AND {self.outputs[0]} IS NOT NULL")


def targets(procedure: str, table_name: Optional[str], input_column: str, output_columns: Sequence[str],
            outputs: Sequence[Output]) -> List[Target]:
    """The Target of each plain table of table_name's hierarchy (the table,
    its inheritance children and partitions); checked before any request,
    as is that this transaction may write them (read_only.py)."""
    import plpy
    required("table_name", table_name)
    tables = plpy.execute(plpy.prepare(_TABLES, ["pg_catalog.regclass"]), [table_name])
    if not tables:  # an OID (0 reads "-") that names no relation
        raise AwsMlError(UNDEFINED_TABLE, f"{procedure}: there is no relation with OID "
                                          f"{'0' if table_name == '-' else table_name}")
    for table in tables:
        if table["kind"] not in ("r", "p"):
            what = "is not a table" if table is tables[0] else f"has {table['name']}, which is not a plain table"
            raise AwsMlError(WRONG_OBJECT_TYPE, f"{procedure} fills tables, and {tables[0]['name']} {what}")
    found = [Target(procedure, table, input_column, output_columns, outputs)
             for table in tables if table["kind"] == "r"]
    read_only.refuse_writes([table["relid"] for table in tables], f"{procedure} cannot fill {tables[0]['name']}",
                            "CALL it")
    return found


def backfill(procedure: str, tables: List[Target], batch_size: Optional[int], score: Score,
             shard_call: distributed.ShardCall) -> int:
    """Fills the to-do rows of tables (Targets), batch_size rows per
    transaction; answers how many it filled. score: the inputs of a batch ->
    one tuple of output values per input, or None for an input it did not
    send (left as it is, not taken again by this run). shard_call: the same
    backfill on the shards of a node (distributed.ShardCall)."""
    import plpy
    batch_size = in_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    commit_or_explain(procedure)  # inside a transaction block COMMIT fails: now, before any request
    here = [table for table in tables if table.shards is None]
    plans = [(table, plpy.prepare(table.select_sql(), ["pg_catalog.text", table.address.sql_type,
                                                       table.address.array_type(), "pg_catalog.int4"]),
              _prepare_update(table), plpy.prepare(table.answered_sql(), [table.address.array_type()]))
             for table in here]
    total = 0
    for table in tables:
        with table.running_its_code():
            total += plpy.execute(plpy.prepare(table.count_sql(), ["pg_catalog.text"]),
                                  [NOT_BLANK_PATTERN])[0]["rows"]
    progress = Progress(procedure, total)
    for table, select, update, answered in plans:
        _fill(table, select, update, answered, batch_size, score, progress)
    shards = [shard for table in tables if table.shards for shard in table.shards]
    if shards:
        progress.advance(distributed.fill_on_nodes(procedure, shard_call, shards))
    progress.finish()
    return progress.done


def _fill(table: Target, select: Any, update: Any, answered: Any, batch_size: int, score: Score,
          progress: Progress) -> None:
    import plpy
    address = table.address
    after, unsent = address.first, cast(List[Any], [])
    while True:
        with table.running_its_code():
            rows = plpy.execute(select, [NOT_BLANK_PATTERN, after, unsent, batch_size])
        if not rows:
            if after == address.first:
                return
            # Rows this pass went by (inserted behind it, or unlocked since) are
            # found by one more pass from the start.
            after = address.first
            continue
        try:
            outputs = score([row["input"] for row in rows])
        except AwsMlError as error:
            raise _stopped(table, rows, error) from None
        with table.running_its_code():
            written = _write(table, update, answered, rows, outputs, unsent)
        after = address.last(rows)
        _commit()
        progress.advance(written)


def _write(table: Target, update: Any, answered: Any, rows: Sequence[Row], outputs: Outputs,
           unsent: List[RowId]) -> int:
    """Writes the outputs of a batch's rows (None: not sent, added to
    unsent); how many rows took their answer, or the 55000 of the first
    that did not."""
    import plpy
    new_versions = {}  # the address of a row's new version -> the row's
    for row, output in zip(rows, outputs):
        if output is None:
            unsent.append(row["row_id"])
            continue
        result = plpy.execute(update, [row["row_id"], *output])
        if result.nrows() != 1:
            raise _not_answered(table, row["row_id"], "its UPDATE changed no row")
        if not result[0]["answered"]:
            raise _not_answered(table, row["row_id"], f"its UPDATE left {table.marker} NULL")
        new_versions[result[0]["row_id"]] = row["row_id"]
    # AFTER triggers and rules' actions have run: each version must still hold its answer
    kept = {row["row_id"] for row in plpy.execute(answered, [list(new_versions)])}
    for new_version, row_id in new_versions.items():
        if new_version not in kept:
            raise _not_answered(table, row_id, "the table's code wrote it again after its UPDATE")
    return len(new_versions)


def _commit() -> None:
    """Commits; the next batch's requests belong to the new transaction (the
    statement cache's scope). Deferred constraints are checked first, by a
    statement: an error of theirs inside COMMIT would escape the guard that
    makes errors readable outside UTF8 (python/plpython_errors.c)."""
    import plpy
    plpy.execute("SET CONSTRAINTS ALL IMMEDIATE")
    plpy.commit()
    backend.refresh_call_state()


def commit_or_explain(procedure: str) -> None:
    """Commits what the caller did before, or says why it cannot: asked
    first, since _commit's SET CONSTRAINTS would check the caller's deferred
    constraints before COMMIT refused."""
    if not backend.may_commit():
        raise AwsMlError(INVALID_TRANSACTION_TERMINATION,
                         f"{procedure} commits every batch, so it cannot run inside a transaction block",
                         hint="CALL it on its own, outside BEGIN ... COMMIT.")
    _commit()


def _prepare_update(table: Target) -> Any:
    """The UPDATE of a batch's rows, or an error naming the column whose type
    cannot take the procedure's output. PostgreSQL refuses its RETURNING
    (0A000) on a table with a DO INSTEAD rule on UPDATE, which takes the
    UPDATE: no row would take its answer, refused before any request."""
    import plpy
    try:
        return plpy.prepare(table.update_sql(), [table.address.sql_type, *table.output_types])
    except plpy.SPIError as error:
        if error.sqlstate == FEATURE_NOT_SUPPORTED:
            raise AwsMlError(NOT_IN_PREREQUISITE_STATE,
                             f"{table.procedure} cannot fill {table.table}: a DO INSTEAD rule on UPDATE of the "
                             "table takes its UPDATE, so no row would take its answer",
                             hint="Fill the table with an UPDATE of your own, or drop the rule.") from None
        raise AwsMlError(error.sqlstate, f"{table.procedure} cannot write its results to {table.table}: "
                         f"{error.args[0]}") from None


def _not_answered(table: Target, row_id: RowId, why: str) -> AwsMlError:
    return AwsMlError(NOT_IN_PREREQUISITE_STATE,
                      f"{table.procedure} stopped at the row at {table.address.label(row_id)} of {table.table}: {why}",
                      hint="A trigger, rule or policy of the table skips the UPDATE, or sets the output back to "
                           "NULL: the row would be sent again and again. This batch's results are lost; the "
                           "batches before it are committed.")


def _stopped(table: Target, rows: Sequence[Row], error: AwsMlError) -> AwsMlError:
    """error of a batch's requests, naming the row it is about (else the batch)."""
    if error.ordinality is not None:
        where = f"the row at {table.address.label(rows[error.ordinality - 1]['row_id'])}"
    else:
        where = f"a batch of {len(rows)} rows from {table.address.label(rows[0]['row_id'])}"
    resume = "The batches before it are committed; CALL again to go on with the rows still to do."
    return AwsMlError(error.sqlstate, f"{table.procedure} stopped at {where} of {table.table}: {error.message}",
                      error.detail, f"{error.hint} {resume}" if error.hint else resume)


def fill_shards(procedure: str, shards: Optional[List[str]], fill: Callable[[str], int]) -> Tuple[str]:
    """On a node: fill(shard) (answering the rows filled) for each of shards;
    answers the procedure's output row: the outcome for fill_on_nodes, as
    JSON. The batch an error stops is rolled back; a cancel is raised, as is
    a call that cannot commit (in a transaction block)."""
    import plpy
    shards = required("shards", shards)
    commit_or_explain(procedure)
    done = 0
    try:
        for shard in shards:
            done += fill(shard)
        return (json.dumps({"done": done}),)
    except AwsMlError as error:
        stopped = {"sqlstate": error.sqlstate, "message": error.full_message(), "detail": error.detail,
                   "hint": error.hint}
    except plpy.SPIError as error:
        if error.sqlstate == QUERY_CANCELED:
            raise
        fields = spidata_of(error)
        stopped = {"sqlstate": error.sqlstate, "message": error.args[0], "detail": fields.get("detail"),
                   "hint": fields.get("hint")}
    plpy.rollback()
    return (json.dumps({"done": done, "error": stopped}),)
