/*
 * `voice-and-score call FROM ...`: plays TeleSign's part of one call
 * against a running server, so that a user can try the screening and the
 * menu from a terminal. It sends the events TeleSign would send, in the
 * order it would send them, and prints both sides of the conversation.
 *
 * This is a client tool, so it uses libcurl's blocking easy interface.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../telesign/voice.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "commands.h"

#define MAX_TURNS  32
#define MAX_ANSWER (64 * 1024)

static const char call_usage[] =
    "usage: voice-and-score call FROM [options]\n"
    "\n"
    "Plays TeleSign's part of a call from FROM against a running server:\n"
    "sends incoming_call, answers each prompt with the next --press value,\n"
    "follows a dial with dial_completed, and ends with call_completed.\n"
    "\n"
    "Options:\n"
    "  --to NUMBER         the number called (default 15555550100)\n"
    "  --press DIGITS      what the caller keys at the next prompt; repeat\n"
    "                      for later prompts; '' means no key (default: no\n"
    "                      key at any prompt)\n"
    "  --url URL           the webhook (default "
    "http://127.0.0.1:8080/telesign/voice)\n"
    "  --dial-status S     dial_completed status (default answered)\n"
    "  --solve-challenge   answer a prompt that asks for one key (\"press "
    "7\")\n"
    "                      with that key, as a person would, without\n"
    "                      using up a --press value\n"
    "  --reference-id ID   the call's reference_id (default: random)\n";

struct session {
  int solve; /* --solve-challenge */
  CURL *curl;
  const char *url;
  const char *ref;
  const char *from;
  const char *to;
  struct buf answer;
  long http_status;
};

static size_t collect(char *p, size_t size, size_t nmemb, void *userp)
{
  struct buf *b = userp;

  return buf_append(b, p, size * nmemb) ? 0 : size * nmemb;
}

/*
 * Posts one event with `data` (a JSON object whose reference this call
 * steals) and reads the answer. Returns 0 or 1, having printed why.
 */
static int post_event(struct session *s, const char *event, json_t *data)
{
  struct curl_slist *hdr = NULL;
  json_t *root;
  char *body;
  CURLcode cc;

  root = json_pack("{s:s, s:s, s:o}", "event", event, "reference_id", s->ref,
                   "data", data);
  body = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  if (!body) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  buf_reset(&s->answer);
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  curl_easy_setopt(s->curl, CURLOPT_URL, s->url);
  curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &s->answer);
  curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, 10000L);
  cc = curl_easy_perform(s->curl);
  curl_slist_free_all(hdr);
  free(body);
  if (cc != CURLE_OK) {
    fprintf(stderr, "cannot reach %s: %s\n", s->url, curl_easy_strerror(cc));
    return 1;
  }
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->http_status);
  if (s->http_status != 200) {
    fprintf(stderr, "server answered HTTP %ld: %s\n", s->http_status,
            s->answer.data ? s->answer.data : "");
    return 1;
  }
  return 0;
}

/* Prints what the server told TeleSign to do. */
static void show_action(const struct voice_action_parsed *a)
{
  switch (a->kind) {
  case VOICE_ACTION_SPEAK:
    printf("  server:   speak \"%s\"", a->message);
    break;
  case VOICE_ACTION_PLAY:
    printf("  server:   play %s", a->url);
    break;
  case VOICE_ACTION_DIAL:
    printf("  server:   dial %s (caller ID %s)\n", a->to, a->caller_id);
    return;
  case VOICE_ACTION_HANGUP:
    printf("  server:   hang up\n");
    return;
  }
  if (a->collect_max)
    printf(" and collect %u digit%s", a->collect_max,
           a->collect_max == 1 ? "" : "s");
  printf("\n");
}

/*
 * The key a challenge prompt asks for: the digit after "press " when the
 * prompt names exactly one (a menu names several). 0 when it is not one.
 */
static char asked_digit(const char *message)
{
  const char *p = strstr(message, "press ");
  char d;

  if (!p || p[6] < '0' || p[6] > '9')
    return 0;
  d = p[6];
  return strstr(p + 7, "press ") ? 0 : d;
}

static void random_ref(char *out, size_t size)
{
  unsigned char b[16];
  static const char hex[] = "0123456789ABCDEF";

  if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
    for (size_t i = 0; i < sizeof(b); i++)
      b[i] = (unsigned char)(rand() & 0xff);
  for (size_t i = 0; i < sizeof(b) && 2 * i + 2 < size; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
    out[2 * i + 2] = '\0';
  }
}

