/*
 * procedure_bodies.c: the backfills' entry point. Each backfill is a C
 * procedure that calls its PL/Python body through fmgr: the procedure of the
 * same name and arguments in the internal schema aws_ml.
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

PG_FUNCTION_INFO_V1(aws_ml_call_procedure_body);

/*
 * The entry point of aws_comprehend.materialize_sentiment and
 * aws_bedrock.materialize_embeddings (aws_ml--2.1--2.2.sql): calls the body
 * of the procedure called, with its arguments and CallContext.
 */
Datum
aws_ml_call_procedure_body(PG_FUNCTION_ARGS)
{
	FmgrInfo	body;
	FunctionCallInfo call;
	Datum		result;

	fmgr_info(body_of(fcinfo->flinfo->fn_oid), &body);
	fmgr_info_set_expr(fcinfo->flinfo->fn_expr, &body);
	call = palloc(SizeForFunctionCallInfo(fcinfo->nargs));
	InitFunctionCallInfoData(*call, &body, fcinfo->nargs, fcinfo->fncollation, fcinfo->context, fcinfo->resultinfo);
	memcpy(call->args, fcinfo->args, sizeof(NullableDatum) * fcinfo->nargs);
	result = FunctionCallInvoke(call);
	fcinfo->isnull = call->isnull;
	return result;
}
