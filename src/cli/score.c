/*
 * `voice-and-score score NUMBER --config FILE`: one lookup with the
 * configured provider, endpoint and credentials, printed field by field.
 * It is how a user checks credentials and connectivity before taking
 * calls; it runs the same client the server does, on a loop of its own.
 */
#include <stdio.h>
#include <unistd.h>

#include "../config/config.h"
#include "../loop/loop.h"
#include "../screen/phone.h"
#include "../telesign/score.h"
#include "commands.h"

static const char score_usage[] =
    "usage: voice-and-score score NUMBER --config FILE\n"
    "\n"
    "Normalises NUMBER as the server would, looks it up once with the\n"
    "configured Score provider and prints the parsed result. Exits 0 when\n"
    "a score came back, 1 when the lookup failed.\n";

struct outcome {
  int done;
  struct score_result res;
};

static void on_result(void *arg, const struct score_result *res)
{
  struct outcome *o = arg;

  o->res = *res;
  o->done = 1;
}

static void print_result(const char *number, const struct score_result *r)
{
  printf("number:          %s\n", number);
  printf("result:          %s\n",
         r->failure == SCORE_OK ? "ok" : score_failure_name(r->failure));
  if (r->failure != SCORE_OK)
    printf("error:           %s\n", r->error);
  printf("http_status:     %d\n", r->http_status);
  printf("status_code:     %d\n", r->status_code);
  if (r->score >= 0)
    printf("score:           %d\n", r->score);
  printf("level:           %s\n", r->level[0] ? r->level : "-");
  printf("recommendation:  %s\n",
         r->recommendation[0] ? r->recommendation : "-");
  printf("phone_type:      %s%s%s%s\n", r->phone_type[0] ? r->phone_type : "-",
         r->phone_type_code[0] ? " (" : "", r->phone_type_code,
         r->phone_type_code[0] ? ")" : "");
  printf("reference_id:    %s\n", r->ref[0] ? r->ref : "-");
  printf("elapsed_ms:      %d\n", r->elapsed_ms);
}

int cmd_score(int argc, char **argv)
{
  struct score_client *sc = NULL;
  struct loop *loop = NULL;
  struct config *cfg;
  struct outcome o = {0};
  char number[PHONE_BUF_SIZE];
  const char *path = NULL;
  enum phone_result pr;
  char err[512] = "out of memory";
  int status;

  status = cli_config_args(argc, argv, score_usage, 1, &path);
  if (status >= 0)
    return status;
  status = 1;
  cfg = cli_load_config(path);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  pr = phone_normalise(argv[optind], cfg->screening.default_country, number);
  if (pr != PHONE_OK) {
    fprintf(stderr, "voice-and-score: '%s' cannot be scored: %s\n",
            argv[optind], phone_result_name(pr));
    goto out;
  }
  if (loop_create(&loop)) {
    fprintf(stderr, "voice-and-score: cannot create the event loop\n");
    goto out;
  }
  if (score_client_create(loop, cfg, &sc, err, sizeof(err)) ||
      score_lookup(sc, number, on_result, &o)) {
    fprintf(stderr, "voice-and-score: cannot start the lookup: %s\n", err);
    goto out;
  }
  /* The client's own deadline (telesign.timeout_ms) ends the lookup. */
  while (!o.done)
    if (loop_run_once(loop, -1))
      break;
  if (o.done) {
    print_result(number, &o.res);
    status = o.res.failure == SCORE_OK ? 0 : 1;
  }
out:
  score_client_destroy(sc);
  loop_destroy(loop);
  config_free(cfg);
  return status;
}
