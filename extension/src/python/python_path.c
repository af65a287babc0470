/*
 * python_path.c: makes this module's Python package importable by the
 * server's Python.
 *
 * `make install` puts the package next to this module, under the server's
 * own library directory: $libdir/aws_ml-python/<version> is a symbolic link
 * to the directory of one install. So the extension scripts hold no path
 * (pg_upgrade may give the catalog another libdir): their function bodies
 * just import the package, which this module, loaded first by every aws_ml
 * function's planner support function (and by the procedures' LOAD), has
 * put on Python's path. Each backend resolves the link once, when it loads
 * the module: it keeps the install it started with when `make install`
 * switches the link, and never mixes two. It holds that directory open for
 * its life, so that `make install` sees it in use and keeps it: the backend
 * imports parts of the package lazily, long after it started.
 *
 * PL/Python may not have started Python yet: then the directory goes into
 * PYTHONPATH, which Python reads when it starts. Once it has, the directory
 * goes into sys.path through libpython's C API, found in the process (a
 * library PostgreSQL loads, plpython3 and the libpython it links, has its
 * symbols global), so that this module is built against no one Python.
 */
#include "postgres.h"

#include "compat.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>

#include "fmgr.h"
#include "miscadmin.h"

#include "python/python_path.h"

/* libpython's C API, as this module calls it: objects as opaque pointers */
typedef void *PyObjectRef;

typedef struct PythonApi
{
	int			(*IsInitialized) (void);
	int			(*GILState_Ensure) (void);
	void		(*GILState_Release) (int);
	PyObjectRef (*Sys_GetObject) (const char *);
	PyObjectRef (*Unicode_DecodeFSDefault) (const char *);
	int			(*Sequence_Contains) (PyObjectRef, PyObjectRef);
	int			(*List_Insert) (PyObjectRef, ssize_t, PyObjectRef);
	void		(*DecRef) (PyObjectRef);
	void		(*Err_Clear) (void);
} PythonApi;

/* symbol of the process, or NULL */
static void *
process_symbol(const char *symbol)
{
	return dlsym(RTLD_DEFAULT, symbol);
}

/* Whether libpython is in the process, with the functions this module calls. */
static bool
find_python_api(PythonApi *api)
{
	api->IsInitialized = process_symbol("Py_IsInitialized");
	api->GILState_Ensure = process_symbol("PyGILState_Ensure");
	api->GILState_Release = process_symbol("PyGILState_Release");
	api->Sys_GetObject = process_symbol("PySys_GetObject");
	api->Unicode_DecodeFSDefault = process_symbol("PyUnicode_DecodeFSDefault");
	api->Sequence_Contains = process_symbol("PySequence_Contains");
	api->List_Insert = process_symbol("PyList_Insert");
	api->DecRef = process_symbol("Py_DecRef");
	api->Err_Clear = process_symbol("PyErr_Clear");
	return api->IsInitialized && api->GILState_Ensure && api->GILState_Release && api->Sys_GetObject &&
		api->Unicode_DecodeFSDefault && api->Sequence_Contains && api->List_Insert && api->DecRef &&
		api->Err_Clear;
}

/* Puts dir first on the search path of the running Python; false on failure. */
static bool
insert_into_sys_path(const PythonApi *api, const char *dir)
{
	int			gil = api->GILState_Ensure();
	PyObjectRef path = api->Sys_GetObject("path");	/* borrowed */
	PyObjectRef entry = api->Unicode_DecodeFSDefault(dir);
	bool		done = false;

	if (path != NULL && entry != NULL)
	{
		int			present = api->Sequence_Contains(path, entry);

		done = present == 1 || (present == 0 && api->List_Insert(path, 0, entry) == 0);
	}
	if (entry != NULL)
		api->DecRef(entry);
	if (!done)
		api->Err_Clear();
	api->GILState_Release(gil);
	return done;
}

/* Puts dir first in PYTHONPATH, for the Python that starts later. */
static void
prepend_to_pythonpath(const char *dir)
{
	const char *current = getenv("PYTHONPATH");

	if (current == NULL || current[0] == '\0')
		setenv("PYTHONPATH", dir, 1);
	else
	{
		char	   *both = psprintf("%s:%s", dir, current);

		setenv("PYTHONPATH", both, 1);
		pfree(both);
	}
}

/*
 * Finds this module's package and makes it importable; raises an error if
 * the package is not installed.
 */
void
python_path_init(void)
{
	char		link[MAXPGPATH];
	char		package_dir[PATH_MAX];
	PythonApi	api;

	snprintf(link, sizeof(link), "%s/aws_ml-python/%s", pkglib_path, AWS_ML_VERSION);
	if (realpath(link, package_dir) == NULL ||
		open(package_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("aws_ml: the Python package of the aws_ml module is not installed at \"%s\": %m", link),
				 errhint("Install the extension again (make install).")));
	if (!find_python_api(&api) || !api.IsInitialized())
		prepend_to_pythonpath(package_dir);
	else if (!insert_into_sys_path(&api, package_dir))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("aws_ml: could not put \"%s\" on the Python path", package_dir)));
}
