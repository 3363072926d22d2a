/*
 * Unit tests for sim/model.c, the simulator's seeded traffic model: the
 * same seed gives the same run and another seed another; the classes get
 * their configured shares, every day; robocall campaigns share prefixes,
 * burst and redial, and some come back to an earlier day's number block;
 * customers call back, and the same customers call again on later days
 * from the same numbers while the base turns over slowly; the anonymous
 * shares hold; every caller ID normalises to the number the Score double
 * will be asked about; and the Score answers and callers' keys depend only
 * on what they should.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sim/model.h"
#include "../../src/screen/phone.h"

/* A run of `days` days of `calls` calls each, default parameters. */
static struct sim_traffic *run(uint64_t seed, uint32_t calls, uint32_t days)
{
  struct sim_params p;
  struct sim_traffic *t = NULL;
  char err[256];

  sim_params_default(&p);
  p.calls = calls;
  p.days = days;
  if (sim_generate(&p, seed, &t, err, sizeof(err)))
    fail_msg("sim_generate: %s", err);
  return t;
}

/* One day: what the tests of a day's shape look at. */
static struct sim_traffic *day(uint64_t seed, uint32_t calls)
{
  return run(seed, calls, 1);
}

/* |got - want| <= tol, with a readable failure. */
static void assert_near(double got, double want, double tol, const char *what)
{
  if (fabs(got - want) > tol)
    fail_msg("%s: %.4f, expected %.4f +- %.4f", what, got, want, tol);
}

/* ---- determinism ----------------------------------------------------- */

static void test_same_seed_same_day(void **state)
{
  struct sim_traffic *a = day(42, 10000);
  struct sim_traffic *b = day(42, 10000);

  (void)state;
  assert_int_equal(a->ncalls, b->ncalls);
  assert_int_equal(a->nnumbers, b->nnumbers);
  assert_memory_equal(a->calls, b->calls, sizeof(*a->calls) * a->ncalls);
  assert_memory_equal(a->numbers, b->numbers,
                      sizeof(*a->numbers) * a->nnumbers);
  assert_true(sim_traffic_digest(a) == sim_traffic_digest(b));
  sim_traffic_free(a);
  sim_traffic_free(b);
}

static void test_other_seed_other_day(void **state)
{
  struct sim_traffic *a = day(42, 10000);
  struct sim_traffic *b = day(43, 10000);
  unsigned same_time = 0;

  (void)state;
  assert_true(sim_traffic_digest(a) != sim_traffic_digest(b));
  for (uint32_t i = 0; i < a->ncalls; i++)
    same_time += a->calls[i].t_ms == b->calls[i].t_ms;
  assert_true(same_time < a->ncalls / 100);
  sim_traffic_free(a);
  sim_traffic_free(b);
}

/* A parameter of one class leaves the other classes' callers alone. */
static void test_classes_have_own_streams(void **state)
{
  struct sim_params p;
  struct sim_traffic *a;
  struct sim_traffic *b;
  char err[256];
  unsigned fa = 0, fb = 0, same = 0;

  (void)state;
  sim_params_default(&p);
  p.days = 3;
  assert_int_equal(sim_generate(&p, 7, &a, err, sizeof(err)), 0);
  p.robo_fresh = 0.9;
  assert_int_equal(sim_generate(&p, 7, &b, err, sizeof(err)), 0);
  /* The fraudsters' calls are the same calls at the same times. */
  for (uint32_t i = 0, j = 0; i < a->ncalls && j < b->ncalls;) {
    if (a->calls[i].cls != SIM_FRAUD) {
      i++;
      continue;
    }
    if (b->calls[j].cls != SIM_FRAUD) {
      j++;
      continue;
    }
    fa++;
    fb++;
    same += a->calls[i].t_ms == b->calls[j].t_ms &&
            strcmp(a->calls[i].from, b->calls[j].from) == 0;
    i++;
    j++;
  }
  assert_int_equal(fa, fb);
  assert_int_equal(same, fa);
  sim_traffic_free(a);
  sim_traffic_free(b);
}

