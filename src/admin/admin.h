/*
 * The admin listener: the JSON API (api.h), the dashboard (assets.h) and
 * /metrics (metrics.h) on admin.listen, an httpd of its own so that none
 * of it is ever reachable on the webhook's port. With admin.token set,
 * the API and /metrics need "Authorization: Bearer <token>" (compared in
 * constant time); the config refuses a non-loopback address without one.
 * docs/admin-api.md is the reference.
 *
 * The admin and its requests belong to the loop thread.
 */
#ifndef VS_ADMIN_ADMIN_H
#define VS_ADMIN_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

struct loop;
struct store;
struct screening;
struct score_client;
struct webhook;
struct admin;

/* What the admin reads and edits; all borrowed, must outlive it. */
struct admin_sources {
  struct store *store;
  struct screening *screening;
  struct score_client *scores;
  struct webhook *webhook;
};

/*
 * Starts listening on cfg->admin.listen (which must not be ""). `cfg`
 * and `src` are borrowed. Returns 0 or a negative vs_err code with the
 * reason in `err`.
 */
int admin_create(struct loop *loop, const struct config *cfg,
                 const struct admin_sources *src, struct admin **out,
                 char *err, size_t errlen);

/* A reload: the token and list defaults take it from the next request. */
void admin_set_config(struct admin *a, const struct config *cfg);

/* The port actually bound (useful with port 0). */
uint16_t admin_port(const struct admin *a);

/* Stops listening and frees; requests waiting are answered 503. NULL ok. */
void admin_destroy(struct admin *a);

#endif
