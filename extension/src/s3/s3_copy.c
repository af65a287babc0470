/*
 * s3_copy.c: COPY between the server and aws_s3's transfers, through a pipe.
 *
 * The Python layer asks for a pipe (aws_s3_transfer_pipe, bound with ctypes)
 * and hands one end to the backend's transfer process, which uploads to or
 * downloads from S3 (aws_ml/transfer_process.py). The other end stays here,
 * with a random token that only the Python layer knows, until the
 * aws_s3._copy_* call that gives the token takes it: an export runs COPY
 * (query) TO a callback that writes into the pipe (compat.h); an import runs
 * COPY table FROM the pipe. Those SQL functions touch no other pipe or file,
 * and do nothing without the token; the pipe is dropped when the transaction
 * ends. Their arguments are parsed each on its own (copy_arguments.c).
 *
 * COPY's own code formats and parses the data, so an export is byte for byte
 * what COPY (query) TO STDOUT writes, and the caller's privileges and the
 * table's row security apply as to a COPY the caller runs.
 *
 * PL/Python holds Python's global interpreter lock (GIL) while the backend
 * runs. Whenever COPY waits on the pipe (full for an export, empty for an
 * import), this module lets go of it for just that wait, so that the
 * backend's own request threads (a batch-mode query's next batch) run
 * meanwhile: nothing else runs on this thread then (python_lock.c).
 */
#include "postgres.h"

#include "compat.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/copy.h"
#include "common/pg_prng.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "python/plpython_errors.h"
#include "python/python_lock.h"
#include "s3/copy_arguments.h"
#include "s3/copy_errors.h"
#include "s3/s3_copy.h"
#include "unicode_names.h"

#define POLL_MILLISECONDS 100
#define PIPE_BYTES (1024 * 1024)

/* The server's end of the pipe the Python layer prepared, -1 if none, and its token */
static int	server_end = -1;
static bool server_end_writes = false;
static uint64 server_end_token = 0;

/* The pipe COPY FROM is reading, for read_pipe. */
static int	source = -1;

/*
 * An export's pipe and the rows not yet written into it: a write a row
 * would cost the backend a system call each (two on 16 and later, where the
 * callback receives a row's line end apart), and wake the transfer process
 * for each.
 */
#define PIPE_WRITE_BYTES (128 * 1024)

typedef struct ExportTarget
{
	int			fd;
	char	   *pending;		/* PIPE_WRITE_BYTES at most */
	size_t		used;
} ExportTarget;

/* The export whose COPY runs, for export_data. */
static ExportTarget *target = NULL;

static void
drop_pipe(void)
{
	if (server_end >= 0)
		close(server_end);
	server_end = -1;
	server_end_token = 0;
}

/*
 * A new pipe for one transfer. The server keeps the write end for an export
 * and the read end for an import, with a new token, set in *token; the other
 * end is returned, and belongs to the caller. -1 (and errno) if there is no
 * pipe.
 */
int
aws_s3_transfer_pipe(bool export, uint64 *token)
{
	int			ends[2];

	drop_pipe();
	if (pipe2(ends, O_CLOEXEC) != 0)
		return -1;
	/* fewer turns between COPY and the thread; the default size is fine too */
	(void) fcntl(ends[0], F_SETPIPE_SZ, PIPE_BYTES);
	/* an export's COPY waits for room without the GIL (write_pipe) */
	if (export && fcntl(ends[1], F_SETFL, O_NONBLOCK) != 0)
	{
		close(ends[0]);
		close(ends[1]);
		return -1;
	}
	server_end_writes = export;
	server_end = export ? ends[1] : ends[0];
	if (!pg_strong_random(&server_end_token, sizeof(server_end_token)) || server_end_token == 0)
	{
		close(ends[0]);
		drop_pipe();
		return -1;
	}
	*token = server_end_token;
	return export ? ends[0] : ends[1];
}

/* A transfer's pipe never outlives its transaction. */
static void
drop_pipe_at_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		drop_pipe();
}

void
s3_copy_init(void)
{
	RegisterXactCallback(drop_pipe_at_end, NULL);
}

/* The end of the prepared pipe that token names, now this call's to close. */
static int
take_pipe(bool writes, int64 token)
{
	int			fd = server_end;

	if (fd < 0 || server_end_writes != writes || token == 0 || (uint64) token != server_end_token)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_s3: no S3 transfer is in progress"),
				 errhint("Call aws_s3.query_export_to_s3 or aws_s3.table_import_from_s3.")));
	server_end = -1;
	server_end_token = 0;
	return fd;
}

