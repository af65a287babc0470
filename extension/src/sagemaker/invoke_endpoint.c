/*
 * invoke_endpoint.c: the aws_sagemaker functions PL/Python cannot declare
 * (VARIADIC "any", anyarray). They turn their arguments into CSV rows (csv.c)
 * and hand them to the PL/Python function aws_sagemaker._invoke_endpoint_csv,
 * which sends them; networking, credentials and retries stay in Python.
 *
 * That function is called through fmgr, so EXECUTE on it is not checked
 * again: EXECUTE on an entry point is all a caller needs.
 */
#include "postgres.h"

#include "compat.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "sagemaker/csv.h"

PG_FUNCTION_INFO_V1(aws_ml_sagemaker_invoke_endpoint);
PG_FUNCTION_INFO_V1(aws_ml_sagemaker_batch_invoke_endpoint);
PG_FUNCTION_INFO_V1(aws_ml_sagemaker_csv_rows);

/* What a call site keeps between calls (fn_extra): the PL/Python sender and
 * how to write its inputs. */
typedef struct CallState
{
	FmgrInfo	send;			/* fn_oid InvalidOid until first needed */
	Oid			element_type;	/* of the model_inputs array; InvalidOid: not yet known */
	ArrayMetaState element;
	bool		is_composite;
	CsvType		scalar;
	CsvRowType	composite;
	int			ninputs;		/* invoke_endpoint's model_input arguments */
	CsvType		inputs[FLEXIBLE_ARRAY_MEMBER];
} CallState;

static CallState *
call_state(FunctionCallInfo fcinfo, int ninputs)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;

	if (flinfo->fn_extra == NULL)
		flinfo->fn_extra = MemoryContextAllocZero(flinfo->fn_mcxt,
												  offsetof(CallState, inputs) + sizeof(CsvType) * ninputs);
	return (CallState *) flinfo->fn_extra;
}

/* Calls aws_sagemaker._invoke_endpoint_csv(endpoint_name, max_rows_per_batch,
 * rows) with the caller's first two arguments; returns its varchar[]. */
static ArrayType *
send_rows(CallState *state, FunctionCallInfo caller, ArrayType *rows)
{
	LOCAL_FCINFO(call, 3);
	Datum		result;

	if (!OidIsValid(state->send.fn_oid))
	{
		Oid			argtypes[] = {VARCHAROID, INT4OID, TEXTARRAYOID};
		List	   *name = list_make2(makeString("aws_sagemaker"), makeString("_invoke_endpoint_csv"));

		fmgr_info_cxt(LookupFuncName(name, 3, argtypes, false), &state->send, caller->flinfo->fn_mcxt);
	}
	InitFunctionCallInfoData(*call, &state->send, 3, InvalidOid, NULL, NULL);
	call->args[0] = caller->args[0];
	call->args[1] = caller->args[1];
	call->args[2].value = PointerGetDatum(rows);
	call->args[2].isnull = false;
	result = FunctionCallInvoke(call);
	if (call->isnull)
		elog(ERROR, "aws_sagemaker._invoke_endpoint_csv returned NULL");
	return DatumGetArrayTypeP(result);
}

static void
deconstruct_outputs(ArrayType *outputs, Datum **values, bool **nulls, int *count)
{
	deconstruct_array(outputs, VARCHAROID, -1, false, TYPALIGN_INT, values, nulls, count);
}

/*
 * aws_sagemaker.invoke_endpoint(endpoint_name varchar, max_rows_per_batch int,
 *     VARIADIC model_input "any", OUT model_output varchar)
 */
Datum
aws_ml_sagemaker_invoke_endpoint(PG_FUNCTION_ARGS)
{
	int			ninputs = PG_NARGS() - 2;
	CallState  *state = call_state(fcinfo, ninputs);
	CsvRow		row;
	Datum		values[FUNC_MAX_ARGS];
	bool		nulls[FUNC_MAX_ARGS];
	Datum		line;
	Datum	   *outputs;
	bool	   *output_nulls;
	int			count;

	/* SQL passes at least one: a model_input, or a VARIADIC array */
	if (state->ninputs == 0)
	{
		for (int i = 0; i < ninputs; i++)
		{
			Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, i + 2);

			if (!OidIsValid(typid))
				elog(ERROR, "could not determine the type of model input %d", i + 1);
			csv_type_init(&state->inputs[i], typid, fcinfo->flinfo->fn_mcxt);
		}
		state->ninputs = ninputs;
	}

	csv_row_init(&row);
	for (int i = 0; i < ninputs; i++)
	{
		values[i] = PG_GETARG_DATUM(i + 2);
		nulls[i] = PG_ARGISNULL(i + 2);
	}
	line = PointerGetDatum(csv_line(&row, state->inputs, values, nulls, ninputs));

	deconstruct_outputs(send_rows(state, fcinfo, construct_array(&line, 1, TEXTOID, -1, false, TYPALIGN_INT)),
						&outputs, &output_nulls, &count);
	if (count != 1)
		elog(ERROR, "aws_sagemaker._invoke_endpoint_csv returned %d outputs for 1 row", count);
	if (output_nulls[0])
		PG_RETURN_NULL();
	PG_RETURN_DATUM(outputs[0]);
}

