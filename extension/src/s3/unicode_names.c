/*
 * unicode_names.c: names that came through PL/Python, which hands a function
 * its arguments in Unicode. A few server encodings have two characters for
 * one Unicode code point (EUC_JP: the NEC extension's 0xADF0 and JIS's
 * 0xA2E2, both U+2252), and Unicode converts back to one of them: a table or
 * column name the caller gave with the other reaches the server as this one.
 * So a name that another table of its schema, or another column of its
 * table, shares in Unicode is refused: the caller may have meant the other.
 */
#include "postgres.h"

#include "compat.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "common/string.h"
#include "mb/pg_wchar.h"
#include "nodes/value.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "s3/unicode_names.h"

/* name in UTF-8 by proc; NULL when a character of it has no Unicode code point */
static char *
in_unicode(Oid proc, const char *name)
{
	int			length = strlen(name);
	int			size = length * MAX_CONVERSION_GROWTH + 1;
	unsigned char *utf8 = palloc(size);

	if (pg_do_encoding_conversion_buf(proc, GetDatabaseEncoding(), PG_UTF8,
									  (unsigned char *) name, length, utf8, size, true) < length)
		return NULL;
	return (char *) utf8;
}

/* Whether other differs from name, whose UTF-8 is name_in_unicode, and is the same in Unicode. */
static bool
same_in_unicode(Oid proc, const char *name, const char *name_in_unicode, const char *other)
{
	char	   *other_in_unicode;

	if (strcmp(name, other) == 0)
		return false;
	other_in_unicode = in_unicode(proc, other);
	return other_in_unicode != NULL && strcmp(name_in_unicode, other_in_unicode) == 0;
}

static bool
table_shares_name(Oid proc, Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	char	   *name_in_unicode;
	Relation	pg_class;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		shared = false;

	if (pg_is_ascii(name) || (name_in_unicode = in_unicode(proc, name)) == NULL)
		return false;
	pg_class = table_open(RelationRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationGetNamespace(rel)));
	scan = systable_beginscan(pg_class, InvalidOid, false, NULL, 1, &key);
	while (!shared && HeapTupleIsValid(tuple = systable_getnext(scan)))
		shared = same_in_unicode(proc, name, name_in_unicode,
								 NameStr(((Form_pg_class) GETSTRUCT(tuple))->relname));
	systable_endscan(scan);
	table_close(pg_class, AccessShareLock);
	return shared;
}

static bool
column_shares_name(Oid proc, Relation rel, const char *name)
{
	TupleDesc	columns = RelationGetDescr(rel);
	char	   *name_in_unicode;

	if (pg_is_ascii(name) || (name_in_unicode = in_unicode(proc, name)) == NULL)
		return false;
	for (int i = 0; i < columns->natts; i++)
	{
		Form_pg_attribute column = TupleDescAttr(columns, i);

		if (!column->attisdropped &&
			same_in_unicode(proc, name, name_in_unicode, NameStr(column->attname)))
			return true;
	}
	return false;
}

/*
 * Refuses rel, or one of column_names (String nodes) of it, when another
 * table or column shares its name in Unicode; nothing to do where the
 * database's encoding is UTF8 or SQL_ASCII, which PL/Python's Unicode
 * passes through whole.
 */
void
refuse_names_shared_in_unicode(Relation rel, List *column_names)
{
	ListCell   *cell;
	Oid			proc;
	bool		shared;

	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
		return;
	proc = FindDefaultConversionProc(GetDatabaseEncoding(), PG_UTF8);
	if (!OidIsValid(proc))
		return;
	shared = table_shares_name(proc, rel);
	foreach(cell, column_names)
		shared = shared || column_shares_name(proc, rel, strVal(lfirst(cell)));
	if (shared)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aws_s3: table %s or a column of it shares its name in Unicode "
						"with another table or column", RelationGetRelationName(rel)),
				 errdetail("PL/Python passes names in Unicode, where the database's encoding (%s) has one "
						   "character for two of its own.", GetDatabaseEncodingName()),
				 errhint("Rename one of them, or use a UTF8 database.")));
}
