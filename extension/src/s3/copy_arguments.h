/*
 * copy_arguments.h: aws_s3's arguments as the pieces of a COPY statement,
 * each parsed on its own.
 */
#ifndef AWS_ML_COPY_ARGUMENTS_H
#define AWS_ML_COPY_ARGUMENTS_H

#include "commands/copy.h"
#include "nodes/parsenodes.h"

/*
 * options as COPY's grammar reads them, unchecked: syntax errors only, which
 * COPY raises before it looks its table up.
 */
extern List *parse_option_list(const char *options);

/*
 * options (NULL: none) as COPY's option list, checked by COPY for the
 * direction; how COPY lays its data out with them into *layout, if given.
 */
extern List *parse_copy_options(const char *options, bool is_from, CopyFormatOptions *layout);

/* The one statement query holds, of a kind COPY (query) TO takes. */
extern RawStmt *parse_export_query(const char *query);

/*
 * The table of table_name, and in *columns the columns of column_list
 * (NULL or blank: those table_name may list, else none: every column).
 */
extern RangeVar *parse_import_target(const char *table_name, const char *column_list, List **columns);

/*
 * While begun, an error with a position in a statement points into text
 * instead, the argument that starts offset bytes (ASCII characters) into it.
 */
typedef struct ArgumentErrors
{
	ErrorContextCallback callback;
	const char *text;
	int			offset;
} ArgumentErrors;

extern void begin_argument_errors(ArgumentErrors *argument, const char *text, int offset);

/* As begin_argument_errors, but leaves argument->callback for the caller to push. */
extern void init_argument_errors(ArgumentErrors *argument, const char *text, int offset);
extern void end_argument_errors(ArgumentErrors *argument);

#endif
