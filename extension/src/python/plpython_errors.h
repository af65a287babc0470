/*
 * plpython_errors.h: errors made readable by PL/Python outside UTF8.
 */
#ifndef AWS_ML_PLPYTHON_ERRORS_H
#define AWS_ML_PLPYTHON_ERRORS_H

extern void make_readable_by_plpython(ErrorData *error);
extern void restore_original_texts(ErrorData *error);
extern void *guard_errors_for_plpython(void);
extern void plpython_errors_init(void);

/* bound by the Python layer (plpython/aws_ml/backend.py) */
extern PGDLLEXPORT void aws_ml_unguard_errors(void *guard);
extern PGDLLEXPORT const char *aws_ml_as_plpython_reads(const char *text);

#endif
