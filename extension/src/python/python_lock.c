/*
 * python_lock.c: lets Python's other threads run while this backend's thread
 * waits in a system call.
 *
 * PL/Python holds Python's global interpreter lock (the GIL) all the time
 * the backend runs: Python's threads (aws_ml's request threads) run only
 * while a PL/Python function waits in Python. When the backend waits in the
 * server (aws_s3's COPY on the pipe of its transfer process), it releases
 * the GIL around that wait alone, so that those threads run meanwhile;
 * neither the server nor Python code runs on this thread then.
 */
#include "postgres.h"

#include "compat.h"

#include <dlfcn.h>

#include "python/python_lock.h"

typedef void *PyThreadStateRef;

static int	(*gil_held) (void) = NULL;
static PyThreadStateRef (*save_thread) (void) = NULL;
static void (*restore_thread) (PyThreadStateRef) = NULL;

/* The thread's state while the GIL is released; NULL while it is held. */
static PyThreadStateRef released = NULL;

/*
 * Releases the GIL, which this thread must hold (it is running a PL/Python
 * function); python_take_back() takes it back.
 */
void
python_release(void)
{
	if (save_thread == NULL)
	{
		gil_held = dlsym(RTLD_DEFAULT, "PyGILState_Check");
		save_thread = dlsym(RTLD_DEFAULT, "PyEval_SaveThread");
		restore_thread = dlsym(RTLD_DEFAULT, "PyEval_RestoreThread");
	}
	if (gil_held == NULL || save_thread == NULL || restore_thread == NULL || released != NULL || !gil_held())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aws_s3: this backend is not running Python"),
				 errhint("aws_s3's functions call this one; call them instead.")));
	released = save_thread();
}

void
python_take_back(void)
{
	restore_thread(released);
	released = NULL;
}
