/*
 * The server's configuration: one YAML file, loaded and validated at start.
 *
 * config_load() reads the file with libcyaml, fills in the defaults below,
 * applies the TELESIGN_CUSTOMER_ID / TELESIGN_API_KEY environment overrides,
 * and checks every value. A file that fails any check is refused with one
 * message of the form "FILE:LINE:COLUMN: KEY: reason" (line and column of
 * the offending key or value in the file), so that a user can go straight to
 * the mistake.
 *
 * A struct config is immutable once loaded and is read by the loop thread
 * (and, for store.path, the store worker). Strings are NUL-terminated and
 * never NULL after a successful load: unset optional strings are "".
 */
#ifndef VS_CONFIG_CONFIG_H
#define VS_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum config_provider {
  PROVIDER_TELESIGN, /* real lookups against telesign.score_url */
  PROVIDER_SIMULATOR /* built-in deterministic scores, no network */
};

enum config_score_api {
  SCORE_API_INTELLIGENCE, /* POST phone_number=...  to score_url */
  SCORE_API_LEGACY        /* POST to score_url/<number> */
};

enum config_auth {
  AUTH_HMAC, /* TeleSign TSA HMAC-SHA256 signing */
  AUTH_BASIC /* HTTP Basic customer_id:api_key */
};

enum config_on_error {
  ON_ERROR_ALLOW, /* give the caller the menu */
  ON_ERROR_BLOCK  /* give the caller the block answer */
};

enum config_caller_id {
  CALLER_ID_VIRTUAL, /* dial shows our TeleSign number */
  CALLER_ID_CALLER   /* dial shows the caller's own number */
};

/* One entry of menu.options: pressing `digit` dials `dial`. */
struct config_menu_option {
  char *digit; /* exactly one of 0-9 * # */
  char *name;  /* department name, for logs and call records */
  char *dial;  /* number to dial, digits only with country code */
};

struct config {
  char *path; /* the file this was loaded from */

  struct {
    char *listen;             /* "host:port"; default "127.0.0.1:8080" */
    char *webhook_path;       /* default "/telesign/voice" */
    uint32_t max_body;        /* bytes; default 65536 */
    uint32_t max_connections; /* default 1024 */
    uint32_t idle_timeout_s;  /* per-connection idle limit; default 30 */
  } server;

  struct {
    enum config_provider provider;   /* default telesign */
    char *customer_id;               /* required for provider telesign */
    char *api_key;                   /* required for provider telesign */
    char *score_url;                 /* default per score_api, see below */
    enum config_score_api score_api; /* default intelligence */
    enum config_auth auth;           /* default hmac */
    uint32_t timeout_ms;             /* default 1500, 100..10000 */
    char *virtual_number;          /* our TeleSign number; "" = use data.to */
    char *account_lifecycle_event; /* default "transact" */
    char *ca_file;                 /* "" = system bundle */
    uint32_t max_connections;      /* keep-alive pool size; default 64 */
  } telesign;

  struct {
    uint32_t block_at;                   /* default 600, 0..1000 */
    enum config_on_error on_score_error; /* default allow */
    char *block_message; /* default "We are unable to take your call." */
  } screening;

  struct {
    char *greeting;                  /* default lists the options */
    char *language;                  /* default "en-US" */
    uint32_t attempts;               /* default 3, 1..10 */
    enum config_caller_id caller_id; /* default virtual */
    char *invalid_message;     /* default "That is not a valid choice." */
    char *goodbye_message;     /* default "Goodbye." */
    char *unavailable_message; /* default "No one is available ..." */
    struct config_menu_option *options;
    unsigned options_count; /* 1..12, digits unique */
  } menu;

  struct {
    char *path; /* SQLite database file; default "./var/voice-and-score.db" */
  } store;

  struct {
    char *level; /* error | warn | info | debug; default info */
  } log;
};

/* Default Score URLs, one per endpoint style. */
#define CONFIG_DEFAULT_INTELLIGENCE_URL                                       \
  "https://detect.telesign.com/intelligence/phone"
#define CONFIG_DEFAULT_LEGACY_URL "https://rest-ww.telesign.com/v1/score"

/*
 * Loads and validates `path`. On success returns 0 and stores a new config
 * in *out, which the caller frees with config_free(). On failure returns a
 * negative vs_err code, leaves *out untouched and writes the reason into
 * `err` (errlen bytes) as "FILE:LINE:COLUMN: KEY: reason" when the problem
 * has a place in the file, or "FILE: reason" when it does not (unreadable
 * file, missing credentials).
 */
int config_load(const char *path, struct config **out, char *err,
                size_t errlen);

/* Frees a config from config_load(); NULL is a no-op. */
void config_free(struct config *cfg);

/* Looks up the menu option for `digit` (one character); NULL if none. */
const struct config_menu_option *config_menu_option(const struct config *cfg,
                                                    char digit);

/* The provider's name as written in the file ("telesign", "simulator"). */
const char *config_provider_name(enum config_provider p);

#endif
