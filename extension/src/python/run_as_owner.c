/*
 * run_as_owner.c: the backfills' statements on a table the caller does not
 * own run as the table's owner in a security-restricted operation, as
 * VACUUM, ANALYZE and REFRESH MATERIALIZED VIEW run index expressions and
 * triggers: a superuser's scheduled backfill must not run a tenant's trigger
 * as the superuser. The owner's code cannot SET ROLE back, and settings it
 * changes are undone when the run ends.
 */
#include "postgres.h"

#include "compat.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "python/run_as_owner.h"

typedef struct SavedUser
{
	Oid			userid;
	int			sec_context;
	int			guc_nestlevel;
} SavedUser;

/*
 * Switches to owner, in a security-restricted operation; what to give
 * aws_ml_end_run_as_owner to switch back, NULL (unchanged) when out of
 * memory. Raises no error: the Python layer calls it through ctypes.
 */
void *
aws_ml_run_as_owner(Oid owner)
{
	SavedUser  *saved = MemoryContextAllocExtended(TopMemoryContext, sizeof(SavedUser), MCXT_ALLOC_NO_OOM);

	if (saved == NULL)
		return NULL;
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context | SECURITY_RESTRICTED_OPERATION);
	saved->guc_nestlevel = NewGUCNestLevel();
	return saved;
}

/* Undoes the owner's settings and switches back to the user saved. */
void
aws_ml_end_run_as_owner(void *saved)
{
	SavedUser  *user = saved;

	AtEOXact_GUC(false, user->guc_nestlevel);
	SetUserIdAndSecContext(user->userid, user->sec_context);
	pfree(user);
}
