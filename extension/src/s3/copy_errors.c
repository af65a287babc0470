/*
 * copy_errors.c: errors of the COPY an aws_s3 call runs, as PL/Python can take them.
 *
 * aws_s3's PL/Python functions run COPY through a C function they call with
 * plpy.execute (s3_copy.c). An error of that COPY reaches PL/Python with
 * only its message, DETAIL and HINT: PL/Python reports the context of its
 * own frames instead of the error's. So the error's own context, such as
 * COPY FROM's "COPY t, line 2, column n" or the lines of a function the
 * export's query calls, goes at the end of its DETAIL. Its callers' lines
 * (the SQL statement calling that C function, the PL/Python function, and
 * theirs) do not: they are the package's internals, and SQL reads the
 * callers' context in CONTEXT anyway (python/deliberate_errors.c).
 *
 * PostgreSQL builds an error's context from the innermost callback out, so
 * a callback pushed just before the COPY sees the error's own lines only,
 * and keeps them. Not only the last error's: the query may catch an error,
 * raise others and catch them, then throw the first again (PL/pgSQL's
 * RAISE; in a handler), which runs no callback; so the error thrown is
 * matched with the latest own context it begins with, or, when more errors
 * came since than are kept, loses the callers' lines at its end.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#include "python/plpython_errors.h"
#include "s3/copy_errors.h"

/* how many distinct own contexts are kept: those of the latest errors */
#define SEEN_OWN_CONTEXTS 16

static void
mark_own_context(void *arg)
{
	OwnContext *own = (OwnContext *) arg;
	MemoryContext raising_context = MemoryContextSwitchTo(own->records);
	ErrorData  *error = CopyErrorData();
	const char *text = error->context ? error->context : "";

	if (error->elevel >= ERROR && (own->seen == NIL || strcmp(llast(own->seen), text) != 0))
	{
		own->seen = lappend(own->seen, pstrdup(text));
		if (list_length(own->seen) > SEEN_OWN_CONTEXTS)
		{
			pfree(linitial(own->seen));
			own->seen = list_delete_first(own->seen);
		}
	}
	FreeErrorData(error);
	MemoryContextSwitchTo(raising_context);
}

void
begin_own_context(OwnContext *own)
{
	own->seen = NIL;
	own->records = AllocSetContextCreate(CurrentMemoryContext, "aws_s3 COPY error contexts",
										 ALLOCSET_SMALL_SIZES);
	own->callback.callback = mark_own_context;
	own->callback.arg = own;
	own->callback.previous = error_context_stack;
	error_context_stack = &own->callback;
}

void
end_own_context(OwnContext *own)
{
	error_context_stack = own->callback.previous;
	MemoryContextDelete(own->records);
}

/*
 * The context the callers' callbacks (error_context_stack, which own's is no
 * longer on) give an error: that of an error raised here and caught at once,
 * which runs them and nothing else.
 */
static char *
callers_context(void)
{
	MemoryContext context = CurrentMemoryContext;
	char	   *volatile text = NULL;
	uint32		interrupt_holdoffs = InterruptHoldoffCount;
	uint32		cancel_holdoffs = QueryCancelHoldoffCount;

	PG_TRY();
	{
		ereport(ERROR,
				(errmsg_internal("aws_s3: the context of the COPY's callers")));
	}
	PG_CATCH();
	{
		ErrorData  *probe;

		MemoryContextSwitchTo(context);
		probe = CopyErrorData();
		FlushErrorState();
		text = probe->context ? probe->context : "";
	}
	PG_END_TRY();
	/* an ERROR resets them */
	InterruptHoldoffCount = interrupt_holdoffs;
	QueryCancelHoldoffCount = cancel_holdoffs;
	return text;
}

/*
 * The length of context's own lines: the latest own context seen that
 * context begins with, whole lines (an error thrown again from a handler
 * came before those raised in it; an error of a nested aws_s3 call is seen
 * with that call's lines first, then raised again from the call with none);
 * else, when more errors came since than are kept, all but the callers'
 * lines at its end; else all of it.
 */
static size_t
own_length(const OwnContext *own, const char *context)
{
	int			i;
	size_t		length = strlen(context);
	const char *callers;
	size_t		callers_length;

	for (i = list_length(own->seen) - 1; i >= 0; i--)
	{
		const char *seen = list_nth(own->seen, i);
		size_t		seen_length = strlen(seen);

		if (strncmp(context, seen, seen_length) == 0 &&
			(seen_length == 0 || context[seen_length] == '\0' || context[seen_length] == '\n'))
			return seen_length;
	}
	callers = callers_context();
	callers_length = strlen(callers);
	if (callers_length == 0 || callers_length > length ||
		strcmp(context + length - callers_length, callers) != 0)
		return length;
	if (callers_length == length)
		return 0;
	return context[length - callers_length - 1] == '\n' ? length - callers_length - 1 : length;
}

/*
 * In the PG_CATCH of a PG_TRY that began own: throws the error being
 * handled again with its own context at the end of its DETAIL, and its
 * texts made readable by PL/Python (plpython_errors.c): ReThrowError runs
 * no context callback, so the guard does not see it. own's records go with
 * the memory of the call, which the error's abort releases.
 */
void
rethrow_for_plpython(MemoryContext context, const OwnContext *own)
{
	ErrorData  *error;

	MemoryContextSwitchTo(context);
	error = CopyErrorData();
	FlushErrorState();
	/* its texts the guard made ASCII as it was raised, as they were: its DETAIL is about to change */
	restore_original_texts(error);
	if (error->context != NULL)
		error->context[own_length(own, error->context)] = '\0';
	if (error->context != NULL && error->context[0] != '\0')
		error->detail = error->detail ? psprintf("%s\n%s", error->detail, error->context) : error->context;
	error->context = NULL;
	make_readable_by_plpython(error);
	ReThrowError(error);
}
