/*
 * copy_arguments.c: aws_s3's arguments as the pieces of a COPY statement,
 * each parsed on its own by PostgreSQL's grammar: an export's query, an
 * import's table and columns, the options of both. A piece is parsed alone
 * or inside fixed text, and only what that piece may give is taken from the
 * tree (a statement, a table, a column list, an option list), so a quote or
 * a comment in one piece never reaches another. A syntax error points into
 * the piece (an internal query and position, as psql shows them), not into
 * a statement the user never wrote.
 */
#include "postgres.h"

#include "compat.h"

#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "parser/parser.h"

#include "s3/copy_arguments.h"

/* The fixed text the pieces are parsed in; its table is never opened. */
#define OPTIONS_STATEMENT "COPY aws_s3_options FROM STDIN "
#define COLUMNS_STATEMENT "COPY aws_s3_columns ("

/*
 * An error context callback: an error with a position in the statement
 * being parsed points into the argument instead, as an internal query and
 * position (PL/Python carries those through, SPI's callback then leaves
 * them alone).
 */
static void
point_into_argument(void *arg)
{
	ArgumentErrors *argument = (ArgumentErrors *) arg;
	int			position = geterrposition();

	if (position > 0 && argument->text != NULL)
	{
		errposition(0);
		internalerrposition(Max(1, Min(position - argument->offset, pg_mbstrlen(argument->text) + 1)));
		internalerrquery(argument->text);
	}
}

void
init_argument_errors(ArgumentErrors *argument, const char *text, int offset)
{
	argument->text = text;
	argument->offset = offset;
	argument->callback.callback = point_into_argument;
	argument->callback.arg = argument;
	argument->callback.previous = NULL;
}

void
begin_argument_errors(ArgumentErrors *argument, const char *text, int offset)
{
	init_argument_errors(argument, text, offset);
	argument->callback.previous = error_context_stack;
	error_context_stack = &argument->callback;
}

void
end_argument_errors(ArgumentErrors *argument)
{
	error_context_stack = argument->callback.previous;
}

/*
 * Raises a syntax error about text, pointing at its start; what names the
 * argument and what it must be.
 */
static void
refuse_piece(const char *text, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("aws_s3: %s", what),
			 internalerrquery(text),
			 internalerrposition(1)));
}

/*
 * The statements of prefix, text and suffix together, text's syntax errors
 * pointing into it. With failed given, an error is not raised but returned
 * there (its position, in text), and the result is NIL.
 */
static List *
parse_in_statement(const char *prefix, const char *text, const char *suffix, ErrorData **failed)
{
	MemoryContext context = CurrentMemoryContext;
	char	   *statement = psprintf("%s%s%s", prefix, text, suffix);
	List	   *volatile statements = NIL;

	PG_TRY();
	{
		ArgumentErrors argument;

		begin_argument_errors(&argument, text, strlen(prefix));
		statements = raw_parser(statement, RAW_PARSE_DEFAULT);
		end_argument_errors(&argument);
	}
	PG_CATCH();
	{
		/* raw_parser only allocates memory: nothing else to undo */
		if (failed == NULL)
			PG_RE_THROW();
		MemoryContextSwitchTo(context);
		*failed = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	return statements;
}

/*
 * The COPY statement that statements must be exactly, the shape of the one
 * text was parsed in: no other statement, no WHERE clause, no query.
 */
static CopyStmt *
only_copy(List *statements, const char *text, const char *what)
{
	CopyStmt   *copy;

	if (list_length(statements) != 1 || !IsA(linitial_node(RawStmt, statements)->stmt, CopyStmt))
		refuse_piece(text, what);
	copy = (CopyStmt *) linitial_node(RawStmt, statements)->stmt;
	if (copy->relation == NULL || copy->query != NULL || !copy->is_from || copy->is_program ||
		copy->filename != NULL || copy->whereClause != NULL)
		refuse_piece(text, what);
	return copy;
}

/*
 * The DefElems of options as COPY reads them after FROM STDIN or TO STDOUT:
 * an option list in parentheses (WITH before it or not), the pre-9.0
 * syntax (CSV HEADER, DELIMITER AS '|', BINARY), or a list without
 * parentheses as AWS documents it (format csv, header true). Their
 * locations are offsets into options.
 */
List *
parse_option_list(const char *options)
{
	ErrorData  *as_written = NULL;
	ErrorData  *as_list = NULL;
	List	   *statements;
	int			offset = strlen(OPTIONS_STATEMENT);
	CopyStmt   *copy;
	ListCell   *cell;

	statements = parse_in_statement(OPTIONS_STATEMENT, options, "", &as_written);
	if (as_written != NULL)
	{
		offset = strlen(OPTIONS_STATEMENT "(");
		statements = parse_in_statement(OPTIONS_STATEMENT "(", options, ")", &as_list);
	}
	/* both failed: the error of the reading that went further */
	if (as_list != NULL)
		ReThrowError(as_written->internalpos > as_list->internalpos ? as_written : as_list);
	copy = only_copy(statements, options, "options must be COPY's options, without a WHERE clause");
	foreach(cell, copy->options)
		lfirst_node(DefElem, cell)->location -= offset;
	return copy->options;
}

List *
parse_copy_options(const char *options, bool is_from, CopyFormatOptions *layout)
{
	CopyFormatOptions checked = {0};
	ParseState *pstate = make_parsestate(NULL);
	ArgumentErrors argument;
	List	   *list;
	ListCell   *cell;

	list = options ? parse_option_list(options) : NIL;
	pstate->p_sourcetext = options;
	begin_argument_errors(&argument, options, 0);
	ProcessCopyOptions(pstate, layout ? layout : &checked, is_from, list);
	end_argument_errors(&argument);
	/* checked: COPY's own errors about them must not point elsewhere */
	foreach(cell, list)
		lfirst_node(DefElem, cell)->location = -1;
	return list;
}

RawStmt *
parse_export_query(const char *query)
{
	List	   *statements = parse_in_statement("", query, "", NULL);
	RawStmt    *statement;

	/* a trailing semicolon, and comments, make no statement */
	if (list_length(statements) != 1)
		refuse_piece(query, "query must be one statement");
	statement = linitial_node(RawStmt, statements);
	if (!IsA(statement->stmt, SelectStmt) && !IsA(statement->stmt, InsertStmt) &&
		!IsA(statement->stmt, UpdateStmt) && !IsA(statement->stmt, DeleteStmt))
		refuse_piece(query, "query must be a SELECT, VALUES or TABLE, or an INSERT, UPDATE or DELETE with RETURNING");
	return statement;
}

RangeVar *
parse_import_target(const char *table_name, const char *column_list, List **columns)
{
	bool		listed = column_list != NULL && column_list[strspn(column_list, " \t\r\n")] != '\0';
	CopyStmt   *table = only_copy(parse_in_statement("COPY ", table_name, " FROM STDIN", NULL),
								  table_name, "table_name must name one table");

	if (table->options != NIL || (listed && table->attlist != NIL))
		refuse_piece(table_name, "table_name must name one table");
	*columns = table->attlist;
	if (listed)
	{
		CopyStmt   *attlist = only_copy(parse_in_statement(COLUMNS_STATEMENT, column_list, ") FROM STDIN", NULL),
										column_list, "column_list must be a list of column names");

		if (attlist->options != NIL)
			refuse_piece(column_list, "column_list must be a list of column names");
		*columns = attlist->attlist;
	}
	return table->relation;
}
