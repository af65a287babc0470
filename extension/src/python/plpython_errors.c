/*
 * plpython_errors.c: errors PL/Python can take, in every database encoding.
 *
 * PL/Python turns an error raised under plpy.execute, plpy.prepare or
 * plpy.commit into a Python exception by reading the error's texts as UTF-8,
 * whatever the database's encoding. Outside a UTF8 database a text with a
 * non-ASCII character (a table or constraint name, a value in "Failing row
 * contains", a trigger's message, a translated message) is not UTF-8: the
 * conversion fails with "could not convert SPI error to Python exception",
 * leaves Python's state broken, and the next error crashes the server.
 *
 * So outside UTF8 every aws_ml entry point from SQL guards the errors raised
 * beneath it (python/backend.c's aws_ml_begin_call), in two steps, neither
 * of which raises an error while another is being raised:
 *
 * - An error context callback, which sees every error beneath the guard as
 *   it is raised, rewrites the error's texts PL/Python reads (message,
 *   DETAIL, HINT, internal query) in place with ASCII, as PostgreSQL's own
 *   callbacks rewrite an error's internal query.
 * - Its object names (schema, table, column, type, constraint) cannot be
 *   rewritten in place. The errors that carry them are raised by the
 *   executor (constraints, unique indexes, foreign keys, domains), by SET
 *   CONSTRAINTS, or by a function of the user's that the planner (an
 *   immutable one, folded) or the executor's start (a stable one, pruning
 *   partitions) runs: the planner's, the executor's and ProcessUtility's
 *   hooks catch such an error beneath a guard and throw it again with them
 *   made ASCII. The
 *   backfills check deferred constraints with SET CONSTRAINTS ALL IMMEDIATE
 *   before they commit (plpython/aws_ml/materialize.py), so that none is
 *   left to fail inside COMMIT.
 *
 * ASCII writes \xNN for each byte outside ASCII. In SQL_ASCII, whose texts
 * are bytes as they came, PL/Python takes valid UTF-8; in other encodings
 * only ASCII is the same in UTF-8.
 *
 * The error's texts as they were are kept until the transaction ends: when
 * the error the Python layer passes on leaves the function
 * (deliberate_errors.c), each of its texts that is the ASCII of the texts
 * kept is given back, so that SQL reads it in the database's encoding.
 */
#include "postgres.h"

#include "compat.h"

#include "access/xact.h"
#include "common/string.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
#include "utils/memutils.h"

#include "python/plpython_errors.h"

static planner_hook_type previous_planner = NULL;
static ExecutorStart_hook_type previous_executor_start = NULL;
static ExecutorRun_hook_type previous_executor_run = NULL;
static ExecutorFinish_hook_type previous_executor_finish = NULL;
static ProcessUtility_hook_type previous_process_utility = NULL;

/* holds the copy of the last error thrown again */
static MemoryContext guard_context = NULL;

/* the last error made readable, as it was; NULL if none this transaction */
static MemoryContext original_context = NULL;
static ErrorData *original = NULL;

/* text with every byte outside ASCII written as \xNN */
static char *
ascii_only(const char *text)
{
	StringInfoData ascii;

	if (text == NULL)
		return NULL;
	initStringInfo(&ascii);
	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		if (IS_HIGHBIT_SET(*c))
			appendStringInfo(&ascii, "\\x%02x", *c);
		else
			appendStringInfoChar(&ascii, *c);
	}
	return ascii.data;
}

static bool
readable_text(const char *text)
{
	if (text == NULL)
		return true;
	if (GetDatabaseEncoding() == PG_SQL_ASCII)
		return pg_verify_mbstr(PG_UTF8, text, strlen(text), true);
	return pg_is_ascii(text);
}

/*
 * The texts of an error PL/Python reads; the object names, which only the
 * executor's hooks can rewrite, come last.
 */
static const size_t plpython_texts[] = {
	offsetof(ErrorData, message), offsetof(ErrorData, detail), offsetof(ErrorData, hint),
	offsetof(ErrorData, internalquery),
	offsetof(ErrorData, schema_name), offsetof(ErrorData, table_name),
	offsetof(ErrorData, column_name), offsetof(ErrorData, datatype_name),
	offsetof(ErrorData, constraint_name)
};
#define FIRST_NAME 4

static char **
text_of(const ErrorData *error, int i)
{
	return (char **) ((char *) error + plpython_texts[i]);
}

static bool
readable_texts_from(ErrorData *error, int first)
{
	for (int i = first; i < lengthof(plpython_texts); i++)
	{
		if (!readable_text(*text_of(error, i)))
			return false;
	}
	return true;
}

