/*
 * csv.h: model input rows as CSV lines (RFC 4180), the text/csv body the
 * SageMaker runtime takes.
 */
#ifndef AWS_ML_CSV_H
#define AWS_ML_CSV_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"

/* InvokeEndpoint's request payload limit: no single row may exceed it. */
#define CSV_MAX_ROW_BYTES (6 * 1024 * 1024)

/* How to write the values of one type: its output function, or, for an
 * array, its element type's (an array expands into one field per element). */
typedef struct CsvType
{
	Oid			typid;
	bool		is_array;
	ArrayMetaState element;		/* when is_array */
	FmgrInfo	output;
} CsvType;

/* How to write the columns of one row type, one CsvType per column. */
typedef struct CsvRowType
{
	Oid			typid;			/* InvalidOid: not yet known */
	int32		typmod;
	uint64		identifier;		/* the type cache's, of tupdesc */
	TupleDesc	tupdesc;		/* NULL: not yet known */
	CsvType    *columns;
	Datum	   *values;
	bool	   *nulls;
} CsvRowType;

/* A row being built: its text and how many fields it has so far. */
typedef struct CsvRow
{
	StringInfoData line;
	int			nfields;
} CsvRow;

extern void csv_type_init(CsvType *type, Oid typid, MemoryContext context);
extern void csv_row_init(CsvRow *row);
extern void csv_row_reset(CsvRow *row);
extern void csv_append_value(CsvRow *row, CsvType *type, Datum value, bool isnull);
extern void csv_append_columns(CsvRow *row, CsvRowType *rowtype, Datum tuple, MemoryContext context);
extern void csv_row_end(CsvRow *row);
extern text *csv_line(CsvRow *row, CsvType *types, Datum *values, bool *nulls, int count);

#endif