/*
 * Runs the conversation: each answer decides the next event, as it does
 * for TeleSign. Returns the exit status.
 */
static int converse(struct session *s, char **presses, int npress,
                    const char *dial_status)
{
  struct voice_action_parsed a;
  time_t start = time(NULL);
  char err[256];
  int next = 0;
  int rc;

  printf("  TeleSign: incoming_call from %s to %s (reference_id %s)\n",
         s->from, s->to, s->ref);
  if (post_event(s, "incoming_call",
                 json_pack("{s:s, s:s}", "to", s->to, "from", s->from)))
    return 1;
  for (int turn = 0; turn < MAX_TURNS; turn++) {
    rc = voice_action_parse(s->answer.data, s->answer.len, &a, err,
                            sizeof(err));
    if (rc) {
      fprintf(stderr, "unexpected answer: %s\n", err);
      return 1;
    }
    show_action(&a);
    if (a.kind == VOICE_ACTION_HANGUP)
      break;
    if (a.kind == VOICE_ACTION_DIAL) {
      printf("  TeleSign: dial_completed, status %s\n", dial_status);
      rc = post_event(s, "dial_completed",
                      json_pack("{s:s, s:s, s:s}", "to", a.to, "from",
                                a.caller_id, "status", dial_status));
    } else {
      const char *digits = "";
      char solved[2] = {0, 0};

      if (a.collect_max && s->solve &&
          (solved[0] = asked_digit(a.message)) != 0)
        digits = solved;
      else if (a.collect_max && next < npress)
        digits = presses[next++];
      if (a.collect_max)
        printf("  caller:   %s%s\n", *digits ? "presses " : "presses nothing",
               digits);
      printf("  TeleSign: %s_completed\n",
             a.kind == VOICE_ACTION_PLAY ? "play" : "speak");
      rc = post_event(
          s,
          a.kind == VOICE_ACTION_PLAY ? "play_completed" : "speak_completed",
          json_pack("{s:s, s:s}", "status",
                    a.kind == VOICE_ACTION_PLAY ? "play_successful"
                                                : "speak_successful",
                    "collected_digits", digits));
    }
    if (rc)
      return 1;
  }
  printf("  TeleSign: call_completed\n");
  if (post_event(s, "call_completed",
                 json_pack("{s:I, s:s, s:s, s:s, s:s}", "duration",
                           (json_int_t)(time(NULL) - start), "status",
                           "hangup", "to", s->to, "from", s->from, "direction",
                           "inbound")))
    return 1;
  printf("  call %s ended\n", s->ref);
  return 0;
}

int cmd_call(int argc, char **argv)
{
  static const struct option opts[] = {
      {"to", required_argument, 0, 't'},
      {"press", required_argument, 0, 'p'},
      {"url", required_argument, 0, 'u'},
      {"dial-status", required_argument, 0, 'd'},
      {"reference-id", required_argument, 0, 'r'},
      {"solve-challenge", no_argument, 0, 'x'},
      {0, 0, 0, 0}};
  struct session s = {.url = "http://127.0.0.1:8080/telesign/voice",
                      .to = "15555550100"};
  const char *dial_status = "answered";
  char *presses[MAX_TURNS];
  char ref[40];
  int npress = 0;
  int status;
  int c;

  if (wants_help(argc, argv)) {
    fputs(call_usage, stdout);
    return 0;
  }
  random_ref(ref, sizeof(ref));
  s.ref = ref;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 't':
      s.to = optarg;
      break;
    case 'p':
      if (npress == MAX_TURNS) {
        fprintf(stderr, "at most %d --press options\n", MAX_TURNS);
        return EXIT_USAGE;
      }
      presses[npress++] = optarg;
      break;
    case 'u':
      s.url = optarg;
      break;
    case 'd':
      dial_status = optarg;
      break;
    case 'r':
      s.ref = optarg;
      break;
    case 'x':
      s.solve = 1;
      break;
    default:
      fputs(call_usage, stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc - 1) {
    fputs(call_usage, stderr);
    return EXIT_USAGE;
  }
  s.from = argv[optind];
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 1;
  s.curl = curl_easy_init();
  if (!s.curl) {
    curl_global_cleanup();
    return 1;
  }
  buf_init(&s.answer, MAX_ANSWER);
  status = converse(&s, presses, npress, dial_status);
  buf_free(&s.answer);
  curl_easy_cleanup(s.curl);
  curl_global_cleanup();
  return status;
}
