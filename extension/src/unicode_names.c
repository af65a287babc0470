/*
 * unicode_names.c: names that came through PL/Python, which hands a function
 * its arguments and its queries' results in Unicode and sends its queries'
 * texts as UTF-8. A few server encodings have two characters for one
 * Unicode code point (EUC_JP: the NEC extension's 0xADF0 and JIS's 0xA2E2,
 * both U+2252; EUC_TW: each character of its plane 1 in two and in four
 * bytes), and Unicode converts back to one of them: a name the caller gave
 * with the other reaches the server as this one, and a name read from the
 * catalog and written back into SQL may name its twin or nothing.
 *
 * So a name is its own in Unicode when it is whole (its Unicode converts
 * back to itself) and no sibling has the same Unicode: no other schema for
 * a schema, no other relation of its schema for a table, no other column
 * of its table for a column; no other relation of a schema of the search
 * path for a table found through it. aws_s3's import refuses a table or columns
 * whose names are not their own (s3/s3_copy.c); the backfills ask through
 * aws_ml_check_unicode_names (plpython/aws_ml/sql_names.py).
 *
 * An ASCII name is its own: no character of a server encoding but ASCII's
 * has an ASCII code point (every character of every server encoding with a
 * conversion to UTF8 checked, PostgreSQL 15).
 */
#include "postgres.h"

#include "compat.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "common/string.h"
#include "mb/pg_wchar.h"
#include "nodes/value.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "unicode_names.h"

/* The conversions PL/Python's names go through: to UTF-8 and back */
typedef struct UnicodeConversions
{
	Oid			to_unicode;
	Oid			from_unicode;
} UnicodeConversions;

/* A sibling's name and its Unicode (NULL: a character of it has none) */
typedef struct Sibling
{
	char	   *name;
	char	   *unicode;
} Sibling;

/*
 * Whether names go through Unicode on their way between PL/Python and the
 * server: not in UTF8, which is Unicode, nor in SQL_ASCII, which takes
 * PL/Python's bytes as they come.
 */
static bool
names_go_through_unicode(void)
{
	return GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII;
}

/* The conversions of the database's encoding; false if there are none, or nothing to check */
static bool
conversions_of_database(UnicodeConversions *conversions)
{
	if (!names_go_through_unicode())
		return false;
	conversions->to_unicode = FindDefaultConversionProc(GetDatabaseEncoding(), PG_UTF8);
	conversions->from_unicode = FindDefaultConversionProc(PG_UTF8, GetDatabaseEncoding());
	return OidIsValid(conversions->to_unicode) && OidIsValid(conversions->from_unicode);
}

/* text converted by proc, NULL when a character of it has no counterpart */
static char *
converted(Oid proc, int from, int to, const char *text)
{
	int			length = strlen(text);
	int			size = length * MAX_CONVERSION_GROWTH + 1;
	unsigned char *result = palloc(size);

	if (pg_do_encoding_conversion_buf(proc, from, to, (unsigned char *) text, length,
									  result, size, true) < length)
		return NULL;
	return (char *) result;
}

static char *
in_unicode(const UnicodeConversions *conversions, const char *name)
{
	return converted(conversions->to_unicode, GetDatabaseEncoding(), PG_UTF8, name);
}

static List *
with_sibling(List *siblings, const UnicodeConversions *conversions, const char *name)
{
	Sibling    *sibling = palloc(sizeof(Sibling));

	sibling->name = pstrdup(name);
	sibling->unicode = pg_is_ascii(name) ? sibling->name : in_unicode(conversions, name);
	return lappend(siblings, sibling);
}

