/*
 * preload_plan.c: what preloading may do in the postmaster, for the
 * PL/Python and the Python the server has.
 *
 * PL/Python of PostgreSQL 18 starts Python when it is loaded (its _PG_init):
 * loaded in the postmaster, Python is running, and importing the package
 * into it is safe on every Python. PL/Python of 15 to 17 starts Python at a
 * backend's first PL/Python call, by PyImport_AppendInittab("plpy") and
 * Py_Initialize. Starting Python early (in the postmaster) makes that
 * PyImport_AppendInittab come after Py_Initialize, which Python 3.11 and
 * older accept and Python 3.12 and later treat as fatal
 * (PyImport_ExtendInittab: "may not be called after Py_Initialize()"):
 * every backend would abort at its first call. There, only the libraries
 * are loaded.
 */
#include "postgres.h"

#include "compat.h"

#include <stdio.h>

#include "python/preload_plan.h"

/*
 * plpython_loaded: plpython3 loaded into the postmaster; python_started:
 * Python runs once it has; python_version: Py_GetVersion()'s text.
 */
PreloadPlan
preload_plan(bool plpython_loaded, bool python_started, const char *python_version)
{
	int			major = 0;
	int			minor = 0;

	if (!plpython_loaded)
		return PRELOAD_NOTHING;
	if (python_started)
		return PRELOAD_IMPORT;
	if (python_version == NULL || sscanf(python_version, "%d.%d", &major, &minor) != 2)
		return PRELOAD_LIBRARIES_ONLY;
	if (major == 3 && minor <= 11)
		return PRELOAD_START_AND_IMPORT;
	return PRELOAD_LIBRARIES_ONLY;
}
