/*
 * The simulator's Score API double (see score_model.h).
 *
 * Each connection has its own thread (MHD_USE_THREAD_PER_CONNECTION), so a
 * lookup's latency is slept in the handler without delaying any other
 * lookup. The per-number lookup counts sit behind one mutex; everything
 * else a request needs is computed from the model without locking.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "score_model.h"

#define MAX_BODY   8192
#define SLEEP_STEP 20 /* ms: how often a sleeping lookup checks for stop */

struct score_model {
  const struct sim_traffic *t;
  struct MHD_Daemon *d;
  unsigned port;
  unsigned hang_ms;
  atomic_bool stopping;
  pthread_mutex_t lock;
  uint32_t *counts;     /* lookups per number index */
  uint32_t unknown_seq; /* lookups of numbers the run does not know */
  /* Per number index, the call of it in flight (-1: none): written by the
   * simulator's thread, read by the connections' threads. */
  _Atomic int32_t *current;
  uint16_t *per_call; /* lookups per call index, under lock */
  struct score_model_stats st;
};

struct req {
  char body[MAX_BODY];
  size_t len;
  int too_big;
};

/* Sleeps `ms`, or less if the double is being stopped. */
static void nap(struct score_model *m, double ms)
{
  while (ms > 0 && !atomic_load(&m->stopping)) {
    double step = ms < SLEEP_STEP ? ms : SLEEP_STEP;
    struct timespec ts = {(time_t)(step / 1000),
                          (long)((step - (double)(time_t)(step / 1000) * 1000) *
                                 1e6)};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
      ;
    ms -= step;
  }
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status,
                                 const char *body)
{
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret;

  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "application/json");
  ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* The digits of `s` up to `n` bytes, if that is all it is (8..15). */
static int take_digits(const char *s, size_t n, char out[SIM_NUMBER_SIZE])
{
  if (n < 8 || n > 15)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  memcpy(out, s, n);
  out[n] = '\0';
  return 1;
}

/* The number asked about: in the legacy path, or the form's phone_number. */
static int number_of(const char *url, const struct req *r,
                     char out[SIM_NUMBER_SIZE])
{
  const char *p = strstr(url, "/v1/score/");
  size_t ulen = strcspn(url, "?#");

  if (p) {
    p += strlen("/v1/score/");
    return take_digits(p, (size_t)(url + ulen - p), out);
  }
  if (ulen < strlen("/intelligence/phone") ||
      strncmp(url + ulen - strlen("/intelligence/phone"),
              "/intelligence/phone", strlen("/intelligence/phone")) != 0)
    return 0;
  for (const char *f = r->body; f < r->body + r->len;) {
    size_t n = strcspn(f, "&");

    if (n > 13 && strncmp(f, "phone_number=", 13) == 0)
      return take_digits(f + 13, n - 13, out);
    f += n + (f[n] == '&');
  }
  return 0;
}

static const char *phone_type(enum sim_line line, const char *digits,
                              const char **code)
{
  int odd = (int)(sim_hash_str(digits) & 1);

  switch (line) {
  case SIM_LINE_LEGIT_LOW:
  case SIM_LINE_LEGIT_INTL:
    *code = odd ? "1" : "2";
    return odd ? "FIXED_LINE" : "MOBILE";
  case SIM_LINE_NEIGHBOUR:
    *code = "1";
    return "FIXED_LINE";
  case SIM_LINE_LEGIT_MID:
  case SIM_LINE_FRAUD_MID:
    *code = odd ? "5" : "3";
    return odd ? "VOIP" : "PREPAID";
  default:
    *code = "5";
    return "VOIP";
  }
}

