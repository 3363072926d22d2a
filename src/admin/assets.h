/*
 * The dashboard's files, embedded in the binary at build time by
 * scripts/embed_assets.py from src/admin/dashboard/. Read-only data, any
 * thread.
 */
#ifndef VS_ADMIN_ASSETS_H
#define VS_ADMIN_ASSETS_H

#include <stddef.h>

struct admin_asset {
  const char *path; /* "/index.html" */
  const char *content_type;
  const unsigned char *data;
  size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct admin_asset admin_assets[];

#endif
