/*
 * A latency histogram with fixed buckets, for /metrics: cumulative
 * Prometheus buckets are derived when it is rendered, so observing costs
 * one comparison per bucket and no allocation.
 *
 * A histogram is a plain struct owned by the module that observes into it
 * and touched by that module's thread only (the loop's, for all of ours).
 */
#ifndef VS_UTIL_HISTOGRAM_H
#define VS_UTIL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds in ms: 1 ms to 5 s, enough to tell a cache hit from a slow
 * Score API from a timeout. */
#define HISTOGRAM_BUCKETS 12
extern const double histogram_bounds_ms[HISTOGRAM_BUCKETS];

struct histogram {
  uint64_t counts[HISTOGRAM_BUCKETS + 1]; /* per bucket; last is +Inf */
  uint64_t count;
  double sum_ms;
};

/* Counts one observation of `ms` milliseconds (negative counts as 0). */
void histogram_observe(struct histogram *h, double ms);

#endif
