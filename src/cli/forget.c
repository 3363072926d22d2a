/*
 * `voice-and-score forget NUMBER --config FILE`: deletes everything kept
 * about one caller (privacy requests): their call records, their exact
 * list entries and their number record (pass, failures, cached score).
 *
 * A running server holds some of that in memory, so the command asks it
 * first, through the admin API (DELETE /api/numbers/NUMBER); only when no
 * server answers on admin.listen does it edit the database itself.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../screen/phone.h"
#include "../store/store.h"
#include "commands.h"

static const char forget_usage[] =
    "usage: voice-and-score forget NUMBER --config FILE\n"
    "\n"
    "Deletes the call records of NUMBER, the list entries that are exactly\n"
    "NUMBER (prefixes stay) and what the server remembers of it: its\n"
    "challenge pass, failures and cached score. Asks the running server\n"
    "(admin.listen) to do it, or edits the database when none runs.\n"
    "Exits 0 when done, 1 on a failure.\n";

/* Gathers the server's answer. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
  FILE *f = arg;

  return fwrite(p, size, n, f);
}

/*
 * Asks the server. Returns 0 when it answered (its status in *status and
 * body in *body, malloc'd), or -1 when no server listens.
 */
static int ask_server(const struct config *cfg, const char *number,
                      long *status, char **body)
{
  const char *listen = cfg->admin.listen;
  const char *colon = strrchr(listen, ':');
  char host[300];
  char url[400];
  char auth[300];
  struct curl_slist *hdr = NULL;
  size_t len = 0;
  FILE *mem;
  CURL *c;
  CURLcode cc;
  int n = colon ? (int)(colon - listen) : 0;

  if (!listen[0] || !colon)
    return -1;
  snprintf(host, sizeof(host), "%.*s", n, listen);
  /* A wildcard address listens on loopback too. */
  if (!host[0] || strcmp(host, "0.0.0.0") == 0)
    snprintf(host, sizeof(host), "127.0.0.1");
  else if (strcmp(host, "[::]") == 0)
    snprintf(host, sizeof(host), "[::1]");
  snprintf(url, sizeof(url), "http://%s%s/api/numbers/%s", host, colon,
           number);
  c = curl_easy_init();
  mem = open_memstream(body, &len);
  if (!c || !mem) {
    if (mem)
      fclose(mem);
    curl_easy_cleanup(c);
    return -1;
  }
  if (cfg->admin.token[0]) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->admin.token);
    hdr = curl_slist_append(hdr, auth);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  cc = curl_easy_perform(c);
  fclose(mem);
  if (cc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(hdr);
  explicit_bzero(auth, sizeof(auth));
  curl_easy_cleanup(c);
  return cc == CURLE_OK ? 0 : -1;
}

static void print_counts(const char *number, long long calls,
                         long long entries, long long records)
{
  printf("forgot %s: %lld call records, %lld list entries, %lld number "
         "records\n",
         number, calls, entries, records);
}

int cmd_forget(int argc, char **argv)
{
  struct store_forget_counts counts = {0};
  struct config *cfg;
  const char *path = NULL;
  char number[PHONE_BUF_SIZE];
  char err[512];
  char *body = NULL;
  long status = 0;
  int rc;

  rc = cli_config_args(argc, argv, forget_usage, 1, &path);
  if (rc >= 0)
    return rc;
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  rc = 1;
  if (phone_normalise(argv[optind], cfg->screening.default_country, number) !=
      PHONE_OK) {
    fprintf(stderr, "voice-and-score: '%s' is not a phone number\n",
            argv[optind]);
    goto out;
  }
  if (ask_server(cfg, number, &status, &body) == 0) {
    json_t *o = json_loads(body ? body : "", 0, NULL);

    if (status == 200 && o) {
      print_counts(
          number, (long long)json_integer_value(json_object_get(o, "calls")),
          (long long)json_integer_value(json_object_get(o, "list_entries")),
          (long long)json_integer_value(json_object_get(o, "numbers")));
      rc = 0;
    } else {
      fprintf(stderr, "voice-and-score: the server refused (HTTP %ld): %s\n",
              status, body ? body : "");
    }
    json_decref(o);
    goto out;
  }
  if (store_forget_offline(cfg->store.location, number, &counts, err,
                           sizeof(err))) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    goto out;
  }
  print_counts(number, (long long)counts.calls, (long long)counts.list_entries,
               (long long)counts.numbers);
  rc = 0;
out:
  free(body);
  config_free(cfg);
  return rc;
}
