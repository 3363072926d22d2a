/* End-to-end test harness (see harness.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_DIRS      128
#define START_WAIT_MS 10000
#define STOP_WAIT_MS  15000

#define MAX_PROCS 64

static char dirs[MAX_DIRS][256];
/* Every process started and not yet stopped, so that a failed test (which
 * leaves its function early) cannot leave servers running. */
static pid_t procs[MAX_PROCS];
static int nprocs;
static int ndirs;
static char cur_dir[256];
static char cur_config[300];
static char last_log[8192];
/* PostgreSQL (VS_TEST_STORE=postgres): the cluster, the world's database,
 * and the connections the checks below keep open for one world. */
static char pg_dir[256];
static char pg_url[512];
static char cur_url[600];
static PGconn *check_conn;
static PGconn *lock_conn;
static sqlite3 *lock_db;
static int db_seq;

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

char *harness_read_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *s;
  long n;

  if (!f)
    return strdup("");
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  s = calloc(1, (size_t)n + 1);
  assert_non_null(s);
  if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n)
    s[0] = '\0';
  fclose(f);
  return s;
}

static const char *env_or_fail(const char *name)
{
  const char *v = getenv(name);

  if (!v || !*v)
    fail_msg("%s is not set (run the tests through meson)", name);
  return v;
}

/* Forks and execs argv with stdout to `out_fd` (or /dev/null) and stderr to
 * the file `log`. */
