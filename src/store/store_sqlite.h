/*
 * The SQLite backend of the store (see store_backend.h for the threads and
 * ownership rules every backend follows).
 *
 * One database file holds the `calls`, `lists` and `numbers` tables, in WAL
 * mode so that a tool can read it (voice-and-score calls) or change the
 * lists (voice-and-score list) while the server writes. A handle is one
 * SQLite connection opened without SQLite's own mutexes: the store never
 * lets two threads use a connection at once.
 */
#ifndef VS_STORE_STORE_SQLITE_H
#define VS_STORE_STORE_SQLITE_H

#include "store_backend.h"

/* The backend's ops; immutable, read by any thread. Not shared. */
extern const struct store_backend_ops store_sqlite_ops;

#endif
