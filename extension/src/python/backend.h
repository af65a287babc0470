/*
 * backend.h: what the Python layer reads of the backend it runs in, exported
 * by this module (plpython/aws_ml/backend.py binds these, plpython_errors.h's and
 * deliberate_errors.h's, and no symbol of the server).
 */
#ifndef AWS_ML_BACKEND_H
#define AWS_ML_BACKEND_H

extern PGDLLEXPORT bool aws_ml_ready(void);
extern PGDLLEXPORT const char *aws_ml_setting(const char *name);
extern PGDLLEXPORT const char *aws_ml_database_encoding(void);
extern PGDLLEXPORT bool aws_ml_in_parallel_mode(void);
extern PGDLLEXPORT bool aws_ml_interrupt_pending(void);
extern PGDLLEXPORT int64 aws_ml_transaction_start(void);
extern PGDLLEXPORT int64 aws_ml_statement_start(void);
extern PGDLLEXPORT int aws_s3_transfer_pipe(bool export, uint64 *token);
extern PGDLLEXPORT int aws_ml_processes_sharing_requests(void);

extern void backend_mark_ready(void);
extern void backend_share_requests(int processes);

#endif