/* ---- shape of the day ------------------------------------------------ */

static void test_order_and_bounds(void **state)
{
  struct sim_traffic *t = day(1, 10000);

  (void)state;
  assert_int_equal(t->ncalls, 10000);
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    assert_int_equal(c->index, i);
    assert_true(c->t_ms >= 0 && c->t_ms < SIM_DAY_MS);
    if (i)
      assert_true(c->t_ms >= t->calls[i - 1].t_ms);
    assert_true(c->cls < SIM_NCLASS);
    assert_true(c->number < (int32_t)t->nnumbers);
  }
  for (uint32_t n = 0; n < t->nnumbers; n++) {
    assert_int_equal(sim_number_find(t, t->numbers[n].digits), (int32_t)n);
    assert_true(t->numbers[n].base >= 0 && t->numbers[n].base <= 1000);
  }
  assert_int_equal(sim_number_find(t, "19999999999"), -1);
  sim_traffic_free(t);
}

/* Every day of a three-day run gets the mix, and the run its sum. */
static void check_mix(const double mix[SIM_NCLASS])
{
  struct sim_params p;
  struct sim_traffic *t;
  unsigned n[SIM_NCLASS] = {0};
  char err[256];

  sim_params_default(&p);
  p.days = 3;
  memcpy(p.mix, mix, sizeof(p.mix));
  assert_int_equal(sim_generate(&p, 5, &t, err, sizeof(err)), 0);
  assert_int_equal(t->ncalls, 3 * p.calls);
  for (uint32_t d = 0; d < 3; d++) {
    unsigned nd[SIM_NCLASS] = {0};

    for (uint32_t i = d * p.calls; i < (d + 1) * p.calls; i++) {
      assert_int_equal(t->calls[i].day, d);
      nd[t->calls[i].cls]++;
      n[t->calls[i].cls]++;
    }
    for (int c = 0; c < SIM_NCLASS; c++) {
      char what[64];

      snprintf(what, sizeof(what), "day %u: share of %s", d + 1,
               sim_class_name((enum sim_class)c));
      assert_near((double)nd[c] / p.calls, mix[c], 0.005, what);
    }
  }
  for (int c = 0; c < SIM_NCLASS; c++)
    assert_int_equal(n[c], t->class_calls[c]);
  sim_traffic_free(t);
}

static void test_class_proportions(void **state)
{
  static const double defaults[SIM_NCLASS] = {0.60, 0.30, 0.06, 0.04};
  static const double other[SIM_NCLASS] = {0.45, 0.45, 0.02, 0.08};
  static const double only_legit[SIM_NCLASS] = {1, 0, 0, 0};

  (void)state;
  check_mix(defaults);
  check_mix(other);
  check_mix(only_legit);
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a;
  int64_t y = *(const int64_t *)b;

  return x < y ? -1 : x > y;
}

