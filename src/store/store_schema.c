/* The column table of store_schema.h. */
#include <stddef.h>

#include "call.h"
#include "store_schema.h"

#define TEXT_COL(c, field)                                                    \
  {                                                                           \
    (c), offsetof(struct call, field), sizeof(((struct call *)0)->field)      \
  }

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
