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
 * The directory goes straight into the interpreter's sys.path, through
 * libpython's C API found in the process (a library PostgreSQL loads,
 * plpython3 and the libpython it links, has its symbols global), so that
 * this module is built against no one Python. Never through PYTHONPATH:
 * every program the server starts (archive_command, COPY ... TO PROGRAM)
 * would inherit it, and a Python among them would import this package's
 * pinned boto3 and botocore. PL/Python may not have started Python yet when
 * the module loads: then the first PL/Python function or DO block the
 * backend runs (an fmgr hook) has PL/Python start it, with an empty DO
 * block of its own, and the directory is put on its path before the code
 * runs.
 */
#include "postgres.h"

#include "compat.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>

#include "access/htup_details.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "commands/proclang.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/syscache.h"

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

/* The directory of this backend's install of the package, once found. */
static char package_dir[PATH_MAX];
static bool on_python_path = false;
static needs_fmgr_hook_type next_needs_fmgr_hook = NULL;
static fmgr_hook_type next_fmgr_hook = NULL;

/* Puts the package on the path of the running Python (api's). */
static void
put_on_python_path(const PythonApi *api)
{
	if (!insert_into_sys_path(api, package_dir))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("aws_ml: could not put \"%s\" on the Python path", package_dir)));
	on_python_path = true;
}

/* Whether calling function runs PL/Python code: a plpython3u function or its DO blocks' handler. */
static bool
runs_plpython(Oid function)
{
	HeapTuple	language = SearchSysCache1(LANGNAME, CStringGetDatum("plpython3u"));
	HeapTuple	procedure;
	Form_pg_language plpython;
	bool		runs = false;

	if (!HeapTupleIsValid(language))
		return false;
	plpython = (Form_pg_language) GETSTRUCT(language);
	runs = plpython->laninline == function;
	procedure = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	if (!runs && HeapTupleIsValid(procedure))
		runs = ((Form_pg_proc) GETSTRUCT(procedure))->prolang == plpython->oid;
	if (HeapTupleIsValid(procedure))
		ReleaseSysCache(procedure);
	ReleaseSysCache(language);
	return runs;
}

/* Has PL/Python start Python, as it does for its first function: an empty DO block. */
static void
start_python(void)
{
	PGFunction	inline_handler = load_external_function("$libdir/plpython3", "plpython3_inline_handler",
														true, NULL);
	InlineCodeBlock *block = makeNode(InlineCodeBlock);

	block->source_text = pstrdup("pass");
	block->langOid = get_language_oid("plpython3u", false);
	block->langIsTrusted = false;
	block->atomic = true;
	DirectFunctionCall1(inline_handler, PointerGetDatum(block));
}

/* Until the package is on the path, every call of PL/Python code calls the hook. */
static bool
python_path_needs_fmgr_hook(Oid function)
{
	if (next_needs_fmgr_hook && next_needs_fmgr_hook(function))
		return true;
	return !on_python_path && runs_plpython(function);
}

/* Before the first PL/Python code runs: Python started, the package on its path. */
static void
python_path_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (event == FHET_START && !on_python_path && runs_plpython(flinfo->fn_oid))
	{
		PythonApi	api;

		if (!find_python_api(&api) || !api.IsInitialized())
			start_python();
		if (!find_python_api(&api) || !api.IsInitialized())
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("aws_ml: PL/Python did not start Python")));
		put_on_python_path(&api);
	}
	if (next_fmgr_hook)
		next_fmgr_hook(event, flinfo, private);
}

/*
 * Finds this module's package and makes it importable (now, or before the
 * first PL/Python function); raises an error if the package is not
 * installed.
 */
void
python_path_init(void)
{
	char		link[MAXPGPATH];
	PythonApi	api;

	snprintf(link, sizeof(link), "%s/aws_ml-python/%s", pkglib_path, AWS_ML_VERSION);
	if (realpath(link, package_dir) == NULL ||
		open(package_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("aws_ml: the Python package of the aws_ml module is not installed at \"%s\": %m", link),
				 errhint("Install the extension again (make install).")));
	if (find_python_api(&api) && api.IsInitialized())
		put_on_python_path(&api);
	else
	{
		next_needs_fmgr_hook = needs_fmgr_hook;
		needs_fmgr_hook = python_path_needs_fmgr_hook;
		next_fmgr_hook = fmgr_hook;
		fmgr_hook = python_path_fmgr_hook;
	}
}

/* Puts the package on the path of Python once started (the preloading postmaster starts it). */
void
python_path_on_started_python(void)
{
	PythonApi	api;

	if (!on_python_path && find_python_api(&api) && api.IsInitialized())
		put_on_python_path(&api);
}