static void test_robocall_campaigns(void **state)
{
  struct sim_traffic *t = day(3, 10000);
  int64_t *times = malloc(sizeof(*times) * t->ncalls);
  unsigned *per_number = calloc(t->nnumbers, sizeof(*per_number));
  unsigned numbers = 0, repeated = 0, quick_redials = 0;
  int32_t *last = malloc(sizeof(*last) * t->nnumbers);
  int64_t *last_t = malloc(sizeof(*last_t) * t->nnumbers);

  (void)state;
  assert_non_null(times);
  assert_non_null(per_number);
  assert_true(t->actors[SIM_ROBOCALL] >= 5);
  for (uint32_t n = 0; n < t->nnumbers; n++)
    last[n] = -1;
  for (uint32_t camp = 0; camp < t->actors[SIM_ROBOCALL]; camp++) {
    char prefix[8] = "";
    unsigned nt = 0, near = 0;

    for (uint32_t i = 0; i < t->ncalls; i++) {
      const struct sim_call *c = &t->calls[i];

      if (c->cls != SIM_ROBOCALL || c->actor != camp)
        continue;
      times[nt++] = c->t_ms;
      if (c->number < 0)
        continue;
      /* Every number of a campaign shares its NPA-NXX. */
      if (!prefix[0])
        memcpy(prefix, t->numbers[c->number].digits, 7);
      assert_memory_equal(t->numbers[c->number].digits, prefix, 7);
      assert_int_equal(t->numbers[c->number].owner, SIM_ROBOCALL);
    }
    assert_true(nt >= 5);
    /* Bursts: nearly every call has another of its campaign within five
     * minutes, although a campaign's calls span hours of the day. */
    qsort(times, nt, sizeof(*times), cmp_i64);
    for (unsigned k = 0; k < nt; k++)
      near += (k > 0 && times[k] - times[k - 1] <= 300000) ||
              (k + 1 < nt && times[k + 1] - times[k] <= 300000);
    if ((double)near / nt < 0.9)
      fail_msg("campaign %u: %u of %u calls in a burst", camp, near, nt);
  }
  /* Redialling: most campaign numbers call more than once, often again
   * within three minutes. */
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    if (c->cls != SIM_ROBOCALL || c->number < 0)
      continue;
    if (last[c->number] >= 0 && c->t_ms - last_t[c->number] <= 180000)
      quick_redials++;
    last[c->number] = (int32_t)i;
    last_t[c->number] = c->t_ms;
    per_number[c->number]++;
  }
  for (uint32_t n = 0; n < t->nnumbers; n++) {
    if (!per_number[n])
      continue;
    numbers++;
    repeated += per_number[n] > 1;
  }
  assert_true(numbers > 100);
  assert_true((double)repeated / numbers > 0.6);
  assert_true(quick_redials > t->class_calls[SIM_ROBOCALL] / 5);
  free(times);
  free(per_number);
  free(last);
  free(last_t);
  sim_traffic_free(t);
}

static void test_legit_callbacks(void **state)
{
  struct sim_traffic *t = day(4, 10000);
  unsigned max_actor = 0;
  unsigned *calls;
  int32_t *number;
  unsigned customers = 0, callers_back = 0;

  (void)state;
  for (uint32_t i = 0; i < t->ncalls; i++)
    if (t->calls[i].cls == SIM_LEGIT && t->calls[i].actor > max_actor)
      max_actor = t->calls[i].actor;
  calls = calloc(max_actor + 1, sizeof(*calls));
  number = malloc(sizeof(*number) * (max_actor + 1));
  assert_non_null(calls);
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    if (c->cls != SIM_LEGIT)
      continue;
    /* A customer calls from one number (or always withholds it). */
    if (calls[c->actor]++)
      assert_int_equal(number[c->actor], c->number);
    number[c->actor] = c->number;
    if (c->number >= 0)
      assert_int_equal(t->numbers[c->number].owner, SIM_LEGIT);
  }
  for (unsigned a = 0; a <= max_actor; a++) {
    customers += calls[a] > 0;
    callers_back += calls[a] > 1;
  }
  assert_int_equal(customers, t->actors[SIM_LEGIT]);
  /* 25% call back, 5% of calls are redialled; some call-backs fall after
   * midnight. */
  assert_near((double)callers_back / customers, 0.27, 0.06,
              "customers calling more than once");
  free(calls);
  free(number);
  sim_traffic_free(t);
}

