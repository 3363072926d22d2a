/*
 * voice-and-score: a TeleSign Voice webhook server that screens callers
 * with TeleSign's Score API. This file only dispatches to a subcommand.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../config/config.h"
#include "../screen/lists.h"
#include "../store/store.h"
#include "commands.h"

static const char main_usage[] =
    "usage: voice-and-score COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  serve --config FILE          run the webhook server\n"
    "  check-config FILE            validate a configuration file\n"
    "  score NUMBER --config FILE   look one number up and print the result\n"
    "  call FROM [--to N] [--press DIGITS]... [--url URL]\n"
    "                               play TeleSign's part of a call against a\n"
    "                               running server and print the "
    "conversation\n"
    "  calls --config FILE [--format table|json|csv] [--limit N]\n"
    "        [--decision D] [--caller N] [--since 7d]\n"
    "                               list recorded calls and their reasons\n"
    "  list add|remove|show|import|export allow|block ... --config FILE\n"
    "                               manage the allow and block lists\n"
    "  stats --config FILE [--since 7d]\n"
    "                               decisions, rates and lookups saved\n"
    "  replay --config NEW.yaml [--since 7d]\n"
    "                               re-decide stored calls under NEW.yaml\n"
    "  forget NUMBER --config FILE  delete everything kept about a caller\n"
    "  migrate --config FILE        bring the database's schema up to date\n"
    "  --version                    print the version\n"
    "\n"
    "Run 'voice-and-score COMMAND --help' for a command's options.\n"
    "Exit status: 0 success, 1 failure, 2 usage error (see "
    "voice-and-score(1)).\n";

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"serve", cmd_serve},   {"check-config", cmd_check_config},
    {"score", cmd_score},   {"call", cmd_call},
    {"calls", cmd_calls},   {"list", cmd_list},
    {"stats", cmd_stats},   {"replay", cmd_replay},
    {"forget", cmd_forget}, {"migrate", cmd_migrate},
};

int wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return 1;
  return 0;
}

int cli_config_args(int argc, char **argv, const char *usage, int positional,
                    const char **config)
{
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {0, 0, 0, 0}};
  int c;

  if (wants_help(argc, argv)) {
    fputs(usage, stdout);
    return 0;
  }
  while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
    if (c != 'c') {
      fputs(usage, stderr);
      return EXIT_USAGE;
    }
    *config = optarg;
  }
  if (argc - optind != positional) {
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  return -1;
}

int cli_history_args(int argc, char **argv, const char *usage,
                     const char *default_since, const char **config,
                     const char **since, int64_t *since_ms)
{
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"since", required_argument, 0, 's'},
                                       {0, 0, 0, 0}};
  int64_t seconds;
  int c;

  if (wants_help(argc, argv)) {
    fputs(usage, stdout);
    return 0;
  }
  *since = default_since;
  while ((c = getopt_long(argc, argv, "c:s:", opts, NULL)) != -1) {
    if (c == 'c') {
      *config = optarg;
    } else if (c == 's') {
      *since = optarg;
    } else {
      fputs(usage, stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  if (list_parse_duration(*since, &seconds)) {
    fprintf(stderr, "--since '%s' is not a duration like 7d or 12h\n", *since);
    return EXIT_USAGE;
  }
  *since_ms = ((int64_t)time(NULL) - seconds) * 1000;
  return -1;
}

struct config *cli_load_config(const char *path)
{
  return cli_load_config_as(path, 1);
}

struct config *cli_load_config_as(const char *path, int for_lookups)
{
  struct config *cfg;
  char err[1024];

  if (!path) {
    fprintf(stderr, "voice-and-score: --config FILE is required\n");
    return NULL;
  }
  if (config_load_as(path, for_lookups, &cfg, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  return cfg;
}

int cmd_check_config(int argc, char **argv)
{
  struct config *cfg;
  char err[1024];

  if (wants_help(argc, argv)) {
    printf("usage: voice-and-score check-config FILE\n\n"
           "Loads FILE as the server would and reports the first problem\n"
           "with its line and column. Exits 0 when the file is valid.\n");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: voice-and-score check-config FILE\n");
    return EXIT_USAGE;
  }
  if (config_load(argv[1], &cfg, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf("%s: ok (provider %s, %u menu options)\n", argv[1],
         config_provider_name(cfg->telesign.provider),
         cfg->menu.options_count);
  config_free(cfg);
  return 0;
}

int cmd_migrate(int argc, char **argv)
{
  static const char usage[] =
      "usage: voice-and-score migrate --config FILE\n"
      "\n"
      "Creates the database if needed and applies every schema migration\n"
      "it lacks, then exits (serve does the same at start). Safe while\n"
      "other servers run. Exits 0 when the schema is current.\n";
  struct config *cfg;
  const char *path = NULL;
  char err[512];
  char where[512];
  int rc = cli_config_args(argc, argv, usage, 0, &path);

  if (rc >= 0)
    return rc;
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  rc = store_migrate(cfg->store.location, err, sizeof(err));
  if (rc)
    fprintf(stderr, "voice-and-score: %s\n", err);
  else
    printf("%s: schema up to date\n",
           store_location_safe(cfg->store.location, where, sizeof(where)));
  config_free(cfg);
  return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    fputs(main_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("voice-and-score %s\n", VS_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "voice-and-score: unknown command '%s'\n\n%s", argv[1],
          main_usage);
  return EXIT_USAGE;
}
