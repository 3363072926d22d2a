#include <stdio.h>

#include "decide.h"

static enum call_decision error_verdict(const struct config *cfg)
{
  return cfg->screening.on_score_error == ON_ERROR_BLOCK ? CALL_DECISION_BLOCK
                                                         : CALL_DECISION_ALLOW;
}

void decide_on_score(const struct config *cfg, const struct score_result *res,
                     struct decision *out)
{
  uint32_t at = cfg->screening.block_at;

  if (res->failure != SCORE_OK) {
    out->verdict = error_verdict(cfg);
    snprintf(out->reason, sizeof(out->reason), "score_error:%s->%s",
             res->error[0] ? res->error : score_failure_name(res->failure),
             call_decision_name(out->verdict));
    return;
  }
  if (res->score >= 0 && (uint32_t)res->score >= at) {
    out->verdict = CALL_DECISION_BLOCK;
    snprintf(out->reason, sizeof(out->reason), "score:%d>=%u", res->score, at);
  } else {
    out->verdict = CALL_DECISION_ALLOW;
    snprintf(out->reason, sizeof(out->reason), "score:%d<%u", res->score, at);
  }
}

void decide_unscorable(const struct config *cfg, enum phone_result why,
                       struct decision *out)
{
  out->verdict = error_verdict(cfg);
  snprintf(out->reason, sizeof(out->reason), "unscorable:%s->%s",
           phone_result_name(why), call_decision_name(out->verdict));
}
