/*
 * The subcommands of the voice-and-score program. Each takes the arguments
 * after its own name (argv[0] is the subcommand) and returns the process
 * exit status: 0 on success, 1 on a runtime failure, 2 on a usage error.
 */
#ifndef VS_CLI_COMMANDS_H
#define VS_CLI_COMMANDS_H

#include <stdint.h>

int cmd_serve(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_calls(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

/* Exit statuses shared by the commands. */
#define EXIT_USAGE 2

/*
 * True when argv holds -h or --help, checked before getopt so that help is
 * printed even when other arguments are wrong.
 */
int wants_help(int argc, char **argv);

/*
 * Parses the arguments of a command whose only option is --config FILE and
 * which takes exactly `positional` other arguments (left at argv[optind]
 * onwards). Prints `usage` for --help or a mistake. Returns -1 when the
 * command should go on, or the exit status to return at once.
 */
int cli_config_args(int argc, char **argv, const char *usage, int positional,
                    const char **config);

/*
 * The same for commands over the call history, which take --config FILE
 * and --since DURATION (default `default_since`) and nothing else. Sets
 * *since to the text and *since_ms to the start of the period in Unix ms.
 */
int cli_history_args(int argc, char **argv, const char *usage,
                     const char *default_since, const char **config,
                     const char **since, int64_t *since_ms);

struct config;
/*
 * Loads `path` (NULL: print that --config is required) and prints the
 * reason to stderr on failure. Returns the config, which the caller frees
 * with config_free(), or NULL.
 */
struct config *cli_load_config(const char *path);
/* The same; with `for_lookups` 0 missing credentials are no error. */
struct config *cli_load_config_as(const char *path, int for_lookups);

#endif
