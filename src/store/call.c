#include <stddef.h>
#include <string.h>

#include "call.h"

static const char *const step_names[] = {
    "new",       "menu",        "blocking", "goodbye", "dialling",
    "connected", "unavailable", "hungup",   "ended",   "challenge"};

static const char *const decision_names[] = {"none", "allow", "block",
                                             "challenge"};

void call_init(struct call *c, const char *ref)
{
  memset(c, 0, sizeof(*c));
  CALL_SET(c->ref, ref);
  c->score = -1;
  c->score_ms = -1;
  c->duration_s = -1;
}

void call_set(char *dst, size_t size, const char *src)
{
  size_t n = src ? strlen(src) : 0;

  if (n >= size)
    n = size - 1;
  memcpy(dst, src ? src : "", n);
  dst[n] = '\0';
}

static int name_index(const char *const *names, size_t count, const char *s)
{
  for (size_t i = 0; i < count; i++)
    if (strcmp(names[i], s) == 0)
      return (int)i;
  return -1;
}

const char *call_step_name(enum call_step s)
{
  return (size_t)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s]
                                                                : "unknown";
}

const char *call_decision_name(enum call_decision d)
{
  return (size_t)d < sizeof(decision_names) / sizeof(decision_names[0])
             ? decision_names[d]
             : "unknown";
}

int call_step_parse(const char *s)
{
  return name_index(step_names, sizeof(step_names) / sizeof(step_names[0]), s);
}

int call_decision_parse(const char *s)
{
  return name_index(decision_names,
                    sizeof(decision_names) / sizeof(decision_names[0]), s);
}