static void test_anonymous_and_international(void **state)
{
  struct sim_traffic *t = day(6, 10000);
  unsigned anon[SIM_NCLASS] = {0};
  unsigned intl = 0, legit_numbered = 0;

  (void)state;
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];
    char out[PHONE_BUF_SIZE];
    enum phone_result r = phone_normalise(c->from, "1", out);

    if (c->number < 0) {
      anon[c->cls]++;
      /* The server must find these unscorable. */
      assert_true(r == PHONE_EMPTY || r == PHONE_ANONYMOUS);
      continue;
    }
    /* What the server normalises is what the Score double knows. */
    if (r != PHONE_OK || strcmp(out, t->numbers[c->number].digits) != 0)
      fail_msg("call %u: '%s' normalises to '%s' (%s), not %s", c->index,
               c->from, out, phone_result_name(r),
               t->numbers[c->number].digits);
    if (c->cls == SIM_LEGIT) {
      legit_numbered++;
      intl += t->numbers[c->number].line == SIM_LINE_LEGIT_INTL;
    }
  }
  assert_near((double)anon[SIM_LEGIT] / t->class_calls[SIM_LEGIT], 0.03, 0.012,
              "anonymous legit calls");
  assert_near((double)anon[SIM_ROBOCALL] / t->class_calls[SIM_ROBOCALL], 0.04,
              0.015, "anonymous robocalls");
  assert_near((double)anon[SIM_FRAUD] / t->class_calls[SIM_FRAUD], 0.10, 0.05,
              "anonymous fraud calls");
  assert_int_equal(anon[SIM_SPOOFED], 0);
  assert_near((double)intl / legit_numbered, 0.08, 0.025,
              "international customers' calls");
  sim_traffic_free(t);
}

static void test_spoofed_and_fraud_numbers(void **state)
{
  struct sim_traffic *t = day(8, 10000);
  unsigned neighbour = 0, customer = 0, fraud_high = 0, fraud_numbered = 0;

  (void)state;
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];
    const struct sim_number *n = c->number >= 0 ? &t->numbers[c->number] : NULL;

    if (c->cls == SIM_SPOOFED) {
      assert_non_null(n);
      /* Someone else's number: a neighbour's or a customer's. */
      assert_int_equal(n->owner, SIM_LEGIT);
      if (n->line == SIM_LINE_NEIGHBOUR) {
        assert_memory_equal(n->digits, SIM_NEIGHBOUR, 7);
        assert_string_not_equal(n->digits, SIM_BUSINESS);
        neighbour++;
      } else {
        assert_true(n->line == SIM_LINE_LEGIT_LOW ||
                    n->line == SIM_LINE_LEGIT_MID ||
                    n->line == SIM_LINE_LEGIT_INTL);
        customer++;
      }
    } else if (c->cls == SIM_FRAUD && n) {
      assert_int_equal(n->owner, SIM_FRAUD);
      fraud_numbered++;
      fraud_high += n->base >= 600;
    }
  }
  assert_near((double)customer / (customer + neighbour), 0.3, 0.06,
              "spoofs of customers' numbers");
  assert_near((double)fraud_high / fraud_numbered, 0.5, 0.15,
              "fraud calls from numbers scoring 600 or more");
  sim_traffic_free(t);
}

