/*
 * The traffic model of the screening-efficacy simulator: a seeded,
 * documented generator of a run of days of inbound calls to one business
 * line (a week by default), with the ground truth of every caller, and the
 * model's answers to everything the simulator is asked while it plays the
 * run (a Score lookup's score, failure and latency; what a caller presses
 * at a challenge or at the menu).
 *
 * Customers persist across the days: a customer base whose members each
 * call on a day with their own probability, some leaving and new ones
 * joining every day. Robocall campaigns, spoofers and fraudsters are drawn
 * afresh each day (a campaign may come back to a number block it used on
 * an earlier day).
 *
 * Everything is a pure function of the seed and the parameters, with its
 * own PRNG (splitmix64 to seed, xoshiro256** to draw); rand() and the
 * clock are never used, so a seed gives the same run on every machine.
 *
 *   - sim_generate() draws the run: callers (customers, robocall
 *     campaigns, spoofers, fraudsters), their numbers, and their calls in
 *     time order, day after day.
 *   - sim_lookup() is the Score API's answer for (number, n-th lookup of
 *     it): it depends only on (seed, number, n), never on arrival order.
 *   - struct sim_caller draws a caller's behaviour for one call from a
 *     PRNG seeded by (seed, call index), again independent of timing.
 *
 * The model and every default are described, with reasons, in
 * docs/screening-efficacy.md and sim/README.md. This file decides
 * nothing about screening: the server does.
 */
#ifndef VS_SIM_MODEL_H
#define VS_SIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* ---- PRNG ------------------------------------------------------------ */

/* xoshiro256**, seeded through splitmix64. */
struct sim_rng {
  uint64_t s[4];
};

uint64_t sim_splitmix64(uint64_t *state);
/* A 64-bit mix of two values (for per-call and per-lookup streams). */
uint64_t sim_hash2(uint64_t a, uint64_t b);
/* 64-bit FNV-1a of a string, for hashing phone numbers. */
uint64_t sim_hash_str(const char *s);

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_uniform(struct sim_rng *r);
/* Uniform integer in [0, n) (n > 0), without modulo bias. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
double sim_rng_normal(struct sim_rng *r);
/* Lognormal with the given median and sigma (of the underlying normal). */
double sim_rng_lognormal(struct sim_rng *r, double median, double sigma);
/* 1 with probability p. */
int sim_rng_chance(struct sim_rng *r, double p);
/* Poisson with mean `mean` (Knuth's method; small means only). */
unsigned sim_rng_poisson(struct sim_rng *r, double mean);
/* Gamma with this shape (> 0) and scale (Marsaglia and Tsang; a shape
 * below 1 through the shape + 1 draw times U^(1/shape)). */
double sim_rng_gamma(struct sim_rng *r, double shape, double scale);

/* ---- parameters ------------------------------------------------------ */

/* Ground truth: who is really calling. */
enum sim_class {
  SIM_LEGIT = 0, /* a customer (or anyone the business wants to hear) */
  SIM_ROBOCALL,  /* an autodialer campaign calling from its own numbers */
  SIM_SPOOFED,   /* an autodialer showing a neighbour's or a customer's
                    number (so the number scores low) */
  SIM_FRAUD,     /* a targeted fraudster: a human, who passes challenges */
  SIM_NCLASS
};

const char *sim_class_name(enum sim_class c); /* "legit", "robocall", ... */
/* The class for a name (or its plural, "robocalls"); -1 if unknown. */
int sim_class_parse(const char *name);

/*
 * Every parameter of the model, with its default in sim_params_default()
 * and its reason in docs/screening-efficacy.md. Probabilities are 0..1.
 */
struct sim_params {
  uint32_t calls;            /* calls a day (default 10000) */
  uint32_t days;             /* days in the run (default 7) */
  double mix[SIM_NCLASS];    /* share of calls per class (sums to 1) */

