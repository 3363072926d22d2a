/*
 * Loading and checking the configuration file.
 *
 * The file is read once into memory and then looked at three times:
 *
 *  1. libyaml's event parser builds an index from every key path
 *     ("menu.options[1].digit") to its line and column. libcyaml keeps no
 *     positions once it has loaded a document, and a message that says where
 *     the mistake is saves the user a hunt, so the index is what every later
 *     message takes its "FILE:LINE:COLUMN:" from. This pass also catches
 *     syntax errors, with libyaml's own position for them.
 *  2. libcyaml maps the document onto struct config through the schema
 *     below. Its log callback captures its error text and backtrace, which
 *     are turned into the same one-line format.
 *  3. Defaults, the environment overrides and the semantic checks, each
 *     failure placed with the index.
 *
 * Nothing here keeps state between calls: everything lives in a loader that
 * config_load() owns for the length of one call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "../screen/phone.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "config.h"

/* A configuration is a page of text; anything bigger is a mistake. */
#define CONFIG_FILE_MAX (1024 * 1024)

/* Ceilings on the index of key positions, see idx_build(). */
#define IDX_ENTRIES_MAX 256
#define IDX_PATH_MAX    128
#define IDX_TEXT_MAX    32
#define IDX_DEPTH_MAX   8

/* Ceilings on what libcyaml's log callback keeps. */
#define CY_MSG_MAX    512
#define CY_FRAMES_MAX 16

/* How much of a user's value is quoted back in a message. */
#define SHOW_MAX 72

#define MESSAGE_MAX     1000
#define OPTIONS_MAX     12
#define OPTION_NAME_MAX 63 /* fits struct call's department[64] */
#define PHONE_MIN       8
#define PHONE_MAX       15

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The section structs are anonymous in config.h, so name them here. */
typedef __typeof__(((struct config *)0)->server) cfg_server;
typedef __typeof__(((struct config *)0)->telesign) cfg_telesign;
typedef __typeof__(((struct config *)0)->webhook) cfg_webhook;
typedef __typeof__(((struct config *)0)->screening) cfg_screening;
typedef __typeof__(((struct config *)0)->screening.velocity) cfg_velocity;
typedef __typeof__(((struct config *)0)->screening.challenge) cfg_challenge;
typedef __typeof__(((struct config *)0)->menu) cfg_menu;
typedef __typeof__(((struct config *)0)->store) cfg_store;
typedef __typeof__(((struct config *)0)->log) cfg_log;
typedef __typeof__(((struct config *)0)->admin) cfg_admin;

/*
 * The schema. Every key is optional except the three keys of a menu option;
 * absent strings load as NULL and absent numbers as 0, and defaults are
 * filled in afterwards. Strings have no length limit here because the checks
 * after loading give a better message than libcyaml's, and the file size cap
 * already bounds them. Enums are STRICT so that only their names are taken,
 * not numbers.
 */
#define STR(key, type, member)                                                \
  CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, type, member, 0,           \
                         CYAML_UNLIMITED)
#define NUM(key, type, member)                                                \
  CYAML_FIELD_UINT(key, CYAML_FLAG_OPTIONAL, type, member)
#define ENUM(key, type, member, names)                                        \
  CYAML_FIELD_ENUM(key, CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, type,        \
                   member, names, CYAML_ARRAY_LEN(names))

static const cyaml_strval_t provider_names[] = {
    {"telesign", PROVIDER_TELESIGN},
    {"simulator", PROVIDER_SIMULATOR},
};

static const cyaml_strval_t score_api_names[] = {
    {"intelligence", SCORE_API_INTELLIGENCE},
    {"legacy", SCORE_API_LEGACY},
};

static const cyaml_strval_t auth_names[] = {
    {"hmac", AUTH_HMAC},
    {"basic", AUTH_BASIC},
};

static const cyaml_strval_t verdict_names[] = {
    {"allow", VERDICT_ALLOW},
    {"challenge", VERDICT_CHALLENGE},
    {"block", VERDICT_BLOCK},
};

static const cyaml_strval_t mode_names[] = {
    {"enforce", MODE_ENFORCE},
    {"shadow", MODE_SHADOW},
};

static const cyaml_strval_t decide_by_names[] = {
    {"score", DECIDE_BY_SCORE},
    {"recommendation", DECIDE_BY_RECOMMENDATION},
};

static const cyaml_strval_t block_action_names[] = {
    {"message", BLOCK_ACTION_MESSAGE},
    {"hangup", BLOCK_ACTION_HANGUP},
    {"play", BLOCK_ACTION_PLAY},
};

static const cyaml_strval_t verify_names[] = {
    {"log", VERIFY_LOG},
    {"off", VERIFY_OFF},
    {"enforce", VERIFY_ENFORCE},
};

static const cyaml_strval_t preset_names[] = {
    {"balanced", PRESET_BALANCED},
    {"open", PRESET_OPEN},
    {"strict", PRESET_STRICT},
};

static const cyaml_strval_t store_driver_names[] = {
    {"sqlite", STORE_DRIVER_SQLITE},
    {"postgres", STORE_DRIVER_POSTGRES},
};

static const cyaml_strval_t log_format_names[] = {
    {"logfmt", LOG_FORMAT_LOGFMT},
    {"json", LOG_FORMAT_JSON},
};

static const cyaml_strval_t caller_id_names[] = {
    {"virtual", CALLER_ID_VIRTUAL},
    {"caller", CALLER_ID_CALLER},
};

