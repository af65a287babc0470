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
from .progress import Progress

TIMESTAMP_COLUMN = "materialized_at"
MAX_BATCH_SIZE = 10_000
_FIRST_TID = "(0,0)"  # before every row: offsets start at 1


class Target:
    """The table and columns of a backfill: input_column in, output_columns
    (of SQL types output_types) out; the first output column NULL marks a row
    still to do. The column names are checked for NULL by the caller, which
    knows their argument names."""

    def __init__(self, table_name, input_column, output_columns, output_types):
        import plpy
        required("table_name", table_name)
        relation = plpy.execute(plpy.prepare(
            "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
            "pg_catalog.quote_ident(c.relname) AS name, "
            "EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid "
            "AND a.attname OPERATOR(pg_catalog.=) $2 AND a.attnum OPERATOR(pg_catalog.>) 0 "
            "AND NOT a.attisdropped) AS stamped "
            "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
            "WHERE c.oid OPERATOR(pg_catalog.=) $1", ["regclass", "name"]), [table_name, TIMESTAMP_COLUMN])[0]
        self.table = relation["name"]
        self.stamped = relation["stamped"]
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


def backfill(name, target, batch_size, score):
    """Fills target's to-do rows, batch_size rows per transaction. score: the
    inputs of a batch -> one tuple of output values per input, or None for an
    input it did not send (left as it is, not taken again by this run)."""
    import plpy
    in_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    # Inside a transaction block COMMIT fails: now, before any request.
    plpy.commit()
    select = plpy.prepare(target.select_sql(), ["tid", "tid[]", "int"])
    update = plpy.prepare(target.update_sql(), ["tid", *target.output_types])
    progress = Progress(name, plpy.execute(target.count_sql())[0]["rows"])
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
        done = 0
        for row, output in zip(rows, score([row["input"] for row in rows])):
            if output is None:
                unsent.append(row["row_id"])
            else:
                plpy.execute(update, [row["row_id"], *output])
                done += 1
        after = max((row["row_id"] for row in rows), key=_tid_order)
        plpy.commit()
        progress.advance(done)
    progress.finish()
