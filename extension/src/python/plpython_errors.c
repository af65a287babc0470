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
 * beneath it (python/backend.c's aws_ml_begin_call): an error context
 * callback that, when an ERROR carries a text PL/Python cannot take, raises
 * it again with every text PL/Python reads made ASCII (\xNN for each byte
 * outside ASCII). PostgreSQL treats an error raised in a context callback as
 * an error during error processing: the new error replaces the first. In
 * SQL_ASCII, whose texts are bytes as they came, PL/Python takes valid UTF-8;
 * in other encodings only ASCII is the same in UTF-8.
 */
#include "postgres.h"

#include "compat.h"

#include "common/string.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "python/plpython_errors.h"

static MemoryContext guard_context = NULL;

/* set while the error raised again runs through the callbacks */
static bool raising_again = false;

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

/* Whether PL/Python reads every text of error as it is. */
static bool
readable_by_plpython(ErrorData *error)
{
	return readable_text(error->message) && readable_text(error->detail) &&
		readable_text(error->hint) && readable_text(error->internalquery) &&
		readable_text(error->schema_name) && readable_text(error->table_name) &&
		readable_text(error->column_name) && readable_text(error->datatype_name) &&
		readable_text(error->constraint_name);
}

/*
 * Makes the texts of error that PL/Python cannot read ASCII, every text it
 * reads, in place; whether it did. Nothing to do in a UTF8 database.
 */
bool
make_readable_by_plpython(ErrorData *error)
{
	if (GetDatabaseEncoding() == PG_UTF8 || readable_by_plpython(error))
		return false;
	error->message = ascii_only(error->message);
	error->detail = ascii_only(error->detail);
	error->hint = ascii_only(error->hint);
	error->internalquery = ascii_only(error->internalquery);
	error->schema_name = ascii_only(error->schema_name);
	error->table_name = ascii_only(error->table_name);
	error->column_name = ascii_only(error->column_name);
	error->datatype_name = ascii_only(error->datatype_name);
	error->constraint_name = ascii_only(error->constraint_name);
	return true;
}

static void
raise_readable_error(void *arg)
{
	MemoryContext previous_context;
	ErrorData  *error;

	if (raising_again)
	{
		/* the error raised again holds copies of its texts: free ours */
		raising_again = false;
		MemoryContextReset(guard_context);
		return;
	}
	previous_context = MemoryContextSwitchTo(guard_context);
	error = CopyErrorData();
	if (error->elevel != ERROR || !make_readable_by_plpython(error))
	{
		MemoryContextSwitchTo(previous_context);
		MemoryContextReset(guard_context);
		return;
	}
	raising_again = true;
	/* the context comes again from the callbacks */
	error->context = NULL;
	ThrowErrorData(error);
}

/*
 * Guards the errors raised from now on until aws_ml_unguard_errors(guard):
 * returns the guard, or NULL in a UTF8 database, where there is nothing to
 * do. The caller (the Python layer) unguards before it returns to PL/Python.
 */
void *
guard_errors_for_plpython(void)
{
	ErrorContextCallback *guard;

	if (GetDatabaseEncoding() == PG_UTF8)
		return NULL;
	if (guard_context == NULL)
		guard_context = AllocSetContextCreate(TopMemoryContext, "aws_ml error guard",
											  ALLOCSET_SMALL_SIZES);
	guard = MemoryContextAlloc(TopMemoryContext, sizeof(ErrorContextCallback));
	guard->callback = raise_readable_error;
	guard->arg = NULL;
	guard->previous = error_context_stack;
	error_context_stack = guard;
	raising_again = false;
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
