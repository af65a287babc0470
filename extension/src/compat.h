/*
 * compat.h: every difference between the PostgreSQL versions this module
 * builds against, 15 to 18, in one place (as Citus's pg_version_compat.h).
 * The code is written against one API; this header maps it onto the other
 * versions. Include it first after postgres.h, in every file.
 */
#ifndef AWS_ML_COMPAT_H
#define AWS_ML_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "aws_ml needs PostgreSQL 15 or later"
#endif

/*
 * The module is built with -fvisibility=hidden: only what PGDLLEXPORT marks
 * is exported (the module's entry points and the accessors the Python layer
 * binds). 16 marks it so for GCC-like compilers; 15 defines it empty.
 */
#if PG_VERSION_NUM < 160000
#ifdef __GNUC__
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif
/* 16's form: 15's leaves the function itself unmarked */
#include "fmgr.h"
#undef PG_FUNCTION_INFO_V1
#define PG_FUNCTION_INFO_V1(funcname) \
extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
extern PGDLLEXPORT const Pg_finfo_record * CppConcat(pg_finfo_,funcname)(void); \
const Pg_finfo_record * \
CppConcat(pg_finfo_,funcname) (void) \
{ \
	static const Pg_finfo_record my_finfo = { 1 }; \
	return &my_finfo; \
} \
extern int no_such_variable
/* declared by 16's fmgr.h */
extern PGDLLEXPORT void _PG_init(void);
#endif

/* 16 replaced the per-catalog ACL checks by object_aclcheck. */
#if PG_VERSION_NUM >= 160000
#include "utils/acl.h"
#define pg_proc_aclcheck(proc, role, mode) object_aclcheck(ProcedureRelationId, proc, role, mode)
#endif

/* 18 dropped ExecutorRun's execute_once. */
#if PG_VERSION_NUM >= 180000
#define EXECUTE_ONCE_PARAMETER
#define EXECUTE_ONCE_ARGUMENT
#else
#define EXECUTE_ONCE_PARAMETER , bool execute_once
#define EXECUTE_ONCE_ARGUMENT , execute_once
#endif

/* 18 moved the EXPLAIN output functions out of commands/explain.h. */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#endif

/*
 * 16 moved the permissions a range table entry requires into an
 * RTEPermissionInfo of their own; 15 keeps them in the entry.
 */
#if PG_VERSION_NUM < 160000
#define RTEPermissionInfo RangeTblEntry
#define getRTEPermissionInfo(rteperminfos, rte) (rte)
#define ExecCheckPermissions(range_table, rteperminfos, ereport_on_violation) \
	ExecCheckRTPerms(range_table, ereport_on_violation)
#endif

/* The GUC records, and how many: 16 passes the count back. */
#include "utils/guc_tables.h"
#if PG_VERSION_NUM < 160000
static inline struct config_generic **
guc_variables(int *count)
{
	*count = GetNumConfigOptions();
	return get_guc_variables();
}
#else
#define guc_variables(count) get_guc_variables(count)
#endif

/* The GUC record of a name, a placeholder's too: 15's find_option is static. */
#if PG_VERSION_NUM < 160000
static inline struct config_generic *
find_option(const char *name, bool create_placeholders, bool skip_errors, int elevel)
{
	int			count;
	struct config_generic **settings = guc_variables(&count);

	Assert(!create_placeholders && skip_errors);
	for (int i = 0; i < count; i++)
	{
		if (pg_strcasecmp(settings[i]->name, name) == 0)
			return settings[i];
	}
	return NULL;
}
#endif

/*
 * COPY (query) TO a callback, which takes COPY TO STDOUT's output piece by
 * piece: 16's BeginCopyTo takes the callback (data_dest_cb) but leaves out
 * the line ends; 15 has none (both in s3/copy_to_callback.c). While COPY
 * analyses and plans the query (BeginCopyTo), analysis_context, if not
 * NULL, is on the error context stack.
 */
#include "commands/copy.h"
#if PG_VERSION_NUM < 160000
typedef void (*copy_data_dest_cb) (void *data, int len);
#endif
extern uint64 copy_query_to_callback(ParseState *pstate, RawStmt *query, List *options,
									 copy_data_dest_cb callback,
									 ErrorContextCallback *analysis_context);

#endif