  /* Legitimate callers: a customer base that persists across the days.
   * Each customer calls on a given day with their own probability
   * 1 - exp(-rate), the rate (calling days a day) drawn once from a gamma
   * distribution (the NBD model of repeat behaviour); the day's calling
   * customers are drawn from the base in proportion to it until the day's
   * legitimate share is filled. */
  uint32_t legit_customers;   /* the base's size; 0 (the default): sized
                                 so that its calling days fill the share */
  double legit_days_per_week; /* mean calling days a week per customer:
                                 0.25, about once a month */
  double legit_rate_shape;    /* the gamma's shape: 0.5 (most customers
                                 call rarely, a few often) */
  double legit_churn;         /* a customer stops calling, replaced by a
                                 new one, per day: 0.001 (about 30% a
                                 year) */
  /* A customer's day is a "session": the first call and the customer's
   * call-backs later the same day. */
  double legit_callback;      /* a customer calls back later today: 0.25 */
  double legit_callback_more; /* after a call-back, one more: 0.4 */
  double legit_callback_gap_min; /* median minutes before a call-back: 45 */
  double legit_redial;        /* a call is redialled within 20-90 s: 0.05 */
  double legit_anonymous;     /* customers who withhold their number: 0.03 */
  double legit_international; /* customers with a foreign number: 0.08 */
  double legit_mid;           /* domestic numbers in the mid range: 0.15 */
  double legit_solve;         /* a challenge try keyed right: 0.95 */

  /* Robocall campaigns: bursts of calls from a pool of numbers sharing
   * one NPA-NXX prefix; a number redials a few minutes later. */
  double robo_campaign_calls; /* median calls per campaign: 150 */
  double robo_calls_per_number; /* pool size = calls / this: 4 */
  double robo_redial;         /* a call is followed by a redial: 0.4 */
  double robo_fresh;          /* campaigns on numbers Score does not know
                                 yet (mid-range scores): 0.3 */
  double robo_anonymous;      /* calls with no caller ID: 0.04 */
  double robo_prefix_reuse;   /* a campaign after the first day dials from
                                 a number block (NPA-NXX) an earlier day's
                                 campaign used: 0.25 */
  double bot_solve;           /* a bot keys the challenge digit: 0.02 */

  /* Spoofed caller ID: autodialer bursts showing a number that is not
   * theirs: a neighbour's (same NPA-NXX as the business) or a real
   * customer's. The number scores as its real owner does. */
  double spoof_campaign_calls; /* median calls per spoofing campaign: 60 */
  double spoof_customer;       /* the number shown is a customer's: 0.3 */

  /* Targeted fraudsters: humans calling a few times from one or two
   * VOIP/prepaid numbers. */
  double fraud_calls;    /* mean calls per fraudster: 2.5 */
  double fraud_high;     /* fraudsters whose numbers score high: 0.5 */
  double fraud_two_numbers; /* fraudsters using two numbers: 0.3 */
  double fraud_anonymous;   /* calls with the number withheld: 0.1 */
  double fraud_solve;       /* a challenge try keyed right: 0.98 */

  /* The Score API. */
  double score_noise;        /* sd of a lookup's score around the
                                number's own: 25 */
  double score_failure_rate; /* lookups that fail: 0.01 */
  double score_hang_share;   /* of those, hang past the timeout (the rest
                                answer HTTP 503): 0.5 */
  double score_latency_ms;   /* median latency of an answer: 120 */
  double score_latency_sigma; /* lognormal sigma of the latency: 0.35 */
};

void sim_params_default(struct sim_params *p);

/*
 * Checks the parameters; returns 0, or -1 with the reason in `err` (mix
 * not summing to 1, a probability outside 0..1, ...).
 */
int sim_params_check(const struct sim_params *p, char *err, size_t errlen);

/* ---- the run's traffic ---------------------------------------------- */

#define SIM_DAY_MS        86400000LL
#define SIM_MAX_DAYS      366
#define SIM_MAX_CALLS     4000000       /* calls in a whole run */
#define SIM_BUSINESS      "15555550100" /* the number called */
#define SIM_NEIGHBOUR     "1555555"     /* its NPA-NXX, for neighbour spoofs */
#define SIM_NUMBER_SIZE   17
#define SIM_FROM_SIZE     24

/* What kind of line a number is, for its score and phone_type. */
enum sim_line {
  SIM_LINE_LEGIT_LOW = 0, /* a customer's ordinary mobile or fixed line */
  SIM_LINE_LEGIT_MID,     /* a customer's VOIP, prepaid or new number */
  SIM_LINE_LEGIT_INTL,    /* a customer's foreign number */
  SIM_LINE_NEIGHBOUR,     /* someone near the business (spoofed) */
  SIM_LINE_ROBO_KNOWN,    /* a campaign number Score already knows */
  SIM_LINE_ROBO_FRESH,    /* a campaign number new to Score */
  SIM_LINE_FRAUD_HIGH,    /* a fraudster's burnt VOIP number */
  SIM_LINE_FRAUD_MID,     /* a fraudster's fresh prepaid number */
  SIM_NLINE
};

const char *sim_line_name(enum sim_line l);