static int cmp_int(const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

static void test_score_bands(void **state)
{
  struct sim_traffic *t = day(9, 10000);
  int *v = malloc(sizeof(*v) * t->ncalls);

  (void)state;
  for (int cls = 0; cls < SIM_NCLASS; cls++) {
    size_t n = 0;

    for (uint32_t i = 0; i < t->ncalls; i++)
      if (t->calls[i].cls == cls && t->calls[i].number >= 0)
        v[n++] = t->numbers[t->calls[i].number].base;
    qsort(v, n, sizeof(*v), cmp_int);
    switch (cls) {
    case SIM_LEGIT:
    case SIM_SPOOFED:
      assert_true(v[n / 2] < 300);     /* mostly low */
      assert_true(v[n * 9 / 10] > 350); /* some mid-range */
      break;
    case SIM_ROBOCALL:
      assert_true(v[n / 2] > 650);
      break;
    case SIM_FRAUD:
      assert_true(v[n / 10] > 380 && v[n / 2] > 500);
      break;
    }
  }
  free(v);
  sim_traffic_free(t);
}

/* ---- the run across days ---------------------------------------------- */

static void test_same_seed_same_run(void **state)
{
  struct sim_traffic *a = run(42, 2000, 5);
  struct sim_traffic *b = run(42, 2000, 5);
  struct sim_traffic *c = run(43, 2000, 5);

  (void)state;
  assert_int_equal(a->ncalls, 10000);
  assert_int_equal(a->ncalls, b->ncalls);
  assert_int_equal(a->nnumbers, b->nnumbers);
  assert_int_equal(a->customers, b->customers);
  assert_memory_equal(a->calls, b->calls, sizeof(*a->calls) * a->ncalls);
  assert_memory_equal(a->numbers, b->numbers,
                      sizeof(*a->numbers) * a->nnumbers);
  assert_true(sim_traffic_digest(a) == sim_traffic_digest(b));
  assert_true(sim_traffic_digest(a) != sim_traffic_digest(c));
  sim_traffic_free(a);
  sim_traffic_free(b);
  sim_traffic_free(c);
}

/* The first day of a longer run is the one-day run: the days after it
 * are drawn after it, from their own streams. */
static void test_first_day_is_the_day(void **state)
{
  struct sim_traffic *one = day(12, 3000);
  struct sim_traffic *week = run(12, 3000, 7);

  (void)state;
  assert_int_equal(one->ncalls, 3000);
  assert_int_equal(week->ncalls, 21000);
  assert_int_equal(one->base, week->base);
  for (uint32_t i = 0; i < one->ncalls; i++) {
    const struct sim_call *a = &one->calls[i];
    const struct sim_call *b = &week->calls[i];

    assert_int_equal(a->t_ms, b->t_ms);
    assert_int_equal(a->cls, b->cls);
    assert_int_equal(a->actor, b->actor);
    assert_string_equal(a->from, b->from);
    assert_true(a->seed == b->seed);
  }
  sim_traffic_free(one);
  sim_traffic_free(week);
}

static void test_days_in_order(void **state)
{
  struct sim_traffic *t = run(13, 1000, 4);

  (void)state;
  assert_int_equal(t->days, 4);
  assert_int_equal(t->calls_per_day, 1000);
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    assert_int_equal(c->index, i);
    assert_int_equal(c->day, i / 1000);
    assert_true(c->t_ms >= (int64_t)c->day * SIM_DAY_MS &&
                c->t_ms < (int64_t)(c->day + 1) * SIM_DAY_MS);
    if (i)
      assert_true(c->t_ms >= t->calls[i - 1].t_ms);
  }
  sim_traffic_free(t);
}

/*
 * Customers persist: a customer keeps their number from day to day; many
 * of the last day's customers called on an earlier day; the week's
 * distinct customers are fewer than the days' sum; the base is about the
 * size the default rates imply, and turns over at the churn rate, the
 * newcomers calling too.
 */
static void test_customers_persist(void **state)
{
  struct sim_params p;
  struct sim_traffic *t = run(14, 10000, 7);
  int32_t *number;
  uint8_t *days_called;
  unsigned sum_daily = 0, newcomers_called = 0, last_day = 0, seen_before = 0;
  unsigned several_days = 0, customers = 0;

  (void)state;
  sim_params_default(&p);
  number = malloc(sizeof(*number) * t->customers);
  days_called = calloc(t->customers, 1);
  assert_non_null(number);
  assert_non_null(days_called);
  /* 6,000 customer calls a day at about 1.49 calls a session, each
   * customer calling on about 1 - (1 + 0.25 / 7 / 0.5)^-0.5 = 3.4% of
   * days: a base of about 119,000. */
  assert_near(t->base, 118957, 1000, "the base's size");
  /* 0.1% a day leave and are replaced, on each day after the first. */
  assert_near(t->customers - t->base, 0.001 * t->base * 6, 150,
              "customers who joined during the week");
  for (uint32_t d = 0; d < t->days; d++) {
    uint8_t *today = calloc(t->customers, 1);

    assert_non_null(today);
    for (uint32_t i = d * t->calls_per_day; i < (d + 1) * t->calls_per_day;
         i++) {
      const struct sim_call *c = &t->calls[i];

      if (c->cls != SIM_LEGIT)
        continue;
      assert_true(c->actor < t->customers);
      /* One number per customer, every day (or always withheld). */
      if (days_called[c->actor] || today[c->actor])
        assert_int_equal(number[c->actor], c->number);
      number[c->actor] = c->number;
      if (today[c->actor])
        continue;
      today[c->actor] = 1;
      sum_daily++;
      if (d == t->days - 1) {
        last_day++;
        seen_before += days_called[c->actor] > 0;
      }
      newcomers_called += c->actor >= t->base;
    }
    for (uint32_t a = 0; a < t->customers; a++)
      days_called[a] += today[a];
    free(today);
  }
  for (uint32_t a = 0; a < t->customers; a++) {
    customers += days_called[a] > 0;
    several_days += days_called[a] > 1;
  }
  assert_int_equal(customers, t->actors[SIM_LEGIT]);
  /* About 4,050 customers a day (one session each). */
  assert_near((double)sum_daily / t->days, 4050, 120, "customers a day");
  /* With a customer calling on 3.4% of days on average but the callers
   * weighted to those who call often, about 39% of the seventh day's
   * customers called earlier in the week. */
  assert_near((double)seen_before / last_day, 0.39, 0.05,
              "last day's customers who called before");
  assert_true(customers < sum_daily * 9 / 10);
  assert_true(several_days > customers / 10);
  assert_true(newcomers_called > 0);
  free(number);
  free(days_called);
  sim_traffic_free(t);
}