/* One CSV row per element of inputs (NULL for a NULL element), as text[]. */
static ArrayType *
csv_rows(FunctionCallInfo fcinfo, CallState *state, ArrayType *inputs)
{
	Oid			element_type = ARR_ELEMTYPE(inputs);
	int			count = ArrayGetNItems(ARR_NDIM(inputs), ARR_DIMS(inputs));
	Datum	   *rows;
	bool	   *nulls;
	int			dims[1] = {count};
	int			lbs[1] = {1};
	ArrayIterator elements;
	Datum		element;
	bool		isnull;
	CsvRow		row;
	int			i = 0;

	if (ARR_NDIM(inputs) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aws_ml: model_inputs must be a one-dimensional array"),
				 errdetail("The array has %d dimensions.", ARR_NDIM(inputs))));
	if (count == 0)
		return construct_empty_array(TEXTOID);
	if (state->element_type != element_type)
	{
		state->element.element_type = element_type;
		get_typlenbyvalalign(element_type, &state->element.typlen, &state->element.typbyval,
							 &state->element.typalign);
		state->is_composite = type_is_rowtype(element_type);
		if (!state->is_composite)
			csv_type_init(&state->scalar, element_type, fcinfo->flinfo->fn_mcxt);
		state->element_type = element_type;
	}

	rows = palloc(sizeof(Datum) * count);
	nulls = palloc(sizeof(bool) * count);
	csv_row_init(&row);
	elements = array_create_iterator(inputs, 0, &state->element);
	while (array_iterate(elements, &element, &isnull))
	{
		CHECK_FOR_INTERRUPTS();
		nulls[i] = isnull;
		if (!isnull)
		{
			csv_row_reset(&row);
			if (state->is_composite)
				csv_append_columns(&row, &state->composite, element, fcinfo->flinfo->fn_mcxt);
			else
				csv_append_value(&row, &state->scalar, element, false);
			csv_row_end(&row);
			rows[i] = PointerGetDatum(cstring_to_text_with_len(row.line.data, row.line.len));
		}
		i++;
	}
	array_free_iterator(elements);
	return construct_md_array(rows, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
}

/* aws_sagemaker._csv_rows(model_inputs anyarray) RETURNS text[] */
Datum
aws_ml_sagemaker_csv_rows(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(csv_rows(fcinfo, call_state(fcinfo, 0), PG_GETARG_ARRAYTYPE_P(0)));
}

/*
 * aws_sagemaker.batch_invoke_endpoint(endpoint_name varchar,
 *     max_rows_per_batch int, model_inputs anyarray)
 *     RETURNS TABLE (ordinality int, model_output varchar)
 */
Datum
aws_ml_sagemaker_batch_invoke_endpoint(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallState  *state = call_state(fcinfo, 0);
	MemoryContext caller_context;
	TupleDesc	tupdesc;
	Tuplestorestate *results;
	Datum	   *outputs;
	bool	   *output_nulls;
	int			count;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aws_ml: aws_sagemaker.batch_invoke_endpoint must be called where a set is accepted, "
						"for example in FROM")));
	caller_context = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	results = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = results;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(caller_context);

	if (PG_ARGISNULL(2))
		return (Datum) 0;
	deconstruct_outputs(send_rows(state, fcinfo, csv_rows(fcinfo, state, PG_GETARG_ARRAYTYPE_P(2))),
						&outputs, &output_nulls, &count);
	for (int i = 0; i < count; i++)
	{
		Datum		values[2] = {Int32GetDatum(i + 1), outputs[i]};
		bool		nulls[2] = {false, output_nulls[i]};

		tuplestore_putvalues(results, tupdesc, values, nulls);
	}
	return (Datum) 0;
}
