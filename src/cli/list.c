/*
 * `voice-and-score list`: the allow and block lists.
 *
 *   list add|remove|show allow|block ENTRY [--note TEXT] [--expires 30d]
 *   list import|export allow|block FILE      (CSV: number,note,expires)
 *
 * Entries are normalised like callers ("+1 555-555-0123" and
 * "15555550123" are one entry; "1555820*" is a prefix). Changes go to the
 * database; a running server picks them up on SIGHUP.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../config/config.h"
#include "../screen/lists.h"
#include "../store/store.h"
#include "../util/err.h"
#include "commands.h"

#define IMPORT_MAX_LINE    1024
#define IMPORT_MAX_ENTRIES 1000000

static const char list_usage[] =
    "usage: voice-and-score list ACTION allow|block ARG --config FILE\n"
    "\n"
    "  list add allow|block ENTRY [--note TEXT] [--expires DURATION]\n"
    "  list remove allow|block ENTRY\n"
    "  list show allow|block [ENTRY]\n"
    "  list import allow|block FILE.csv\n"
    "  list export allow|block FILE.csv   (- for standard output)\n"
    "\n"
    "ENTRY is a number (normalised like callers) or a prefix ending in '*'\n"
    "(1555820*). DURATION is like 30d, 12h, 90m or 45s. CSV rows are\n"
    "number,note,expires with expires as an ISO-8601 UTC time or empty.\n"
    "A running server reads the lists again on SIGHUP.\n";

static int64_t now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_time(int64_t ms, char *out, size_t size)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;

  if (ms <= 0 || !gmtime_r(&t, &tm))
    snprintf(out, size, "%s", "");
  else
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Parses "2026-12-31T23:59:59Z" (the Z optional) into Unix ms; -1 if bad. */
static int64_t parse_time(const char *s)
{
  struct tm tm = {0};
  const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

  if (!end || (*end && strcmp(end, "Z") != 0))
    return -1;
  return (int64_t)timegm(&tm) * 1000;
}

struct show {
  const char *entry; /* only this entry, or NULL */
  FILE *out;
  int csv;
  unsigned rows;
};