/* More calling days a week: more of a day's customers called before. */
static void test_calling_rate_matters(void **state)
{
  struct sim_params p;
  double share[2];
  const double rates[2] = {0.05, 1.0};
  char err[256];

  (void)state;
  for (int k = 0; k < 2; k++) {
    struct sim_traffic *t;
    uint8_t *called;
    unsigned last = 0, before = 0;

    sim_params_default(&p);
    p.calls = 2000;
    p.days = 5;
    p.legit_days_per_week = rates[k];
    assert_int_equal(sim_generate(&p, 15, &t, err, sizeof(err)), 0);
    called = calloc(t->customers, 1);
    assert_non_null(called);
    for (uint32_t i = 0; i < t->ncalls; i++) {
      const struct sim_call *c = &t->calls[i];

      if (c->cls != SIM_LEGIT)
        continue;
      if (c->day == t->days - 1 && called[c->actor] != 2) {
        last++;
        before += called[c->actor] == 1;
        called[c->actor] = 2;
      } else if (c->day < t->days - 1) {
        called[c->actor] = 1;
      }
    }
    share[k] = (double)before / last;
    free(called);
    sim_traffic_free(t);
  }
  assert_true(share[0] < 0.10);
  assert_true(share[1] > 0.50);
}

/*
 * Robocall campaigns, spoofers and fraudsters are the day's: an actor's
 * calls all fall on one day; some campaigns after the first day dial
 * from a block an earlier day's campaign used, about the configured
 * share, and none when the share is 0.
 */
static void reused_blocks(double reuse, unsigned *campaigns, unsigned *reused)
{
  struct sim_params p;
  struct sim_traffic *t;
  char err[256];
  uint16_t *first_day;
  char(*prefix)[8];

  sim_params_default(&p);
  p.days = 6;
  p.robo_prefix_reuse = reuse;
  assert_int_equal(sim_generate(&p, 16, &t, err, sizeof(err)), 0);
  first_day = malloc(sizeof(*first_day) * t->actors[SIM_ROBOCALL]);
  prefix = calloc(t->actors[SIM_ROBOCALL], sizeof(*prefix));
  assert_non_null(first_day);
  assert_non_null(prefix);
  for (uint32_t a = 0; a < t->actors[SIM_ROBOCALL]; a++)
    first_day[a] = UINT16_MAX;
  for (int cls = SIM_ROBOCALL; cls < SIM_NCLASS; cls++) {
    uint16_t *seen = malloc(sizeof(*seen) * (t->actors[cls] + 1));

    assert_non_null(seen);
    for (uint32_t a = 0; a <= t->actors[cls]; a++)
      seen[a] = UINT16_MAX;
    for (uint32_t i = 0; i < t->ncalls; i++) {
      const struct sim_call *c = &t->calls[i];

      if (c->cls != cls)
        continue;
      assert_true(c->actor < t->actors[cls]);
      if (seen[c->actor] != UINT16_MAX)
        assert_int_equal(seen[c->actor], c->day);
      seen[c->actor] = c->day;
    }
    free(seen);
  }
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];

    if (c->cls != SIM_ROBOCALL || c->number < 0 || prefix[c->actor][0])
      continue;
    memcpy(prefix[c->actor], t->numbers[c->number].digits, 7);
    first_day[c->actor] = c->day;
  }
  *campaigns = *reused = 0;
  for (uint32_t a = 0; a < t->actors[SIM_ROBOCALL]; a++) {
    if (!prefix[a][0] || first_day[a] == 0)
      continue;
    ++*campaigns;
    for (uint32_t b = 0; b < t->actors[SIM_ROBOCALL]; b++)
      if (prefix[b][0] && first_day[b] < first_day[a] &&
          memcmp(prefix[a], prefix[b], 7) == 0) {
        ++*reused;
        break;
      }
  }
  free(first_day);
  free(prefix);
  sim_traffic_free(t);
}

