"""Backfills: fill a table's output columns from a service, batch by batch,
each batch its own transaction.

A batch is selected with FOR UPDATE SKIP LOCKED, scored, updated and
committed, so that two runs and the application's own writes get along and a
run stopped half-way loses at most its current batch. Rows are addressed by
ctid: the row lock taken by the SELECT is held until the batch commits, so no
one can update, delete or move the row in between and its ctid stays valid
(no primary key needed). Every identifier is quoted; the procedures cannot
have SET search_path (PostgreSQL forbids COMMIT in a procedure with a SET
clause), so every function and operator here is schema-qualified."""
from .arguments import in_range, required
from .errors import AwsMlError
from .progress import Progress

TIMESTAMP_COLUMN = "materialized_at"
MAX_BATCH_SIZE = 10_000
_FIRST_TID = "(0,0)"  # before every row: offsets start at 1
_TEXT_CATEGORY = "S"
UNDEFINED_COLUMN = "42703"
DATATYPE_MISMATCH = "42804"
WRONG_OBJECT_TYPE = "42809"
INVALID_TRANSACTION_TERMINATION = "2D000"


class Target:
    """The table and columns of procedure's backfill: input_column in,
    output_columns (of SQL types output_types) out; the first output column
    NULL marks a row still to do. The column names are checked for NULL by the
    caller, which knows their argument names."""

    def __init__(self, procedure, table_name, input_column, output_columns, output_types):
        import plpy
        required("table_name", table_name)
        self.procedure = procedure
        relation = plpy.execute(plpy.prepare(
            "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
            "pg_catalog.quote_ident(c.relname) AS name, c.relkind AS kind "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
            "WHERE c.oid OPERATOR(pg_catalog.=) $1", ["regclass"]), [table_name])[0]
        self.table = relation["name"]
        if relation["kind"] != "r":
            # ctid addresses a row only within one table: not a partitioned table's, nor a view's
            raise AwsMlError(WRONG_OBJECT_TYPE, f"{procedure} fills a table, and {self.table} is not a plain table",
                             hint="CALL it on each partition." if relation["kind"] == "p" else None)
        columns = {row["name"]: row for row in plpy.execute(plpy.prepare(
            "SELECT a.attname AS name, t.typcategory AS category, "
            "pg_catalog.format_type(a.atttypid, a.atttypmod) AS type "
            "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid "
            "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 "
            "AND NOT a.attisdropped", ["regclass"]), [table_name])}
        for column in (input_column, *output_columns):
            if column not in columns:
                raise AwsMlError(UNDEFINED_COLUMN,
                                 f"{procedure}: {self.table} has no column {plpy.quote_ident(column)}")
        if columns[input_column]["category"] != _TEXT_CATEGORY:
            raise AwsMlError(DATATYPE_MISMATCH, f"{procedure} reads text, and column "
                             f"{plpy.quote_ident(input_column)} of {self.table} is {columns[input_column]['type']}",
                             hint="Give a text or varchar column; for another type, add a generated column "
                                  "that casts it to text.")
        self.stamped = TIMESTAMP_COLUMN in columns
        self.input = plpy.quote_ident(input_column)
        self.outputs = [plpy.quote_ident(column) for column in output_columns]
        self.output_types = list(output_types)

    def _to_do(self):
        return f"{self.outputs[0]} IS NULL AND {self.input} OPERATOR(pg_catalog.~) '[^[:space:]]'"

    def count_sql(self):
        return f"SELECT pg_catalog.count(*) AS rows FROM {self.table} WHERE {self._to_do()}"

    def select_sql(self):
        """$1: the ctid after which to look, $2: ctids not to take, $3: rows."""
        return (f"SELECT ctid AS row_id, {self.input} AS input FROM {self.table} WHERE {self._to_do()} "
                f"AND ctid OPERATOR(pg_catalog.>) $1 AND ctid OPERATOR(pg_catalog.<>) ALL ($2) "
                f"LIMIT $3 FOR UPDATE SKIP LOCKED")

    def update_sql(self):
        """$1: the ctid, $2...: the output columns' values."""
        assignments = [f"{column} = ${index}" for index, column in enumerate(self.outputs, 2)]
        if self.stamped:
            assignments.append(f"{TIMESTAMP_COLUMN} = pg_catalog.now()")
        return f"UPDATE {self.table} SET {', '.join(assignments)} WHERE ctid OPERATOR(pg_catalog.=) $1"


def _tid_order(ctid):
    block, offset = ctid.strip("()").split(",")
    return int(block), int(offset)


def backfill(target, batch_size, score):
    """Fills target's to-do rows, batch_size rows per transaction. score: the
    inputs of a batch -> one tuple of output values per input, or None for an
    input it did not send (left as it is, not taken again by this run)."""
    import plpy
    in_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    _commit_or_explain(target)  # inside a transaction block COMMIT fails: now, before any request
    select = plpy.prepare(target.select_sql(), ["tid", "tid[]", "int"])
    update = _prepare_update(target)
    progress = Progress(target.procedure, plpy.execute(target.count_sql())[0]["rows"])
    after, unsent = _FIRST_TID, []
    while True:
        rows = plpy.execute(select, [after, unsent, batch_size])
        if not rows:
            if after == _FIRST_TID:
                break
            # Rows this pass went by (inserted behind it, or unlocked since) are
            # found by one more pass from the start.
            after = _FIRST_TID
            continue
        try:
            outputs = score([row["input"] for row in rows])
        except AwsMlError as error:
            raise _stopped(target, rows, error) from None
        done = 0
        for row, output in zip(rows, outputs):
            if output is None:
                unsent.append(row["row_id"])
            else:
                plpy.execute(update, [row["row_id"], *output])
                done += 1
        after = max((row["row_id"] for row in rows), key=_tid_order)
        plpy.commit()
        progress.advance(done)
    progress.finish()


def _commit_or_explain(target):
    import plpy
    try:
        plpy.commit()
    except plpy.spiexceptions.InvalidTransactionTermination:
        raise AwsMlError(INVALID_TRANSACTION_TERMINATION,
                         f"{target.procedure} commits every batch, so it cannot run inside a transaction block",
                         hint="CALL it on its own, outside BEGIN ... COMMIT.") from None


def _prepare_update(target):
    """The UPDATE of a batch's rows, or an error naming the column whose type
    cannot take the procedure's output."""
    import plpy
    try:
        return plpy.prepare(target.update_sql(), ["tid", *target.output_types])
    except plpy.SPIError as error:
        raise AwsMlError(error.sqlstate, f"{target.procedure} cannot write its results to {target.table}: "
                         f"{error.args[0]}") from None


def _stopped(target, rows, error):
    """error of a batch's requests, naming the row it is about (else the batch)."""
    if error.ordinality is not None:
        where = f"the row at ctid {rows[error.ordinality - 1]['row_id']}"
    else:
        where = f"a batch of {len(rows)} rows from ctid {rows[0]['row_id']}"
    resume = "The batches before it are committed; CALL again to go on with the rows still to do."
    return AwsMlError(error.sqlstate, f"{target.procedure} stopped at {where} of {target.table}: {error.message}",
                      error.detail, f"{error.hint} {resume}" if error.hint else resume)
