/*
 * run_as_owner.h: runs a table's own code (triggers, rules, index and
 * generated expressions, policies) as the table's owner, as PostgreSQL's
 * maintenance commands do (plpython/aws_ml/materialize.py binds these).
 */
#ifndef AWS_ML_RUN_AS_OWNER_H
#define AWS_ML_RUN_AS_OWNER_H

extern PGDLLEXPORT void *aws_ml_run_as_owner(Oid owner);
extern PGDLLEXPORT void aws_ml_end_run_as_owner(void *saved);

#endif
