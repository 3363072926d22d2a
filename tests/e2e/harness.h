/*
 * End-to-end test harness: starts the real server and the Score API test
 * double as separate processes and talks to them over HTTP on loopback.
 *
 * Each test builds its own world (a temporary directory, a config, a
 * server on a free port) and tears it down, so tests do not depend on each
 * other. Paths to the programs come from the environment that meson sets:
 * VS_BIN (the server) and VS_SCORE_DOUBLE (the test double).
 *
 * The store. With VS_TEST_STORE=postgres the harness starts a PostgreSQL
 * server of its own (tests/support/pg-server, found through
 * VS_SOURCE_ROOT) at its first use, gives every world a fresh database
 * on it, and removes it when the test program exits; otherwise every
 * world has its SQLite file in its directory. A config says where with
 * the {STORE} placeholder, which stands for the store section's lines.
 */
#ifndef VS_TESTS_HARNESS_H
#define VS_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct proc {
  pid_t pid;
  int port;
  char log[512]; /* file holding the process's stderr */
};

/* A Score API test double, running. */
struct proc *double_start(const char *auth, const char *customer_id,
                          const char *api_key);
/* double_start on a given port (0: any), e.g. to restart one in place. */
struct proc *double_start_on(int port, const char *auth,
                             const char *customer_id, const char *api_key);
/* Sends a JSON control document to the double; fails the test on error. */
void double_control(const struct proc *d, const char *json);
/* GET /_stats as a malloc'd string (caller frees). */
char *double_stats(const struct proc *d);
/* One integer field of the stats, e.g. "requests" or "connections". */
long double_stat(const struct proc *d, const char *key);

/*
 * Writes `yaml` to a config file in a fresh temporary directory (the string
 * may use the placeholders {DIR} for that directory, {SCORE_URL} for the
 * double's base URL, http://127.0.0.1:PORT, and {STORE} for the lines of
 * the store section that name the world's database) and starts `serve` on
 * it.
 * Returns NULL when the server exits before listening (for tests of refused
 * configs); the reason is then in harness_last_log().
 */
struct proc *server_start(const char *yaml, const struct proc *dbl);
/*
 * server_start() for a second server of the same world: a directory and a
 * config of its own (`yaml` as for server_start), the same database as the
 * last server started (with PostgreSQL; a SQLite file is per directory).
 * From then on harness_dir() and harness_config() are this server's.
 */
struct proc *server_start_again(const char *yaml, const struct proc *dbl);
/*
 * Stops `old` (which must exit 0) and starts the server again on the same
 * directory and config.
 */
struct proc *server_restart(struct proc *old);
/* `yaml` with its placeholders filled in, malloc'd (caller frees). */
char *harness_expand(const char *yaml, const struct proc *dbl);

/*
 * Rewrites the last server's config file with `yaml` (same placeholders),
 * for reload tests.
 */
void harness_rewrite_config(const char *yaml, const struct proc *dbl);
/* The server's log so far, malloc'd (caller frees). */
char *server_log(const struct proc *srv);
/* Waits until the server's log contains `text` (bounded); 1 if it did. */
int server_log_has(const struct proc *srv, const char *text);
/* Sends SIGTERM and waits; returns as proc_signal(). */
int proc_stop(struct proc *p);
/* CPU time (user and system) the running process has used so far, in ms. */
long proc_cpu_ms(const struct proc *p);
/* Sends `sig` and waits; the exit status, or minus the killing signal. */
int proc_signal(struct proc *p, int sig);
/* Starts the last server's config again (after proc_signal, say). */
struct proc *server_relaunch(void);
/* The directory of the last server started, and its config file. */
const char *harness_dir(void);
const char *harness_config(void);
/* The stderr of the last process that exited early. */
const char *harness_last_log(void);

/* The whole of a file, NUL-terminated ("" when it cannot be read); the
 * caller frees it. */
char *harness_read_file(const char *path);

/* POSTs `body` to the webhook; returns the HTTP status, *resp malloc'd. */
long post_event(const struct proc *srv, const char *body, char **resp);
/*
 * POSTs `body` to `path` with one extra header line ("Name: value", or
 * NULL); returns the HTTP status, *resp malloc'd (may be NULL).
 */
long http_post_header(const struct proc *srv, const char *path,
                      const char *body, const char *header, char **resp);

/*
 * POSTs `body` over HTTPS to localhost, trusting only `cafile`; returns the
 * HTTP status (0 when the TLS handshake or the connection failed).
 */
long https_post(const struct proc *srv, const char *path, const char *body,
                const char *cafile, char **resp);

/* Any request, for limits and routing tests. */
long http_request(const struct proc *srv, const char *method, const char *path,
                  const char *body, size_t len, char **resp);

/*
 * A request to the server's admin listener (port from its log), with
 * "Authorization: Bearer <token>" unless `token` is NULL. Returns the
 * HTTP status, *resp malloc'd (may be NULL).
 */
long admin_request(const struct proc *srv, const char *method,
                   const char *path, const char *body, const char *token,
                   char **resp);

/*
 * Builds and posts an event. `data` is a JSON object text (may be NULL).
 * Returns the answer body (malloc'd) and fails the test on non-200.
 */
char *send_event(const struct proc *srv, const char *event, const char *ref,
                 const char *data);

/* Runs the voice-and-score binary with args; returns exit status, output. */
int run_cli(char **out, const char *const *args);

/* True when the JSON text `json` has string `value` at dotted `path`. */
int json_has(const char *json, const char *path, const char *value);
/* The string at dotted `path` (e.g. "params.tts.message"), or "". */
const char *json_str(const char *json, const char *path, char *buf,
                     size_t size);
/* The integer (or boolean, as 0 or 1) at `path`, or -12345 when absent. */
long json_int(const char *json, const char *path);

/* ---- the world's database, for what the tools cannot show ---------- */

/* Non-zero when the worlds' store is PostgreSQL (VS_TEST_STORE=postgres). */
int harness_postgres(void);
/* The URL of the current world's database (postgres only). */
const char *harness_db_url(void);
/*
 * The harness's PostgreSQL cluster itself: its directory (for
 * tests/support/pg-server stop/start) and the URL of its `postgres`
 * database. Started on first use; postgres only.
 */
const char *harness_pg_dir(void);
const char *harness_pg_admin_url(void);
/* A new empty database on the cluster; its URL, malloc'd. */
char *harness_pg_new_db(void);
/*
 * The integer in the first column of the first row of `sql` in the current
 * world's database (SQLite file or PostgreSQL), -1 when there is no row.
 * Plain SQL both dialects read alike. Fails the test on an error.
 */
long harness_db_count(const char *sql);
/* Runs `sql` there; fails the test on an error. */
void harness_db_exec(const char *sql);
/* 1 when the database is sound (SQLite: integrity_check says ok). */
int harness_db_intact(void);
/*
 * Holds the calls table locked by another connection (SQLite: an
 * exclusive transaction; PostgreSQL: LOCK TABLE), so that the server's
 * writes wait, until harness_db_unlock().
 */
void harness_db_lock(void);
void harness_db_unlock(void);

/* Removes the temporary directories made by the harness. */
void harness_cleanup(void);

#endif
