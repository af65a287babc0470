/*
 * python_preload.c: in the postmaster, when this module is in
 * shared_preload_libraries, loads PL/Python and, where the Python it links
 * allows (preload_plan.c), the package with botocore and the services'
 * models (aws_ml/preload.py). Every backend forked afterwards finds them
 * loaded, and its first call skips what takes most of its time. The
 * postmaster runs no Python code after this, and no thread.
 *
 * libpython's functions are found in the process, as python_path.c finds
 * them, so that this module is built against no one Python.
 */
#include "postgres.h"

#include "compat.h"

#include <dlfcn.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "python/preload_plan.h"
#include "python/python_path.h"
#include "python/python_preload.h"

/* Starts Python as PL/Python of 15 to 17 starts it, with its plpy module. */
static bool
start_python(void)
{
	int			(*append_inittab) (const char *, void *(*) (void)) = dlsym(RTLD_DEFAULT, "PyImport_AppendInittab");
	void		(*initialize) (void) = dlsym(RTLD_DEFAULT, "Py_Initialize");
	void	   *(*init_plpy) (void) = dlsym(RTLD_DEFAULT, "PyInit_plpy");

	if (append_inittab == NULL || initialize == NULL || init_plpy == NULL)
		return false;
	append_inittab("plpy", init_plpy);
	initialize();
	return true;
}

/* Imports aws_ml.preload into the running Python; whether it did. */
static bool
import_package(void)
{
	int			(*gil_ensure) (void) = dlsym(RTLD_DEFAULT, "PyGILState_Ensure");
	void		(*gil_release) (int) = dlsym(RTLD_DEFAULT, "PyGILState_Release");
	int			(*run) (const char *, void *) = dlsym(RTLD_DEFAULT, "PyRun_SimpleStringFlags");
	int			gil;
	bool		imported;

	if (gil_ensure == NULL || gil_release == NULL || run == NULL)
		return false;
	gil = gil_ensure();
	imported = run("import aws_ml.preload", NULL) == 0;
	gil_release(gil);
	return imported;
}

void
python_preload(void)
{
	char		plpython[MAXPGPATH];
	const char *(*python_version) (void) = NULL;
	int			(*python_started) (void) = NULL;
	bool		loaded;
	const char *version = NULL;
	PreloadPlan plan;

	snprintf(plpython, sizeof(plpython), "%s/plpython3%s", pkglib_path, DLSUFFIX);
	loaded = access(plpython, R_OK) == 0;
	if (loaded)
	{
		load_file("$libdir/plpython3", false);
		python_version = dlsym(RTLD_DEFAULT, "Py_GetVersion");
		python_started = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
		loaded = python_version != NULL && python_started != NULL;
		version = loaded ? python_version() : NULL;
	}
	plan = preload_plan(loaded, loaded && python_started(), version);
	if (plan == PRELOAD_NOTHING)
	{
		ereport(WARNING,
				(errmsg("aws_ml: cannot preload Python: PL/Python (plpython3) is not installed"),
				 errdetail("Sessions load the aws_ml package at their first call.")));
		return;
	}
	if (plan == PRELOAD_LIBRARIES_ONLY)
	{
		ereport(LOG,
				(errmsg("aws_ml: preloaded PL/Python, not the aws_ml package: Python %.*s cannot be started before "
						"PL/Python starts it", (int) strcspn(version, " "), version),
				 errdetail("Sessions load the aws_ml package at their first call.")));
		return;
	}
	if (plan == PRELOAD_START_AND_IMPORT && !start_python())
	{
		ereport(WARNING,
				(errmsg("aws_ml: could not start Python to preload the aws_ml package"),
				 errdetail("Sessions load it at their first call.")));
		return;
	}
	python_path_on_started_python();
	if (!import_package())
	{
		ereport(WARNING,
				(errmsg("aws_ml: could not preload the aws_ml Python package (its traceback is above)"),
				 errdetail("Sessions load it at their first call.")));
		return;
	}
	ereport(LOG,
			(errmsg("aws_ml: preloaded the aws_ml Python package into Python %.*s, started %s",
					(int) strcspn(version, " "), version,
					plan == PRELOAD_IMPORT ? "by PL/Python" : "in the postmaster")));
}
