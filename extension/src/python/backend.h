/*
 * backend.h: what the Python layer reads of the backend it runs in, exported
 * by this module (plpython/aws_ml/backend.py binds these, settings.h's,
 * plpython_errors.h's, deliberate_errors.h's, run_as_owner.h's, python_exit.h's,
 * s3_copy.h's and unicode_names.h's, and no symbol of the server).
 */
#ifndef AWS_ML_BACKEND_H
#define AWS_ML_BACKEND_H

/*
 * What a call of the Python layer needs of the backend as it begins, read in
 * one crossing (aws_ml_begin_call); plpython/aws_ml/backend.py declares the
 * same layout.
 */
typedef struct AwsMlCallState
{
	uint64		settings_generation;	/* settings.c's: moves when a setting changes */
	int64		transaction_start;	/* with statement_start: the statement's identity */
	int64		statement_start;
	int32		processes_sharing_requests; /* 0: this process alone */
	bool		ready;			/* _PG_init finished */
} AwsMlCallState;

extern PGDLLEXPORT void *aws_ml_begin_call(AwsMlCallState *state, bool guard_errors);
extern PGDLLEXPORT const char *aws_ml_database_encoding(void);
extern PGDLLEXPORT bool aws_ml_may_commit(void);
extern PGDLLEXPORT bool aws_ml_interrupt_pending(void);
extern PGDLLEXPORT int aws_ml_check_for_interrupts(char *message, char *detail, int size);

extern void backend_mark_ready(void);
extern void backend_share_requests(int processes);

#endif
