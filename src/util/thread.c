/*
 * Helper threads (see thread.h).
 */
#include <signal.h>

#include "thread.h"

int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg,
                 const char *name)
{
  sigset_t all;
  sigset_t old;
  int rc;

  sigfillset(&all);
  /* Synchronous faults are the faulting thread's own. */
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(thread, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0)
    pthread_setname_np(*thread, name);
  return rc;
}
