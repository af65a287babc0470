/*
 * python_path.h: makes this module's Python package importable
 * (python_path.c).
 */
#ifndef AWS_ML_PYTHON_PATH_H
#define AWS_ML_PYTHON_PATH_H

extern void python_path_init(void);
extern void python_path_on_started_python(void);

#endif
