/*
 * Call records and list entries as JSON objects: one shape for the
 * `calls --format json` command and the admin API (docs/admin-api.md
 * lists the fields).
 */
#ifndef VS_STORE_CALL_JSON_H
#define VS_STORE_CALL_JSON_H

#include <jansson.h>

#include "call.h"
#include "records.h"

/* A new object (the caller owns the reference), or NULL out of memory. */
json_t *call_to_json(const struct call *c);
json_t *list_entry_to_json(const struct list_entry *e);

#endif
