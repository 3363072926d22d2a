/*
 * The traffic model (see model.h and docs/screening-efficacy.md).
 *
 * The customer base is drawn first; then, day after day, the base's
 * churn, the day's customers, robocall campaigns, spoofers and
 * fraudsters, each class with its own PRNG stream per day derived from
 * the seed, so that changing one class's parameters leaves the other
 * classes' callers as they were. The first day's robocall, spoofer and
 * fraudster streams are the ones the one-day model had. Calls are then
 * sorted by arrival time (ties by generation order) and numbered.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ---- PRNG ------------------------------------------------------------ */

uint64_t sim_splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t sim_hash2(uint64_t a, uint64_t b)
{
  uint64_t s = a ^ (b * 0xD6E8FEB86659FD93ULL);

  sim_splitmix64(&s);
  return sim_splitmix64(&s) ^ b;
}

uint64_t sim_hash_str(const char *s)
{
  uint64_t h = 0xCBF29CE484222325ULL;

  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001B3ULL;
  }
  return h;
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
  uint64_t s = seed;

  for (int i = 0; i < 4; i++)
    r->s[i] = sim_splitmix64(&s);
}

static uint64_t rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;

  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

double sim_rng_uniform(struct sim_rng *r)
{
  return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;

  do
    x = sim_rng_next(r);
  while (x >= limit);
  return x % n;
}

double sim_rng_normal(struct sim_rng *r)
{
  double u1 = sim_rng_uniform(r);
  double u2 = sim_rng_uniform(r);

  if (u1 < 1e-300)
    u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double sim_rng_lognormal(struct sim_rng *r, double median, double sigma)
{
  return median * exp(sigma * sim_rng_normal(r));
}

int sim_rng_chance(struct sim_rng *r, double p)
{
  return sim_rng_uniform(r) < p;
}

unsigned sim_rng_poisson(struct sim_rng *r, double mean)
{
  double limit = exp(-mean);
  double prod = sim_rng_uniform(r);
  unsigned k = 0;

  while (prod > limit && k < 1000) {
    prod *= sim_rng_uniform(r);
    k++;
  }
  return k;
}

double sim_rng_gamma(struct sim_rng *r, double shape, double scale)
{
  double boost = 1;
  double d, c;

  if (shape < 1) {
    /* Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia and Tsang, 2000). */
    double u = 1 - sim_rng_uniform(r); /* (0, 1] */

    boost = pow(u, 1 / shape);
    shape += 1;
  }
  d = shape - 1.0 / 3;
  c = 1 / sqrt(9 * d);
  for (;;) {
    double x, v, u;

    do {
      x = sim_rng_normal(r);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    u = sim_rng_uniform(r);
    if (u < 1 - 0.0331 * x * x * x * x ||
        (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))))
      return d * v * scale * boost;
  }
}

/* ---- names ----------------------------------------------------------- */

static const char *const class_names[SIM_NCLASS] = {"legit", "robocall",
                                                    "spoofed", "fraud"};

const char *sim_class_name(enum sim_class c)
{
  return (unsigned)c < SIM_NCLASS ? class_names[c] : "unknown";
}

int sim_class_parse(const char *name)
{
  static const char *const plural[SIM_NCLASS] = {"legitimate", "robocalls",
                                                 "spoof", "fraudsters"};

  for (int i = 0; i < SIM_NCLASS; i++)
    if (strcmp(name, class_names[i]) == 0 || strcmp(name, plural[i]) == 0)
      return i;
  return -1;
}

static const char *const line_names[SIM_NLINE] = {
    "legit_low",  "legit_mid",  "legit_intl", "neighbour",
    "robo_known", "robo_fresh", "fraud_high", "fraud_mid"};

const char *sim_line_name(enum sim_line l)
{
  return (unsigned)l < SIM_NLINE ? line_names[l] : "unknown";
}

/* ---- parameters ------------------------------------------------------ */

