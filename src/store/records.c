/*
 * Names and initial values of the records in records.h. The kind names are
 * also the values of the `kind` column of table `lists`, whose CHECK
 * constraint lists them again: a new kind needs a migration as well.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "records.h"

static const char *const kind_names[] = {"allow", "block"};

#define KIND_COUNT (sizeof(kind_names) / sizeof(kind_names[0]))

const char *list_kind_name(enum list_kind k)
{
  return (size_t)k < KIND_COUNT ? kind_names[k] : "unknown";
}

int list_kind_parse(const char *s)
{
  if (!s)
    return -1;
  for (size_t i = 0; i < KIND_COUNT; i++)
    if (strcmp(kind_names[i], s) == 0)
      return (int)i;
  return -1;
}

void number_record_init(struct number_record *r, const char *number)
{
  memset(r, 0, sizeof(*r));
  CALL_SET(r->number, number);
  r->score = -1;
}

void list_entry_note_failures(struct list_entry *e, uint32_t failures)
{
  snprintf(e->note, sizeof(e->note), "failed %u challenges", failures);
}
