/*
 * python_lock.c: lets Python's other threads run while this backend's thread
 * is busy in the server, not in Python.
 *
 * PL/Python holds Python's global interpreter lock (the GIL) all the time
 * the backend runs: Python's threads (aws_ml's request threads, aws_s3's
 * transfer thread) run only while a PL/Python function waits in Python. An
 * export runs COPY in the server while its transfer thread uploads what COPY
 * writes into a pipe; when the pipe is full COPY waits for that thread, which
 * needs the GIL. So the GIL is released around such a COPY, and taken back
 * for every PL/Python function that the COPY's query calls: while a release
 * is in force, fmgr routes the calls of PL/Python functions it looks up
 * through its hook (as it does for SECURITY DEFINER functions), which takes
 * the GIL for the call and releases it again after.
 */
#include "postgres.h"

#include <dlfcn.h>

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "commands/proclang.h"
#include "fmgr.h"
#include "utils/syscache.h"

#include "python_lock.h"

typedef void *PyThreadStateRef;

static int	(*is_initialized) (void) = NULL;
static PyThreadStateRef (*save_thread) (void) = NULL;
static void (*restore_thread) (PyThreadStateRef) = NULL;

static needs_fmgr_hook_type previous_needs_fmgr_hook = NULL;
static fmgr_hook_type previous_fmgr_hook = NULL;

/* The thread's state while the GIL is released; NULL while it is held. */
static PyThreadStateRef released = NULL;
/* Releases in force, nested */
static int	releases = 0;
/*
 * Calls through the hook under way whose start it saw (a call may have begun
 * before this module was loaded), and the depth of the one that took the GIL
 * back, -1 if none.
 */
static int	hooked_calls = 0;
static int	took_back_at = -1;

static bool
is_plpython(Oid function)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Oid			language;

	if (!HeapTupleIsValid(tuple))
		return false;
	language = ((Form_pg_proc) GETSTRUCT(tuple))->prolang;
	ReleaseSysCache(tuple);
	return language == get_language_oid("plpython3u", true);
}

static bool
needs_python_lock(Oid function)
{
	if (previous_needs_fmgr_hook && previous_needs_fmgr_hook(function))
		return true;
	return releases > 0 && is_plpython(function);
}

static void
python_lock_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (previous_fmgr_hook)
		previous_fmgr_hook(event, flinfo, private);
	if (event == FHET_START)
	{
		hooked_calls++;
		if (released != NULL)
		{
			restore_thread(released);
			released = NULL;
			took_back_at = hooked_calls;
		}
	}
	else if (hooked_calls > 0)
	{
		if (took_back_at == hooked_calls)
		{
			released = save_thread();
			took_back_at = -1;
		}
		hooked_calls--;
	}
}

void
python_lock_init(void)
{
	previous_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = needs_python_lock;
	previous_fmgr_hook = fmgr_hook;
	fmgr_hook = python_lock_hook;
}

/*
 * Releases the GIL, which this thread holds (it is running a PL/Python
 * function); python_take_back() takes it back, also after an error.
 */
void
python_release(void)
{
	if (save_thread == NULL)
	{
		is_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
		save_thread = dlsym(RTLD_DEFAULT, "PyEval_SaveThread");
		restore_thread = dlsym(RTLD_DEFAULT, "PyEval_RestoreThread");
	}
	if (is_initialized == NULL || save_thread == NULL || restore_thread == NULL || !is_initialized())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_ml: Python is not running in this backend"),
				 errhint("aws_s3's functions call this one; call them instead.")));
	Assert(released == NULL);
	released = save_thread();
	releases++;
}

void
python_take_back(void)
{
	if (released != NULL)
	{
		restore_thread(released);
		released = NULL;
	}
	releases--;
}
