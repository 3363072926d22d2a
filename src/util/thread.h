/*
 * Starting the process's helper threads (the store worker, the SQLite
 * checkpointer).
 */
#ifndef VS_UTIL_THREAD_H
#define VS_UTIL_THREAD_H

#include <pthread.h>

/*
 * Starts `fn(arg)` on a new thread named `name` (at most 15 characters)
 * with every asynchronous signal blocked, so that the process's signals
 * (SIGTERM, SIGINT...) always reach the loop thread. Returns 0 or the
 * pthread_create() error; the caller joins the thread.
 */
int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg,
                 const char *name);

#endif