static void test_campaigns_are_the_days(void **state)
{
  unsigned campaigns, reused;

  (void)state;
  reused_blocks(0.25, &campaigns, &reused);
  assert_true(campaigns > 50);
  assert_near((double)reused / campaigns, 0.25, 0.12,
              "campaigns back on an earlier day's block");
  reused_blocks(0, &campaigns, &reused);
  assert_int_equal(reused, 0);
}

static void test_gamma(void **state)
{
  struct sim_rng r;
  const double shapes[3] = {0.5, 1, 3};

  (void)state;
  sim_rng_seed(&r, 99);
  for (int k = 0; k < 3; k++) {
    double sum = 0, sq = 0;
    const int n = 200000;

    for (int i = 0; i < n; i++) {
      double x = sim_rng_gamma(&r, shapes[k], 2);

      assert_true(x >= 0);
      sum += x;
      sq += x * x;
    }
    /* Mean shape * scale, variance shape * scale^2. */
    assert_near(sum / n, shapes[k] * 2, 0.03 * shapes[k] * 2, "gamma mean");
    assert_near(sq / n - (sum / n) * (sum / n), shapes[k] * 4,
                0.06 * shapes[k] * 4, "gamma variance");
  }
}

/* ---- the Score API and the callers ------------------------------------ */

static void test_lookups(void **state)
{
  struct sim_traffic *t = day(10, 2000);
  struct sim_traffic *u = day(10, 2000);
  unsigned failed = 0, hung = 0, moved = 0, total = 0;
  double lat[4000];
  size_t nl = 0;

  (void)state;
  for (uint32_t n = 0; n < t->nnumbers && n < 2000; n++) {
    for (uint32_t k = 0; k < 10; k++) {
      struct sim_lookup a, b;

      sim_lookup(t, t->numbers[n].digits, k, &a);
      sim_lookup(u, u->numbers[n].digits, k, &b);
      /* (seed, number, n-th lookup) and nothing else. */
      assert_memory_equal(&a, &b, sizeof(a));
      assert_true(a.known);
      assert_true(a.score >= 0 && a.score <= 1000);
      total++;
      failed += a.kind != SIM_LOOKUP_OK;
      hung += a.kind == SIM_LOOKUP_HANG;
      if (k) {
        struct sim_lookup first;

        sim_lookup(t, t->numbers[n].digits, 0, &first);
        moved += first.score != a.score;
      }
      if (k == 0 && nl < sizeof(lat) / sizeof(lat[0]))
        lat[nl++] = a.latency_ms;
    }
  }
  assert_near((double)failed / total, 0.01, 0.003, "lookup failure rate");
  assert_near((double)hung / failed, 0.5, 0.15, "share of failures hanging");
  assert_true(moved > total / 2); /* the noise moves scores between lookups */
  {
    size_t below = 0;

    for (size_t i = 0; i < nl; i++)
      below += lat[i] < 120;
    assert_near((double)below / nl, 0.5, 0.04, "latency below its median");
  }
  /* A number the day does not know is still answered, consistently. */
  {
    struct sim_lookup a, b;

    sim_lookup(t, "19999999999", 3, &a);
    sim_lookup(t, "19999999999", 3, &b);
    assert_false(a.known);
    assert_int_equal(a.score, b.score);
  }
  sim_traffic_free(t);
  sim_traffic_free(u);
}

