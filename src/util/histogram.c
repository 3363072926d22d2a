/* Latency histograms (see histogram.h). */
#include "histogram.h"

const double histogram_bounds_ms[HISTOGRAM_BUCKETS] = {
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

void histogram_observe(struct histogram *h, double ms)
{
  size_t i = 0;

  if (ms < 0)
    ms = 0;
  while (i < HISTOGRAM_BUCKETS && ms > histogram_bounds_ms[i])
    i++;
  h->counts[i]++;
  h->count++;
  h->sum_ms += ms;
}
