/*
 * backend.c: what the Python layer reads of the backend it runs in. The
 * Python layer binds these exported functions (ctypes) and no symbol of the
 * server itself, so that it depends on nothing but this module, compiled
 * against the server's headers. PL/Python cannot open a subtransaction
 * during a parallel operation, so settings and pending cancels are read here
 * rather than through SQL; and each crossing from Python costs, so a call
 * reads what it needs as it begins in one (aws_ml_begin_call).
 */
#include "postgres.h"

#include "compat.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "python/backend.h"
#include "python/plpython_errors.h"
#include "settings.h"

static bool ready = false;
static int	processes_sharing_requests = 0;

/* Called last in _PG_init: the settings are defined and the hooks set. */
void
backend_mark_ready(void)
{
	ready = true;
}

/*
 * Fills state for a call of the Python layer beginning now and, with
 * guard_errors, guards the errors raised beneath it until the caller
 * unguards (plpython_errors.c); returns the guard, NULL where there is
 * nothing to guard. A _PG_init that failed leaves the library loaded, its
 * symbols visible, and the aws_ml.* names still placeholders that any user
 * may set: state->ready tells.
 *
 * The statement is identified by its start time and its transaction's;
 * parallel workers share the leader's.
 */
void *
aws_ml_begin_call(AwsMlCallState *state, bool guard_errors)
{
	state->ready = ready;
	state->settings_generation = settings_generation_now();
	state->transaction_start = GetCurrentTransactionStartTimestamp();
	state->statement_start = GetCurrentStatementStartTimestamp();
	state->processes_sharing_requests = processes_sharing_requests;
	return guard_errors ? guard_errors_for_plpython() : NULL;
}

const char *
aws_ml_database_encoding(void)
{
	return GetDatabaseEncodingName();
}

/*
 * Whether the procedure under way may COMMIT, as SPI_commit checks it: it
 * was CALLed outside a transaction block, and outside the exception blocks
 * of its callers.
 */
bool
aws_ml_may_commit(void)
{
	return SPI_inside_nonatomic_context() && !IsSubTransaction();
}

/* A cancel, statement_timeout or termination awaits the backend. */
bool
aws_ml_interrupt_pending(void)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

/*
 * Lets PostgreSQL process a pending interrupt. The error it raises for a
 * cancel, a timeout or a hot standby's recovery conflict cannot cross
 * Python's frames: it is caught here, its message and detail (which says
 * what the conflict was about; empty if none) copied into message and
 * detail (size bytes each) and its SQLSTATE returned, for the Python layer
 * to raise as PL/Python raises the server's errors; 0 when nothing was
 * pending. A termination ends the process from here, as it would from any
 * query.
 */
int
aws_ml_check_for_interrupts(char *message, char *detail, int size)
{
	MemoryContext context = CurrentMemoryContext;
	volatile int sqlerrcode = 0;

	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		strlcpy(message, error->message ? error->message : "", size);
		strlcpy(detail, error->detail ? error->detail : "", size);
		sqlerrcode = error->sqlerrcode;
		FreeErrorData(error);
	}
	PG_END_TRY();
	return sqlerrcode;
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
