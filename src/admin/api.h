/*
 * The admin JSON API: /api/calls, /api/calls/{ref}, /api/stats and
 * /api/lists (docs/admin-api.md). Private to src/admin: admin.c routes
 * every /api/ request here after checking the token.
 *
 * Loop thread only.
 */
#ifndef VS_ADMIN_API_H
#define VS_ADMIN_API_H

#include "../http/httpd.h"

struct loop;
struct config;
struct store;
struct screening;

/* What the handlers read; borrowed from the admin. */
struct api_context {
  struct loop *loop;
  const struct config *cfg;
  struct store *store;
  struct screening *screening;
};

/* Answers `rq`, whose path starts with /api/, now or later. */
void api_handle(const struct api_context *ctx, struct httpd_request *rq);

#endif