/* The names in column name_column of catalog's rows, those whose column key is oid if key is set */
static List *
catalog_names(const UnicodeConversions *conversions, Oid catalog, AttrNumber name_column,
			  AttrNumber key, Oid oid)
{
	Relation	rel = table_open(catalog, AccessShareLock);
	ScanKeyData scan_key[1];
	SysScanDesc scan;
	HeapTuple	tuple;
	int			keys = 0;
	List	   *names = NIL;

	if (AttributeNumberIsValid(key))
		ScanKeyInit(&scan_key[keys++], key, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(oid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, keys, scan_key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		name = heap_getattr(tuple, name_column, RelationGetDescr(rel), &isnull);

		names = with_sibling(names, conversions, NameStr(*DatumGetName(name)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return names;
}

static List *
names_of_columns(const UnicodeConversions *conversions, TupleDesc columns)
{
	List	   *names = NIL;

	for (int i = 0; i < columns->natts; i++)
	{
		Form_pg_attribute column = TupleDescAttr(columns, i);

		if (!column->attisdropped)
			names = with_sibling(names, conversions, NameStr(column->attname));
	}
	return names;
}

/*
 * Whether name, not ASCII, is its own in Unicode among siblings (Sibling
 * each, name's own among them if it names one).
 */
static bool
own_in_unicode(const UnicodeConversions *conversions, const char *name, List *siblings)
{
	char	   *unicode = in_unicode(conversions, name);
	char	   *back;
	ListCell   *cell;

	if (unicode == NULL)
		return false;
	back = converted(conversions->from_unicode, PG_UTF8, GetDatabaseEncoding(), unicode);
	if (back == NULL || strcmp(back, name) != 0)
		return false;
	foreach(cell, siblings)
	{
		Sibling    *sibling = lfirst(cell);

		if (sibling->unicode != NULL && strcmp(sibling->unicode, unicode) == 0 &&
			strcmp(sibling->name, name) != 0)
			return false;
	}
	return true;
}

/*
 * The names of the relations rel's name may name: those of its schema, or,
 * when it was found through the search path (searched), those of every
 * schema of the path (a twin in another schema is found first when the
 * caller gave its name: pg_temp's, or an earlier schema's).
 */
static List *
relation_siblings(const UnicodeConversions *conversions, Relation rel, bool searched)
{
	List	   *schemas = searched ? fetch_search_path(true) : list_make1_oid(RelationGetNamespace(rel));
	List	   *names = NIL;
	ListCell   *cell;

	foreach(cell, schemas)
		names = list_concat(names, catalog_names(conversions, RelationRelationId, Anum_pg_class_relname,
												 Anum_pg_class_relnamespace, lfirst_oid(cell)));
	return names;
}

/*
 * Whether the names of rel, of its schema and column_names (String nodes:
 * rel's columns, or names that PL/Python passed for them) are their own in
 * Unicode; searched: whether rel was found by its name alone, through the
 * search path.
 */
UnicodeNames
unicode_names_of(Relation rel, List *column_names, bool searched)
{
	UnicodeConversions conversions;
	const char *table = RelationGetRelationName(rel);
	char	   *schema;
	List	   *columns = NIL;
	ListCell   *cell;

	if (!conversions_of_database(&conversions))
		return UNICODE_NAMES_OWN;
	if (!pg_is_ascii(table) && !own_in_unicode(&conversions, table, relation_siblings(&conversions, rel, searched)))
		return UNICODE_NAMES_TAKEN;
	foreach(cell, column_names)
	{
		const char *column = strVal(lfirst(cell));

		if (pg_is_ascii(column))
			continue;
		if (columns == NIL)
			columns = names_of_columns(&conversions, RelationGetDescr(rel));
		if (!own_in_unicode(&conversions, column, columns))
			return UNICODE_NAMES_TAKEN;
	}
	schema = get_namespace_name(RelationGetNamespace(rel));
	if (schema == NULL)
		elog(ERROR, "cache lookup failed for namespace %u", RelationGetNamespace(rel));
	if (!pg_is_ascii(schema) &&
		!own_in_unicode(&conversions, schema,
						catalog_names(&conversions, NamespaceRelationId, Anum_pg_namespace_nspname,
									  InvalidAttrNumber, InvalidOid)))
		return UNICODE_NAMES_SCHEMA_TAKEN;
	return UNICODE_NAMES_OWN;
}

/* unicode_names_of the relation relid and its columns attnums (count) */
static UnicodeNames
unicode_names_of_relid(Oid relid, const int16 *attnums, int count)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	TupleDesc	columns;
	List	   *names = NIL;
	UnicodeNames answer;

	if (rel == NULL)
		return UNICODE_NAMES_NO_RELATION;
	columns = RelationGetDescr(rel);
	for (int i = 0; i < count; i++)
	{
		if (attnums[i] < 1 || attnums[i] > columns->natts ||
			TupleDescAttr(columns, attnums[i] - 1)->attisdropped)
		{
			relation_close(rel, AccessShareLock);
			return UNICODE_NAMES_NO_COLUMN;
		}
		names = lappend(names, makeString(NameStr(TupleDescAttr(columns, attnums[i] - 1)->attname)));
	}
	answer = unicode_names_of(rel, names, false);
	relation_close(rel, NoLock);
	return answer;
}

/*
 * unicode_names_of the relation relid and its columns attnums (count), for
 * the Python layer, which calls it through ctypes: no error may leave it.
 * The relation, once found, stays locked (AccessShareLock) until the
 * transaction ends. The check runs in a subtransaction: an error it raises
 * (a cancel or a lock timeout while it waits for the relation) is rolled
 * back, its SQLSTATE put in *sqlerrcode and its message in message (size
 * bytes), and UNICODE_NAMES_FAILED answered.
 */
int
aws_ml_check_unicode_names(Oid relid, const int16 *attnums, int count,
						   int *sqlerrcode, char *message, int size)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	volatile MemoryContext check_context = NULL;
	volatile bool in_subtransaction = false;
	volatile UnicodeNames answer;

	if (!names_go_through_unicode())
		return UNICODE_NAMES_OWN;
	PG_TRY();
	{
		BeginInternalSubTransaction(NULL);
		in_subtransaction = true;
		check_context = AllocSetContextCreate(caller_context, "aws_ml names in Unicode",
											  ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(check_context);
		answer = unicode_names_of_relid(relid, attnums, count);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller_context);
		answer = UNICODE_NAMES_FAILED;
		error = CopyErrorData();
		FlushErrorState();
		if (in_subtransaction)
			RollbackAndReleaseCurrentSubTransaction();
		*sqlerrcode = error->sqlerrcode;
		strlcpy(message, error->message ? error->message : "", size);
		FreeErrorData(error);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	CurrentResourceOwner = caller_owner;
	if (check_context != NULL)
		MemoryContextDelete(check_context);
	return answer;
}