static void test_callers(void **state)
{
  struct sim_traffic *t = day(11, 10000);
  unsigned tried[SIM_NCLASS] = {0}, solved[SIM_NCLASS] = {0};

  (void)state;
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];
    struct sim_caller a, b;
    char ka, kb;

    sim_caller_init(&a, t, c);
    sim_caller_init(&b, t, c);
    ka = sim_caller_challenge(&a, '7');
    kb = sim_caller_challenge(&b, '7');
    /* The same call keys the same, whatever digit it is asked for. */
    assert_int_equal(ka, kb);
    sim_caller_init(&b, t, c);
    kb = sim_caller_challenge(&b, '3');
    assert_int_equal(ka == '7', kb == '3');
    tried[c->cls]++;
    solved[c->cls] += ka == '7';
    ka = sim_caller_menu(&a, 3);
    assert_true(ka == 0 || (ka >= '0' && ka <= '9'));
    assert_true(sim_caller_duration(&a, 1) >= 1);
  }
  assert_near((double)solved[SIM_LEGIT] / tried[SIM_LEGIT], 0.95, 0.015,
              "customers keying the digit");
  assert_near((double)solved[SIM_ROBOCALL] / tried[SIM_ROBOCALL], 0.02, 0.01,
              "robocalls keying the digit");
  assert_near((double)solved[SIM_FRAUD] / tried[SIM_FRAUD], 0.98, 0.03,
              "fraudsters keying the digit");
  sim_traffic_free(t);
}

static void test_params_checked(void **state)
{
  struct sim_params p;
  struct sim_traffic *t = NULL;
  char err[256];

  (void)state;
  sim_params_default(&p);
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), 0);
  p.mix[SIM_LEGIT] = 0.7;
  assert_int_equal(sim_generate(&p, 1, &t, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "mix"));
  assert_null(t);
  sim_params_default(&p);
  p.score_failure_rate = 1.5;
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "score_failure_rate"));
  assert_int_equal(sim_class_parse("robocalls"), SIM_ROBOCALL);
  assert_int_equal(sim_class_parse("nobody"), -1);
  sim_params_default(&p);
  assert_int_equal(p.days, 35);
  p.days = 0;
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "days"));
  p.days = 366;
  p.calls = 20000;
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), -1);
  sim_params_default(&p);
  p.legit_days_per_week = 0;
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "legit_days_per_week"));
  sim_params_default(&p);
  p.robo_prefix_reuse = 2;
  assert_int_equal(sim_params_check(&p, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "robo_prefix_reuse"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_seed_same_day),
      cmocka_unit_test(test_other_seed_other_day),
      cmocka_unit_test(test_classes_have_own_streams),
      cmocka_unit_test(test_order_and_bounds),
      cmocka_unit_test(test_class_proportions),
      cmocka_unit_test(test_robocall_campaigns),
      cmocka_unit_test(test_legit_callbacks),
      cmocka_unit_test(test_anonymous_and_international),
      cmocka_unit_test(test_spoofed_and_fraud_numbers),
      cmocka_unit_test(test_score_bands),
      cmocka_unit_test(test_same_seed_same_run),
      cmocka_unit_test(test_first_day_is_the_day),
      cmocka_unit_test(test_days_in_order),
      cmocka_unit_test(test_customers_persist),
      cmocka_unit_test(test_calling_rate_matters),
      cmocka_unit_test(test_campaigns_are_the_days),
      cmocka_unit_test(test_gamma),
      cmocka_unit_test(test_lookups),
      cmocka_unit_test(test_callers),
      cmocka_unit_test(test_params_checked),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
