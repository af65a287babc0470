/*
 * python_lock.h: Python's global interpreter lock released around a wait.
 */
#ifndef AWS_ML_PYTHON_LOCK_H
#define AWS_ML_PYTHON_LOCK_H

extern void python_release(void);
extern void python_take_back(void);

#endif
