/*
 * embedded_python.c: runs the Python source given as its one argument in
 * the shared libpython it is linked with, as plpython3u runs Python, but
 * outside PostgreSQL (bench/overhead_bench.py builds and runs it).
 */
#include <Python.h>

int
main(int argc, char **argv)
{
	int			failed;

	if (argc != 2)
		return 2;
	Py_Initialize();
	failed = PyRun_SimpleString(argv[1]);
	if (Py_FinalizeEx() < 0)
		return 1;
	return failed ? 1 : 0;
}
