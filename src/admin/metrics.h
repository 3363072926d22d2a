/*
 * /metrics: the Prometheus text exposition (format 0.0.4) of what the
 * modules count. Each module keeps its own counters (webhook_stats,
 * score_stats, screening_stats, store_stats); this file only renders a
 * snapshot of them, so counting costs the hot paths an increment and
 * nothing else. docs/admin-api.md lists the families.
 */
#ifndef VS_ADMIN_METRICS_H
#define VS_ADMIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../http/webhook.h"
#include "../screen/screening.h"
#include "../store/store.h"
#include "../telesign/score.h"
#include "../util/buf.h"

/* A snapshot of everything rendered; every pointer is borrowed. */
struct metrics_snapshot {
  int64_t start_time_s;
  const struct webhook_stats *webhook;
  size_t requests_in_flight;
  const struct score_stats *score;
  int breaker_open;
  const struct screening_stats *screening;
  struct store_stats store;
  size_t store_queue_depth;
  int store_healthy;
};

/* Appends the exposition to `out`; returns 0 or the buf's error. */
int metrics_render(const struct metrics_snapshot *m, struct buf *out);

#endif
