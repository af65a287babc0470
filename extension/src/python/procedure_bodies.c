/*
 * procedure_bodies.c: the backfills' entry points. Each is a C procedure
 * that calls its PL/Python body through fmgr: the procedure of the same
 * name and arguments in the internal schema aws_ml.
 *
 * PostgreSQL decides whether to call a procedure through the hook of
 * deliberate_errors.c (needs_fmgr_hook) when it looks the procedure up, so
 * the module must be loaded by then. A C procedure's lookup loads it; the
 * body is looked up afterwards, on a session's first call too, where the
 * module is not preloaded.
 *
 * The caller's CallContext is passed on: the body commits as the entry
 * point's caller allows. EXECUTE on the body, which only superusers hold, is
 * not checked: EXECUTE on the entry point is all a caller needs.
 */
#include "postgres.h"

#include "compat.h"

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(aws_ml_materialize_sentiment);
PG_FUNCTION_INFO_V1(aws_ml_materialize_embeddings);

/* the body of the entry point entry: its name and arguments, in schema aws_ml */
static Oid
body_of(Oid entry)
{
	char	   *name = get_func_name(entry);
	Oid		   *argument_types;
	int			nargs;
	Oid			body;

	get_func_signature(entry, &argument_types, &nargs);
	body = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
						   PointerGetDatum(buildoidvector(argument_types, nargs)),
						   ObjectIdGetDatum(get_namespace_oid("aws_ml", false)));
	if (!OidIsValid(body))
		elog(ERROR, "the body of procedure %s is missing", format_procedure(entry));
	return body;
}

static Datum
call_body(FunctionCallInfo entry)
{
	FmgrInfo	body;
	FunctionCallInfo call;
	Datum		result;

	fmgr_info(body_of(entry->flinfo->fn_oid), &body);
	fmgr_info_set_expr(entry->flinfo->fn_expr, &body);
	call = palloc(SizeForFunctionCallInfo(entry->nargs));
	InitFunctionCallInfoData(*call, &body, entry->nargs, entry->fncollation, entry->context, entry->resultinfo);
	memcpy(call->args, entry->args, sizeof(NullableDatum) * entry->nargs);
	result = FunctionCallInvoke(call);
	entry->isnull = call->isnull;
	return result;
}

/* aws_comprehend.materialize_sentiment: see aws_ml--2.1--2.2.sql */
Datum
aws_ml_materialize_sentiment(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo);
}

/* aws_bedrock.materialize_embeddings */
Datum
aws_ml_materialize_embeddings(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo);
}