struct sim_number {
  char digits[SIM_NUMBER_SIZE]; /* digits-only E.164 */
  uint8_t cc_len;               /* digits of the country code */
  uint8_t line;                 /* enum sim_line */
  uint8_t owner;                /* enum sim_class of its real owner */
  int16_t base;                 /* the number's own score, 0..1000 */
};

struct sim_call {
  uint32_t index;  /* position in the run, 0-based, time order */
  int64_t t_ms;    /* arrival, ms since the start of the run (day 0,
                      00:00) */
  uint16_t day;    /* t_ms / SIM_DAY_MS */
  uint8_t cls;     /* enum sim_class: ground truth */
  uint32_t actor;  /* the caller: customer, campaign or fraudster id,
                      unique within the class over the whole run (a
                      customer keeps theirs from day to day) */
  int32_t number;  /* index into numbers, or -1 for no caller ID */
  char from[SIM_FROM_SIZE]; /* data.from as TeleSign would send it */
  uint64_t seed;   /* seeds this call's behaviour (struct sim_caller) */
};

struct sim_traffic {
  uint64_t seed;
  struct sim_params params;
  struct sim_call *calls; /* day d is calls[d * calls_per_day ...] */
  uint32_t ncalls;        /* days * calls_per_day */
  uint32_t days;
  uint32_t calls_per_day;
  struct sim_number *numbers;
  uint32_t nnumbers;
  uint32_t actors[SIM_NCLASS]; /* distinct callers per class that
                                  called in the run */
  uint32_t class_calls[SIM_NCLASS];
  uint32_t base;      /* the customer base's size (constant: each
                         customer who leaves is replaced) */
  uint32_t customers; /* customers ever in the base: the first day's
                         and those who joined later */
  /* private: digits -> number index */
  int32_t *index;
  uint32_t index_cap;
};

/*
 * Draws the run for `seed`. Returns 0 and a traffic the caller frees with
 * sim_traffic_free(), or -1 with the reason in `err`.
 */
int sim_generate(const struct sim_params *p, uint64_t seed,
                 struct sim_traffic **out, char *err, size_t errlen);
void sim_traffic_free(struct sim_traffic *t);

/* The number with these digits, or -1. */
int32_t sim_number_find(const struct sim_traffic *t, const char *digits);

/* A 64-bit digest of the whole run (every call and number), to compare. */
uint64_t sim_traffic_digest(const struct sim_traffic *t);

/* ---- the Score API's answers ----------------------------------------- */

enum sim_outcome_kind {
  SIM_LOOKUP_OK = 0,
  SIM_LOOKUP_UNAVAILABLE, /* HTTP 503 */
  SIM_LOOKUP_HANG         /* no answer before the client gives up */
};

struct sim_lookup {
  enum sim_outcome_kind kind;
  int score;          /* 0..1000, for SIM_LOOKUP_OK */
  double latency_ms;  /* how long before the answer */
  enum sim_line line; /* for phone_type */
  int known;          /* the number is one of the run's */
  uint64_t ref;       /* for the answer's reference_id */
};

/*
 * The answer to the `nth` (0-based) lookup of `digits`: a function of
 * (seed, digits, nth) only. A number the run does not know (which the
 * simulator never sends) scores as a customer's ordinary line would.
 */
void sim_lookup(const struct sim_traffic *t, const char *digits, uint32_t nth,
                struct sim_lookup *out);

/* TeleSign's example decision matrix: level and recommendation. */
const char *sim_risk_level(int score);
const char *sim_recommendation(int score);

/* ---- callers' behaviour ---------------------------------------------- */

struct sim_caller {
  struct sim_rng rng;
  const struct sim_params *p;
  enum sim_class cls;
  unsigned menu_prompts; /* menu prompts heard so far */
  int bot_presses_at_menu;
};

void sim_caller_init(struct sim_caller *c, const struct sim_traffic *t,
                     const struct sim_call *call);

/*
 * What the caller keys when told "press <asked>": the digit, another
 * digit, or nothing (0).
 */
char sim_caller_challenge(struct sim_caller *c, char asked);

/*
 * What the caller keys at the menu, whose valid keys are '1'..'0'+nopts:
 * a key, or nothing (0).
 */
char sim_caller_menu(struct sim_caller *c, unsigned nopts);

/* dial_completed status for the department's leg: "answered", ... */
const char *sim_caller_dial_status(struct sim_caller *c);

/* call_completed duration in seconds, given how far the call got. */
int sim_caller_duration(struct sim_caller *c, int connected);

#endif
