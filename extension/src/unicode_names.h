/*
 * unicode_names.h: whether names that came through PL/Python, which passes
 * them in Unicode, name what they named (unicode_names.c).
 */
#ifndef AWS_ML_UNICODE_NAMES_H
#define AWS_ML_UNICODE_NAMES_H

#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* plpython/aws_ml/backend.py declares the same values */
typedef enum UnicodeNames
{
	UNICODE_NAMES_OWN,			/* every name whole, none shared in Unicode */
	UNICODE_NAMES_TAKEN,		/* the table's or a column's is not */
	UNICODE_NAMES_SCHEMA_TAKEN, /* the schema's is not */
	UNICODE_NAMES_NO_RELATION,	/* aws_ml_check_unicode_names: no such relation */
	UNICODE_NAMES_NO_COLUMN,	/* ... or no such column of it */
	UNICODE_NAMES_FAILED		/* ... or an error stopped the check */
} UnicodeNames;

extern UnicodeNames unicode_names_of(Relation rel, List *column_names, bool searched);

extern PGDLLEXPORT int aws_ml_check_unicode_names(Oid relid, const int16 *attnums, int count,
												  int *sqlerrcode, char *message, int size);

#endif