static bool
readable_names(ErrorData *error)
{
	return readable_texts_from(error, FIRST_NAME);
}

static bool
readable_by_plpython(ErrorData *error)
{
	return GetDatabaseEncoding() == PG_UTF8 || readable_texts_from(error, 0);
}

static void
forget_original(void)
{
	original = NULL;
	MemoryContextReset(original_context);
}

/* Keeps a copy of error's SQLSTATE and of the texts PL/Python reads. */
static void
keep_original(const ErrorData *error)
{
	MemoryContext previous_context;

	forget_original();
	previous_context = MemoryContextSwitchTo(original_context);
	original = palloc0(sizeof(ErrorData));
	original->sqlerrcode = error->sqlerrcode;
	for (int i = 0; i < lengthof(plpython_texts); i++)
	{
		char	   *text = *text_of(error, i);

		*text_of(original, i) = text ? pstrdup(text) : NULL;
	}
	MemoryContextSwitchTo(previous_context);
}

/* Makes every text of error that PL/Python reads ASCII, in place. */
static void
escape_texts(ErrorData *error)
{
	for (int i = 0; i < lengthof(plpython_texts); i++)
		*text_of(error, i) = ascii_only(*text_of(error, i));
}

/*
 * text, in the database's encoding, as PL/Python reads it in an error raised
 * beneath a guard; in the current memory context if it differs.
 */
const char *
aws_ml_as_plpython_reads(const char *text)
{
	if (GetDatabaseEncoding() == PG_UTF8 || readable_text(text))
		return text;
	return ascii_only(text);
}

/*
 * Gives error (one leaving an aws_ml function, or one made readable again)
 * the texts of the last error made readable this transaction where its
 * texts are their ASCII.
 */
void
restore_original_texts(ErrorData *error)
{
	if (original == NULL || error->sqlerrcode != original->sqlerrcode)
		return;
	for (int i = 0; i < lengthof(plpython_texts); i++)
	{
		char	  **text = text_of(error, i);
		const char *original_text = *text_of(original, i);

		if (*text != NULL && original_text != NULL && strcmp(*text, ascii_only(original_text)) == 0)
			*text = pstrdup(original_text);
	}
}

/*
 * In a PG_CATCH: makes the texts of error, the copy of the error being
 * handled, ASCII if PL/Python cannot read them, keeping the error as it is
 * as the original; texts of it the guard made ASCII as it was raised are
 * kept as they were. Nothing to do in a UTF8 database.
 */
void
make_readable_by_plpython(ErrorData *error)
{
	if (readable_by_plpython(error))
		return;
	restore_original_texts(error);
	keep_original(error);
	escape_texts(error);
}

/* The guard's error context callback: rewrites the texts of the error being raised. */
static void
rewrite_texts(void *arg)
{
	MemoryContext raising_context;
	ErrorData  *error;

	MemoryContextReset(guard_context);
	raising_context = MemoryContextSwitchTo(guard_context);
	error = CopyErrorData();
	MemoryContextSwitchTo(raising_context);
	if (error->elevel == ERROR && !readable_by_plpython(error))
	{
		keep_original(error);
		if (!readable_text(error->message))
			errmsg_internal("%s", ascii_only(error->message));
		if (!readable_text(error->detail))
			errdetail_internal("%s", ascii_only(error->detail));
		if (!readable_text(error->hint))
			errhint("%s", ascii_only(error->hint));
		if (!readable_text(error->internalquery))
			internalerrquery(ascii_only(error->internalquery));
	}
	MemoryContextReset(guard_context);
}

/* Whether a guard is on the error context stack. */
static bool
guarded(void)
{
	for (ErrorContextCallback *callback = error_context_stack; callback != NULL;
		 callback = callback->previous)
	{
		if (callback->callback == rewrite_texts)
			return true;
	}
	return false;
}

/*
 * In a PG_CATCH beneath a guard: throws the error being handled again with
 * its object names made ASCII, if PL/Python cannot read them. The copy
 * thrown lives in guard_context until the next error or the unguard:
 * ReThrowError copies it, but never returns.
 */
static void
rethrow_with_readable_names(void)
{
	MemoryContext handling_context;
	ErrorData  *error;

	if (GetDatabaseEncoding() == PG_UTF8 || !guarded())
		return;
	MemoryContextReset(guard_context);
	handling_context = MemoryContextSwitchTo(guard_context);
	error = CopyErrorData();
	if (error->elevel != ERROR || readable_names(error))
	{
		MemoryContextSwitchTo(handling_context);
		return;
	}
	FlushErrorState();
	escape_texts(error);
	ReThrowError(error);
}

