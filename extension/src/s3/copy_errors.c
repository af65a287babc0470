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
 * and keeps their length.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "python/plpython_errors.h"
#include "s3/copy_errors.h"

/* holds the copy of the error the mark reads */
static MemoryContext mark_context = NULL;

static void
mark_own_context(void *arg)
{
	OwnContext *own = (OwnContext *) arg;
	MemoryContext raising_context;
	ErrorData  *error;

	if (mark_context == NULL)
		mark_context = AllocSetContextCreate(TopMemoryContext, "aws_s3 COPY error context",
											 ALLOCSET_SMALL_SIZES);
	raising_context = MemoryContextSwitchTo(mark_context);
	error = CopyErrorData();
	MemoryContextSwitchTo(raising_context);
	if (error->elevel >= ERROR)
		own->length = error->context ? strlen(error->context) : 0;
	MemoryContextReset(mark_context);
}

void
begin_own_context(OwnContext *own)
{
	own->length = -1;
	own->callback.callback = mark_own_context;
	own->callback.arg = own;
	own->callback.previous = error_context_stack;
	error_context_stack = &own->callback;
}

void
end_own_context(OwnContext *own)
{
	error_context_stack = own->callback.previous;
}

/*
 * In the PG_CATCH of a PG_TRY that began own: throws the error being
 * handled again with its own context at the end of its DETAIL, and its
 * texts made readable by PL/Python (plpython_errors.c): ReThrowError runs
 * no context callback, so the guard does not see it.
 */
void
rethrow_for_plpython(MemoryContext context, const OwnContext *own)
{
	ErrorData  *error;

	MemoryContextSwitchTo(context);
	error = CopyErrorData();
	FlushErrorState();
	if (error->context != NULL && own->length >= 0 && (size_t) own->length < strlen(error->context))
		error->context[own->length] = '\0';
	if (error->context != NULL && error->context[0] != '\0')
		error->detail = error->detail ? psprintf("%s\n%s", error->detail, error->context) : error->context;
	error->context = NULL;
	make_readable_by_plpython(error);
	ReThrowError(error);
}