static const cyaml_schema_field_t server_fields[] = {
    STR("listen", cfg_server, listen),
    STR("webhook_path", cfg_server, webhook_path),
    STR("tls_cert", cfg_server, tls_cert),
    STR("tls_key", cfg_server, tls_key),
    NUM("max_body", cfg_server, max_body),
    NUM("max_connections", cfg_server, max_connections),
    NUM("idle_timeout_s", cfg_server, idle_timeout_s),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t telesign_fields[] = {
    ENUM("provider", cfg_telesign, provider, provider_names),
    STR("customer_id", cfg_telesign, customer_id),
    STR("api_key", cfg_telesign, api_key),
    STR("score_url", cfg_telesign, score_url),
    ENUM("score_api", cfg_telesign, score_api, score_api_names),
    ENUM("auth", cfg_telesign, auth, auth_names),
    NUM("timeout_ms", cfg_telesign, timeout_ms),
    STR("virtual_number", cfg_telesign, virtual_number),
    STR("account_lifecycle_event", cfg_telesign, account_lifecycle_event),
    STR("ca_file", cfg_telesign, ca_file),
    NUM("max_connections", cfg_telesign, max_connections),
    NUM("breaker_failures", cfg_telesign, breaker_failures),
    NUM("breaker_cooldown_s", cfg_telesign, breaker_cooldown_s),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t velocity_fields[] = {
    NUM("window_s", cfg_velocity, window_s),
    NUM("max_calls", cfg_velocity, max_calls),
    ENUM("action", cfg_velocity, action, verdict_names),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t challenge_fields[] = {
    STR("message", cfg_challenge, message),
    STR("retry_message", cfg_challenge, retry_message),
    NUM("attempts", cfg_challenge, attempts),
    NUM("pass_ttl_s", cfg_challenge, pass_ttl_s),
    NUM("fail_block_after", cfg_challenge, fail_block_after),
    NUM("fail_block_ttl_s", cfg_challenge, fail_block_ttl_s),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t screening_fields[] = {
    ENUM("preset", cfg_screening, preset, preset_names),
    ENUM("mode", cfg_screening, mode, mode_names),
    STR("default_country", cfg_screening, default_country),
    ENUM("anonymous", cfg_screening, anonymous, verdict_names),
    ENUM("decide_by", cfg_screening, decide_by, decide_by_names),
    NUM("block_at", cfg_screening, block_at),
    NUM("challenge_at", cfg_screening, challenge_at),
    ENUM("on_score_error", cfg_screening, on_score_error, verdict_names),
    NUM("score_cache_ttl_s", cfg_screening, score_cache_ttl_s),
    NUM("max_numbers", cfg_screening, max_numbers),
    ENUM("block_action", cfg_screening, block_action, block_action_names),
    STR("block_message", cfg_screening, block_message),
    STR("block_audio_url", cfg_screening, block_audio_url),
    CYAML_FIELD_MAPPING("velocity", CYAML_FLAG_OPTIONAL, cfg_screening,
                        velocity, velocity_fields),
    CYAML_FIELD_MAPPING("challenge", CYAML_FLAG_OPTIONAL, cfg_screening,
                        challenge, challenge_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t option_fields[] = {
    CYAML_FIELD_STRING_PTR("digit", CYAML_FLAG_DEFAULT,
                           struct config_menu_option, digit, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT,
                           struct config_menu_option, name, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("dial", CYAML_FLAG_DEFAULT,
                           struct config_menu_option, dial, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t option_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct config_menu_option,
                        option_fields),
};

/*
 * The ceiling of 12 options is enforced by libcyaml itself, not only by the
 * checks, because it also bounds the number of keys in a document that loads,
 * which is what keeps the position index from ever filling up.
 */
static const cyaml_schema_field_t menu_fields[] = {
    STR("greeting", cfg_menu, greeting),
    STR("language", cfg_menu, language),
    NUM("attempts", cfg_menu, attempts),
    ENUM("caller_id", cfg_menu, caller_id, caller_id_names),
    STR("invalid_message", cfg_menu, invalid_message),
    STR("goodbye_message", cfg_menu, goodbye_message),
    STR("unavailable_message", cfg_menu, unavailable_message),
    CYAML_FIELD_SEQUENCE("options", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER,
                         cfg_menu, options, &option_schema, 0, OPTIONS_MAX),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t webhook_fields[] = {
    ENUM("verify", cfg_webhook, verify, verify_names),
    STR("token", cfg_webhook, token),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t store_fields[] = {
    ENUM("driver", cfg_store, driver, store_driver_names),
    STR("path", cfg_store, path),
    STR("url", cfg_store, url),
    NUM("retention_days", cfg_store, retention_days),
    NUM("commit_wait_ms", cfg_store, commit_wait_ms),
    NUM("answer_log_mib", cfg_store, answer_log_mib),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t log_fields[] = {
    STR("level", cfg_log, level),
    ENUM("format", cfg_log, format, log_format_names),
    CYAML_FIELD_BOOL("mask_numbers", CYAML_FLAG_OPTIONAL, cfg_log,
                     mask_numbers),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t admin_fields[] = {
    STR("listen", cfg_admin, listen),
    STR("token", cfg_admin, token),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_MAPPING("server", CYAML_FLAG_OPTIONAL, struct config, server,
                        server_fields),
    CYAML_FIELD_MAPPING("webhook", CYAML_FLAG_OPTIONAL, struct config, webhook,
                        webhook_fields),
    CYAML_FIELD_MAPPING("telesign", CYAML_FLAG_OPTIONAL, struct config,
                        telesign, telesign_fields),
    CYAML_FIELD_MAPPING("screening", CYAML_FLAG_OPTIONAL, struct config,
                        screening, screening_fields),
    CYAML_FIELD_MAPPING("menu", CYAML_FLAG_OPTIONAL, struct config, menu,
                        menu_fields),
    CYAML_FIELD_MAPPING("store", CYAML_FLAG_OPTIONAL, struct config, store,
                        store_fields),
    CYAML_FIELD_MAPPING("log", CYAML_FLAG_OPTIONAL, struct config, log,
                        log_fields),
    CYAML_FIELD_MAPPING("admin", CYAML_FLAG_OPTIONAL, struct config, admin,
                        admin_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct config, config_fields),
};

/* One key or sequence entry of the document and where it is. */
struct idx_entry {
  char path[IDX_PATH_MAX]; /* "menu.options[1].digit"; "" for the root */
  unsigned key_line;       /* 1-based; for a sequence entry, the entry */
  unsigned key_col;
  unsigned val_line; /* where the value starts */
  unsigned val_col;
  bool has_text;
  char text[IDX_TEXT_MAX]; /* a short scalar's text, to check numbers */
};

struct idx {
  struct idx_entry entries[IDX_ENTRIES_MAX];
  size_t count;
  char *secret; /* telesign.api_key's text, only to keep it out of errors */
};

/* A mapping or sequence that idx_build() is inside. */
struct idx_frame {
  char path[IDX_PATH_MAX];
  bool tracked; /* false once a path no longer fits */
  bool is_map;
  bool want_key; /* mappings alternate between keys and values */
  bool key_ok;
  char key[IDX_PATH_MAX];
  yaml_mark_t key_mark;
  unsigned next; /* the next sequence index */
};

struct idx_builder {
  struct idx_frame frames[IDX_DEPTH_MAX];
  unsigned depth;
};

/* One line of libcyaml's backtrace, innermost first. */
struct cy_frame {
  enum { CY_MAP, CY_FIELD, CY_ENTRY } kind;
  char name[64];
  unsigned entry; /* 1-based, as libcyaml counts */
  unsigned line;
  unsigned col;
};

/* What libcyaml said about the first error; filled by cy_log_fn(). */
struct cy_log {
  bool have_msg;
  char msg[CY_MSG_MAX];
  struct cy_frame frames[CY_FRAMES_MAX];
  unsigned nframes;
};

struct loader {
  const char *path;
  char *err;
  size_t errlen;
  struct idx *idx;
  bool skip_credentials; /* a tool that makes no lookups */
  bool customer_id_from_env;
  bool api_key_from_env;
};

/* libcyaml allocates through this, so that config_free() can use free(). */
static void *cy_mem(void *ctx, void *ptr, size_t size)
{
  (void)ctx;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

static void cy_parse_frame(struct cy_log *lg, const char *line)
{
  struct cy_frame f;

  if (lg->nframes >= CY_FRAMES_MAX)
    return;
  memset(&f, 0, sizeof(f));
  if (sscanf(line, "  in mapping field '%63[^']' (line: %u, column: %u)",
             f.name, &f.line, &f.col) == 3)
    f.kind = CY_FIELD;
  else if (sscanf(line, "  in sequence entry '%u' (line: %u, column: %u)",
                  &f.entry, &f.line, &f.col) == 3)
    f.kind = CY_ENTRY;
  else if (sscanf(line, "  in mapping (line: %u, column: %u)", &f.line,
                  &f.col) == 2)
    f.kind = CY_MAP;
  else
    return;
  lg->frames[lg->nframes++] = f;
}

/*
 * libcyaml reports an error as one message line ("Load: Unexpected key: x")
 * followed by a backtrace, one log call per line. Only the first message is
 * kept: later ones are consequences of it.
 */
static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt,
                      va_list args)
{
  struct cy_log *lg = ctx;
  char line[CY_MSG_MAX];
  const char *p = line;
  size_t n;

  if (level < CYAML_LOG_ERROR)
    return;
  vsnprintf(line, sizeof(line), fmt, args);
  if (strncmp(line, "  in ", 5) == 0) {
    cy_parse_frame(lg, line);
    return;
  }
  if (strstr(line, "Backtrace:") || lg->have_msg)
    return;
  if (strncmp(p, "Load: ", 6) == 0)
    p += 6;
  n = strlen(p);
  if (n && p[n - 1] == '\n')
    n--;
  memcpy(lg->msg, p, n);
  lg->msg[n] = '\0';
  lg->have_msg = true;
}

/*
 * Copies `s` for quoting in a message: control characters become '?' so a
 * value cannot break the message's single line, and long values are cut
 * (on a UTF-8 boundary) with "..." so that one bad line cannot flood a log.
 */
static const char *show(char *out, size_t outlen, const char *s)
{
  size_t n = 0;

  if (!s)
    s = "";
  while (*s && n + 4 < outlen) {
    unsigned char c = (unsigned char)*s++;

    out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (*s) {
    while (n && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
      n--;
    if (n && (unsigned char)out[n - 1] >= 0xc0)
      n--;
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
  return out;
}

/*
 * Writes "FILE:LINE:COLUMN: KEY: reason", leaving out the position when
 * `line` is 0 and the key when `key` is NULL, and returns `code`. The root of
 * the document is named "top level".
 */
static int report(struct loader *ld, int code, const char *key, unsigned line,
                  unsigned col, const char *fmt, va_list ap)
{
  char reason[640];
  char where[48] = "";
  char shown[IDX_PATH_MAX + 64];

  if (!ld->err || !ld->errlen)
    return code;
  vsnprintf(reason, sizeof(reason), fmt, ap);
  if (line)
    snprintf(where, sizeof(where), "%u:%u:", line, col);
  /* Paths are built from the user's keys, which may hold anything. */
  if (key)
    key = key[0] ? show(shown, sizeof(shown), key) : "top level";
  snprintf(ld->err, ld->errlen, "%s:%s %s%s%s", ld->path, where,
           key ? key : "", key ? ": " : "", reason);
  return code;
}

static int fail_file(struct loader *ld, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_file(struct loader *ld, int code, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  code = report(ld, code, NULL, 0, 0, fmt, ap);
  va_end(ap);
  return code;
}

static int fail_pos(struct loader *ld, int code, const char *key,
                    unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int fail_pos(struct loader *ld, int code, const char *key,
                    unsigned line, unsigned col, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  code = report(ld, code, key, line, col, fmt, ap);
  va_end(ap);
  return code;
}

/* Finds the `nth` (0-based) entry for `path`; NULL if there is none. */
static const struct idx_entry *idx_find(const struct idx *idx,
                                        const char *path, unsigned nth)
{
  for (size_t i = 0; i < idx->count; i++)
    if (strcmp(idx->entries[i].path, path) == 0 && nth-- == 0)
      return &idx->entries[i];
  return NULL;
}

/* Fails with the position of `key`'s value, or without one if absent. */
static int fail_key(struct loader *ld, int code, const char *key,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_key(struct loader *ld, int code, const char *key,
                    const char *fmt, ...)
{
  const struct idx_entry *e = idx_find(ld->idx, key, 0);
  va_list ap;

  va_start(ap, fmt);
  code =
      report(ld, code, key, e ? e->val_line : 0, e ? e->val_col : 0, fmt, ap);
  va_end(ap);
  return code;
}

static void idx_free(struct idx *idx)
{
  if (!idx)
    return;
  if (idx->secret) {
    explicit_bzero(idx->secret, strlen(idx->secret));
    free(idx->secret);
  }
  /* Short scalars, a short API key among them, are copied into entries. */
  explicit_bzero(idx, sizeof(*idx));
  free(idx);
}

static void idx_add(struct idx *idx, const char *path, yaml_mark_t key,
                    const yaml_event_t *ev)
{
  struct idx_entry *e;

  /*
   * A document that loads has at most about a hundred keys (see
   * menu_fields); only a broken one can fill the index, and then positions
   * are best-effort anyway.
   */
  if (idx->count >= IDX_ENTRIES_MAX)
    return;
  e = &idx->entries[idx->count++];
  memset(e, 0, sizeof(*e));
  snprintf(e->path, sizeof(e->path), "%s", path);
  e->key_line = (unsigned)key.line + 1;
  e->key_col = (unsigned)key.column + 1;
  e->val_line = (unsigned)ev->start_mark.line + 1;
  e->val_col = (unsigned)ev->start_mark.column + 1;
  if (ev->type == YAML_SCALAR_EVENT &&
      ev->data.scalar.length < sizeof(e->text)) {
    memcpy(e->text, ev->data.scalar.value, ev->data.scalar.length);
    e->text[ev->data.scalar.length] = '\0';
    e->has_text = true;
  }
}

/* Handles one node event (scalar, alias, start of mapping or sequence). */
static int idx_node(struct loader *ld, struct idx_builder *b,
                    const yaml_event_t *ev)
{
  struct idx_frame *top = b->depth ? &b->frames[b->depth - 1] : NULL;
  bool is_start = ev->type == YAML_MAPPING_START_EVENT ||
                  ev->type == YAML_SEQUENCE_START_EVENT;
  yaml_mark_t key_mark = ev->start_mark;
  char path[IDX_PATH_MAX];
  bool tracked = true;
  int n = 0;

  if (top && top->is_map && top->want_key) {
    size_t len;

    if (ev->type != YAML_SCALAR_EVENT)
      return fail_pos(ld, VS_ERR_INVAL, top->path,
                      (unsigned)ev->start_mark.line + 1,
                      (unsigned)ev->start_mark.column + 1,
                      "a key must be a plain name, not a list, a mapping or "
                      "an alias");
    len = ev->data.scalar.length;
    top->key_ok = top->tracked && len < sizeof(top->key) &&
                  !memchr(ev->data.scalar.value, '\0', len);
    if (top->key_ok) {
      memcpy(top->key, ev->data.scalar.value, len);
      top->key[len] = '\0';
    }
    top->key_mark = ev->start_mark;
    top->want_key = false;
    return VS_OK;
  }
  if (!top) {
    path[0] = '\0';
  } else if (top->is_map) {
    top->want_key = true;
    tracked = top->tracked && top->key_ok;
    key_mark = top->key_mark;
    if (tracked)
      n = snprintf(path, sizeof(path), "%s%s%s", top->path,
                   top->path[0] ? "." : "", top->key);
  } else {
    tracked = top->tracked;
    if (tracked)
      n = snprintf(path, sizeof(path), "%s[%u]", top->path, top->next);
    top->next++;
  }
  if (n < 0 || (size_t)n >= sizeof(path))
    tracked = false;
  if (tracked) {
    idx_add(ld->idx, path, key_mark, ev);
    if (ev->type == YAML_SCALAR_EVENT &&
        strcmp(path, "telesign.api_key") == 0 && !ld->idx->secret) {
      ld->idx->secret =
          strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
      if (!ld->idx->secret)
        return fail_file(ld, VS_ERR_NOMEM, "out of memory");
    }
  }
  if (!is_start)
    return VS_OK;
  /*
   * The schema is four levels deep, so deeper nesting is an error whatever
   * it holds. Stopping here also matters for speed: libyaml's scanner does
   * work proportional to the nesting depth for every token, so a file of a
   * million '[' would otherwise take hours.
   */
  if (b->depth == IDX_DEPTH_MAX)
    return fail_pos(ld, VS_ERR_INVAL, tracked ? path : NULL,
                    (unsigned)ev->start_mark.line + 1,
                    (unsigned)ev->start_mark.column + 1,
                    "nested too deeply (a configuration has at most four "
                    "levels)");
  top = &b->frames[b->depth++];
  memset(top, 0, sizeof(*top));
  top->tracked = tracked;
  if (tracked)
    memcpy(top->path, path, sizeof(path));
  top->is_map = ev->type == YAML_MAPPING_START_EVENT;
  top->want_key = top->is_map;
  return VS_OK;
}

static int idx_syntax_error(struct loader *ld, const yaml_parser_t *p)
{
  const char *problem = p->problem ? p->problem : "unreadable YAML";

  if (p->error == YAML_MEMORY_ERROR)
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  /* The reader (encoding) stage counts bytes, not lines. */
  if (p->error == YAML_READER_ERROR)
    return fail_file(ld, VS_ERR_INVAL, "invalid YAML: %s at byte %zu", problem,
                     p->problem_offset);
  return fail_pos(ld, VS_ERR_INVAL, NULL, (unsigned)p->problem_mark.line + 1,
                  (unsigned)p->problem_mark.column + 1,
                  "invalid YAML: %s%s%s%s", problem, p->context ? " (" : "",
                  p->context ? p->context : "", p->context ? ")" : "");
}

/*
 * Walks the whole document with libyaml's event parser and records where
 * each key is. Only the first document counts: a second one would be
 * silently ignored by libcyaml, so it is refused here.
 */
static int idx_build(struct loader *ld, const unsigned char *data, size_t len)
{
  struct idx_builder b;
  yaml_parser_t parser;
  yaml_event_t ev;
  unsigned docs = 0;
  bool done = false;
  int rc = VS_OK;

  memset(&b, 0, sizeof(b));
  if (!yaml_parser_initialize(&parser))
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  yaml_parser_set_input_string(&parser, data, len);
  while (!done && rc == VS_OK) {
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = idx_syntax_error(ld, &parser);
      break;
    }
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (++docs > 1)
        rc = fail_pos(ld, VS_ERR_INVAL, NULL, (unsigned)ev.start_mark.line + 1,
                      (unsigned)ev.start_mark.column + 1,
                      "only one YAML document is allowed in the file");
      break;
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      rc = idx_node(ld, &b, &ev);
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      if (b.depth)
        b.depth--;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  return rc;
}

/* Appends to a fixed message buffer, silently cutting at its end. */
static void append(char *out, size_t outlen, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t outlen, size_t *len, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (*len + 1 >= outlen)
    return;
  va_start(ap, fmt);
  n = vsnprintf(out + *len, outlen - *len, fmt, ap);
  va_end(ap);
  if (n > 0)
    *len += (size_t)n < outlen - *len ? (size_t)n : outlen - *len - 1;
}

/* The schema fields a mapping's value is read with, by the mapping's key. */
static const cyaml_schema_field_t *
schema_children(const cyaml_schema_field_t *f)
{
  if (f->value.type == CYAML_MAPPING)
    return f->value.mapping.fields;
  if (f->value.type == CYAML_SEQUENCE &&
      f->value.sequence.entry->type == CYAML_MAPPING)
    return f->value.sequence.entry->mapping.fields;
  return NULL;
}

/* Finds the schema field for a dotted path; sequence indices are skipped. */
static const cyaml_schema_field_t *schema_field(const char *path)
{
  const cyaml_schema_field_t *fields = config_fields;
  const cyaml_schema_field_t *found = NULL;
  const char *p = path;

  while (*p) {
    size_t n = strcspn(p, ".[");

    if (!fields)
      return NULL;
    found = NULL;
    for (const cyaml_schema_field_t *f = fields; f->key; f++)
      if (strlen(f->key) == n && strncmp(f->key, p, n) == 0) {
        found = f;
        break;
      }
    if (!found)
      return NULL;
    p += n;
    if (*p == '[') {
      p = strchr(p, ']');
      if (!p)
        return NULL;
      p++;
    }
    if (*p == '.')
      p++;
    fields = schema_children(found);
  }
  return found;
}

/* The keys allowed in the mapping at `path` ("" is the top level). */
static const cyaml_schema_field_t *schema_keys_at(const char *path)
{
  const cyaml_schema_field_t *f;

  if (!path[0])
    return config_fields;
  f = schema_field(path);
  return f ? schema_children(f) : NULL;
}

/* Levenshtein distance, for "did you mean"; large for long strings. */
static unsigned edit_distance(const char *a, const char *b)
{
  unsigned row[65];
  size_t la = strlen(a);
  size_t lb = strlen(b);

  if (la > 64 || lb > 64)
    return 1000;
  for (size_t j = 0; j <= lb; j++)
    row[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    unsigned prev = row[0];

    row[0] = (unsigned)i;
    for (size_t j = 1; j <= lb; j++) {
      unsigned cur = row[j];
      unsigned best = prev + (a[i - 1] != b[j - 1]);

      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

/*
 * Explains an unknown key: the nearest allowed key when the unknown one looks
 * like a typo of it, or else the whole list, since a key in the wrong section
 * is the other usual mistake.
 */
static void unknown_key_reason(char *out, size_t outlen, const char *parent,
                               const char *key)
{
  const cyaml_schema_field_t *fields = schema_keys_at(parent);
  const cyaml_schema_field_t *best = NULL;
  unsigned best_d = 1000;
  size_t len = 0;

  append(out, outlen, &len, "unknown key");
  if (!fields)
    return;
  for (const cyaml_schema_field_t *f = fields; f->key; f++) {
    unsigned d = edit_distance(key, f->key);

    if (d < best_d) {
      best_d = d;
      best = f;
    }
  }
  if (best && best_d <= 2 && best_d < strlen(best->key)) {
    append(out, outlen, &len, " (did you mean '%s'?)", best->key);
    return;
  }
  append(out, outlen, &len, " (expected one of:");
  for (const cyaml_schema_field_t *f = fields; f->key; f++)
    append(out, outlen, &len, "%s %s", f == fields ? "" : ",", f->key);
  append(out, outlen, &len, ")");
}

static void enum_reason(char *out, size_t outlen, const char *path,
                        const char *value)
{
  const cyaml_schema_field_t *f = schema_field(path);
  char shown[SHOW_MAX];
  size_t len = 0;

  append(out, outlen, &len, "'%s' is not ", show(shown, sizeof(shown), value));
  if (!f || f->value.type != CYAML_ENUM) {
    append(out, outlen, &len, "an allowed value");
    return;
  }
  append(out, outlen, &len, "one of:");
  for (uint32_t i = 0; i < f->value.enumeration.count; i++)
    append(out, outlen, &len, "%s %s", i ? "," : "",
           f->value.enumeration.strings[i].str);
}

/* Names libcyaml's schema types and libyaml's events for a user. */
static const char *cy_words(const char *name)
{
  static const struct {
    const char *cy;
    const char *words;
  } words[] = {
      {"MAPPING", "a mapping of keys"},
      {"MAPPING_START", "a mapping of keys"},
      {"STRING", "a text value"},
      {"UINT", "a number"},
      {"INT", "a number"},
      {"ENUM", "a name"},
      {"BOOL", "true or false"},
      {"SEQUENCE", "a list"},
      {"SEQUENCE_START", "a list"},
      {"SCALAR", "a single value"},
      {"ALIAS", "an alias"},
  };

  for (size_t i = 0; i < ARRAY_LEN(words); i++)
    if (strcmp(words[i].cy, name) == 0)
      return words[i].words;
  return name;
}

/* Returns what follows `prefix` in `s`, or NULL if `s` does not start so. */
static const char *after(const char *s, const char *prefix)
{
  size_t n = strlen(prefix);

  return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/*
 * Rebuilds the dotted path of the error from libcyaml's backtrace, outermost
 * first. For errors about a key of a mapping (unknown, repeated, missing) or
 * about a sequence's length, the innermost line names the field or entry
 * libcyaml was last at, which is not the one in error, so it is dropped.
 */
static void cy_path(const struct cy_log *lg, bool drop_inner, char *out,
                    size_t outlen)
{
  size_t len = 0;

  out[0] = '\0';
  for (unsigned i = lg->nframes; i-- > 0;) {
    const struct cy_frame *f = &lg->frames[i];

    if (i == 0 && drop_inner)
      break;
    if (f->kind == CY_FIELD)
      append(out, outlen, &len, "%s%s", len ? "." : "", f->name);
    else if (f->kind == CY_ENTRY && f->entry > 0)
      append(out, outlen, &len, "[%u]", f->entry - 1);
  }
}

/* Turns what libcyaml logged about a failed load into one message. */
static int cy_report(struct loader *ld, cyaml_err_t cerr,
                     const struct cy_log *lg)
{
  const char *msg = lg->have_msg ? lg->msg : "";
  const struct idx_entry *e;
  char path[IDX_PATH_MAX * 2];
  char full[IDX_PATH_MAX * 2];
  char reason[512];
  char shown[SHOW_MAX];
  char expect[32];
  char got[32];
  const char *arg;
  bool drop;
  bool at_key = false;
  unsigned nth = 0;
  unsigned line = 0;
  unsigned col = 0;
  unsigned max;
  size_t len;

  /*
   * The index pass has already parsed this very text, so libyaml failing
   * now (without a problem to report) can only mean memory ran out.
   */
  if (cerr == CYAML_ERR_OOM || cerr == CYAML_ERR_LIBYAML_PARSER_INIT ||
      cerr == CYAML_ERR_LIBYAML_EVENT_INIT ||
      (cerr == CYAML_ERR_LIBYAML_PARSER &&
       (!msg[0] || strcmp(msg, "libyaml: (null)") == 0)))
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  drop = after(msg, "Unexpected key: ") ||
         after(msg, "Mapping field already seen: ") ||
         after(msg, "Missing required mapping field: ") ||
         after(msg, "Excessive entries") || after(msg, "Insufficient entries");
  cy_path(lg, drop, path, sizeof(path));
  snprintf(full, sizeof(full), "%s", path);
  if ((arg = after(msg, "Unexpected key: "))) {
    len = 0;
    append(full, sizeof(full), &len, "%s%s%s", path, path[0] ? "." : "", arg);
    unknown_key_reason(reason, sizeof(reason), path, arg);
    at_key = true;
  } else if ((arg = after(msg, "Mapping field already seen: "))) {
    len = 0;
    append(full, sizeof(full), &len, "%s%s%s", path, path[0] ? "." : "", arg);
    e = idx_find(ld->idx, full, 0);
    if (e)
      snprintf(reason, sizeof(reason),
               "duplicate key (it is already set on line %u)", e->key_line);
    else
      snprintf(reason, sizeof(reason), "duplicate key");
    at_key = true;
    nth = 1;
  } else if ((arg = after(msg, "Missing required mapping field: "))) {
    snprintf(reason, sizeof(reason), "missing required key '%s'",
             show(shown, sizeof(shown), arg));
  } else if (sscanf(msg, "Excessive entries (%u max)", &max) == 1) {
    snprintf(reason, sizeof(reason), "too many entries (at most %u)", max);
  } else if ((arg = after(msg, "Invalid ENUM value: "))) {
    enum_reason(reason, sizeof(reason), path, arg);
  } else if (after(msg, "Invalid ") && (arg = strstr(msg, " value: "))) {
    char value[SHOW_MAX];
    size_t n;

    arg += 8;
    n = strlen(arg);
    if (n >= 2 && arg[0] == '\'' && arg[n - 1] == '\'') {
      arg++;
      n -= 2;
    }
    snprintf(value, sizeof(value), "%.*s", (int)n, arg);
    snprintf(reason, sizeof(reason), "expected a whole number, not '%s'",
             show(shown, sizeof(shown), value));
  } else if (sscanf(msg, "Expecting %31[^,], got event: %31s", expect, got) ==
             2) {
    snprintf(reason, sizeof(reason), "expected %s, found %s%s",
             cy_words(expect), cy_words(got),
             strcmp(expect, "MAPPING") == 0 && strcmp(got, "SCALAR") == 0
                 ? " (a section with no keys must be removed or written {})"
                 : "");
  } else if ((arg = after(msg, "libyaml: "))) {
    snprintf(reason, sizeof(reason), "invalid YAML: %s",
             show(shown, sizeof(shown), arg));
  } else if (cerr == CYAML_ERR_ALIAS) {
    snprintf(reason, sizeof(reason),
             "aliases (*name) are not supported in this file");
  } else {
    snprintf(reason, sizeof(reason), "%s",
             msg[0] ? show(shown, sizeof(shown), msg) : cyaml_strerror(cerr));
  }
  e = idx_find(ld->idx, full, nth);
  if (e) {
    line = at_key ? e->key_line : e->val_line;
    col = at_key ? e->key_col : e->val_col;
  } else if (lg->nframes) {
    line = lg->frames[0].line;
    col = lg->frames[0].col;
  }
  return fail_pos(ld, VS_ERR_INVAL, full, line, col, "%s", reason);
}

/* The reading side: the whole file into memory, never more than 1 MiB. */
static int read_file(struct loader *ld, struct buf *b)
{
  char chunk[16384];
  int fd;
  int rc = VS_OK;

  fd = open(ld->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail_file(ld, VS_ERR_IO, "cannot read: %s", strerror(errno));
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = fail_file(ld, VS_ERR_IO, "cannot read: %s", strerror(errno));
      break;
    }
    if (n == 0)
      break;
    rc = buf_append(b, chunk, (size_t)n);
    if (rc == VS_ERR_LIMIT) {
      rc = fail_file(ld, VS_ERR_LIMIT,
                     "the file is over 1 MiB, which no configuration needs");
      break;
    }
    if (rc) {
      rc = fail_file(ld, rc, "out of memory");
      break;
    }
  }
  explicit_bzero(chunk, sizeof(chunk));
  close(fd);
  return rc;
}

#define CFG_STR(cfg, off) ((char **)((char *)(cfg) + (off)))
#define CFG_U32(cfg, off) ((uint32_t *)((char *)(cfg) + (off)))

/* How a string's bytes are checked. */
enum str_chars {
  CHARS_WORD, /* no spaces or control characters: names, URLs, numbers */
  CHARS_PATH, /* no control characters: file names may have spaces */
  CHARS_TEXT  /* spoken text: line breaks and tabs allowed */
};

struct str_rule {
  const char *key;
  size_t off;
  const char *def; /* NULL: filled in elsewhere */
  size_t min;
  size_t max;
  enum str_chars chars;
};

#define STR_RULE(key, member, def, min, max, chars)                           \
  {                                                                           \
    key, offsetof(struct config, member), def, min, max, chars                \
  }

static const struct str_rule str_rules[] = {
    STR_RULE("server.listen", server.listen, "127.0.0.1:8080", 1, 300,
             CHARS_WORD),
    STR_RULE("server.webhook_path", server.webhook_path, "/telesign/voice", 1,
             255, CHARS_WORD),
    STR_RULE("webhook.token", webhook.token, "", 0, 128, CHARS_WORD),
    STR_RULE("server.tls_cert", server.tls_cert, "", 0, 4095, CHARS_PATH),
    STR_RULE("server.tls_key", server.tls_key, "", 0, 4095, CHARS_PATH),
    STR_RULE("telesign.customer_id", telesign.customer_id, "", 0, 256,
             CHARS_WORD),
    STR_RULE("telesign.api_key", telesign.api_key, "", 0, 512, CHARS_WORD),
    STR_RULE("telesign.score_url", telesign.score_url, NULL, 1, 2048,
             CHARS_WORD),
    STR_RULE("telesign.virtual_number", telesign.virtual_number, "", 0,
             PHONE_MAX, CHARS_WORD),
    STR_RULE("telesign.account_lifecycle_event",
             telesign.account_lifecycle_event, "transact", 1, 32, CHARS_WORD),
    STR_RULE("telesign.ca_file", telesign.ca_file, "", 0, 4095, CHARS_PATH),
    /* Checked for its shape in check_screening(), with a better message. */
    STR_RULE("screening.default_country", screening.default_country, "1", 1,
             16, CHARS_WORD),
    STR_RULE("screening.block_message", screening.block_message,
             "We are unable to take your call.", 1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("screening.block_audio_url", screening.block_audio_url, "", 0,
             2048, CHARS_WORD),
    STR_RULE("screening.challenge.message", screening.challenge.message,
             "To be connected, press {digit}.", 1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("screening.challenge.retry_message",
             screening.challenge.retry_message, "That was not the right key.",
             1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("menu.greeting", menu.greeting, NULL, 1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("menu.language", menu.language, "en-US", 1, 35, CHARS_WORD),
    STR_RULE("menu.invalid_message", menu.invalid_message,
             "That is not a valid choice.", 1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("menu.goodbye_message", menu.goodbye_message, "Goodbye.", 1,
             MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("menu.unavailable_message", menu.unavailable_message,
             "No one is available to take your call. Please try again later.",
             1, MESSAGE_MAX, CHARS_TEXT),
    STR_RULE("store.path", store.path, "./var/voice-and-score.db", 1, 4095,
             CHARS_PATH),
    STR_RULE("store.url", store.url, "", 0, 2048, CHARS_WORD),
    STR_RULE("log.level", log.level, "info", 1, 16, CHARS_WORD),
    /* Checked for its shape in check_admin(). */
    STR_RULE("admin.listen", admin.listen, "127.0.0.1:8081", 0, 300,
             CHARS_WORD),
    STR_RULE("admin.token", admin.token, "", 0, 256, CHARS_WORD),
};

struct u32_rule {
  const char *key;
  size_t off;
  uint32_t def;
  uint32_t min;
  uint32_t max;
};

#define U32_RULE(key, member, def, min, max)                                  \
  {                                                                           \
    key, offsetof(struct config, member), def, min, max                       \
  }

static const struct u32_rule u32_rules[] = {
    U32_RULE("server.max_body", server.max_body, 65536, 1024,
             16 * 1024 * 1024),
    U32_RULE("server.max_connections", server.max_connections, 1024, 1,
             100000),
    U32_RULE("server.idle_timeout_s", server.idle_timeout_s, 30, 1, 3600),
    U32_RULE("telesign.timeout_ms", telesign.timeout_ms, 1500, 100, 10000),
    U32_RULE("telesign.max_connections", telesign.max_connections, 64, 1,
             10000),
    U32_RULE("telesign.breaker_failures", telesign.breaker_failures, 5, 0,
             1000),
    U32_RULE("telesign.breaker_cooldown_s", telesign.breaker_cooldown_s, 30, 1,
             3600),
    /* The defaults are the balanced preset (docs/screening-efficacy.md). */
    U32_RULE("screening.block_at", screening.block_at, 680, 0, 1000),
    /* At most block_at, checked in check_screening(). */
    U32_RULE("screening.challenge_at", screening.challenge_at, 250, 0, 1000),
    U32_RULE("screening.score_cache_ttl_s", screening.score_cache_ttl_s,
             2592000, 0, 31536000),
    /* Enough for a 30-day cache on a line of 10,000 calls a day (about
     * 110,000 distinct numbers in 30 days in docs/screening-efficacy.md). */
    U32_RULE("screening.max_numbers", screening.max_numbers, 131072, 1024,
             16777216),
    U32_RULE("screening.velocity.window_s", screening.velocity.window_s, 600,
             1, 86400),
    U32_RULE("screening.velocity.max_calls", screening.velocity.max_calls, 1,
             0, 30),
    U32_RULE("screening.challenge.attempts", screening.challenge.attempts, 2,
             1, 5),
    U32_RULE("screening.challenge.pass_ttl_s", screening.challenge.pass_ttl_s,
             2592000, 60, 31536000),
    U32_RULE("screening.challenge.fail_block_after",
             screening.challenge.fail_block_after, 1, 0, 100),
    U32_RULE("screening.challenge.fail_block_ttl_s",
             screening.challenge.fail_block_ttl_s, 604800, 60, 31536000),
    U32_RULE("menu.attempts", menu.attempts, 3, 1, 10),
    U32_RULE("store.retention_days", store.retention_days, 0, 0, 36500),
    U32_RULE("store.commit_wait_ms", store.commit_wait_ms, 250, 0, 10000),
    U32_RULE("store.answer_log_mib", store.answer_log_mib, 4, 0, 1024),
};

/*
 * Enums load as 0, their first name, when absent. The verdicts default to
 * challenge instead, so their presence is asked of the index like that of
 * numbers; every other enum's default is its first name.
 */
struct verdict_rule {
  const char *key;
  size_t off;
  enum config_verdict def;
};

#define CFG_VERDICT(cfg, off) ((enum config_verdict *)((char *)(cfg) + (off)))

static const struct verdict_rule verdict_rules[] = {
    {"screening.anonymous", offsetof(struct config, screening.anonymous),
     VERDICT_CHALLENGE},
    {"screening.on_score_error",
     offsetof(struct config, screening.on_score_error), VERDICT_CHALLENGE},
    {"screening.velocity.action",
     offsetof(struct config, screening.velocity.action), VERDICT_CHALLENGE},
};

_Static_assert(PROVIDER_TELESIGN == 0 && SCORE_API_INTELLIGENCE == 0 &&
                   AUTH_HMAC == 0 && MODE_ENFORCE == 0 &&
                   DECIDE_BY_SCORE == 0 && BLOCK_ACTION_MESSAGE == 0 &&
                   CALLER_ID_VIRTUAL == 0 && VERIFY_LOG == 0 &&
                   PRESET_BALANCED == 0 && LOG_FORMAT_LOGFMT == 0 &&
                   STORE_DRIVER_SQLITE == 0,
               "an enum's default must be its first value");

/*
 * The presets: values that replace a key's default when the file does not
 * set the key itself. Balanced is the defaults of the rules above; the
 * traffic simulator chose all three (docs/screening-efficacy.md). Each
 * key named here is a u32 or verdict rule's; docs/screening-efficacy.md
 * gives the simulation that chose the values.
 */
struct preset_value {
  const char *key;
  uint32_t value; /* a number, or an enum config_verdict */
};

static const struct preset_value preset_open[] = {
    {"screening.block_at", 800},
    {"screening.challenge_at", 650},
    {"screening.anonymous", VERDICT_ALLOW},
    {"screening.on_score_error", VERDICT_ALLOW},
    {"screening.velocity.max_calls", 3},
    {"screening.challenge.fail_block_after", 3},
};

static const struct preset_value preset_strict[] = {
    {"screening.block_at", 600},
    {"screening.challenge_at", 0},
    {"screening.velocity.max_calls", 2},
    {"screening.velocity.action", VERDICT_BLOCK},
    {"screening.challenge.fail_block_after", 2},
};

/* Sets `key` to `value` in `cfg`, through the rule that names it. */
static void set_rule_value(struct config *cfg, const char *key, uint32_t value)
{
  for (size_t i = 0; i < ARRAY_LEN(u32_rules); i++)
    if (strcmp(u32_rules[i].key, key) == 0)
      *CFG_U32(cfg, u32_rules[i].off) = value;
  for (size_t i = 0; i < ARRAY_LEN(verdict_rules); i++)
    if (strcmp(verdict_rules[i].key, key) == 0)
      *CFG_VERDICT(cfg, verdict_rules[i].off) = (enum config_verdict)value;
}

/* Applies the preset to every key of it the file leaves unset. */
static void apply_preset(struct loader *ld, struct config *cfg)
{
  const struct preset_value *v = NULL;
  size_t n = 0;

  if (cfg->screening.preset == PRESET_OPEN) {
    v = preset_open;
    n = ARRAY_LEN(preset_open);
  } else if (cfg->screening.preset == PRESET_STRICT) {
    v = preset_strict;
    n = ARRAY_LEN(preset_strict);
  }
  for (size_t i = 0; i < n; i++)
    if (!idx_find(ld->idx, v[i].key, 0))
      set_rule_value(cfg, v[i].key, v[i].value);
}

static const char *const lifecycle_events[] = {"create", "sign-in", "transact",
                                               "update", "delete"};

static int set_string(struct loader *ld, char **slot, const char *value)
{
  char *copy = strdup(value);

  if (!copy)
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  free(*slot);
  *slot = copy;
  return VS_OK;
}

/*
 * Fills in every default. Numbers are 0 both when absent and when written
 * as 0, so their presence is asked of the index, which a loaded document
 * always fits in whole.
 */
static int apply_defaults(struct loader *ld, struct config *cfg)
{
  int rc;

  for (size_t i = 0; i < ARRAY_LEN(str_rules); i++) {
    char **slot = CFG_STR(cfg, str_rules[i].off);

    if (!*slot && str_rules[i].def) {
      rc = set_string(ld, slot, str_rules[i].def);
      if (rc)
        return rc;
    }
  }
  if (!cfg->telesign.score_url) {
    rc = set_string(ld, &cfg->telesign.score_url,
                    cfg->telesign.score_api == SCORE_API_LEGACY
                        ? CONFIG_DEFAULT_LEGACY_URL
                        : CONFIG_DEFAULT_INTELLIGENCE_URL);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < ARRAY_LEN(u32_rules); i++)
    if (!idx_find(ld->idx, u32_rules[i].key, 0))
      *CFG_U32(cfg, u32_rules[i].off) = u32_rules[i].def;
  for (size_t i = 0; i < ARRAY_LEN(verdict_rules); i++)
    if (!idx_find(ld->idx, verdict_rules[i].key, 0))
      *CFG_VERDICT(cfg, verdict_rules[i].off) = verdict_rules[i].def;
  if (!idx_find(ld->idx, "log.mask_numbers", 0))
    cfg->log.mask_numbers = true;
  apply_preset(ld, cfg);
  return VS_OK;
}

/* Replaces a credential with its environment variable when that is set. */
static int env_override(struct loader *ld, char **slot, const char *name,
                        bool *from_env)
{
  const char *v = getenv(name);
  char *copy;

  if (!v || !*v)
    return VS_OK;
  copy = strdup(v);
  if (!copy)
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  if (*slot) {
    explicit_bzero(*slot, strlen(*slot));
    free(*slot);
  }
  *slot = copy;
  *from_env = true;
  return VS_OK;
}

static bool all_digits(const char *s)
{
  if (!*s)
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/*
 * Numbers must be written in plain decimal. libcyaml takes whatever strtoull
 * takes, so "010" would be eight and "1e3" one, neither of which anyone
 * means.
 */
static int check_u32(struct loader *ld, const struct config *cfg,
                     const struct u32_rule *r)
{
  const struct idx_entry *e = idx_find(ld->idx, r->key, 0);
  uint32_t v = *CFG_U32(cfg, r->off);
  char shown[SHOW_MAX];

  if (!e)
    return VS_OK;
  if (!e->has_text || !all_digits(e->text) ||
      (e->text[0] == '0' && e->text[1]))
    return fail_key(ld, VS_ERR_INVAL, r->key,
                    "'%s' is not a plain decimal number",
                    show(shown, sizeof(shown), e->has_text ? e->text : "..."));
  if (v < r->min || v > r->max)
    return fail_key(ld, VS_ERR_INVAL, r->key,
                    "must be between %u and %u, not %u", (unsigned)r->min,
                    (unsigned)r->max, (unsigned)v);
  return VS_OK;
}

/* Length and character checks shared by every string. */
static int check_string(struct loader *ld, const char *key, const char *s,
                        size_t min, size_t max, enum str_chars chars)
{
  size_t n = strlen(s);

  if (n < min)
    return fail_key(ld, VS_ERR_INVAL, key, "must not be empty");
  if (n > max)
    return fail_key(ld, VS_ERR_INVAL, key,
                    "is %zu bytes long, more than the %zu allowed", n, max);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool ctl = *p < 0x20 || *p == 0x7f;

    if (chars == CHARS_WORD && (ctl || *p == ' '))
      return fail_key(ld, VS_ERR_INVAL, key,
                      "must not contain spaces or control characters");
    if (chars == CHARS_PATH && ctl)
      return fail_key(ld, VS_ERR_INVAL, key,
                      "must not contain control characters");
    if (chars == CHARS_TEXT && ctl && *p != '\n' && *p != '\t')
      return fail_key(ld, VS_ERR_INVAL, key,
                      "must not contain control characters other than line "
                      "breaks and tabs");
  }
  return VS_OK;
}

/* A host name as in RFC 1123: dot-separated labels of letters, digits, -. */
static bool valid_hostname(const char *h, size_t n)
{
  size_t label = 0;

  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = h[i];

    if (c == '.') {
      if (label == 0 || h[i - 1] == '-')
        return false;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-'))
      return false;
    if (c == '-' && label == 0)
      return false;
    if (++label > 63)
      return false;
  }
  return label > 0 && h[n - 1] != '-';
}

/* Returns why `s` is not "host:port", or NULL if it is. */
static const char *listen_problem(const char *s)
{
  const char *host = s;
  const char *port;
  size_t hlen;
  char addr[64];
  unsigned long p;

  if (s[0] == '[') {
    const char *close = strchr(s, ']');

    if (!close)
      return "an IPv6 address must be closed with ']', as in [::1]:8080";
    host = s + 1;
    hlen = (size_t)(close - host);
    if (close[1] != ':')
      return "expected host:port, as in [::1]:8080";
    port = close + 2;
    if (hlen == 0 || hlen >= sizeof(addr))
      return "the IPv6 address is not valid";
    memcpy(addr, host, hlen);
    addr[hlen] = '\0';
    {
      struct in6_addr a6;

      if (inet_pton(AF_INET6, addr, &a6) != 1)
        return "the IPv6 address is not valid";
    }
  } else {
    const char *colon = strrchr(s, ':');
    bool numeric = true;

    if (!colon)
      return "expected host:port, as in 127.0.0.1:8080";
    hlen = (size_t)(colon - s);
    port = colon + 1;
    if (memchr(s, ':', hlen))
      return "an IPv6 address must be in brackets, as in [::1]:8080";
    if (hlen == 0)
      return "the host is missing (use 0.0.0.0:PORT to listen on every "
             "address)";
    for (size_t i = 0; i < hlen; i++)
      if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
        numeric = false;
    if (numeric) {
      struct in_addr a4;

      if (hlen >= sizeof(addr))
        return "the IPv4 address is not valid";
      memcpy(addr, s, hlen);
      addr[hlen] = '\0';
      if (inet_pton(AF_INET, addr, &a4) != 1)
        return "the IPv4 address is not valid";
    } else if (!valid_hostname(s, hlen)) {
      return "the host is not a valid name or address";
    }
  }
  if (!all_digits(port) || strlen(port) > 5)
    return "the port must be a number from 0 to 65535";
  p = strtoul(port, NULL, 10);
  if (p > 65535)
    return "the port must be a number from 0 to 65535";
  return NULL;
}

/* A URL's scheme (https://, or http:// too when `http_ok`) and a host. */
static int check_url(struct loader *ld, const char *key, const char *url,
                     bool http_ok)
{
  char shown[SHOW_MAX];
  size_t skip = after(url, "https://")             ? 8
                : http_ok && after(url, "http://") ? 7
                                                   : 0;

  if (!skip)
    return fail_key(ld, VS_ERR_INVAL, key, "'%s' must start with %s",
                    show(shown, sizeof(shown), url),
                    http_ok ? "https:// or http://" : "https://");
  if (!url[skip] || url[skip] == '/' || url[skip] == ':')
    return fail_key(ld, VS_ERR_INVAL, key, "'%s' has no host after the scheme",
                    show(shown, sizeof(shown), url));
  return VS_OK;
}

/* A phone number as TeleSign takes it: country code and digits only. */
static bool valid_phone(const char *s)
{
  size_t n = strlen(s);

  return all_digits(s) && n >= PHONE_MIN && n <= PHONE_MAX;
}

static int check_fields(struct loader *ld, const struct config *cfg)
{
  char shown[SHOW_MAX];
  const char *why;
  int rc;

  for (size_t i = 0; i < ARRAY_LEN(u32_rules); i++) {
    rc = check_u32(ld, cfg, &u32_rules[i]);
    if (rc)
      return rc;
  }
  for (size_t i = 0; i < ARRAY_LEN(str_rules); i++) {
    const struct str_rule *r = &str_rules[i];
    const char *s = *CFG_STR(cfg, r->off);
    const char *key = r->key;

    if (!s)
      continue; /* the greeting, built once the options are checked */
    /* A value from the environment is named by its variable. */
    if (ld->customer_id_from_env && strcmp(key, "telesign.customer_id") == 0)
      key = "TELESIGN_CUSTOMER_ID";
    if (ld->api_key_from_env && strcmp(key, "telesign.api_key") == 0)
      key = "TELESIGN_API_KEY";
    rc = check_string(ld, key, s, r->min, r->max, r->chars);
    if (rc)
      return rc;
  }
  why = listen_problem(cfg->server.listen);
  if (why)
    return fail_key(ld, VS_ERR_INVAL, "server.listen", "'%s': %s",
                    show(shown, sizeof(shown), cfg->server.listen), why);
  if (cfg->server.webhook_path[0] != '/')
    return fail_key(ld, VS_ERR_INVAL, "server.webhook_path",
                    "'%s' must start with '/'",
                    show(shown, sizeof(shown), cfg->server.webhook_path));
  if (!cfg->server.tls_cert[0] != !cfg->server.tls_key[0])
    return fail_key(ld, VS_ERR_INVAL,
                    cfg->server.tls_cert[0] ? "server.tls_cert"
                                            : "server.tls_key",
                    "tls_cert and tls_key go together: set both to serve "
                    "HTTPS, or neither for plain HTTP");
  if (cfg->webhook.verify == VERIFY_ENFORCE && !cfg->telesign.api_key[0])
    return fail_key(ld, VS_ERR_INVAL, "webhook.verify",
                    "enforce needs telesign.api_key (or TELESIGN_API_KEY) "
                    "to check signatures with");
  if (cfg->webhook.token[0] &&
      (strlen(cfg->webhook.token) < 16 ||
       strspn(cfg->webhook.token,
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
              "qrstuvwxyz0123456789-_") != strlen(cfg->webhook.token)))
    return fail_key(ld, VS_ERR_INVAL, "webhook.token",
                    "must be 16 to 128 letters, digits, '-' or '_' (it is "
                    "part of the URL TeleSign posts to, and a secret)");
  if (strcmp(cfg->server.webhook_path, "/health") == 0)
    return fail_key(ld, VS_ERR_INVAL, "server.webhook_path",
                    "'/health' is taken by the health check");
  if (strchr(cfg->telesign.customer_id, ':'))
    return fail_key(ld, VS_ERR_INVAL,
                    ld->customer_id_from_env ? "TELESIGN_CUSTOMER_ID"
                                             : "telesign.customer_id",
                    "must not contain ':'");
  rc = check_url(ld, "telesign.score_url", cfg->telesign.score_url, true);
  if (rc)
    return rc;
  if (cfg->telesign.virtual_number[0] &&
      !valid_phone(cfg->telesign.virtual_number))
    return fail_key(ld, VS_ERR_INVAL, "telesign.virtual_number",
                    "'%s' must be empty or %d to %d digits with the country "
                    "code (no '+', spaces or dashes)",
                    show(shown, sizeof(shown), cfg->telesign.virtual_number),
                    PHONE_MIN, PHONE_MAX);
  {
    bool known = false;

    for (size_t i = 0; i < ARRAY_LEN(lifecycle_events); i++)
      if (strcmp(cfg->telesign.account_lifecycle_event, lifecycle_events[i]) ==
          0)
        known = true;
    if (!known)
      return fail_key(
          ld, VS_ERR_INVAL, "telesign.account_lifecycle_event",
          "'%s' is not one of: create, sign-in, transact, update, delete",
          show(shown, sizeof(shown), cfg->telesign.account_lifecycle_event));
  }
  for (const char *p = cfg->menu.language; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-'))
      return fail_key(ld, VS_ERR_INVAL, "menu.language",
                      "'%s' is not a language tag such as en-US",
                      show(shown, sizeof(shown), cfg->menu.language));
  if (log_level_parse(cfg->log.level) < 0)
    return fail_key(ld, VS_ERR_INVAL, "log.level",
                    "'%s' is not one of: error, warn, info, debug",
                    show(shown, sizeof(shown), cfg->log.level));
  return VS_OK;
}

/* How many times `needle` occurs in `s`, without overlaps. */
static unsigned count_of(const char *s, const char *needle)
{
  size_t n = strlen(needle);
  unsigned count = 0;

  while ((s = strstr(s, needle))) {
    count++;
    s += n;
  }
  return count;
}

/* The checks of screening that involve more than one key or a format. */
static int check_screening(struct loader *ld, struct config *cfg)
{
  char shown[SHOW_MAX];
  unsigned n;
  int rc;

  if (!phone_country_code_valid(cfg->screening.default_country))
    return fail_key(
        ld, VS_ERR_INVAL, "screening.default_country",
        "'%s' is not a country code: 1 to 3 digits, not "
        "starting with 0 and without '+' (such as 1 or 44)",
        show(shown, sizeof(shown), cfg->screening.default_country));
  /* An unset challenge_at follows a lower block_at down, so that a file
   * written before the challenge band existed keeps its meaning. */
  if (!idx_find(ld->idx, "screening.challenge_at", 0) &&
      cfg->screening.challenge_at > cfg->screening.block_at)
    cfg->screening.challenge_at = cfg->screening.block_at;
  if (cfg->screening.challenge_at > cfg->screening.block_at)
    return fail_key(ld, VS_ERR_INVAL, "screening.challenge_at",
                    "challenge_at (%u) must not be above block_at (%u)",
                    (unsigned)cfg->screening.challenge_at,
                    (unsigned)cfg->screening.block_at);
  if (cfg->screening.block_audio_url[0]) {
    rc = check_url(ld, "screening.block_audio_url",
                   cfg->screening.block_audio_url, false);
    if (rc)
      return rc;
  } else if (cfg->screening.block_action == BLOCK_ACTION_PLAY) {
    if (idx_find(ld->idx, "screening.block_audio_url", 0))
      return fail_key(ld, VS_ERR_INVAL, "screening.block_audio_url",
                      "must not be empty when block_action is play");
    return fail_key(ld, VS_ERR_INVAL, "screening.block_action",
                    "play needs screening.block_audio_url, the https:// URL "
                    "of the audio to play");
  }
  n = count_of(cfg->screening.challenge.message, "{digit}");
  if (n == 0)
    return fail_key(ld, VS_ERR_INVAL, "screening.challenge.message",
                    "must contain {digit}, where the key to press is spoken");
  if (n > 1)
    return fail_key(ld, VS_ERR_INVAL, "screening.challenge.message",
                    "contains {digit} %u times; it must appear exactly once",
                    n);
  return VS_OK;
}

/* store.url must be a PostgreSQL URI when the driver is postgres. */
static int check_store(struct loader *ld, struct config *cfg)
{
  const char *url = cfg->store.url;
  char shown[SHOW_MAX];

  cfg->store.location = cfg->store.path;
  if (cfg->store.driver != STORE_DRIVER_POSTGRES)
    return VS_OK;
  if (!url[0])
    return fail_key(ld, VS_ERR_INVAL, "store.driver",
                    "postgres needs store.url, such as "
                    "postgresql://voice@localhost/voice");
  if (strncmp(url, "postgresql://", 13) != 0 &&
      strncmp(url, "postgres://", 11) != 0)
    return fail_key(ld, VS_ERR_INVAL, "store.url",
                    "'%s' is not a postgresql:// URI",
                    show(shown, sizeof(shown), url));
  cfg->store.location = url;
  return VS_OK;
}

/* 1 when `listen`'s host is a loopback address (or empty: all, so no). */
static bool listen_is_loopback(const char *listen)
{
  const char *colon = strrchr(listen, ':');
  size_t n = colon ? (size_t)(colon - listen) : strlen(listen);

  return (n == 9 && strncmp(listen, "localhost", 9) == 0) ||
         (n == 5 && strncmp(listen, "[::1]", 5) == 0) ||
         (n >= 4 && strncmp(listen, "127.", 4) == 0);
}

/*
 * The admin listener shows every caller's number and can change the
 * lists: anywhere but loopback it needs a token, and it never shares the
 * webhook's address.
 */
static int check_admin(struct loader *ld, const struct config *cfg)
{
  const char *listen = cfg->admin.listen;
  const char *colon = strrchr(listen, ':');
  char shown[SHOW_MAX];

  if (!listen[0])
    return VS_OK;
  if (!colon || !colon[1] || !all_digits(colon + 1))
    return fail_key(ld, VS_ERR_INVAL, "admin.listen",
                    "'%s' is not host:port (such as 127.0.0.1:8081), or "
                    "\"\" to turn the admin listener off",
                    show(shown, sizeof(shown), listen));
  if (strcmp(listen, cfg->server.listen) == 0 && strcmp(colon, ":0") != 0)
    return fail_key(ld, VS_ERR_INVAL, "admin.listen",
                    "must differ from server.listen: the admin API is "
                    "never served on the webhook's port");
  if (!cfg->admin.token[0] && !listen_is_loopback(listen))
    return fail_key(ld, VS_ERR_INVAL, "admin.listen",
                    "'%s' is not a loopback address, so admin.token must be "
                    "set (a bearer token of your choosing)",
                    show(shown, sizeof(shown), listen));
  return VS_OK;
}

static int check_options(struct loader *ld, const struct config *cfg)
{
  const struct config_menu_option *opts = cfg->menu.options;
  char key[64];
  char shown[SHOW_MAX];
  int rc;

  if (cfg->menu.options_count == 0 || !opts)
    return fail_key(ld, VS_ERR_INVAL, "menu.options",
                    "at least one option is required");
  for (unsigned i = 0; i < cfg->menu.options_count; i++) {
    const char *d = opts[i].digit;

    snprintf(key, sizeof(key), "menu.options[%u].digit", i);
    if (strlen(d) != 1 || !strchr("0123456789*#", d[0]))
      return fail_key(ld, VS_ERR_INVAL, key,
                      "'%s' must be exactly one of 0-9, * or # (write * "
                      "and # in quotes, as in digit: '#')",
                      show(shown, sizeof(shown), d));
    for (unsigned j = 0; j < i; j++)
      if (strcmp(opts[j].digit, d) == 0)
        return fail_key(ld, VS_ERR_INVAL, key,
                        "'%s' is already used by menu.options[%u]", d, j);
    snprintf(key, sizeof(key), "menu.options[%u].name", i);
    rc = check_string(ld, key, opts[i].name, 1, OPTION_NAME_MAX, CHARS_PATH);
    if (rc)
      return rc;
    snprintf(key, sizeof(key), "menu.options[%u].dial", i);
    if (!valid_phone(opts[i].dial))
      return fail_key(ld, VS_ERR_INVAL, key,
                      "'%s' must be %d to %d digits with the country code "
                      "(no '+', spaces or dashes)",
                      show(shown, sizeof(shown), opts[i].dial), PHONE_MIN,
                      PHONE_MAX);
  }
  return VS_OK;
}

/*
 * The default greeting reads the menu out: "Thank you for calling. For
 * Sales, press 1. For Support, press 2." With at most 12 options of at most
 * 63 bytes each it stays under the 1000 bytes a message may have.
 */
static int build_greeting(struct loader *ld, struct config *cfg)
{
  struct buf b;
  int rc;

  buf_init(&b, MESSAGE_MAX);
  rc = buf_printf(&b, "Thank you for calling.");
  for (unsigned i = 0; !rc && i < cfg->menu.options_count; i++) {
    const struct config_menu_option *o = &cfg->menu.options[i];
    const char *press = o->digit[0] == '*'   ? "star"
                        : o->digit[0] == '#' ? "pound"
                                             : o->digit;

    rc = buf_printf(&b, " For %s, press %s.", o->name, press);
  }
  if (rc) {
    buf_free(&b);
    return fail_key(ld, rc == VS_ERR_LIMIT ? VS_ERR_LIMIT : VS_ERR_NOMEM,
                    "menu.greeting",
                    rc == VS_ERR_LIMIT
                        ? "the menu is too long to read out; write a shorter "
                          "greeting yourself"
                        : "out of memory");
  }
  cfg->menu.greeting = buf_detach(&b);
  return VS_OK;
}

static int check_credentials(struct loader *ld, const struct config *cfg)
{
  if (cfg->telesign.provider != PROVIDER_TELESIGN)
    return VS_OK;
  if (cfg->telesign.customer_id[0] && cfg->telesign.api_key[0])
    return VS_OK;
  return fail_file(
      ld, VS_ERR_INVAL,
      "telesign.provider is telesign but no credentials are set: put "
      "telesign.customer_id and telesign.api_key in the file or set "
      "TELESIGN_CUSTOMER_ID and TELESIGN_API_KEY (or use provider: "
      "simulator to try the server without a TeleSign account)");
}

/* Everything after libcyaml has loaded the document. */
static int finish(struct loader *ld, struct config *cfg)
{
  int rc;

  cfg->path = strdup(ld->path);
  if (!cfg->path)
    return fail_file(ld, VS_ERR_NOMEM, "out of memory");
  rc = apply_defaults(ld, cfg);
  if (!rc)
    rc = env_override(ld, &cfg->telesign.customer_id, "TELESIGN_CUSTOMER_ID",
                      &ld->customer_id_from_env);
  if (!rc)
    rc = env_override(ld, &cfg->telesign.api_key, "TELESIGN_API_KEY",
                      &ld->api_key_from_env);
  if (!rc)
    rc = check_fields(ld, cfg);
  if (!rc)
    rc = check_screening(ld, cfg);
  if (!rc)
    rc = check_admin(ld, cfg);
  if (!rc)
    rc = check_store(ld, cfg);
  if (!rc)
    rc = check_options(ld, cfg);
  if (!rc && !cfg->menu.greeting)
    rc = build_greeting(ld, cfg);
  if (!rc)
    rc = ld->skip_credentials ? VS_OK : check_credentials(ld, cfg);
  return rc;
}

/*
 * The policy version: 64-bit FNV-1a of the file's bytes exactly as read,
 * as 16 lowercase hex digits. It names the contents, not the meaning: any
 * change, a comment's included, gives a new version.
 */
static void policy_version(char out[17], const uint8_t *data, size_t len)
{
  uint64_t h = UINT64_C(0xcbf29ce484222325);

  for (size_t i = 0; i < len; i++) {
    h ^= data[i];
    h *= UINT64_C(0x100000001b3);
  }
  snprintf(out, 17, "%016" PRIx64, h);
}

/*
 * Masks `secret` wherever it appears in the message, and a cut-off start of
 * it at the very end. No message is meant to hold the API key; this is the
 * second line of defence, should one ever quote a value that turns out to
 * be the key. Very short values are left alone: they cannot be a real key
 * and masking them would garble the message.
 */
static void scrub(char *err, size_t errlen, const char *secret)
{
  size_t slen;
  size_t len;
  char *p;

  if (!err || !errlen || !secret)
    return;
  slen = strlen(secret);
  if (slen < 6)
    return;
  while ((p = strstr(err, secret)))
    memset(p, '*', slen);
  len = strlen(err);
  for (size_t k = slen - 1; k >= 6; k--)
    if (k <= len && memcmp(err + len - k, secret, k) == 0) {
      memset(err + len - k, '*', k);
      break;
    }
}

int config_load(const char *path, struct config **out, char *err,
                size_t errlen)
{
  return config_load_as(path, 1, out, err, errlen);
}

int config_load_as(const char *path, int for_lookups, struct config **out,
                   char *err, size_t errlen)
{
  struct loader ld;
  struct cy_log lg;
  struct buf file;
  struct config *cfg = NULL;
  cyaml_config_t cy;
  cyaml_err_t cerr;
  const uint8_t *data;
  int rc;

  memset(&ld, 0, sizeof(ld));
  memset(&lg, 0, sizeof(lg));
  memset(&cy, 0, sizeof(cy));
  buf_init(&file, CONFIG_FILE_MAX);
  if (err && errlen)
    err[0] = '\0';
  if (!path || !out)
    return vs_fail(err, errlen, VS_ERR_INVAL, "config_load: no file given");
  ld.path = path;
  ld.err = err;
  ld.errlen = errlen;
  ld.skip_credentials = !for_lookups;
  ld.idx = calloc(1, sizeof(*ld.idx));
  if (!ld.idx) {
    rc = fail_file(&ld, VS_ERR_NOMEM, "out of memory");
    goto out;
  }
  rc = read_file(&ld, &file);
  if (rc)
    goto out;
  /* An empty file has no buffer; both parsers want a pointer. */
  data = file.data ? (const uint8_t *)file.data : (const uint8_t *)"";
  rc = idx_build(&ld, data, file.len);
  if (rc)
    goto out;
  cy.log_fn = cy_log_fn;
  cy.log_ctx = &lg;
  cy.mem_fn = cy_mem;
  cy.log_level = CYAML_LOG_ERROR;
  /*
   * Aliases are refused: a configuration has no use for them, and replaying
   * them is how a small file grows into a huge document.
   */
  cy.flags = CYAML_CFG_NO_ALIAS;
  cerr = cyaml_load_data(data, file.len, &cy, &config_schema,
                         (cyaml_data_t **)&cfg, NULL);
  if (cerr != CYAML_OK) {
    cfg = NULL;
    rc = cy_report(&ld, cerr, &lg);
    goto out;
  }
  /* A document with no keys at all loads as NULL. */
  if (!cfg) {
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
      rc = fail_file(&ld, VS_ERR_NOMEM, "out of memory");
      goto out;
    }
  }
  policy_version(cfg->policy_version, data, file.len);
  rc = finish(&ld, cfg);
  if (rc)
    goto out;
  *out = cfg;
  cfg = NULL;

out:
  if (rc) {
    scrub(err, errlen, getenv("TELESIGN_API_KEY"));
    scrub(err, errlen, ld.idx ? ld.idx->secret : NULL);
    scrub(err, errlen, cfg ? cfg->telesign.api_key : NULL);
  }
  config_free(cfg);
  if (file.data)
    explicit_bzero(file.data, file.len);
  buf_free(&file);
  idx_free(ld.idx);
  return rc;
}

void config_free(struct config *cfg)
{
  if (!cfg)
    return;
  free(cfg->path);
  free(cfg->server.listen);
  free(cfg->server.webhook_path);
  free(cfg->server.tls_cert);
  free(cfg->server.tls_key);
  if (cfg->webhook.token) {
    explicit_bzero(cfg->webhook.token, strlen(cfg->webhook.token));
    free(cfg->webhook.token);
  }
  free(cfg->telesign.customer_id);
  if (cfg->telesign.api_key) {
    explicit_bzero(cfg->telesign.api_key, strlen(cfg->telesign.api_key));
    free(cfg->telesign.api_key);
  }
  free(cfg->telesign.score_url);
  free(cfg->telesign.virtual_number);
  free(cfg->telesign.account_lifecycle_event);
  free(cfg->telesign.ca_file);
  free(cfg->screening.default_country);
  free(cfg->screening.block_message);
  free(cfg->screening.block_audio_url);
  free(cfg->screening.challenge.message);
  free(cfg->screening.challenge.retry_message);
  free(cfg->menu.greeting);
  free(cfg->menu.language);
  free(cfg->menu.invalid_message);
  free(cfg->menu.goodbye_message);
  free(cfg->menu.unavailable_message);
  if (cfg->menu.options) {
    for (unsigned i = 0; i < cfg->menu.options_count; i++) {
      free(cfg->menu.options[i].digit);
      free(cfg->menu.options[i].name);
      free(cfg->menu.options[i].dial);
    }
    free(cfg->menu.options);
  }
  free(cfg->store.path);
  free(cfg->store.url);
  free(cfg->log.level);
  free(cfg->admin.listen);
  if (cfg->admin.token) {
    explicit_bzero(cfg->admin.token, strlen(cfg->admin.token));
    free(cfg->admin.token);
  }
  free(cfg);
}

const struct config_menu_option *config_menu_option(const struct config *cfg,
                                                    char digit)
{
  if (!cfg || !digit)
    return NULL;
  for (unsigned i = 0; i < cfg->menu.options_count; i++)
    if (cfg->menu.options[i].digit[0] == digit)
      return &cfg->menu.options[i];
  return NULL;
}

const char *config_provider_name(enum config_provider p)
{
  switch (p) {
  case PROVIDER_TELESIGN:
    return "telesign";
  case PROVIDER_SIMULATOR:
    return "simulator";
  }
  return "unknown";
}
