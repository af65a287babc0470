/*
 * batch_functions.c: the aws_ml functions batch mode batches, found by OID,
 * and their batch-mode forms.
 *
 * A batch-mode form takes one array per argument of its row function (one
 * element per row of the batch; SageMaker's model inputs as one CSV row)
 * and returns one row per element, up to the first whose call fails:
 * aws_comprehend._detect_sentiment_rows(varchar[], varchar[], int[])
 * RETURNS TABLE (sentiment varchar, confidence real), and so on.
 *
 * The OIDs are looked up by name once, then again after any change to
 * pg_proc; only functions that belong to the aws_ml extension count, so a
 * look-alike in a schema of the same name is never batched.
 */
#include "postgres.h"

#include "compat.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "batch/batch.h"

const BatchFunction batch_functions[NUM_BATCH_FUNCTIONS] = {
	[BATCH_DETECT_SENTIMENT] = {
		"aws_comprehend", "detect_sentiment", 3, {VARCHAROID, VARCHAROID, INT4OID},
		"_detect_sentiment_rows", 2, false
	},
	[BATCH_INVOKE_ENDPOINT] = {
		"aws_sagemaker", "invoke_endpoint", 3, {VARCHAROID, INT4OID, ANYOID},
		"_invoke_endpoint_rows", 1, true
	},
	[BATCH_INVOKE_MODEL] = {
		"aws_bedrock", "invoke_model", 4, {VARCHAROID, TEXTOID, TEXTOID, TEXTOID},
		"_invoke_model_rows", -1, false
	},
	[BATCH_INVOKE_MODEL_GET_EMBEDDINGS] = {
		"aws_bedrock", "invoke_model_get_embeddings", 4, {VARCHAROID, TEXTOID, TEXTOID, TEXTOID},
		"_invoke_model_get_embeddings_rows", -1, false
	},
};

typedef struct FoundFunctions
{
	bool		valid;
	Oid			row[NUM_BATCH_FUNCTIONS];	/* InvalidOid: not installed */
	Oid			rows[NUM_BATCH_FUNCTIONS];
	uint32		hash[NUM_BATCH_FUNCTIONS];	/* of row[], as in PlanInvalItems */
} FoundFunctions;

static FoundFunctions found;

static void
forget_functions(Datum arg, int cacheid, uint32 hashvalue)
{
	found.valid = false;
}

void
batch_functions_init(void)
{
	CacheRegisterSyscacheCallback(PROCOID, forget_functions, (Datum) 0);
}

/*
 * The function schema.name(argtypes) if it belongs to extension, else
 * InvalidOid. Straight from the catalog: the user planning a query may lack
 * USAGE on the schema, which a name lookup would check.
 */
static Oid
extension_function(Oid extension, const char *schema, const char *name, int nargs, const Oid *argtypes)
{
	Oid			namespace = get_namespace_oid(schema, true);
	Oid			function;

	if (!OidIsValid(namespace))
		return InvalidOid;
	function = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
							   PointerGetDatum(buildoidvector(argtypes, nargs)), ObjectIdGetDatum(namespace));
	if (!OidIsValid(function) || getExtensionOfObject(ProcedureRelationId, function) != extension)
		return InvalidOid;
	return function;
}

static void
find_functions(void)
{
	Oid			extension;

	if (found.valid)
		return;
	memset(&found, 0, sizeof(found));
	extension = get_extension_oid("aws_ml", true);
	for (int kind = 0; OidIsValid(extension) && kind < NUM_BATCH_FUNCTIONS; kind++)
	{
		const BatchFunction *function = &batch_functions[kind];
		Oid			rows_argtypes[BATCH_MAX_ARGS];

		for (int i = 0; i < function->nargs; i++)
		{
			Oid			argtype = function->csv_inputs && i == function->nargs - 1 ? TEXTOID
				: function->argtypes[i];

			rows_argtypes[i] = get_array_type(argtype);
		}
		found.row[kind] = extension_function(extension, function->schema, function->name,
											 function->nargs, function->argtypes);
		found.rows[kind] = extension_function(extension, function->schema, function->rows_name,
											  function->nargs, rows_argtypes);
		/* Both, or the installed version has no batch mode for it. */
		if (!OidIsValid(found.rows[kind]))
			found.row[kind] = InvalidOid;
		if (OidIsValid(found.row[kind]))
			found.hash[kind] = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(found.row[kind]));
	}
	found.valid = true;
}

/* The kind of function funcid, or -1 if batch mode does not batch it. */
int
batch_function_kind(Oid funcid)
{
	find_functions();
	for (int kind = 0; kind < NUM_BATCH_FUNCTIONS; kind++)
	{
		if (OidIsValid(found.row[kind]) && found.row[kind] == funcid)
			return kind;
	}
	return -1;
}

/* Whether node is a call of a function batch mode batches. */
bool
batch_is_call(Node *node)
{
	return IsA(node, FuncExpr) && batch_function_kind(((FuncExpr *) node)->funcid) >= 0;
}

/*
 * Whether a plan may call a function batch mode batches, from its
 * dependencies: the planner records one for every user-defined function a
 * plan calls, inlined SQL functions included.
 */
bool
batch_functions_in(List *inval_items)
{
	ListCell   *lc;

	find_functions();
	foreach(lc, inval_items)
	{
		PlanInvalItem *item = lfirst_node(PlanInvalItem, lc);

		if (item->cacheId != PROCOID)
			continue;
		for (int kind = 0; kind < NUM_BATCH_FUNCTIONS; kind++)
		{
			if (OidIsValid(found.row[kind]) && found.hash[kind] == item->hashValue)
				return true;
		}
	}
	return false;
}

/* The batch-mode form of the row function of kind. */
Oid
batch_rows_function(BatchFunctionKind kind)
{
	find_functions();
	if (!OidIsValid(found.rows[kind]))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_ml: the batch-mode form of %s.%s is not installed",
						batch_functions[kind].schema, batch_functions[kind].name),
				 errhint("ALTER EXTENSION aws_ml UPDATE, or SET aws_ml.batch_mode = off.")));
	return found.rows[kind];
}
