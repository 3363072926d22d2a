/*
 * The PostgreSQL backend of the store (see store_backend.h for the threads
 * and ownership rules every backend follows, and docs/scale-out.md for how
 * several servers share one database).
 *
 * A handle is one blocking libpq connection, used by the store's worker
 * thread only (or by a tool's thread), so the event loop never waits on
 * the network to the database. The location is a postgresql:// or
 * postgres:// URL; libpq also takes the password from PGPASSWORD or a
 * ~/.pgpass file, and nothing this backend logs or returns as an error
 * contains the password.
 */
#ifndef VS_STORE_STORE_POSTGRES_H
#define VS_STORE_STORE_POSTGRES_H

#include "store_backend.h"

/* The backend's ops; immutable, read by any thread. Shared. */
extern const struct store_backend_ops store_postgres_ops;

#endif
