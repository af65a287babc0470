/*
 * csv.c: model input rows as CSV lines (RFC 4180).
 *
 * Each value is one field in its type's text form (the type's output
 * function); a one-dimensional array is one field per element; NULL (a value
 * or an element) is an empty field, written "" when it is the row's only
 * field. A field holding a comma, a double quote, CR or LF is quoted, its
 * double quotes doubled. A row ends with "\n".
 */
#include "postgres.h"

#include "compat.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "sagemaker/csv.h"

void
csv_type_init(CsvType *type, Oid typid, MemoryContext context)
{
	Oid			element = get_base_element_type(typid);
	Oid			output;
	bool		is_varlena;

	type->typid = typid;
	type->is_array = OidIsValid(element);
	if (type->is_array)
	{
		type->element.element_type = element;
		get_typlenbyvalalign(element, &type->element.typlen, &type->element.typbyval,
							 &type->element.typalign);
	}
	getTypeOutputInfo(type->is_array ? element : typid, &output, &is_varlena);
	fmgr_info_cxt(output, &type->output, context);
}

void
csv_row_init(CsvRow *row)
{
	initStringInfo(&row->line);
	row->nfields = 0;
}

void
csv_row_reset(CsvRow *row)
{
	resetStringInfo(&row->line);
	row->nfields = 0;
}

static void
check_row_size(CsvRow *row, int more)
{
	if (row->line.len + more > CSV_MAX_ROW_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aws_ml: a model input row exceeds the SageMaker request limit of %d bytes",
						CSV_MAX_ROW_BYTES),
				 errdetail("InvokeEndpoint takes at most 6 MB per request, and a row cannot be split.")));
}

static void
start_field(CsvRow *row)
{
	if (row->nfields++ > 0)
		appendStringInfoChar(&row->line, ',');
}

static void
append_field(CsvRow *row, const char *text)
{
	StringInfo	line = &row->line;

	start_field(row);
	if (strpbrk(text, ",\"\r\n") == NULL)
		appendStringInfoString(line, text);
	else
	{
		appendStringInfoChar(line, '"');
		for (const char *c = text; *c; c++)
		{
			if (*c == '"')
				appendStringInfoChar(line, '"');
			appendStringInfoChar(line, *c);
		}
		appendStringInfoChar(line, '"');
	}
	/* "\n" still to come */
	check_row_size(row, 1);
}

static void
append_output(CsvRow *row, FmgrInfo *output, Datum value)
{
	char	   *text = OutputFunctionCall(output, value);

	append_field(row, text);
	pfree(text);
}

void
csv_append_value(CsvRow *row, CsvType *type, Datum value, bool isnull)
{
	ArrayType  *array;
	ArrayIterator elements;
	Datum		element;
	bool		element_isnull;

	if (isnull)
		start_field(row);
	else if (!type->is_array)
		append_output(row, &type->output, value);
	else
	{
		array = DatumGetArrayTypeP(value);
		if (ARR_NDIM(array) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aws_ml: a model input array must be one-dimensional"),
					 errdetail("The array has %d dimensions.", ARR_NDIM(array))));
		elements = array_create_iterator(array, 0, &type->element);
		while (array_iterate(elements, &element, &element_isnull))
		{
			if (element_isnull)
				start_field(row);
			else
				append_output(row, &type->output, element);
		}
		array_free_iterator(elements);
	}
}

/* Forgets the columns of the row type rowtype knew, if any. */
static void
row_type_free(CsvRowType *rowtype)
{
	if (rowtype->tupdesc == NULL)
		return;
	FreeTupleDesc(rowtype->tupdesc);
	pfree(rowtype->columns);
	pfree(rowtype->values);
	pfree(rowtype->nulls);
	rowtype->tupdesc = NULL;
}

static void
row_type_init(CsvRowType *rowtype, Oid typid, int32 typmod, uint64 identifier, MemoryContext context)
{
	TupleDesc	tupdesc = lookup_rowtype_tupdesc(typid, typmod);
	MemoryContext old = MemoryContextSwitchTo(context);

	row_type_free(rowtype);
	rowtype->typid = typid;
	rowtype->typmod = typmod;
	rowtype->identifier = identifier;
	rowtype->tupdesc = CreateTupleDescCopy(tupdesc);
	ReleaseTupleDesc(tupdesc);
	rowtype->columns = palloc(sizeof(CsvType) * rowtype->tupdesc->natts);
	rowtype->values = palloc(sizeof(Datum) * rowtype->tupdesc->natts);
	rowtype->nulls = palloc(sizeof(bool) * rowtype->tupdesc->natts);
	for (int i = 0; i < rowtype->tupdesc->natts; i++)
	{
		Form_pg_attribute column = TupleDescAttr(rowtype->tupdesc, i);

		if (!column->attisdropped)
			csv_type_init(&rowtype->columns[i], column->atttypid, context);
	}
	MemoryContextSwitchTo(old);
}

void
csv_append_columns(CsvRow *row, CsvRowType *rowtype, Datum tuple, MemoryContext context)
{
	HeapTupleHeader header = DatumGetHeapTupleHeader(tuple);
	Oid			typid = HeapTupleHeaderGetTypeId(header);
	int32		typmod = HeapTupleHeaderGetTypMod(header);
	HeapTupleData deformed;

	/*
	 * The type cache's identifier of the row type's current description: an
	 * ALTER TYPE within the statement (a function the query calls) changes it.
	 */
	uint64		identifier = assign_record_type_identifier(typid, typmod);

	if (rowtype->typid != typid || rowtype->typmod != typmod || rowtype->identifier != identifier)
		row_type_init(rowtype, typid, typmod, identifier, context);
	deformed.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&deformed.t_self);
	deformed.t_tableOid = InvalidOid;
	deformed.t_data = header;
	heap_deform_tuple(&deformed, rowtype->tupdesc, rowtype->values, rowtype->nulls);
	for (int i = 0; i < rowtype->tupdesc->natts; i++)
	{
		if (!TupleDescAttr(rowtype->tupdesc, i)->attisdropped)
			csv_append_value(row, &rowtype->columns[i], rowtype->values[i], rowtype->nulls[i]);
	}
}

void
csv_row_end(CsvRow *row)
{
	if (row->nfields == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aws_ml: a model input row has no fields"),
				 errhint("Pass at least one value: an empty array adds no field.")));
	/* A lone empty field would be a blank line, which CSV readers skip. */
	if (row->line.len == 0)
		appendStringInfoString(&row->line, "\"\"");
	appendStringInfoChar(&row->line, '\n');
}

/* The row of count values (types: how to write each) as text, ending in "\n". */
text *
csv_line(CsvRow *row, CsvType *types, Datum *values, bool *nulls, int count)
{
	csv_row_reset(row);
	for (int i = 0; i < count; i++)
		csv_append_value(row, &types[i], values[i], nulls[i]);
	csv_row_end(row);
	return cstring_to_text_with_len(row->line.data, row->line.len);
}