void sim_params_default(struct sim_params *p)
{
  memset(p, 0, sizeof(*p));
  p->calls = 10000;
  p->days = 35;
  p->mix[SIM_LEGIT] = 0.60;
  p->mix[SIM_ROBOCALL] = 0.30;
  p->mix[SIM_SPOOFED] = 0.06;
  p->mix[SIM_FRAUD] = 0.04;

  p->legit_customers = 0;
  p->legit_days_per_week = 0.25;
  p->legit_rate_shape = 0.5;
  p->legit_churn = 0.001;
  p->legit_callback = 0.25;
  p->legit_callback_more = 0.4;
  p->legit_callback_gap_min = 45;
  p->legit_redial = 0.05;
  p->legit_anonymous = 0.03;
  p->legit_international = 0.08;
  p->legit_mid = 0.15;
  p->legit_solve = 0.95;

  p->robo_campaign_calls = 150;
  p->robo_calls_per_number = 4;
  p->robo_redial = 0.4;
  p->robo_fresh = 0.3;
  p->robo_anonymous = 0.04;
  p->robo_prefix_reuse = 0.25;
  p->bot_solve = 0.02;

  p->spoof_campaign_calls = 60;
  p->spoof_customer = 0.3;

  p->fraud_calls = 2.5;
  p->fraud_high = 0.5;
  p->fraud_two_numbers = 0.3;
  p->fraud_anonymous = 0.1;
  p->fraud_solve = 0.98;

  p->score_noise = 25;
  p->score_failure_rate = 0.01;
  p->score_hang_share = 0.5;
  p->score_latency_ms = 120;
  p->score_latency_sigma = 0.35;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  if (err && errlen)
    vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

int sim_params_check(const struct sim_params *p, char *err, size_t errlen)
{
  const struct {
    const char *name;
    double v;
  } probs[] = {
      {"legit_churn", p->legit_churn},
      {"legit_callback", p->legit_callback},
      {"legit_callback_more", p->legit_callback_more},
      {"legit_redial", p->legit_redial},
      {"legit_anonymous", p->legit_anonymous},
      {"legit_international", p->legit_international},
      {"legit_mid", p->legit_mid},
      {"legit_solve", p->legit_solve},
      {"robo_redial", p->robo_redial},
      {"robo_fresh", p->robo_fresh},
      {"robo_anonymous", p->robo_anonymous},
      {"robo_prefix_reuse", p->robo_prefix_reuse},
      {"bot_solve", p->bot_solve},
      {"spoof_customer", p->spoof_customer},
      {"fraud_high", p->fraud_high},
      {"fraud_two_numbers", p->fraud_two_numbers},
      {"fraud_anonymous", p->fraud_anonymous},
      {"fraud_solve", p->fraud_solve},
      {"score_failure_rate", p->score_failure_rate},
      {"score_hang_share", p->score_hang_share},
  };
  double sum = 0;

  if (p->calls < 1 || p->calls > 1000000)
    return fail(err, errlen, "calls must be 1 to 1000000 a day");
  if (p->days < 1 || p->days > SIM_MAX_DAYS)
    return fail(err, errlen, "days must be 1 to %d", SIM_MAX_DAYS);
  if ((uint64_t)p->calls * p->days > SIM_MAX_CALLS)
    return fail(err, errlen, "calls a day times days must be at most %d",
                SIM_MAX_CALLS);
  if (p->legit_customers > 10000000)
    return fail(err, errlen, "legit_customers must be at most 10000000");
  if (!(p->legit_days_per_week > 0 && p->legit_days_per_week <= 7))
    return fail(err, errlen, "legit_days_per_week must be above 0, at most 7");
  if (!(p->legit_rate_shape >= 0.05 && p->legit_rate_shape <= 100))
    return fail(err, errlen, "legit_rate_shape must be 0.05 to 100");
  if (p->legit_churn > 0.5)
    return fail(err, errlen, "legit_churn must be at most 0.5");
  for (int i = 0; i < SIM_NCLASS; i++) {
    if (!(p->mix[i] >= 0 && p->mix[i] <= 1))
      return fail(err, errlen, "the share of %s must be 0 to 1",
                  class_names[i]);
    sum += p->mix[i];
  }
  if (fabs(sum - 1) > 1e-6)
    return fail(err, errlen, "the class mix sums to %.4f, not 1", sum);
  for (size_t i = 0; i < sizeof(probs) / sizeof(probs[0]); i++)
    if (!(probs[i].v >= 0 && probs[i].v <= 1))
      return fail(err, errlen, "%s must be 0 to 1", probs[i].name);
  if (p->legit_callback_more > 0.95)
    return fail(err, errlen, "legit_callback_more must be at most 0.95");
  if (p->robo_redial > 0.95)
    return fail(err, errlen, "robo_redial must be at most 0.95");
  if (!(p->legit_callback_gap_min >= 1 && p->legit_callback_gap_min <= 720))
    return fail(err, errlen, "legit_callback_gap_min must be 1 to 720");
  if (!(p->robo_campaign_calls >= 1 && p->robo_campaign_calls <= 100000) ||
      !(p->spoof_campaign_calls >= 1 && p->spoof_campaign_calls <= 100000))
    return fail(err, errlen, "campaign sizes must be 1 to 100000");
  if (!(p->robo_calls_per_number >= 1 && p->robo_calls_per_number <= 1000))
    return fail(err, errlen, "robo_calls_per_number must be 1 to 1000");
  if (!(p->fraud_calls >= 1 && p->fraud_calls <= 50))
    return fail(err, errlen, "fraud_calls must be 1 to 50");
  if (!(p->score_noise >= 0 && p->score_noise <= 500))
    return fail(err, errlen, "score_noise must be 0 to 500");
  if (!(p->score_latency_ms >= 0 && p->score_latency_ms <= 10000))
    return fail(err, errlen, "score_latency_ms must be 0 to 10000");
  if (!(p->score_latency_sigma >= 0 && p->score_latency_sigma <= 3))
    return fail(err, errlen, "score_latency_sigma must be 0 to 3");
  return 0;
}

/* ---- building the run ------------------------------------------------ */

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL

/* Base-score distributions per line kind: mean and sd of a normal. */
static const struct {
  double mean, sd;
} base_dist[SIM_NLINE] = {
    [SIM_LINE_LEGIT_LOW] = {170, 90},  [SIM_LINE_LEGIT_MID] = {460, 80},
    [SIM_LINE_LEGIT_INTL] = {430, 100}, [SIM_LINE_NEIGHBOUR] = {170, 90},
    [SIM_LINE_ROBO_KNOWN] = {790, 90}, [SIM_LINE_ROBO_FRESH] = {520, 120},
    [SIM_LINE_FRAUD_HIGH] = {730, 80}, [SIM_LINE_FRAUD_MID] = {500, 70},
};

static int clip_score(double v)
{
  long s = lround(v);

  return s < 0 ? 0 : s > 1000 ? 1000 : (int)s;
}

/* A call before sorting. */
struct raw_call {
  int64_t t_ms;
  uint32_t seq;
  uint8_t cls;
  uint32_t actor;
  int32_t number;
  char from[SIM_FROM_SIZE];
};

/* A customer of the base. */
struct customer {
  int32_t number;
  int anonymous;
  double p; /* the chance of calling on a given day, 1 - exp(-rate) */
};

/* A robocall campaign's number block, for later days' campaigns. */
struct block {
  char prefix[8]; /* "1" NPA NXX */
  uint8_t line;   /* enum sim_line of its numbers */
};

struct builder {
  struct sim_traffic *t;
  struct raw_call *calls;
  uint32_t ncalls, capcalls;
  uint32_t capnumbers;
  uint32_t class_target[SIM_NCLASS]; /* calls a day per class */
  uint32_t day_calls[SIM_NCLASS];    /* the current day's, so far */
  uint32_t day;                      /* the day being drawn */
  /* Every customer who was ever in the base, and the base now: `nbase`
   * indices into it. */
  struct customer *cust;
  uint32_t ncust, capcust;
  uint32_t *base;
  uint32_t nbase;
  /* Robocall campaigns so far (ids unique over the run) and the number
   * blocks of earlier days' campaigns. */
  uint32_t campaigns, spoof_campaigns, fraudsters;
  struct block *blocks;
  uint32_t nblocks, capblocks;
  int oom;
};

static uint32_t index_slot(const struct sim_traffic *t, const char *digits)
{
  return (uint32_t)sim_hash_str(digits) & (t->index_cap - 1);
}

int32_t sim_number_find(const struct sim_traffic *t, const char *digits)
{
  uint32_t i;

  if (!t->index_cap)
    return -1;
  for (i = index_slot(t, digits);; i = (i + 1) & (t->index_cap - 1)) {
    int32_t n = t->index[i];

    if (n < 0)
      return -1;
    if (strcmp(t->numbers[n].digits, digits) == 0)
      return n;
  }
}

static int index_grow(struct sim_traffic *t)
{
  uint32_t cap = t->index_cap ? t->index_cap * 2 : 1024;
  int32_t *idx = malloc(sizeof(*idx) * cap);

  if (!idx)
    return -1;
  for (uint32_t i = 0; i < cap; i++)
    idx[i] = -1;
  free(t->index);
  t->index = idx;
  t->index_cap = cap;
  for (uint32_t n = 0; n < t->nnumbers; n++) {
    uint32_t i = index_slot(t, t->numbers[n].digits);

    while (idx[i] >= 0)
      i = (i + 1) & (cap - 1);
    idx[i] = (int32_t)n;
  }
  return 0;
}

/*
 * Adds a number (its base score drawn from its line's distribution by
 * `r`). Returns its index, or -1 when it exists already (or out of
 * memory, flagged in b->oom).
 */
static int32_t add_number(struct builder *b, struct sim_rng *r,
                          const char *digits, unsigned cc_len,
                          enum sim_line line, enum sim_class owner)
{
  struct sim_traffic *t = b->t;
  struct sim_number *n;
  uint32_t i;

  if (sim_number_find(t, digits) >= 0)
    return -1;
  if (t->nnumbers + 1 > t->index_cap / 2 && index_grow(t)) {
    b->oom = 1;
    return -1;
  }
  if (t->nnumbers == b->capnumbers) {
    uint32_t cap = b->capnumbers ? b->capnumbers * 2 : 1024;
    struct sim_number *nn = realloc(t->numbers, sizeof(*nn) * cap);

    if (!nn) {
      b->oom = 1;
      return -1;
    }
    t->numbers = nn;
    b->capnumbers = cap;
  }
  n = &t->numbers[t->nnumbers];
  memset(n, 0, sizeof(*n));
  snprintf(n->digits, sizeof(n->digits), "%s", digits);
  n->cc_len = (uint8_t)cc_len;
  n->line = (uint8_t)line;
  n->owner = (uint8_t)owner;
  if (line == SIM_LINE_NEIGHBOUR)
    /* A neighbour is an ordinary subscriber: scored as customers are. */
    line = sim_rng_chance(r, t->params.legit_mid) ? SIM_LINE_LEGIT_MID
                                                   : SIM_LINE_LEGIT_LOW;
  n->base = (int16_t)clip_score(base_dist[line].mean +
                                base_dist[line].sd * sim_rng_normal(r));
  for (i = index_slot(t, digits); t->index[i] >= 0;
       i = (i + 1) & (t->index_cap - 1))
    ;
  t->index[i] = (int32_t)t->nnumbers;
  return (int32_t)t->nnumbers++;
}

/* Writes `v` as exactly `width` decimal digits (zero-padded) at `out`. */
static void put_digits(char *out, uint64_t v, unsigned width)
{
  for (unsigned i = width; i-- > 0; v /= 10)
    out[i] = (char)('0' + v % 10);
  out[width] = '\0';
}

/* Digits: "1" + NPA + NXX + line, never in the business's NPA-NXX. */
static void nanp_digits(struct sim_rng *r, char out[SIM_NUMBER_SIZE])
{
  do {
    out[0] = '1';
    out[1] = (char)('2' + sim_rng_below(r, 8));
    put_digits(out + 2, sim_rng_below(r, 100), 2);
    out[4] = (char)('2' + sim_rng_below(r, 8));
    put_digits(out + 5, sim_rng_below(r, 100), 2);
    put_digits(out + 7, sim_rng_below(r, 10000), 4);
  } while (strncmp(out, SIM_NEIGHBOUR, 7) == 0);
}

/* Mobile ranges of countries callers from abroad often have. */
static const struct {
  const char *cc;
  const char *lead; /* first national digits */
  unsigned rest;    /* digits after them */
} foreign[] = {
    {"44", "7", 9}, {"49", "15", 9}, {"33", "6", 8},  {"52", "55", 8},
    {"91", "9", 9}, {"61", "4", 8},  {"81", "90", 8}, {"34", "6", 8},
    {"55", "119", 8}, {"86", "13", 9},
};

static unsigned foreign_digits(struct sim_rng *r, char out[SIM_NUMBER_SIZE])
{
  unsigned k = (unsigned)sim_rng_below(r, sizeof(foreign) / sizeof(foreign[0]));
  int n = snprintf(out, SIM_NUMBER_SIZE, "%s%s", foreign[k].cc, foreign[k].lead);

  for (unsigned i = 0; i < foreign[k].rest && n < SIM_NUMBER_SIZE - 1; i++)
    out[n++] = (char)('0' + sim_rng_below(r, 10));
  out[n] = '\0';
  return (unsigned)strlen(foreign[k].cc);
}

/*
 * data.from as a carrier delivers it: usually +E.164, sometimes without
 * the '+', a national ten-digit form or with punctuation. All of them
 * normalise to the number's digits (the unit test checks that).
 */
static void present(struct sim_rng *r, const struct sim_number *n,
                    char out[SIM_FROM_SIZE])
{
  double u = sim_rng_uniform(r);
  const char *d = n->digits;

  if (n->cc_len != 1 || strlen(d) != 11 || u < 0.65)
    snprintf(out, SIM_FROM_SIZE, "+%s", d);
  else if (u < 0.85)
    snprintf(out, SIM_FROM_SIZE, "%s", d);
  else if (u < 0.95)
    snprintf(out, SIM_FROM_SIZE, "%s", d + 1);
  else
    snprintf(out, SIM_FROM_SIZE, "+1 (%.3s) %.3s-%.4s", d + 1, d + 4, d + 7);
}

static void present_anonymous(struct sim_rng *r, char out[SIM_FROM_SIZE])
{
  double u = sim_rng_uniform(r);

  snprintf(out, SIM_FROM_SIZE, "%s",
           u < 0.6 ? "anonymous" : u < 0.85 ? "" : "Restricted");
}

static int add_call(struct builder *b, struct sim_rng *r, enum sim_class cls,
                    uint32_t actor, int64_t t_ms, int32_t number)
{
  struct raw_call *c;

  if (b->day_calls[cls] >= b->class_target[cls])
    return 0;
  /* A call past midnight (a late call-back, a fraudster's next try) would
   * be tomorrow's, whose share is drawn tomorrow: it is dropped. */
  if (t_ms < (int64_t)b->day * SIM_DAY_MS ||
      t_ms >= (int64_t)(b->day + 1) * SIM_DAY_MS)
    return 0;
  if (b->ncalls == b->capcalls) {
    uint32_t cap = b->capcalls ? b->capcalls * 2 : 1024;
    struct raw_call *nc = realloc(b->calls, sizeof(*nc) * cap);

    if (!nc) {
      b->oom = 1;
      return 0;
    }
    b->calls = nc;
    b->capcalls = cap;
  }
  c = &b->calls[b->ncalls];
  memset(c, 0, sizeof(*c));
  c->t_ms = t_ms;
  c->seq = b->ncalls++;
  c->cls = (uint8_t)cls;
  c->actor = actor;
  c->number = number;
  if (number >= 0)
    present(r, &b->t->numbers[number], c->from);
  else
    present_anonymous(r, c->from);
  b->t->class_calls[cls]++;
  b->day_calls[cls]++;
  return 1;
}

/* The current day's share of the class is drawn (or memory ran out). */
static int class_full(const struct builder *b, enum sim_class cls)
{
  return b->day_calls[cls] >= b->class_target[cls] || b->oom;
}

/* Ms from the start of the run to the start of the current day. */
static int64_t day_start(const struct builder *b)
{
  return (int64_t)b->day * SIM_DAY_MS;
}

/* When customers call: a morning and an afternoon peak, and a few calls
 * at any hour. */
static int64_t customer_time(struct sim_rng *r)
{
  double u = sim_rng_uniform(r);
  double h;

  do {
    if (u < 0.45)
      h = 10.5 + 1.6 * sim_rng_normal(r);
    else if (u < 0.90)
      h = 14.5 + 1.8 * sim_rng_normal(r);
    else
      h = 24 * sim_rng_uniform(r);
  } while (h < 0 || h >= 24);
  return (int64_t)(h * HOUR_MS);
}

/* ---- customers ------------------------------------------------------- */

/*
 * A new customer: a number of their own (foreign, mid-range or ordinary),
 * whether they withhold it, and how often they call: a rate (calling days
 * a day) drawn from a gamma distribution, so that across the base the
 * number of days a customer calls in a period is negative binomial, the
 * classic model of repeat buying and contact (Ehrenberg's NBD). Returns
 * the customer's id, or UINT32_MAX out of memory.
 */
static uint32_t new_customer(struct builder *b, struct sim_rng *r)
{
  const struct sim_params *p = &b->t->params;
  double scale = p->legit_days_per_week / 7 / p->legit_rate_shape;
  struct customer *cu;
  char d[SIM_NUMBER_SIZE];
  int32_t n;

  if (b->ncust == b->capcust) {
    uint32_t cap = b->capcust ? b->capcust * 2 : 1024;
    struct customer *nc = realloc(b->cust, sizeof(*nc) * cap);

    if (!nc) {
      b->oom = 1;
      return UINT32_MAX;
    }
    b->cust = nc;
    b->capcust = cap;
  }
  do {
    if (sim_rng_chance(r, p->legit_international)) {
      unsigned cc = foreign_digits(r, d);

      n = add_number(b, r, d, cc, SIM_LINE_LEGIT_INTL, SIM_LEGIT);
    } else {
      enum sim_line line = sim_rng_chance(r, p->legit_mid)
                               ? SIM_LINE_LEGIT_MID
                               : SIM_LINE_LEGIT_LOW;

      nanp_digits(r, d);
      n = add_number(b, r, d, 1, line, SIM_LEGIT);
    }
  } while (n < 0 && !b->oom);
  if (b->oom)
    return UINT32_MAX;
  cu = &b->cust[b->ncust];
  cu->number = n;
  cu->anonymous = sim_rng_chance(r, p->legit_anonymous);
  cu->p = 1 - exp(-sim_rng_gamma(r, p->legit_rate_shape, scale));
  return b->ncust++;
}

/*
 * The size of the base when the parameters leave it to the model: the
 * customers whose expected calling days fill the day's legitimate share.
 * A session (a customer's day) averages (1 + redial) * (1 + callback /
 * (1 - callback_more)) calls, and a customer calls on a given day with
 * probability E[1 - exp(-rate)] = 1 - (1 + scale)^-shape.
 */
static uint32_t base_size(const struct sim_params *p, uint32_t legit_a_day)
{
  double scale = p->legit_days_per_week / 7 / p->legit_rate_shape;
  double per_day = 1 - pow(1 + scale, -p->legit_rate_shape);
  double per_session = (1 + p->legit_redial) *
                       (1 + p->legit_callback / (1 - p->legit_callback_more));
  double n;

  if (p->legit_customers)
    return p->legit_customers;
  n = ceil((double)legit_a_day / per_session / per_day);
  /* Always some, for spoofers to borrow. */
  return n < 64 ? 64 : n > 10000000 ? 10000000 : (uint32_t)n;
}

static int make_base(struct builder *b, struct sim_rng *r, uint32_t size)
{
  b->base = malloc(sizeof(*b->base) * (size ? size : 1));
  if (!b->base) {
    b->oom = 1;
    return -1;
  }
  for (uint32_t i = 0; i < size; i++) {
    uint32_t id = new_customer(b, r);

    if (id == UINT32_MAX)
      return -1;
    b->base[i] = id;
  }
  b->nbase = size;
  return 0;
}

/* Before a day after the first: customers leave, new ones take their
 * place, so the base keeps its size. */
static void churn(struct builder *b, struct sim_rng *r)
{
  for (uint32_t i = 0; i < b->nbase && !b->oom; i++) {
    if (sim_rng_chance(r, b->t->params.legit_churn)) {
      uint32_t id = new_customer(b, r);

      if (id != UINT32_MAX)
        b->base[i] = id;
    }
  }
}

/* One call of a customer, and sometimes its immediate redial. */
static void customer_call(struct builder *b, struct sim_rng *r,
                          const struct customer *cu, uint32_t actor,
                          int64_t t)
{
  int32_t number = cu->anonymous ? -1 : cu->number;

  add_call(b, r, SIM_LEGIT, actor, t, number);
  if (sim_rng_chance(r, b->t->params.legit_redial))
    add_call(b, r, SIM_LEGIT, actor,
             t + 20000 + (int64_t)sim_rng_below(r, 70001), number);
}

struct pick {
  double key;
  uint32_t id;
};

/* Largest key first; ties by id, for a stable order. */
static int cmp_pick(const void *a, const void *b)
{
  const struct pick *x = a;
  const struct pick *y = b;

  if (x->key != y->key)
    return x->key > y->key ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * The day's customers. They are taken from the base in a random order
 * weighted by each one's chance of calling on a day (Efraimidis and
 * Spirakis: key log(u) / p, largest first), one session each, until the
 * day's legitimate share is filled: a customer's chance of calling today
 * is then about their own p, and the share is exact. Should the base run
 * out first (a --legit-customers too small for the share), the order
 * starts again and some customers have two sessions in the day.
 */
static void gen_legit(struct builder *b, struct sim_rng *r)
{
  const struct sim_params *p = &b->t->params;
  struct pick *order;
  uint32_t n = b->nbase;

  if (!n || class_full(b, SIM_LEGIT))
    return;
  order = malloc(sizeof(*order) * n);
  if (!order) {
    b->oom = 1;
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    double u = 1 - sim_rng_uniform(r); /* (0, 1] */
    double w = b->cust[b->base[i]].p;

    order[i].id = b->base[i];
    order[i].key = w > 0 ? log(u) / w : -HUGE_VAL;
  }
  qsort(order, n, sizeof(*order), cmp_pick);
  for (uint32_t s = 0; !class_full(b, SIM_LEGIT); s++) {
    uint32_t id = order[s % n].id;
    const struct customer *cu = &b->cust[id];
    int64_t t = day_start(b) + customer_time(r);

    customer_call(b, r, cu, id, t);
    if (!sim_rng_chance(r, p->legit_callback))
      continue;
    do {
      t += (int64_t)(sim_rng_lognormal(r, p->legit_callback_gap_min, 1.0) *
                     MIN_MS);
      customer_call(b, r, cu, id, t);
    } while (sim_rng_chance(r, p->legit_callback_more));
  }
  free(order);
}

/* ---- campaigns ------------------------------------------------------- */

struct burst {
  int64_t start, len;
};

/* A campaign's calls come in bursts during the dialler's working hours
 * of the day that starts at `day0` (ms since the start of the run). */
static unsigned make_bursts(struct sim_rng *r, uint32_t calls, int64_t day0,
                            struct burst out[4])
{
  unsigned n = 1 + (calls - 1) / 120;

  if (n > 4)
    n = 4;
  for (unsigned i = 0; i < n; i++) {
    double len_min = sim_rng_lognormal(r, 20, 0.5);

    if (len_min > 90)
      len_min = 90;
    out[i].start =
        day0 + 8 * HOUR_MS + (int64_t)sim_rng_below(r, 12 * HOUR_MS);
    out[i].len = (int64_t)(len_min * MIN_MS) + 1;
  }
  return n;
}

/* Calls for the next campaign: its drawn size, or what is left. */
static uint32_t campaign_size(const struct builder *b, struct sim_rng *r,
                              enum sim_class cls, double median)
{
  uint32_t left = b->class_target[cls] - b->day_calls[cls];
  double c = sim_rng_lognormal(r, median, 0.6);
  uint32_t n = c < 5 ? 5 : c > 100000 ? 100000 : (uint32_t)lround(c);

  /* A tail too small for a campaign of its own joins this one. */
  if (n >= left || left - n < 5)
    n = left;
  return n;
}

/* Remembers a campaign's number block for the days after this one. */
static void remember_block(struct builder *b, const char *prefix,
                           enum sim_line line)
{
  if (b->nblocks == b->capblocks) {
    uint32_t cap = b->capblocks ? b->capblocks * 2 : 64;
    struct block *nb = realloc(b->blocks, sizeof(*nb) * cap);

    if (!nb) {
      b->oom = 1;
      return;
    }
    b->blocks = nb;
    b->capblocks = cap;
  }
  memcpy(b->blocks[b->nblocks].prefix, prefix, 8);
  b->blocks[b->nblocks].line = (uint8_t)line;
  b->nblocks++;
}

static void gen_robocalls(struct builder *b, struct sim_rng *r)
{
  const struct sim_params *p = &b->t->params;
  int32_t *pool = NULL;
  /* Only earlier days' blocks may come back: today's are added after. */
  uint32_t earlier = b->nblocks;

  for (; !class_full(b, SIM_ROBOCALL); b->campaigns++) {
    uint32_t campaign = b->campaigns;
    uint32_t size = campaign_size(b, r, SIM_ROBOCALL, p->robo_campaign_calls);
    uint32_t goal = b->day_calls[SIM_ROBOCALL] + size;
    enum sim_line line = sim_rng_chance(r, p->robo_fresh)
                             ? SIM_LINE_ROBO_FRESH
                             : SIM_LINE_ROBO_KNOWN;
    double want = (double)size / p->robo_calls_per_number;
    uint32_t npool = want < 3 ? 3 : want > 900 ? 900 : (uint32_t)lround(want);
    char prefix[SIM_NUMBER_SIZE];
    char d[SIM_NUMBER_SIZE];
    struct burst bursts[4];
    unsigned nb = make_bursts(r, size, day_start(b), bursts);
    int reused = 0;

    pool = realloc(pool, sizeof(*pool) * npool);
    if (!pool) {
      b->oom = 1;
      break;
    }
    nanp_digits(r, prefix);
    prefix[7] = '\0'; /* "1" NPA NXX */
    /* A dialler that comes back dials from a block it leased before (and
     * keeps its kind: numbers Score knows or not). The first day draws
     * nothing here, so that its campaigns are the one-day model's. */
    if (earlier && sim_rng_chance(r, p->robo_prefix_reuse)) {
      const struct block *bl = &b->blocks[sim_rng_below(r, earlier)];

      memcpy(prefix, bl->prefix, 8);
      line = (enum sim_line)bl->line;
      reused = 1;
    }
    for (uint32_t i = 0; i < npool && !b->oom; i++) {
      do {
        memcpy(d, prefix, 7);
        put_digits(d + 7, sim_rng_below(r, 10000), 4);
        pool[i] = add_number(b, r, d, 1, line, SIM_ROBOCALL);
      } while (pool[i] < 0 && !b->oom);
    }
    /* Chains: a number dials, then often redials a few minutes later. */
    while (b->day_calls[SIM_ROBOCALL] < goal && !b->oom) {
      const struct burst *bu = &bursts[sim_rng_below(r, nb)];
      int64_t t = bu->start + (int64_t)sim_rng_below(r, (uint64_t)bu->len);
      int32_t number = sim_rng_chance(r, p->robo_anonymous)
                           ? -1
                           : pool[sim_rng_below(r, npool)];

      add_call(b, r, SIM_ROBOCALL, campaign, t, number);
      while (b->day_calls[SIM_ROBOCALL] < goal &&
             sim_rng_chance(r, p->robo_redial)) {
        t += 30000 + (int64_t)sim_rng_below(r, 150001);
        if (!add_call(b, r, SIM_ROBOCALL, campaign, t, number))
          break;
      }
    }
    if (!reused)
      remember_block(b, prefix, line);
  }
  free(pool);
}

/* Spoofers show a neighbour's number or the number of a customer of
 * today's base (any of them: a leaked customer list does not say who
 * calls often). */
static void gen_spoofed(struct builder *b, struct sim_rng *r)
{
  const struct sim_params *p = &b->t->params;
  uint32_t size = b->nbase;

  for (; !class_full(b, SIM_SPOOFED); b->spoof_campaigns++) {
    uint32_t campaign = b->spoof_campaigns;
    uint32_t n = campaign_size(b, r, SIM_SPOOFED, p->spoof_campaign_calls);
    uint32_t goal = b->day_calls[SIM_SPOOFED] + n;
    struct burst bursts[4];
    unsigned nb = make_bursts(r, n, day_start(b), bursts);

    while (b->day_calls[SIM_SPOOFED] < goal && !b->oom) {
      const struct burst *bu = &bursts[sim_rng_below(r, nb)];
      int64_t t = bu->start + (int64_t)sim_rng_below(r, (uint64_t)bu->len);
      int32_t number;

      if (size && sim_rng_chance(r, p->spoof_customer)) {
        number = b->cust[b->base[sim_rng_below(r, size)]].number;
      } else {
        char d[SIM_NUMBER_SIZE];

        do {
          memcpy(d, SIM_NEIGHBOUR, 7);
          put_digits(d + 7, sim_rng_below(r, 10000), 4);
        } while (strcmp(d, SIM_BUSINESS) == 0);
        number = sim_number_find(b->t, d);
        if (number < 0)
          number = add_number(b, r, d, 1, SIM_LINE_NEIGHBOUR, SIM_LEGIT);
        if (number < 0)
          break;
      }
      add_call(b, r, SIM_SPOOFED, campaign, t, number);
    }
  }
}

static void gen_fraud(struct builder *b, struct sim_rng *r)
{
  const struct sim_params *p = &b->t->params;

  for (; !class_full(b, SIM_FRAUD); b->fraudsters++) {
    uint32_t actor = b->fraudsters;
    enum sim_line line = sim_rng_chance(r, p->fraud_high)
                             ? SIM_LINE_FRAUD_HIGH
                             : SIM_LINE_FRAUD_MID;
    unsigned nnum = sim_rng_chance(r, p->fraud_two_numbers) ? 2 : 1;
    unsigned calls = 1 + sim_rng_poisson(r, p->fraud_calls - 1);
    int32_t nums[2];
    int64_t t =
        day_start(b) + 8 * HOUR_MS + (int64_t)sim_rng_below(r, 11 * HOUR_MS);
    char d[SIM_NUMBER_SIZE];

    for (unsigned i = 0; i < nnum; i++) {
      do {
        nanp_digits(r, d);
        nums[i] = add_number(b, r, d, 1, line, SIM_FRAUD);
      } while (nums[i] < 0 && !b->oom);
    }
    for (unsigned i = 0; i < calls && !class_full(b, SIM_FRAUD); i++) {
      int32_t number = sim_rng_chance(r, p->fraud_anonymous)
                           ? -1
                           : nums[sim_rng_below(r, nnum)];

      /* A call after the end of the day is tomorrow's; the next
       * fraudster makes up the count. */
      add_call(b, r, SIM_FRAUD, actor, t, number);
      t += (int64_t)(sim_rng_lognormal(r, 25, 0.8) * MIN_MS);
    }
  }
}

static int cmp_raw(const void *a, const void *b)
{
  const struct raw_call *x = a;
  const struct raw_call *y = b;

  if (x->t_ms != y->t_ms)
    return x->t_ms < y->t_ms ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Shares of a day's calls per class: floors, then the largest
 * remainders. */
static void split_calls(const struct sim_params *p, uint32_t out[SIM_NCLASS])
{
  double rem[SIM_NCLASS];
  uint32_t sum = 0;

  for (int i = 0; i < SIM_NCLASS; i++) {
    double want = p->mix[i] * p->calls;

    out[i] = (uint32_t)floor(want + 1e-9);
    rem[i] = want - out[i];
    sum += out[i];
  }
  while (sum < p->calls) {
    int best = 0;

    for (int i = 1; i < SIM_NCLASS; i++)
      if (rem[i] > rem[best] + 1e-12)
        best = i;
    out[best]++;
    rem[best] = -1;
    sum++;
  }
}

/*
 * The PRNG seed of a class's stream (`which`) on day `day`: the first
 * day's is the one-day model's, so that one day draws the campaigns and
 * fraudsters it always did.
 */
static uint64_t stream(uint64_t seed, uint64_t which, uint32_t day)
{
  uint64_t s = sim_hash2(seed, which);

  return day ? sim_hash2(s, day) : s;
}

int sim_generate(const struct sim_params *p, uint64_t seed,
                 struct sim_traffic **out, char *err, size_t errlen)
{
  struct builder b = {0};
  struct sim_rng r;
  uint8_t *seen = NULL;
  uint64_t total;

  if (sim_params_check(p, err, errlen))
    return -1;
  b.t = calloc(1, sizeof(*b.t));
  if (!b.t)
    return fail(err, errlen, "out of memory");
  b.t->seed = seed;
  b.t->params = *p;
  b.t->days = p->days;
  b.t->calls_per_day = p->calls;
  split_calls(p, b.class_target);

  sim_rng_seed(&r, stream(seed, 0x100, 0));
  if (make_base(&b, &r, base_size(p, b.class_target[SIM_LEGIT])))
    goto oom;
  b.t->base = b.nbase;
  for (b.day = 0; b.day < p->days; b.day++) {
    memset(b.day_calls, 0, sizeof(b.day_calls));
    if (b.day) {
      sim_rng_seed(&r, stream(seed, 0x100, b.day));
      churn(&b, &r);
    }
    sim_rng_seed(&r, stream(seed, 0x101, b.day));
    gen_legit(&b, &r);
    sim_rng_seed(&r, stream(seed, 0x102, b.day));
    gen_robocalls(&b, &r);
    sim_rng_seed(&r, stream(seed, 0x103, b.day));
    gen_spoofed(&b, &r);
    sim_rng_seed(&r, stream(seed, 0x104, b.day));
    gen_fraud(&b, &r);
    if (b.oom)
      goto oom;
  }
  b.t->customers = b.ncust;
  b.t->actors[SIM_ROBOCALL] = b.campaigns;
  b.t->actors[SIM_SPOOFED] = b.spoof_campaigns;
  b.t->actors[SIM_FRAUD] = b.fraudsters;

  qsort(b.calls, b.ncalls, sizeof(*b.calls), cmp_raw);
  b.t->calls = calloc(b.ncalls ? b.ncalls : 1, sizeof(*b.t->calls));
  seen = calloc(b.ncust ? b.ncust : 1, 1);
  if (!b.t->calls || !seen)
    goto oom;
  b.t->ncalls = b.ncalls;
  b.t->actors[SIM_LEGIT] = 0;
  for (uint32_t i = 0; i < b.ncalls; i++) {
    struct sim_call *c = &b.t->calls[i];
    const struct raw_call *rc = &b.calls[i];

    c->index = i;
    c->t_ms = rc->t_ms;
    c->day = (uint16_t)(rc->t_ms / SIM_DAY_MS);
    c->cls = rc->cls;
    c->actor = rc->actor;
    c->number = rc->number;
    memcpy(c->from, rc->from, sizeof(c->from));
    c->seed = sim_hash2(seed ^ 0x5CA11AB1E5EEDULL, i);
    if (c->cls == SIM_LEGIT && c->actor < b.ncust && !seen[c->actor]) {
      seen[c->actor] = 1;
      b.t->actors[SIM_LEGIT]++;
    }
  }
  free(seen);
  free(b.cust);
  free(b.base);
  free(b.blocks);
  free(b.calls);
  total = (uint64_t)p->calls * p->days;
  if (b.t->ncalls != total) {
    sim_traffic_free(b.t);
    return fail(err, errlen,
                "the model made %u calls, not %llu (a class "
                "could not fill its share)",
                b.ncalls, (unsigned long long)total);
  }
  *out = b.t;
  return 0;
oom:
  free(seen);
  free(b.cust);
  free(b.base);
  free(b.blocks);
  free(b.calls);
  sim_traffic_free(b.t);
  return fail(err, errlen, "out of memory");
}

void sim_traffic_free(struct sim_traffic *t)
{
  if (!t)
    return;
  free(t->calls);
  free(t->numbers);
  free(t->index);
  free(t);
}

uint64_t sim_traffic_digest(const struct sim_traffic *t)
{
  uint64_t h = sim_hash2(t->seed, t->ncalls);

  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    h = sim_hash2(h, (uint64_t)c->t_ms);
    h = sim_hash2(h, ((uint64_t)c->cls << 32) | c->actor);
    h = sim_hash2(h, (uint64_t)(int64_t)c->number);
    h = sim_hash2(h, sim_hash_str(c->from));
    h = sim_hash2(h, c->seed);
  }
  for (uint32_t i = 0; i < t->nnumbers; i++) {
    const struct sim_number *n = &t->numbers[i];

    h = sim_hash2(h, sim_hash_str(n->digits));
    h = sim_hash2(h, ((uint64_t)n->line << 40) | ((uint64_t)n->owner << 32) |
                         (uint16_t)n->base);
  }
  return h;
}

/* ---- the Score API --------------------------------------------------- */

void sim_lookup(const struct sim_traffic *t, const char *digits, uint32_t nth,
                struct sim_lookup *out)
{
  const struct sim_params *p = &t->params;
  uint64_t h = sim_hash2(sim_hash2(t->seed ^ 0x53C0DEULL, sim_hash_str(digits)),
                         nth);
  int32_t n = sim_number_find(t, digits);
  struct sim_rng r;
  double u_fail, u_hang, base;

  sim_rng_seed(&r, h);
  /* Always the same draws in the same order, so that one parameter does
   * not shift the others' streams. */
  u_fail = sim_rng_uniform(&r);
  u_hang = sim_rng_uniform(&r);
  memset(out, 0, sizeof(*out));
  out->latency_ms =
      sim_rng_lognormal(&r, p->score_latency_ms, p->score_latency_sigma);
  out->ref = sim_rng_next(&r);
  if (n >= 0) {
    out->known = 1;
    out->line = (enum sim_line)t->numbers[n].line;
    base = t->numbers[n].base;
  } else {
    struct sim_rng nr;

    /* Unknown to the day: an ordinary line, the same on every lookup. */
    sim_rng_seed(&nr, sim_hash2(t->seed, sim_hash_str(digits)));
    out->line = SIM_LINE_LEGIT_LOW;
    base = base_dist[SIM_LINE_LEGIT_LOW].mean +
           base_dist[SIM_LINE_LEGIT_LOW].sd * sim_rng_normal(&nr);
  }
  out->score = clip_score(base + p->score_noise * sim_rng_normal(&r));
  if (u_fail < p->score_failure_rate)
    out->kind = u_hang < p->score_hang_share ? SIM_LOOKUP_HANG
                                             : SIM_LOOKUP_UNAVAILABLE;
}

const char *sim_risk_level(int score)
{
  return score <= 200   ? "very low"
         : score <= 400 ? "low"
         : score <= 600 ? "medium"
         : score <= 800 ? "high"
                        : "very high";
}

const char *sim_recommendation(int score)
{
  return score <= 400 ? "allow" : score <= 600 ? "flag" : "block";
}

/* ---- callers --------------------------------------------------------- */

void sim_caller_init(struct sim_caller *c, const struct sim_traffic *t,
                     const struct sim_call *call)
{
  memset(c, 0, sizeof(*c));
  sim_rng_seed(&c->rng, call->seed);
  c->p = &t->params;
  c->cls = (enum sim_class)call->cls;
}

static int is_bot(const struct sim_caller *c)
{
  return c->cls == SIM_ROBOCALL || c->cls == SIM_SPOOFED;
}

char sim_caller_challenge(struct sim_caller *c, char asked)
{
  double solve = c->cls == SIM_LEGIT   ? c->p->legit_solve
                 : c->cls == SIM_FRAUD ? c->p->fraud_solve
                                       : c->p->bot_solve;
  double u = sim_rng_uniform(&c->rng);
  double v = sim_rng_uniform(&c->rng);
  unsigned other = 1 + (unsigned)sim_rng_below(&c->rng, 9);
  unsigned a = asked >= '0' && asked <= '9' ? (unsigned)(asked - '0') : 0;

  if (u < solve)
    return asked;
  /* A person who got it wrong mostly keyed another digit; a bot mostly
   * keys nothing (it plays its message over the prompt). */
  if (v < (is_bot(c) ? 0.2 : 0.6))
    return (char)('0' + (a + other) % 10);
  return 0;
}

char sim_caller_menu(struct sim_caller *c, unsigned nopts)
{
  unsigned prompt = c->menu_prompts++;
  double u = sim_rng_uniform(&c->rng);
  unsigned pick = (unsigned)sim_rng_below(&c->rng, nopts ? nopts : 1);
  unsigned any = (unsigned)sim_rng_below(&c->rng, 10);

  if (is_bot(c))
    return u < 0.3 ? (char)('0' + any) : 0;
  if (prompt == 0) {
    if (u < 0.90)
      return (char)('1' + pick);
    return u < 0.96 ? '9' : 0; /* a wrong key, or too slow */
  }
  return u < 0.95 ? (char)('1' + pick) : 0;
}

const char *sim_caller_dial_status(struct sim_caller *c)
{
  double u = sim_rng_uniform(&c->rng);

  if (c->cls != SIM_LEGIT)
    return "answered";
  return u < 0.92 ? "answered" : u < 0.96 ? "busy" : "no-answer";
}

int sim_caller_duration(struct sim_caller *c, int connected)
{
  double s = connected && !is_bot(c) ? sim_rng_lognormal(&c->rng, 180, 0.8)
                                     : sim_rng_lognormal(&c->rng, 18, 0.5);

  return s < 1 ? 1 : s > 14400 ? 14400 : (int)lround(s);
}