/* Writes a CSV field, quoted when it needs to be. */
static void csv_write(FILE *f, const char *s, int last)
{
  if (strpbrk(s, ",\"\r\n")) {
    fputc('"', f);
    for (; *s; s++) {
      if (*s == '"')
        fputc('"', f);
      fputc(*s, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
  fputc(last ? '\n' : ',', f);
}

static int show_row(void *arg, const struct list_entry *e)
{
  struct show *sh = arg;
  char expires[32];
  char created[32];
  int expired = e->expires_ms && e->expires_ms <= now_ms();

  if (sh->entry && strcmp(sh->entry, e->entry) != 0)
    return 0;
  format_time(e->expires_ms, expires, sizeof(expires));
  format_time(e->created_ms, created, sizeof(created));
  sh->rows++;
  if (sh->csv) {
    csv_write(sh->out, e->entry, 0);
    csv_write(sh->out, e->note, 0);
    csv_write(sh->out, expires, 1);
    return 0;
  }
  fprintf(sh->out, "%-17s  %-9s  %-20s  %-20s  %s%s\n", e->entry, e->source,
          created, expires[0] ? expires : "never", e->note,
          expired ? "  (expired)" : "");
  return 0;
}

/*
 * Splits one CSV line into up to `max` fields in place (quotes and doubled
 * quotes handled; no field spans lines). Returns the field count or -1.
 */
static int csv_split(char *line, char **fields, int max)
{
  int n = 0;
  char *r = line;

  while (n < max) {
    char *w = r;

    fields[n++] = w;
    if (*r == '"') {
      r++;
      for (;;) {
        if (!*r)
          return -1;
        if (*r == '"' && r[1] == '"') {
          *w++ = '"';
          r += 2;
        } else if (*r == '"') {
          r++;
          break;
        } else {
          *w++ = *r++;
        }
      }
      if (*r && *r != ',')
        return -1;
    } else {
      while (*r && *r != ',')
        *w++ = *r++;
    }
    if (!*r) {
      *w = '\0';
      return n;
    }
    *w = '\0';
    r++;
  }
  return -1;
}

/*
 * Reads a CSV file of entries. Every line is checked before anything is
 * written, so a file with one bad line changes nothing; the error names
 * the line.
 */
static int import_file(const struct config *cfg, enum list_kind kind,
                       const char *file)
{
  struct list_entry *entries = NULL;
  char line[IMPORT_MAX_LINE + 2];
  size_t n = 0, cap = 0;
  unsigned lineno = 0;
  char err[256];
  FILE *f;
  int status = 1;

  f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
  if (!f) {
    fprintf(stderr, "%s: cannot read: %s\n", file, strerror(errno));
    return 1;
  }
  while (fgets(line, sizeof(line), f)) {
    char *fields[4];
    struct list_entry *e;
    size_t len = strcspn(line, "\r\n");
    int nf;

    lineno++;
    if (len > IMPORT_MAX_LINE) {
      fprintf(stderr, "%s:%u: line is longer than %d bytes\n", file, lineno,
              IMPORT_MAX_LINE);
      goto out;
    }
    line[len] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    nf = csv_split(line, fields, 3);
    if (nf < 1) {
      fprintf(stderr, "%s:%u: not a CSV row of number,note,expires\n", file,
              lineno);
      goto out;
    }
    if (lineno == 1 && strcmp(fields[0], "number") == 0)
      continue; /* the header export writes */
    if (n == cap) {
      struct list_entry *p;

      cap = cap ? cap * 2 : 256;
      if (cap > IMPORT_MAX_ENTRIES ||
          !(p = realloc(entries, cap * sizeof(*p)))) {
        fprintf(stderr, "%s: too many entries\n", file);
        goto out;
      }
      entries = p;
    }
    e = &entries[n];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    if (list_entry_normalise(fields[0], cfg->screening.default_country,
                             e->entry, err, sizeof(err))) {
      fprintf(stderr, "%s:%u: %s\n", file, lineno, err);
      goto out;
    }
    if (nf > 1)
      snprintf(e->note, sizeof(e->note), "%s", fields[1]);
    if (nf > 2 && fields[2][0] &&
        (e->expires_ms = parse_time(fields[2])) < 0) {
      fprintf(stderr, "%s:%u: expires '%s' is not like 2026-12-31T23:59:59Z\n",
              file, lineno, fields[2]);
      goto out;
    }
    snprintf(e->source, sizeof(e->source), "import");
    e->created_ms = now_ms();
    n++;
  }
  if (ferror(f)) {
    fprintf(stderr, "%s: read error\n", file);
    goto out;
  }
  if (store_lists_put(cfg->store.location, entries, n, err, sizeof(err))) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    goto out;
  }
  printf("imported %zu %s entries from %s\n", n, list_kind_name(kind), file);
  status = 0;
out:
  if (f != stdin)
    fclose(f);
  free(entries);
  return status;
}

static int export_file(const struct config *cfg, enum list_kind kind,
                       const char *file)
{
  struct show sh = {.csv = 1};
  char err[256];
  int rc;

  sh.out = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");
  if (!sh.out) {
    fprintf(stderr, "%s: cannot write: %s\n", file, strerror(errno));
    return 1;
  }
  fputs("number,note,expires\n", sh.out);
  rc = store_lists_read(cfg->store.location, (int)kind, show_row, &sh, err,
                        sizeof(err));
  if (sh.out != stdout && fclose(sh.out) != 0 && !rc) {
    fprintf(stderr, "%s: cannot write: %s\n", file, strerror(errno));
    return 1;
  }
  if (rc) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    return 1;
  }
  if (sh.out != stdout)
    printf("exported %u %s entries to %s\n", sh.rows, list_kind_name(kind),
           file);
  return 0;
}

int cmd_list(int argc, char **argv)
{
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"note", required_argument, 0, 'n'},
                                       {"expires", required_argument, 0, 'e'},
                                       {0, 0, 0, 0}};
  struct list_entry e = {0};
  struct config *cfg = NULL;
  const char *path = NULL, *note = "", *expires = NULL;
  const char *action, *arg;
  int64_t seconds = 0;
  char err[256];
  int kind;
  int status = 1;
  int c;

  if (wants_help(argc, argv)) {
    fputs(list_usage, stdout);
    return 0;
  }
  while ((c = getopt_long(argc, argv, "c:n:e:", opts, NULL)) != -1) {
    if (c == 'c')
      path = optarg;
    else if (c == 'n')
      note = optarg;
    else if (c == 'e')
      expires = optarg;
    else
      goto usage;
  }
  if (argc - optind < 2 || argc - optind > 3)
    goto usage;
  action = argv[optind];
  kind = list_kind_parse(argv[optind + 1]);
  arg = argc - optind == 3 ? argv[optind + 2] : NULL;
  if (kind < 0 || (!arg && strcmp(action, "show") != 0))
    goto usage;
  if (expires && list_parse_duration(expires, &seconds)) {
    fprintf(stderr, "--expires '%s' is not a duration like 30d or 12h\n",
            expires);
    return EXIT_USAGE;
  }
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;

  if (strcmp(action, "import") == 0) {
    status = import_file(cfg, (enum list_kind)kind, arg);
    goto out;
  }
  if (strcmp(action, "export") == 0) {
    status = export_file(cfg, (enum list_kind)kind, arg);
    goto out;
  }
  e.kind = (enum list_kind)kind;
  if (arg && list_entry_normalise(arg, cfg->screening.default_country, e.entry,
                                  err, sizeof(err))) {
    fprintf(stderr, "voice-and-score: '%s': %s\n", arg, err);
    goto out;
  }
  if (strcmp(action, "add") == 0) {
    snprintf(e.note, sizeof(e.note), "%s", note);
    snprintf(e.source, sizeof(e.source), "cli");
    e.created_ms = now_ms();
    e.expires_ms = seconds ? e.created_ms + seconds * 1000 : 0;
    if (store_lists_put(cfg->store.location, &e, 1, err, sizeof(err))) {
      fprintf(stderr, "voice-and-score: %s\n", err);
      goto out;
    }
    printf("added %s to the %slist%s\n", e.entry, list_kind_name(e.kind),
           seconds ? " (expires)" : "");
    status = 0;
  } else if (strcmp(action, "remove") == 0) {
    int rc = store_lists_delete(cfg->store.location, e.kind, e.entry, err,
                                sizeof(err));

    if (rc == VS_ERR_NOTFOUND)
      fprintf(stderr, "%s is not on the %slist\n", e.entry,
              list_kind_name(e.kind));
    else if (rc)
      fprintf(stderr, "voice-and-score: %s\n", err);
    else
      printf("removed %s from the %slist\n", e.entry, list_kind_name(e.kind));
    status = rc ? 1 : 0;
  } else if (strcmp(action, "show") == 0) {
    struct show sh = {.entry = arg ? e.entry : NULL, .out = stdout};

    printf("%-17s  %-9s  %-20s  %-20s  %s\n", "ENTRY", "SOURCE", "CREATED",
           "EXPIRES", "NOTE");
    if (store_lists_read(cfg->store.location, kind, show_row, &sh, err,
                         sizeof(err))) {
      fprintf(stderr, "voice-and-score: %s\n", err);
      goto out;
    }
    status = arg && !sh.rows ? 1 : 0;
  } else {
    config_free(cfg);
    goto usage;
  }
out:
  config_free(cfg);
  return status;
usage:
  fputs(list_usage, stderr);
  return EXIT_USAGE;
}