static pid_t spawn(char *const argv[], int out_fd, const char *log)
{
  pid_t pid = fork();

  assert_true(pid >= 0);
  if (pid == 0) {
    int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = open("/dev/null", O_RDWR);

    dup2(nul, 0);
    dup2(out_fd >= 0 ? out_fd : nul, 1);
    dup2(err >= 0 ? err : nul, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  if (nprocs < MAX_PROCS)
    procs[nprocs++] = pid;
  return pid;
}

static const char *new_dir(void)
{
  const char *tmp = getenv("TMPDIR");

  assert_true(ndirs < MAX_DIRS);
  snprintf(dirs[ndirs], sizeof(dirs[ndirs]), "%s/vs-e2e-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dirs[ndirs]));
  return dirs[ndirs++];
}

static void forget(pid_t pid)
{
  for (int i = 0; i < nprocs; i++)
    if (procs[i] == pid)
      procs[i] = procs[--nprocs];
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void db_close(void)
{
  if (check_conn)
    PQfinish(check_conn);
  check_conn = NULL;
  harness_db_unlock();
}

void harness_cleanup(void)
{
  db_close();
  while (nprocs > 0) {
    pid_t pid = procs[--nprocs];

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  for (int i = 0; i < ndirs; i++)
    if (nftw(dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
      fprintf(stderr, "could not remove %s\n", dirs[i]);
  ndirs = 0;
}

const char *harness_dir(void)
{
  return cur_dir;
}

const char *harness_config(void)
{
  return cur_config;
}

const char *harness_last_log(void)
{
  return last_log;
}

/* ---- the Score double ------------------------------------------------ */

struct proc *double_start(const char *auth, const char *customer_id,
                          const char *api_key)
{
  return double_start_on(0, auth, customer_id, api_key);
}

struct proc *double_start_on(int port, const char *auth,
                             const char *customer_id, const char *api_key)
{
  const char *bin = env_or_fail("VS_SCORE_DOUBLE");
  struct proc *p = calloc(1, sizeof(*p));
  char port_arg[16];
  char line[64] = "";
  char *argv[12];
  int fds[2];
  FILE *f;
  int i = 0;

  assert_non_null(p);
  snprintf(p->log, sizeof(p->log), "%s/double.log", new_dir());
  argv[i++] = (char *)bin;
  snprintf(port_arg, sizeof(port_arg), "%d", port);
  argv[i++] = "--port";
  argv[i++] = port_arg;
  argv[i++] = "--auth";
  argv[i++] = (char *)auth;
  argv[i++] = "--customer-id";
  argv[i++] = (char *)customer_id;
  argv[i++] = "--api-key";
  argv[i++] = (char *)api_key;
  argv[i] = NULL;
  assert_int_equal(pipe(fds), 0);
  p->pid = spawn(argv, fds[1], p->log);
  close(fds[1]);
  f = fdopen(fds[0], "r");
  assert_non_null(f);
  if (!fgets(line, sizeof(line), f) ||
      sscanf(line, "listening %d", &p->port) != 1)
    fail_msg("score double did not start: '%s'", line);
  fclose(f);
  return p;
}

static long http_to_with(int port, const char *method, const char *path,
                         const char *body, size_t len, const char *header,
                         char **resp)
{
  struct curl_slist *hdr = NULL;
  FILE *mem;
  char *out = NULL;
  size_t outlen = 0;
  char url[512];
  long status = 0;
  CURL *c;
  CURLcode cc;

  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  c = curl_easy_init();
  assert_non_null(c);
  mem = open_memstream(&out, &outlen);
  assert_non_null(mem);
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  if (header)
    hdr = curl_slist_append(hdr, header);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  cc = curl_easy_perform(c);
  fclose(mem);
  if (cc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(c);
  if (resp)
    *resp = out;
  else
    free(out);
  return status;
}

static long http_to(int port, const char *method, const char *path,
                    const char *body, size_t len, char **resp)
{
  return http_to_with(port, method, path, body, len, NULL, resp);
}

long https_post(const struct proc *srv, const char *path, const char *body,
                const char *cafile, char **resp)
{
  FILE *mem;
  char *out = NULL;
  size_t outlen = 0;
  char url[512];
  long status = 0;
  CURL *c = curl_easy_init();

  assert_non_null(c);
  snprintf(url, sizeof(url), "https://localhost:%d%s", srv->port, path);
  mem = open_memstream(&out, &outlen);
  assert_non_null(mem);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
  curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  fclose(mem);
  curl_easy_cleanup(c);
  if (resp)
    *resp = out;
  else
    free(out);
  return status;
}

long http_post_header(const struct proc *srv, const char *path,
                      const char *body, const char *header, char **resp)
{
  return http_to_with(srv->port, "POST", path, body, strlen(body), header,
                      resp);
}

void double_control(const struct proc *d, const char *json)
{
  assert_int_equal(
      http_to(d->port, "POST", "/_control", json, strlen(json), NULL), 200);
}

char *double_stats(const struct proc *d)
{
  char *out = NULL;

  assert_int_equal(http_to(d->port, "GET", "/_stats", NULL, 0, &out), 200);
  return out;
}

long double_stat(const struct proc *d, const char *key)
{
  char *s = double_stats(d);
  long v = json_int(s, key);

  free(s);
  return v;
}

/* ---- the server ------------------------------------------------------ */

/* Replaces every {NAME} placeholder of `in` into a new string. */
static char *expand(const char *in, const char *dir, int double_port)
{
  char url[64];
  char *out = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&out, &n);

  snprintf(url, sizeof(url), "http://127.0.0.1:%d", double_port);
  assert_non_null(m);
  for (const char *p = in; *p;) {
    if (strncmp(p, "{DIR}", 5) == 0) {
      fputs(dir, m);
      p += 5;
    } else if (strncmp(p, "{SCORE_URL}", 11) == 0) {
      fputs(url, m);
      p += 11;
    } else if (strncmp(p, "{STORE}", 7) == 0) {
      if (harness_postgres())
        fprintf(m, "  driver: postgres\n  url: \"%s\"\n", cur_url);
      else
        fprintf(m, "  path: \"%s/calls.db\"\n", dir);
      p += 7;
    } else {
      fputc(*p++, m);
    }
  }
  fclose(m);
  return out;
}

/*
 * The port in the url= of the first log line with message `msg`, in
 * logfmt or in JSON (log.format: json); 0 when there is none yet.
 */
static int port_in_log(const char *log, const char *msg)
{
  char logfmt[64];
  char json[64];
  const char *at;
  int port = 0;

  snprintf(logfmt, sizeof(logfmt), "msg=\"%s\"", msg);
  snprintf(json, sizeof(json), "\"msg\":\"%s\"", msg);
  at = strstr(log, logfmt);
  if (!at)
    at = strstr(log, json);
  if (at && (at = strstr(at, "http")) && (at = strstr(at, "://")) &&
      (at = strchr(at + 3, ':')) && sscanf(at + 1, "%d", &port) == 1)
    return port;
  return 0;
}

/* Waits for the "listening" log line and reads the port from it. */
static int wait_listening(struct proc *p)
{
  for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
    char *log = harness_read_file(p->log);
    int status;

    p->port = port_in_log(log, "listening");
    if (p->port) {
      free(log);
      return 1;
    }
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      forget(p->pid);
      snprintf(last_log, sizeof(last_log), "%s", log);
      free(log);
      return 0;
    }
    free(log);
    sleep_ms(10);
  }
  fail_msg("server did not start listening within %d ms", START_WAIT_MS);
  return 0;
}

static struct proc *launch(void)
{
  const char *bin = env_or_fail("VS_BIN");
  struct proc *p = calloc(1, sizeof(*p));
  char *argv[] = {(char *)bin, "serve", "--config", cur_config, NULL};

  assert_non_null(p);
  snprintf(p->log, sizeof(p->log), "%s/server.log", cur_dir);
  /* A restart must not read the previous run's "listening" line before
   * the child has truncated the file. */
  unlink(p->log);
  p->pid = spawn(argv, -1, p->log);
  if (!wait_listening(p)) {
    free(p);
    return NULL;
  }
  return p;
}

char *harness_expand(const char *yaml, const struct proc *dbl)
{
  return expand(yaml, cur_dir, dbl ? dbl->port : 9);
}

void harness_rewrite_config(const char *yaml, const struct proc *dbl)
{
  char *text = harness_expand(yaml, dbl);
  char tmp[320];
  FILE *f;

  /* Written aside and renamed, so the server never reads half a file. */
  snprintf(tmp, sizeof(tmp), "%s.new", cur_config);
  f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(rename(tmp, cur_config), 0);
  free(text);
}

char *server_log(const struct proc *srv)
{
  return harness_read_file(srv->log);
}

int server_log_has(const struct proc *srv, const char *text)
{
  for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
    char *log = harness_read_file(srv->log);
    int found = strstr(log, text) != NULL;

    free(log);
    if (found)
      return 1;
    sleep_ms(10);
  }
  return 0;
}

struct proc *server_start(const char *yaml, const struct proc *dbl)
{
  db_close();
  if (harness_postgres()) {
    char *url = harness_pg_new_db();

    snprintf(cur_url, sizeof(cur_url), "%s", url);
    free(url);
  }
  return server_start_again(yaml, dbl);
}

struct proc *server_start_again(const char *yaml, const struct proc *dbl)
{
  snprintf(cur_dir, sizeof(cur_dir), "%s", new_dir());
  snprintf(cur_config, sizeof(cur_config), "%s/config.yaml", cur_dir);
  harness_rewrite_config(yaml, dbl);
  return launch();
}

struct proc *server_restart(struct proc *old)
{
  assert_int_equal(proc_stop(old), 0);
  return launch();
}

struct proc *server_relaunch(void)
{
  return launch();
}

long proc_cpu_ms(const struct proc *p)
{
  char path[64];
  char buf[1024];
  unsigned long utime = 0;
  unsigned long stime = 0;
  const char *after;
  FILE *f;
  size_t n;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
  f = fopen(path, "r");
  assert_non_null(f);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields 14 and 15, counted after the ")" that ends the command name. */
  after = strrchr(buf, ')');
  assert_non_null(after);
  assert_int_equal(
      sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &utime, &stime),
      2);
  return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

int proc_stop(struct proc *p)
{
  return proc_signal(p, SIGTERM);
}

int proc_signal(struct proc *p, int sig)
{
  int status = 0;

  if (!p)
    return -1;
  kill(p->pid, sig);
  for (int waited = 0;; waited += 10) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      forget(p->pid);
      break;
    }
    if (waited > STOP_WAIT_MS) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      forget(p->pid);
      free(p);
      fail_msg("process did not stop within %d ms", STOP_WAIT_MS);
    }
    sleep_ms(10);
  }
  free(p);
  if (WIFSIGNALED(status))
    return -WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long http_request(const struct proc *srv, const char *method, const char *path,
                  const char *body, size_t len, char **resp)
{
  return http_to(srv->port, method, path, body, len, resp);
}

/* The admin listener's port, from the server's "admin listening" line. */
static int admin_port_of(const struct proc *srv)
{
  char *log = harness_read_file(srv->log);
  char *at = strstr(log, "msg=\"admin listening\"");
  int port = 0;

  if (!(at && (at = strstr(at, "url=http://")) &&
        (at = strchr(at + 11, ':')) && sscanf(at + 1, "%d", &port) == 1))
    fail_msg("no admin listening line in:\n%s", log);
  free(log);
  return port;
}

long admin_request(const struct proc *srv, const char *method,
                   const char *path, const char *body, const char *token,
                   char **resp)
{
  char header[300];

  snprintf(header, sizeof(header), "Authorization: Bearer %s",
           token ? token : "");
  return http_to_with(admin_port_of(srv), method, path, body,
                      body ? strlen(body) : 0, token ? header : NULL, resp);
}

long post_event(const struct proc *srv, const char *body, char **resp)
{
  return http_to(srv->port, "POST", "/telesign/voice", body, strlen(body),
                 resp);
}

char *send_event(const struct proc *srv, const char *event, const char *ref,
                 const char *data)
{
  char *body = NULL;
  char *resp = NULL;
  long status;

  assert_true(asprintf(&body,
                       "{\"event\":\"%s\",\"reference_id\":\"%s\","
                       "\"data\":%s}",
                       event, ref, data ? data : "{}") > 0);
  status = post_event(srv, body, &resp);
  if (status != 200)
    fail_msg("%s answered HTTP %ld: %s", event, status, resp ? resp : "");
  free(body);
  return resp;
}

int run_cli(char **out, const char *const *args)
{
  const char *bin = env_or_fail("VS_BIN");
  char *argv[32];
  char log[300];
  int fds[2];
  int status;
  int i = 0;
  FILE *f;

  argv[i++] = (char *)bin;
  for (; args[i - 1] && i < 31; i++)
    argv[i] = (char *)args[i - 1];
  argv[i] = NULL;
  snprintf(log, sizeof(log), "%s/cli.log", cur_dir[0] ? cur_dir : "/tmp");
  assert_int_equal(pipe(fds), 0);
  pid_t pid = spawn(argv, fds[1], log);
  close(fds[1]);
  f = fdopen(fds[0], "r");
  forget(pid); /* waited for below */
  {
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    int ch;

    while ((ch = fgetc(f)) != EOF)
      fputc(ch, m);
    fclose(m);
    fclose(f);
    waitpid(pid, &status, 0);
    {
      char *err = harness_read_file(log);

      /* Both streams, stdout first, so tests can look for messages. */
      assert_true(asprintf(out, "%s%s", text, err) >= 0);
      free(err);
    }
    free(text);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- JSON helpers ---------------------------------------------------- */

static json_t *json_at(json_t *root, const char *path)
{
  char seg[128];
  json_t *cur = root;

  while (cur && *path) {
    size_t n = strcspn(path, ".");
    char *end;

    snprintf(seg, sizeof(seg), "%.*s", (int)n, path);
    path += n + (path[n] == '.');
    if (json_is_array(cur)) {
      long idx = strtol(seg, &end, 10);

      cur = *end ? NULL : json_array_get(cur, (size_t)idx);
    } else {
      cur = json_object_get(cur, seg);
    }
  }
  return cur;
}

const char *json_str(const char *json, const char *path, char *buf,
                     size_t size)
{
  json_t *root = json_loads(json ? json : "", 0, NULL);
  const char *s = json_string_value(json_at(root, path));

  snprintf(buf, size, "%s", s ? s : "");
  json_decref(root);
  return buf;
}

int json_has(const char *json, const char *path, const char *value)
{
  char buf[2048];

  return strcmp(json_str(json, path, buf, sizeof(buf)), value) == 0;
}

long json_int(const char *json, const char *path)
{
  json_t *root = json_loads(json ? json : "", 0, NULL);
  json_t *v = json_at(root, path);
  long n = json_is_integer(v)   ? (long)json_integer_value(v)
           : json_is_boolean(v) ? (long)json_is_true(v)
                                : -12345;

  json_decref(root);
  return n;
}

/* ---- the world's database ------------------------------------------- */

int harness_postgres(void)
{
  const char *v = getenv("VS_TEST_STORE");

  return v && strcmp(v, "postgres") == 0;
}

const char *harness_db_url(void)
{
  return cur_url;
}

/*
 * Starts the cluster once per test program. pg-server is given our pid: it
 * leaves a watcher behind that removes the cluster once we are gone, also
 * when a crash skips the atexit handler.
 */
static void pg_start(void)
{
  const char *tmp = getenv("TMPDIR");
  char cmd[1024];
  FILE *f;

  if (pg_url[0])
    return;
  snprintf(pg_dir, sizeof(pg_dir), "%s/vs-pg-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(pg_dir));
  snprintf(cmd, sizeof(cmd), "%s/tests/support/pg-server start %s %ld",
           env_or_fail("VS_SOURCE_ROOT"), pg_dir, (long)getpid());
  f = popen(cmd, "r");
  assert_non_null(f);
  if (!fgets(pg_url, sizeof(pg_url), f))
    pg_url[0] = '\0';
  pclose(f);
  pg_url[strcspn(pg_url, "\n")] = '\0';
  if (strncmp(pg_url, "postgresql://", 13) != 0)
    fail_msg("tests/support/pg-server did not start PostgreSQL");
}

const char *harness_pg_dir(void)
{
  pg_start();
  return pg_dir;
}

const char *harness_pg_admin_url(void)
{
  pg_start();
  return pg_url;
}

/* A connection to `url`, failing the test when there is none. */
static PGconn *pg_connect_or_fail(const char *url)
{
  PGconn *c = PQconnectdb(url);

  if (PQstatus(c) != CONNECTION_OK)
    fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
  return c;
}

static void pg_exec_or_fail(PGconn *c, const char *sql)
{
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);

  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
}

char *harness_pg_new_db(void)
{
  const char *admin = harness_pg_admin_url();
  const char *slash = strrchr(admin, '/');
  char name[64];
  char sql[128];
  char *url = NULL;
  PGconn *c;

  snprintf(name, sizeof(name), "vs_%ld_%d", (long)getpid(), ++db_seq);
  snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
  c = pg_connect_or_fail(admin);
  pg_exec_or_fail(c, sql);
  PQfinish(c);
  assert_true(asprintf(&url, "%.*s/%s", (int)(slash - admin), admin, name) >
              0);
  return url;
}

static sqlite3 *sqlite_open_or_fail(void)
{
  char db[512];
  sqlite3 *h = NULL;

  snprintf(db, sizeof(db), "%s/calls.db", cur_dir);
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  return h;
}

/* The checks' connection of this world, opened on first use. */
static PGconn *check_db(void)
{
  if (!check_conn)
    check_conn = pg_connect_or_fail(cur_url);
  return check_conn;
}

long harness_db_count(const char *sql)
{
  long n = -1;

  if (harness_postgres()) {
    PGresult *r = PQexec(check_db(), sql);

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
      fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    if (PQntuples(r) > 0)
      n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
  } else {
    sqlite3 *h = sqlite_open_or_fail();
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
      n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
  }
  return n;
}

void harness_db_exec(const char *sql)
{
  if (harness_postgres()) {
    pg_exec_or_fail(check_db(), sql);
  } else {
    sqlite3 *h = sqlite_open_or_fail();

    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
  }
}

int harness_db_intact(void)
{
  char buf[16] = "";

  if (harness_postgres())
    return harness_db_count("SELECT 1") == 1;
  {
    sqlite3 *h = sqlite_open_or_fail();
    sqlite3_stmt *st = NULL;

    assert_int_equal(
        sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL),
        SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
      snprintf(buf, sizeof(buf), "%s",
               (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
  }
  return strcmp(buf, "ok") == 0;
}

void harness_db_lock(void)
{
  if (harness_postgres()) {
    lock_conn = pg_connect_or_fail(cur_url);
    pg_exec_or_fail(lock_conn, "BEGIN");
    pg_exec_or_fail(lock_conn, "LOCK TABLE calls IN ACCESS EXCLUSIVE MODE");
    return;
  }
  lock_db = sqlite_open_or_fail();
  assert_int_equal(sqlite3_exec(lock_db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                   SQLITE_OK);
}

void harness_db_unlock(void)
{
  if (lock_conn) {
    pg_exec_or_fail(lock_conn, "COMMIT");
    PQfinish(lock_conn);
    lock_conn = NULL;
  }
  if (lock_db) {
    assert_int_equal(sqlite3_exec(lock_db, "COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(lock_db);
    lock_db = NULL;
  }
}