PG_FUNCTION_INFO_V1(aws_s3_copy_layout);

/*
 * aws_s3._copy_layout(options text, is_from boolean, OUT format text,
 * OUT quote text, OUT escape text, OUT header boolean, OUT ascii_safe
 * boolean): how COPY lays out its data with options, which it checks as
 * COPY FROM (is_from) or COPY TO does; whether
 * its records can be found in its bytes: its encoding, the session's or the
 * option's, keeps every byte of a multibyte character out of ASCII's range
 * (the server encodings do), and the quote and escape are ASCII.
 */
Datum
aws_s3_copy_layout(PG_FUNCTION_ARGS)
{
	MemoryContext context = CurrentMemoryContext;
	CopyFormatOptions layout = {0};
	TupleDesc	descriptor;
	Datum		values[5];
	bool		nulls[5] = {false};
	int			encoding;
	OwnContext	own;

	PG_TRY();
	{
		begin_own_context(&own);
		/* aws_s3 1.0's form, until ALTER EXTENSION aws_s3 UPDATE, has no is_from */
		parse_copy_options(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
						   PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1), &layout);
		end_own_context(&own);
	}
	PG_CATCH();
	{
		rethrow_for_plpython(context, &own);
	}
	PG_END_TRY();
	encoding = layout.file_encoding >= 0 ? layout.file_encoding : pg_get_client_encoding();
	if (get_call_result_type(fcinfo, NULL, &descriptor) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = CStringGetTextDatum(layout.binary ? "binary" : layout.csv_mode ? "csv" : "text");
	nulls[1] = nulls[2] = !layout.csv_mode;
	if (layout.csv_mode)
	{
		values[1] = CStringGetTextDatum(layout.quote);
		values[2] = CStringGetTextDatum(layout.escape);
	}
	values[3] = BoolGetDatum(layout.header_line != COPY_HEADER_FALSE);
	/* the scanner reads the quote and escape as ASCII bytes */
	values[4] = BoolGetDatum(!PG_ENCODING_IS_CLIENT_ONLY(encoding) &&
							 (!layout.csv_mode || (!IS_HIGHBIT_SET(layout.quote[0]) &&
												   !IS_HIGHBIT_SET(layout.escape[0]))));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(descriptor), values, nulls)));
}

/*
 * Refuses rel, or a column of columns (String nodes), when its name, or its
 * schema's, may not be the one the caller gave: PL/Python passed it in
 * Unicode (unicode_names.c); searched: rel was found through the search path.
 */
static void
refuse_names_taken_in_unicode(Relation rel, List *columns, bool searched)
{
	UnicodeNames answer = unicode_names_of(rel, columns, searched);

	if (answer != UNICODE_NAMES_OWN)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 answer == UNICODE_NAMES_SCHEMA_TAKEN ?
				 errmsg("aws_s3: the schema of table %s shares its name in Unicode with another schema",
						RelationGetRelationName(rel)) :
				 errmsg("aws_s3: table %s or a column of it shares its name in Unicode "
						"with another table or column", RelationGetRelationName(rel)),
				 errdetail("PL/Python passes names in Unicode, where the database's encoding (%s) has one "
						   "character for two of its own.", GetDatabaseEncodingName()),
				 errhint("Rename one of them, or use a UTF8 database.")));
}

/*
 * The checks DoCopy makes of a COPY FROM into rel before it checks that the
 * transaction can write: INSERT on the columns copied, no row security.
 */
static void
check_copy_into(ParseState *pstate, Relation rel, List *columns)
{
	ParseNamespaceItem *item = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock,
															 NULL, false, false);
	RTEPermissionInfo *permissions = getRTEPermissionInfo(pstate->p_rteperminfos, item->p_rte);
	ListCell   *cell;

	permissions->requiredPerms = ACL_INSERT;
	foreach(cell, CopyGetAttnums(RelationGetDescr(rel), rel, columns))
		permissions->insertedCols = bms_add_member(permissions->insertedCols,
												   lfirst_int(cell) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckPermissions(pstate->p_rtable, list_make1(permissions), true);
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("COPY FROM not supported with row-level security"),
				 errhint("Use INSERT statements instead.")));
}

/*
 * An import's table (from parse_import_target) with its columns (String
 * nodes), opened and checked as DoCopy opens and checks a COPY FROM's table
 * before it checks that the transaction can write: its columns, the
 * caller's privileges, no row security; and a table whose name, or its
 * schema's or a column's, PL/Python may have turned into another's refused.
 */