static void utc_now(char *out, size_t size)
{
  struct timespec ts;
  struct tm tm;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static enum MHD_Result answer(struct score_model *m, struct MHD_Connection *c,
                              const char *url, const char *method,
                              struct req *r)
{
  char number[SIM_NUMBER_SIZE];
  char body[2048];
  char when[40];
  struct sim_lookup lk;
  const char *code;
  const char *type;
  int32_t n;
  int32_t call;
  uint32_t nth;
  unsigned cc;

  if (strcmp(method, "POST") != 0 || r->too_big || !number_of(url, r, number)) {
    pthread_mutex_lock(&m->lock);
    m->st.bad++;
    pthread_mutex_unlock(&m->lock);
    return send_body(c, 400,
                     "{\"status\":{\"code\":500,\"description\":"
                     "\"Transaction not attempted\"},\"errors\":[{\"code\":"
                     "-40001,\"description\":\"Invalid request.\"}]}");
  }
  n = sim_number_find(m->t, number);
  call = n >= 0 ? atomic_load(&m->current[n]) : -1;
  pthread_mutex_lock(&m->lock);
  nth = n >= 0 ? m->counts[n]++ : m->unknown_seq++;
  m->st.requests++;
  if (n < 0)
    m->st.unknown++;
  if (call >= 0 && m->per_call[call] < UINT16_MAX)
    m->per_call[call]++;
  else if (call < 0)
    m->st.stray++;
  pthread_mutex_unlock(&m->lock);

  sim_lookup(m->t, number, nth, &lk);
  if (lk.kind == SIM_LOOKUP_HANG) {
    pthread_mutex_lock(&m->lock);
    m->st.hung++;
    pthread_mutex_unlock(&m->lock);
    nap(m, m->hang_ms);
  } else {
    nap(m, lk.latency_ms);
  }
  if (lk.kind == SIM_LOOKUP_UNAVAILABLE) {
    pthread_mutex_lock(&m->lock);
    m->st.unavailable++;
    pthread_mutex_unlock(&m->lock);
    snprintf(body, sizeof(body),
             "{\"reference_id\":\"%016llX%016llX\",\"status\":{\"code\":500,"
             "\"description\":\"Service temporarily unavailable\"},"
             "\"errors\":[{\"code\":-90001,\"description\":"
             "\"Service temporarily unavailable, retry later.\"}]}",
             (unsigned long long)lk.ref, (unsigned long long)~lk.ref);
    return send_body(c, 503, body);
  }
  if (lk.kind == SIM_LOOKUP_OK) {
    pthread_mutex_lock(&m->lock);
    m->st.ok++;
    pthread_mutex_unlock(&m->lock);
  }
  cc = n >= 0 && m->t->numbers[n].cc_len ? m->t->numbers[n].cc_len : 1;
  type = phone_type(lk.line, number, &code);
  utc_now(when, sizeof(when));
  snprintf(body, sizeof(body),
           "{\"reference_id\":\"%016llX%016llX\",\"external_id\":null,"
           "\"status\":{\"code\":300,\"description\":\"Transaction "
           "successfully completed\",\"updated_on\":\"%s\"},\"errors\":[],"
           "\"numbering\":{\"original\":{\"complete_phone_number\":\"%s\","
           "\"country_code\":\"%.*s\",\"phone_number\":\"%s\"},"
           "\"cleansing\":{\"call\":{\"country_code\":\"%.*s\","
           "\"phone_number\":\"%s\",\"cleansed_code\":100}}},"
           "\"phone_type\":{\"code\":\"%s\",\"description\":\"%s\"},"
           "\"blocklisting\":{\"blocked\":false,\"block_code\":0,"
           "\"block_description\":\"Not blocked\"},"
           "\"risk\":{\"level\":\"%s\",\"recommendation\":\"%s\","
           "\"score\":%d}}",
           (unsigned long long)lk.ref, (unsigned long long)~lk.ref, when,
           number, (int)cc, number, number + cc, (int)cc, number, number + cc,
           code, type, sim_risk_level(lk.score),
           sim_recommendation(lk.score), lk.score);
  return send_body(c, 200, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct score_model *m = cls;
  struct req *r = *con_cls;

  (void)version;
  if (!r) {
    r = calloc(1, sizeof(*r));
    if (!r)
      return MHD_NO;
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_size) {
    if (*upload_size >= MAX_BODY - r->len) {
      r->too_big = 1;
    } else {
      memcpy(r->body + r->len, upload, *upload_size);
      r->len += *upload_size;
      r->body[r->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
  }
  return answer(m, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)c;
  (void)toe;
  free(*con_cls);
  *con_cls = NULL;
}

int score_model_start(const struct sim_traffic *t, unsigned hang_ms,
                      struct score_model **out)
{
  struct score_model *m = calloc(1, sizeof(*m));
  const union MHD_DaemonInfo *info;
  struct sockaddr_in sa;

  if (!m)
    return -1;
  m->t = t;
  m->hang_ms = hang_ms;
  m->counts = calloc(t->nnumbers ? t->nnumbers : 1, sizeof(*m->counts));
  m->current = malloc(sizeof(*m->current) * (t->nnumbers ? t->nnumbers : 1));
  m->per_call = calloc(t->ncalls ? t->ncalls : 1, sizeof(*m->per_call));
  if (!m->counts || !m->current || !m->per_call) {
    free(m->counts);
    free((void *)m->current);
    free(m->per_call);
    free(m);
    return -1;
  }
  for (uint32_t i = 0; i < t->nnumbers; i++)
    atomic_init(&m->current[i], -1);
  pthread_mutex_init(&m->lock, NULL);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  m->d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_AUTO | MHD_USE_ERROR_LOG,
      0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
  if (!m->d)
    goto fail;
  info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
  if (!info || !info->port)
    goto fail;
  m->port = info->port;
  *out = m;
  return 0;
fail:
  score_model_stop(m);
  return -1;
}

unsigned score_model_port(const struct score_model *m)
{
  return m->port;
}

void score_model_stats(struct score_model *m, struct score_model_stats *out)
{
  pthread_mutex_lock(&m->lock);
  *out = m->st;
  pthread_mutex_unlock(&m->lock);
}

uint32_t score_model_lookups_of(struct score_model *m, int32_t n)
{
  uint32_t v;

  if (n < 0 || (uint32_t)n >= m->t->nnumbers)
    return 0;
  pthread_mutex_lock(&m->lock);
  v = m->counts[n];
  pthread_mutex_unlock(&m->lock);
  return v;
}

void score_model_call_begin(struct score_model *m, int32_t n, uint32_t call)
{
  if (n >= 0 && (uint32_t)n < m->t->nnumbers && call < m->t->ncalls)
    atomic_store(&m->current[n], (int32_t)call);
}

void score_model_call_end(struct score_model *m, int32_t n)
{
  if (n >= 0 && (uint32_t)n < m->t->nnumbers)
    atomic_store(&m->current[n], -1);
}

uint32_t score_model_lookups_of_call(struct score_model *m, uint32_t call)
{
  uint32_t v;

  if (call >= m->t->ncalls)
    return 0;
  pthread_mutex_lock(&m->lock);
  v = m->per_call[call];
  pthread_mutex_unlock(&m->lock);
  return v;
}

void score_model_stop(struct score_model *m)
{
  if (!m)
    return;
  atomic_store(&m->stopping, true);
  if (m->d)
    MHD_stop_daemon(m->d);
  pthread_mutex_destroy(&m->lock);
  free(m->counts);
  free((void *)m->current);
  free(m->per_call);
  free(m);
}
