/*
 * backend.c: what the Python layer reads of the backend it runs in. The
 * Python layer binds these exported functions (ctypes) and no symbol of the
 * server itself, so that it depends on nothing but this module, compiled
 * against the server's headers. PL/Python cannot open a subtransaction
 * during a parallel operation, so settings and pending cancels are read here
 * rather than through SQL.
 */
#include "postgres.h"

#include "compat.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "python/backend.h"

static bool ready = false;
static int	processes_sharing_requests = 0;

/* Called last in _PG_init: the settings are defined and the hooks set. */
void
backend_mark_ready(void)
{
	ready = true;
}

/*
 * Whether _PG_init finished. A _PG_init that fails leaves the library
 * loaded, its symbols visible, and the aws_ml.* names still placeholders
 * that any user may set.
 */
bool
aws_ml_ready(void)
{
	return ready;
}

/* A setting's value as text, NULL when it does not exist. */
const char *
aws_ml_setting(const char *name)
{
	return GetConfigOption(name, true, false);
}

const char *
aws_ml_database_encoding(void)
{
	return GetDatabaseEncodingName();
}

bool
aws_ml_in_parallel_mode(void)
{
	return IsInParallelMode();
}

/* A cancel, statement_timeout or termination awaits the backend. */
bool
aws_ml_interrupt_pending(void)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

/*
 * The current top-level statement is identified by its start time and its
 * transaction's; parallel workers share the leader's.
 */
int64
aws_ml_transaction_start(void)
{
	return GetCurrentTransactionStartTimestamp();
}

int64
aws_ml_statement_start(void)
{
	return GetCurrentStatementStartTimestamp();
}

/*
 * While a parallel query's batch is asked for, the processes that send its
 * requests (its workers and the leader): aws_ml.max_concurrency bounds their
 * requests in flight together, each taking its share. 0: this process alone.
 */
void
backend_share_requests(int processes)
{
	processes_sharing_requests = processes;
}

int
aws_ml_processes_sharing_requests(void)
{
	return processes_sharing_requests;
}