static Relation
open_import_target(ParseState *pstate, RangeVar *table, List *columns)
{
	Relation	rel = table_openrv(table, RowExclusiveLock);

	refuse_names_taken_in_unicode(rel, columns, table->schemaname == NULL);
	check_copy_into(pstate, rel, columns);
	return rel;
}

/* The text of the function's argument n, NULL for NULL */
#define TEXT_ARG_OR_NULL(n) (PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n)))

PG_FUNCTION_INFO_V1(aws_s3_import_target);

/*
 * aws_s3._import_target(table_name text, column_list text, options text)
 * RETURNS oid: the table an import's COPY writes, after the checks COPY
 * makes before it checks that the transaction can write, in its order (the
 * statement's syntax, then open_import_target's), so that they come before
 * any request.
 */
Datum
aws_s3_import_target(PG_FUNCTION_ARGS)
{
	MemoryContext context = CurrentMemoryContext;
	volatile Oid relid = InvalidOid;
	OwnContext	own;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_TRY();
	{
		List	   *columns;
		RangeVar   *table;
		Relation	rel;

		begin_own_context(&own);
		table = parse_import_target(TEXT_ARG_OR_NULL(0), TEXT_ARG_OR_NULL(1), &columns);
		if (!PG_ARGISNULL(2))
			(void) parse_option_list(text_to_cstring(PG_GETARG_TEXT_PP(2)));
		rel = open_import_target(make_parsestate(NULL), table, columns);
		relid = RelationGetRelid(rel);
		table_close(rel, NoLock);
		end_own_context(&own);
	}
	PG_CATCH();
	{
		rethrow_for_plpython(context, &own);
	}
	PG_END_TRY();
	PG_RETURN_OID(relid);
}

/*
 * Writes an export's data into its pipe fd: at once while the pipe has
 * room, else waiting, without the GIL, for the transfer process to take
 * some. Interrupts are served while it waits.
 */
static void
write_pipe(int fd, const char *data, size_t size)
{
	const char *next = data;

	while (size > 0)
	{
		ssize_t		written = write(fd, next, size);

		if (written > 0)
		{
			next += written;
			size -= written;
			continue;
		}
		if (written < 0 && errno == EPIPE)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("aws_s3: the upload to S3 stopped")));
		if (written < 0 && errno != EAGAIN && errno != EINTR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("aws_s3: could not write to the upload to S3: %m")));
		if (written < 0 && errno == EAGAIN)
		{
			struct pollfd wait_for = {.fd = fd,.events = POLLOUT};

			python_release();
			(void) poll(&wait_for, 1, POLL_MILLISECONDS);
			python_take_back();
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/* Writes what the export's COPY has written so far into its pipe. */
static void
flush_target(void)
{
	write_pipe(target->fd, target->pending, target->used);
	target->used = 0;
}

/* COPY's destination for an export (compat.h): its data, into the pipe. */
static void
export_data(void *data, int len)
{
	if (target->used + len > PIPE_WRITE_BYTES)
		flush_target();
	if (len >= PIPE_WRITE_BYTES)
		write_pipe(target->fd, data, len);
	else
	{
		memcpy(target->pending + target->used, data, len);
		target->used += len;
	}
}

/* COPY (query) TO STDOUT with options, its rows into the pipe fd; the rows */
static uint64
copy_query_to(int fd, const char *query_text, List *options)
{
	ParseState *pstate = make_parsestate(NULL);
	RawStmt    *query = parse_export_query(query_text);
	ExportTarget *outer_target = target;
	ExportTarget export = {fd, palloc(PIPE_WRITE_BYTES), 0};
	ArgumentErrors argument;
	volatile uint64 rows = 0;

	pstate->p_sourcetext = query_text;
	/* an error of the query's analysis points into the query argument */
	init_argument_errors(&argument, query_text, 0);
	PG_TRY();
	{
		/* the query may export too: its COPY writes its own pipe */
		target = &export;
		rows = copy_query_to_callback(pstate, query, options, export_data, &argument.callback);
		flush_target();
	}
	PG_FINALLY();
	{
		target = outer_target;
	}
	PG_END_TRY();
	return rows;
}

/*
 * COPY FROM's data source: what the pipe holds, at least minread bytes
 * unless it ends first. Interrupts are served while it waits.
 */
static int
read_pipe(void *buffer, int minread, int maxread)
{
	int			total = 0;

	while (total < minread)
	{
		struct pollfd wait_for = {.fd = source,.events = POLLIN};
		ssize_t		got;

		int			ready;

		CHECK_FOR_INTERRUPTS();
		/* the backend's request threads may run meanwhile */
		python_release();
		ready = poll(&wait_for, 1, POLL_MILLISECONDS);
		python_take_back();
		if (ready < 0 && errno != EINTR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("aws_s3: could not wait for the S3 object's data: %m")));
		if (ready <= 0)
			continue;
		got = read(source, (char *) buffer + total, maxread - total);
		if (got < 0)
		{
			if (errno == EINTR || errno == EAGAIN)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("aws_s3: could not read the S3 object's data: %m")));
		}
		if (got == 0)
			break;
		total += got;
	}
	return total;
}