/* the planner folds immutable functions, a rule's action's among them */
static PlannedStmt *
guarded_planner(Query *parse, const char *query_string, int cursor_options, ParamListInfo bound_params)
{
	PlannedStmt *statement;

	PG_TRY();
	{
		if (previous_planner)
			statement = previous_planner(parse, query_string, cursor_options, bound_params);
		else
			statement = standard_planner(parse, query_string, cursor_options, bound_params);
	}
	PG_CATCH();
	{
		rethrow_with_readable_names();
		PG_RE_THROW();
	}
	PG_END_TRY();
	return statement;
}

/* the executor's start runs stable functions, to prune partitions */
static void
guarded_executor_start(QueryDesc *query, int eflags)
{
	PG_TRY();
	{
		if (previous_executor_start)
			previous_executor_start(query, eflags);
		else
			standard_ExecutorStart(query, eflags);
	}
	PG_CATCH();
	{
		rethrow_with_readable_names();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static void
guarded_executor_run(QueryDesc *query, ScanDirection direction, uint64 count EXECUTE_ONCE_PARAMETER)
{
	PG_TRY();
	{
		if (previous_executor_run)
			previous_executor_run(query, direction, count EXECUTE_ONCE_ARGUMENT);
		else
			standard_ExecutorRun(query, direction, count EXECUTE_ONCE_ARGUMENT);
	}
	PG_CATCH();
	{
		rethrow_with_readable_names();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* AFTER triggers, foreign keys' among them, run here */
static void
guarded_executor_finish(QueryDesc *query)
{
	PG_TRY();
	{
		if (previous_executor_finish)
			previous_executor_finish(query);
		else
			standard_ExecutorFinish(query);
	}
	PG_CATCH();
	{
		rethrow_with_readable_names();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* SET CONSTRAINTS runs the deferred triggers here */
static void
guarded_process_utility(PlannedStmt *statement, const char *query, bool read_only_tree,
						ProcessUtilityContext context, ParamListInfo parameters,
						QueryEnvironment *environment, DestReceiver *destination,
						QueryCompletion *completion)
{
	PG_TRY();
	{
		if (previous_process_utility)
			previous_process_utility(statement, query, read_only_tree, context, parameters,
									 environment, destination, completion);
		else
			standard_ProcessUtility(statement, query, read_only_tree, context, parameters,
									environment, destination, completion);
	}
	PG_CATCH();
	{
		rethrow_with_readable_names();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static void
forget_original_at_end(XactEvent event, void *arg)
{
	if (original != NULL)
		forget_original();
}

void
plpython_errors_init(void)
{
	guard_context = AllocSetContextCreate(TopMemoryContext, "aws_ml error guard",
										  ALLOCSET_SMALL_SIZES);
	original_context = AllocSetContextCreate(TopMemoryContext, "aws_ml error original",
											 ALLOCSET_SMALL_SIZES);
	RegisterXactCallback(forget_original_at_end, NULL);
	previous_planner = planner_hook;
	planner_hook = guarded_planner;
	previous_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = guarded_executor_start;
	previous_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = guarded_executor_run;
	previous_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = guarded_executor_finish;
	previous_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = guarded_process_utility;
}

/*
 * Guards the errors raised from now on until aws_ml_unguard_errors(guard):
 * returns the guard, or NULL in a UTF8 database, where there is nothing to
 * do, or before plpython_errors_init. The caller (the Python layer) unguards
 * before it returns to PL/Python.
 */
void *
guard_errors_for_plpython(void)
{
	ErrorContextCallback *guard;

	if (GetDatabaseEncoding() == PG_UTF8 || guard_context == NULL)
		return NULL;
	guard = MemoryContextAlloc(TopMemoryContext, sizeof(ErrorContextCallback));
	guard->callback = rewrite_texts;
	guard->arg = NULL;
	guard->previous = error_context_stack;
	error_context_stack = guard;
	return guard;
}

/*
 * Takes guard off the error context stack. An error caught since it was
 * pushed may have restored the stack to below it already.
 */
void
aws_ml_unguard_errors(void *guard)
{
	for (ErrorContextCallback **link = &error_context_stack; *link != NULL;
		 link = &(*link)->previous)
	{
		if (*link == guard)
		{
			*link = ((ErrorContextCallback *) guard)->previous;
			break;
		}
	}
	pfree(guard);
	MemoryContextReset(guard_context);
}
