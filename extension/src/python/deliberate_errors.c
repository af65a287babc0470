/*
 * deliberate_errors.c: the errors the Python layer raises on purpose,
 * reported as PostgreSQL reports its own.
 *
 * PL/Python reports a Python exception with its type's name before the
 * message and its traceback in CONTEXT. For an error aws_ml raises on
 * purpose (a refused argument, an AWS error, the server's own error of SQL
 * the package ran, passed on) neither means anything to the caller. So the
 * Python layer, just before it raises such an error, tells this module the
 * message PL/Python will make of it and the message SQL is to read
 * (aws_ml_raising). The function it raises from is an aws_ml function with
 * a SET clause, which PostgreSQL calls through fmgr_security_definer: when
 * the error leaves it (FHET_ABORT), this module raises it again there with
 * the message SQL is to read and the same SQLSTATE, DETAIL, HINT and object
 * names, and the error context of the function's callers only, as an error
 * of a C function would have. An error that is not the one announced, a bug
 * of the package's included, is left as PL/Python made it.
 *
 * aws_ml's PL/Python procedures (the backfills' bodies) have no SET clause,
 * which would forbid their COMMITs, and neither have aws_s3's PL/Python
 * functions, whose query and table name resolve in the caller's
 * search_path: this module asks PostgreSQL to call them through
 * fmgr_security_definer too (needs_fmgr_hook), which changes nothing else
 * for a function or procedure that is neither SECURITY DEFINER nor has a
 * SET clause. PostgreSQL asks when it looks a procedure up: the backfills'
 * C entry points look their bodies up once the module is loaded
 * (procedure_bodies.c).
 */
#include "postgres.h"

#include "compat.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "commands/proclang.h"
#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "python/deliberate_errors.h"
#include "python/plpython_errors.h"

static needs_fmgr_hook_type previous_needs_fmgr_hook = NULL;
static fmgr_hook_type previous_fmgr_hook = NULL;

/* The error announced: PL/Python's message for it, and SQL's */
static MemoryContext announced_context = NULL;
static char *plpython_message = NULL;
static char *sql_message = NULL;

static void
forget_announced(void)
{
	plpython_message = NULL;
	sql_message = NULL;
	MemoryContextReset(announced_context);
}

void
aws_ml_raising(const char *plpython_form, const char *message)
{
	/* a _PG_init that failed before deliberate_errors_init: nothing to do */
	if (announced_context == NULL)
		return;
	forget_announced();
	plpython_message = MemoryContextStrdup(announced_context, plpython_form);
	sql_message = MemoryContextStrdup(announced_context, message);
}

/*
 * In the PG_CATCH of fmgr_security_definer, with the caller's error context
 * stack restored: raises the error being handled again with SQL's message,
 * if it is the one announced.
 */
static void
raise_as_announced(void)
{
	MemoryContext handling_context = MemoryContextSwitchTo(announced_context);
	ErrorData  *error = CopyErrorData();

	if (error->elevel != ERROR || error->message == NULL || strcmp(error->message, plpython_message) != 0)
	{
		MemoryContextSwitchTo(handling_context);
		forget_announced();
		return;
	}
	FlushErrorState();
	plpython_message = NULL;
	error->message = sql_message;
	restore_original_texts(error);
	/* the callers' context comes again from their callbacks */
	error->context = NULL;
	ThrowErrorData(error);
}

static void
deliberate_errors_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (previous_fmgr_hook)
		previous_fmgr_hook(event, flinfo, private);
	if (plpython_message == NULL)
		return;
	/* the first function to end after the announcement is the one that raised it */
	if (event == FHET_ABORT)
		raise_as_announced();
	else
		forget_announced();
}

/* Whether function belongs to the extension named extension, installed here. */
static bool
member_of(Oid function, const char *extension)
{
	Oid			installed = get_extension_oid(extension, true);

	return OidIsValid(installed) && getExtensionOfObject(ProcedureRelationId, function) == installed;
}

/* aws_ml's PL/Python procedures, aws_s3's PL/Python functions, and what another module's hook asks for */
static bool
deliberate_errors_needs_fmgr_hook(Oid function)
{
	HeapTuple	tuple;
	char		kind;
	Oid			language;

	if (previous_needs_fmgr_hook && previous_needs_fmgr_hook(function))
		return true;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	if (!HeapTupleIsValid(tuple))
		return false;
	kind = ((Form_pg_proc) GETSTRUCT(tuple))->prokind;
	language = ((Form_pg_proc) GETSTRUCT(tuple))->prolang;
	ReleaseSysCache(tuple);
	if (language != get_language_oid("plpython3u", true))
		return false;
	if (kind == PROKIND_PROCEDURE)
		return member_of(function, "aws_ml");
	return kind == PROKIND_FUNCTION && member_of(function, "aws_s3");
}

void
deliberate_errors_init(void)
{
	announced_context = AllocSetContextCreate(TopMemoryContext, "aws_ml deliberate error",
											  ALLOCSET_SMALL_SIZES);
	previous_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = deliberate_errors_needs_fmgr_hook;
	previous_fmgr_hook = fmgr_hook;
	fmgr_hook = deliberate_errors_fmgr_hook;
}