/* COPY FROM the pipe fd into rel; the rows imported */
static uint64
copy_from_pipe(int fd, ParseState *pstate, Relation rel, List *columns, List *options)
{
	int			outer_source = source;
	volatile uint64 rows = 0;

	PG_TRY();
	{
		CopyFromState state;

		/* a trigger of rel may import too: its COPY reads its own pipe */
		source = fd;
		state = BeginCopyFrom(pstate, rel, NULL, NULL, false, read_pipe, columns, options);
		rows = CopyFrom(state);
		EndCopyFrom(state);
		source = outer_source;
	}
	PG_CATCH();
	{
		source = outer_source;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return rows;
}

/* COPY table_name (column_list) FROM STDIN with options, from the pipe fd; the rows */
static uint64
copy_into_table(int fd, const char *table_name, const char *column_list, List *options)
{
	ParseState *pstate = make_parsestate(NULL);
	List	   *columns;
	RangeVar   *table = parse_import_target(table_name, column_list, &columns);
	Relation	rel = open_import_target(pstate, table, columns);
	uint64		rows;

	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");
	rows = copy_from_pipe(fd, pstate, rel, columns, options);
	table_close(rel, NoLock);
	return rows;
}


/* An export's COPY from the arguments of _copy_query_to_pipe; the rows */
static uint64
export_query(int fd, FunctionCallInfo fcinfo)
{
	return copy_query_to(fd, TEXT_ARG_OR_NULL(0), parse_copy_options(TEXT_ARG_OR_NULL(1), false, NULL));
}

/* An import's COPY from the arguments of _copy_pipe_to_table; the rows */
static uint64
import_into_table(int fd, FunctionCallInfo fcinfo)
{
	return copy_into_table(fd, TEXT_ARG_OR_NULL(0), TEXT_ARG_OR_NULL(1),
						   parse_copy_options(TEXT_ARG_OR_NULL(2), true, NULL));
}

/*
 * Runs copy, the COPY of an export or an import that the arguments of the
 * SQL function ask for, with the pipe of the transfer its last argument
 * names, as the caller; the rows. Its first argument must not be NULL.
 * Errors are thrown as PL/Python can take them.
 */
static Datum
copy_through_pipe(FunctionCallInfo fcinfo, bool export, const char *first_argument,
				  uint64 (*copy) (int fd, FunctionCallInfo fcinfo))
{
	MemoryContext context = CurrentMemoryContext;
	int			token_argument = PG_NARGS() - 1;
	int			fd = take_pipe(export, PG_ARGISNULL(token_argument) ? 0 : PG_GETARG_INT64(token_argument));
	volatile uint64 rows = 0;
	OwnContext	own;

	PG_TRY();
	{
		begin_own_context(&own);
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("aws_s3: %s must not be NULL", first_argument)));
		rows = copy(fd, fcinfo);
		end_own_context(&own);
	}
	PG_CATCH();
	{
		close(fd);
		rethrow_for_plpython(context, &own);
	}
	PG_END_TRY();
	close(fd);
	PG_RETURN_INT64((int64) rows);
}

PG_FUNCTION_INFO_V1(aws_s3_copy_query_to_pipe);

/*
 * aws_s3._copy_query_to_pipe(query text, options text, transfer bigint)
 * RETURNS bigint: COPY (query) TO the pipe of the transfer with options; the
 * rows written.
 */
Datum
aws_s3_copy_query_to_pipe(PG_FUNCTION_ARGS)
{
	return copy_through_pipe(fcinfo, true, "query", export_query);
}

PG_FUNCTION_INFO_V1(aws_s3_copy_pipe_to_table);

/*
 * aws_s3._copy_pipe_to_table(table_name text, column_list text, options text,
 * transfer bigint) RETURNS bigint: COPY table_name (column_list) FROM the
 * pipe of the transfer with options; the rows imported.
 */
Datum
aws_s3_copy_pipe_to_table(PG_FUNCTION_ARGS)
{
	return copy_through_pipe(fcinfo, false, "table_name", import_into_table);
}
