/* The column table of store_schema.h. */
#include <stddef.h>
#include <string.h>

#include "call.h"
#include "store_schema.h"

#define TEXT_COL(c, field)                                                    \
  {                                                                           \
    (c), offsetof(struct call, field), sizeof(((struct call *)0)->field)      \
  }

/* ref stays first: call_packed_ref finds it right after the plain bytes. */
const struct text_col call_text_cols[CALL_TEXT_COLS] = {
    TEXT_COL(COL_REF, ref),
    TEXT_COL(COL_CALLER_RAW, caller_raw),
    TEXT_COL(COL_CALLER, caller),
    TEXT_COL(COL_TO, to),
    TEXT_COL(COL_REASON, reason),
    TEXT_COL(COL_RISK_LEVEL, risk_level),
    TEXT_COL(COL_RECOMMENDATION, recommendation),
    TEXT_COL(COL_PHONE_TYPE, phone_type),
    TEXT_COL(COL_SCORE_REF, score_ref),
    TEXT_COL(COL_SCORE_ERROR, score_error),
    TEXT_COL(COL_DIGITS, digits),
    TEXT_COL(COL_DEPARTMENT, department),
    TEXT_COL(COL_DIALLED, dialled),
    TEXT_COL(COL_DIAL_STATUS, dial_status),
    TEXT_COL(COL_STATUS, status),
    TEXT_COL(COL_TRACE, trace),
    TEXT_COL(COL_POLICY_VERSION, policy_version),
    TEXT_COL(COL_SCORE_SOURCE, score_source),
    TEXT_COL(COL_CHALLENGE_DIGIT, challenge_digit),
    TEXT_COL(COL_CHALLENGE_RESULT, challenge_result)};

_Static_assert(CALL_TEXT_COLS + 12 == COL_COUNT,
               "every column of calls is bound and read");

void call_layout_init(struct call_layout *l)
{
  size_t order[CALL_TEXT_COLS];
  size_t pos = 0;

  /* The text fields by address (insertion sort: twenty of them, once). */
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    size_t j = i;

    while (j && call_text_cols[order[j - 1]].off > call_text_cols[i].off) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  memset(l, 0, sizeof(*l));
  for (size_t i = 0; i <= CALL_TEXT_COLS; i++) {
    size_t end = i < CALL_TEXT_COLS ? call_text_cols[order[i]].off
                                    : sizeof(struct call);

    if (end > pos) {
      l->plain[l->nplain].off = pos;
      l->plain[l->nplain].len = end - pos;
      l->plain_bytes += end - pos;
      l->nplain++;
    }
    if (i < CALL_TEXT_COLS)
      pos = end + call_text_cols[order[i]].size;
  }
}

/* A text field's length, cut to leave room for its NUL. */
static size_t text_len(const struct call *c, const struct text_col *t)
{
  return strnlen((const char *)c + t->off, t->size - 1);
}

size_t call_packed_size(const struct call_layout *l, const struct call *c)
{
  size_t n = l->plain_bytes;

  for (size_t i = 0; i < CALL_TEXT_COLS; i++)
    n += text_len(c, &call_text_cols[i]) + 1;
  return n;
}

void call_pack(const struct call_layout *l, const struct call *c,
               unsigned char *out)
{
  const unsigned char *from = (const unsigned char *)c;

  for (size_t i = 0; i < l->nplain; i++) {
    memcpy(out, from + l->plain[i].off, l->plain[i].len);
    out += l->plain[i].len;
  }
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    size_t n = text_len(c, &call_text_cols[i]);

    memcpy(out, from + call_text_cols[i].off, n);
    out[n] = '\0';
    out += n + 1;
  }
}

void call_unpack(const struct call_layout *l, const unsigned char *in,
                 struct call *c)
{
  unsigned char *to = (unsigned char *)c;

  /* What follows a text field's NUL in its array stays zero, as it is in
   * a record made by call_init. */
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; i < l->nplain; i++) {
    memcpy(to + l->plain[i].off, in, l->plain[i].len);
    in += l->plain[i].len;
  }
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    size_t n = strlen((const char *)in);

    memcpy(to + call_text_cols[i].off, in, n);
    in += n + 1;
  }
}

int call_packed_valid(const struct call_layout *l, const unsigned char *in,
                      size_t len)
{
  size_t pos = l->plain_bytes;

  if (len <= pos)
    return 0;
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    const unsigned char *nul = memchr(in + pos, '\0', len - pos);
    size_t n;

    if (!nul)
      return 0;
    n = (size_t)(nul - (in + pos));
    if (n >= call_text_cols[i].size ||
        (call_text_cols[i].col == COL_REF && !n))
      return 0;
    pos += n + 1;
  }
  return pos == len;
}

const char *call_packed_ref(const struct call_layout *l,
                            const unsigned char *in)
{
  return (const char *)in + l->plain_bytes;
}
