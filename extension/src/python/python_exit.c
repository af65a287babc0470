/*
 * python_exit.c: stops the package's threads (the request workers) before
 * the process exits, on FATAL (pg_terminate_backend) and at a normal exit
 * alike. exit() runs OpenSSL's cleanup, and a thread still inside OpenSSL
 * then would crash the backend, and the postmaster would restart every
 * other. The callback takes Python's global interpreter lock on the
 * backend's thread (a FATAL raised while the package waits comes through
 * ctypes, which let go of it) and calls aws_ml.wait.stop_threads: every
 * request grounded and its socket shut down, every thread given a moment to
 * end. It is a before_shmem_exit callback: until it has run, the threads
 * may still send, so it runs before the backend leaves the proc array, where
 * pg_terminate_backend(pid, timeout) sees it exit.
 */
#include "postgres.h"

#include "compat.h"

#include <dlfcn.h>

#include "miscadmin.h"
#include "storage/ipc.h"

#include "python/python_exit.h"

/* The process that registered the callback: a forked backend has its own. */
static int	registered_in = 0;

typedef void *PyObjectRef;

/* symbol of the process, or NULL */
#define PROCESS_SYMBOL(name) dlsym(RTLD_DEFAULT, name)

/*
 * Calls aws_ml.wait.stop_threads() if the package's wait module is loaded;
 * the number of its threads still running after it, -1 if it failed (its
 * traceback is in the server log).
 */
static long
call_stop_threads(void)
{
	PyObjectRef (*sys_get_object) (const char *) = PROCESS_SYMBOL("PySys_GetObject");
	PyObjectRef (*dict_get_item) (PyObjectRef, const char *) = PROCESS_SYMBOL("PyDict_GetItemString");
	PyObjectRef (*get_attr) (PyObjectRef, const char *) = PROCESS_SYMBOL("PyObject_GetAttrString");
	PyObjectRef (*call) (PyObjectRef, PyObjectRef) = PROCESS_SYMBOL("PyObject_CallObject");
	long		(*as_long) (PyObjectRef) = PROCESS_SYMBOL("PyLong_AsLong");
	void		(*dec_ref) (PyObjectRef) = PROCESS_SYMBOL("Py_DecRef");
	void		(*print_error) (void) = PROCESS_SYMBOL("PyErr_Print");
	PyObjectRef modules;
	PyObjectRef wait;
	PyObjectRef stop;
	PyObjectRef left;
	long		running = -1;

	if (!sys_get_object || !dict_get_item || !get_attr || !call || !as_long || !dec_ref || !print_error)
		return -1;
	modules = sys_get_object("modules");	/* borrowed */
	wait = modules ? dict_get_item(modules, "aws_ml.wait") : NULL;	/* borrowed */
	if (wait == NULL)
		return 0;
	stop = get_attr(wait, "stop_threads");
	left = stop ? call(stop, NULL) : NULL;
	if (left != NULL)
	{
		running = as_long(left);
		dec_ref(left);
	}
	if (stop != NULL)
		dec_ref(stop);
	if (left == NULL || running < 0)
		print_error();
	return running;
}

static void
stop_python_threads(int code, Datum arg)
{
	int			(*initialized) (void) = PROCESS_SYMBOL("Py_IsInitialized");
	int			(*gil_ensure) (void) = PROCESS_SYMBOL("PyGILState_Ensure");
	void		(*gil_release) (int) = PROCESS_SYMBOL("PyGILState_Release");
	int			gil;
	long		running;

	if (initialized == NULL || gil_ensure == NULL || gil_release == NULL || !initialized())
		return;
	gil = gil_ensure();
	running = call_stop_threads();
	gil_release(gil);
	elog(DEBUG1, "aws_ml: stopped this process's threads before it exits (%ld still running)", running);
}

/*
 * Called on the backend's thread before the package starts its first thread
 * in this process. It raises no ERROR: the Python layer calls it through
 * ctypes.
 */
void
aws_ml_stop_threads_at_exit(void)
{
	if (registered_in == MyProcPid)
		return;
	registered_in = MyProcPid;
	before_shmem_exit(stop_python_threads, (Datum) 0);
}
