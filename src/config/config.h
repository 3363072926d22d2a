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

#include <stdbool.h>
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

/* What the screening pipeline can decide for a caller. */
enum config_verdict {
  VERDICT_ALLOW,     /* the menu */
  VERDICT_CHALLENGE, /* "to be connected, press D" first */
  VERDICT_BLOCK      /* the block answer (screening.block_action) */
};

/* How a score becomes a verdict (screening.decide_by). */
enum config_decide_by {
  DECIDE_BY_SCORE,         /* block_at and challenge_at thresholds */
  DECIDE_BY_RECOMMENDATION /* TeleSign's allow / flag / block */
};

/* What a blocked caller gets (screening.block_action). */
enum config_block_action {
  BLOCK_ACTION_MESSAGE, /* speak block_message, then hang up */
  BLOCK_ACTION_HANGUP,  /* hang up at once, nothing spoken */
  BLOCK_ACTION_PLAY     /* play block_audio_url (e.g. a SIT tone), hang up */
};

enum config_mode {
  MODE_ENFORCE, /* callers get what the pipeline decides */
  MODE_SHADOW   /* decisions are recorded, but every caller gets the menu */
};

/*
 * Checking TeleSign's signature on events (webhook.verify). TeleSign
 * documents signed callbacks, but no public source shows Voice events
 * carrying the header, so the default only logs what it finds.
 */
enum config_verify {
  VERIFY_LOG,    /* check, log and count failures, answer anyway */
  VERIFY_OFF,    /* do not check */
  VERIFY_ENFORCE /* answer 401 to an unsigned or wrongly signed event */
};

/* Named sets of screening settings (screening.preset), each key of which
 * the file may still set itself; docs/screening-efficacy.md has the values
 * and the simulation that chose them. */
enum config_preset {
  PRESET_BALANCED, /* the default */
  PRESET_OPEN,     /* fewest challenges: for lines where missing a
                      customer costs more than a robocall */
  PRESET_STRICT    /* most kept out: for lines under attack */
};

/* Where the store lives (store.driver). */
enum config_store_driver {
  STORE_DRIVER_SQLITE,  /* a file: store.path; one instance */
  STORE_DRIVER_POSTGRES /* a server: store.url; any number of instances */
};

enum config_log_format {
  LOG_FORMAT_LOGFMT, /* key=value pairs, the default */
  LOG_FORMAT_JSON    /* one JSON object per line */
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
  /* 16 hex digits identifying the file's contents (a hash of its bytes),
   * stored with every call it decides so that decisions can be traced to
   * the policy that made them. */
  char policy_version[17];

  struct {
    char *listen;       /* "host:port"; default "127.0.0.1:8080" */
    char *webhook_path; /* default "/telesign/voice" */
    /* PEM files for serving HTTPS directly; both or neither. "" = plain
     * HTTP (behind a TLS reverse proxy). Read once at start. */
    char *tls_cert;
    char *tls_key;
    uint32_t max_body;        /* bytes; default 65536 */
    uint32_t max_connections; /* default 1024 */
    uint32_t idle_timeout_s;  /* per-connection idle limit; default 30 */
  } server;

  struct {
    enum config_verify verify; /* default log */
    /* A secret path segment: events are then accepted only at
     * webhook_path/<token>. "" = none. */
    char *token;
  } webhook;

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
    /* Circuit breaker: after this many failed lookups in a row, lookups
     * are skipped (answered as failed at once) for breaker_cooldown_s,
     * then one is let through to probe. 0 = never open. Default 5. */
    uint32_t breaker_failures;
    uint32_t breaker_cooldown_s; /* default 30, 1..3600 */
  } telesign;

  struct {
    enum config_preset preset;             /* default balanced */
    enum config_mode mode;                 /* default enforce */
    char *default_country;                 /* for national numbers; "1" */
    enum config_verdict anonymous;         /* unscorable callers; challenge */
    enum config_decide_by decide_by;       /* default score */
    uint32_t block_at;                     /* default 680, 0..1000 */
    uint32_t challenge_at;                 /* default 250, 0..block_at */
    enum config_verdict on_score_error;    /* default challenge */
    uint32_t score_cache_ttl_s;            /* default 2592000; 0 = no cache */
    uint32_t max_numbers;                  /* in memory; default 131072 */
    enum config_block_action block_action; /* default message */
    char *block_message;   /* default "We are unable to take your call." */
    char *block_audio_url; /* https URL; required for block_action play */
    struct {
      uint32_t window_s;          /* default 600, 1..86400 */
      uint32_t max_calls;         /* default 1; 0 = velocity check off */
      enum config_verdict action; /* default challenge */
    } velocity;
    struct {
      /* Spoken with the digit in place of "{digit}"; default
       * "To be connected, press {digit}." */
      char *message;
      char *retry_message;       /* default "That was not the right key." */
      uint32_t attempts;         /* default 2, 1..5 */
      uint32_t pass_ttl_s;       /* default 2592000 (30 days) */
      uint32_t fail_block_after; /* default 1; 0 = never blocklist */
      uint32_t fail_block_ttl_s; /* default 604800 (7 days) */
    } challenge;
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
    enum config_store_driver driver; /* default sqlite */
    char *path; /* SQLite database file; default "./var/voice-and-score.db" */
    /* PostgreSQL connection URI, "postgresql://user@host:5432/db"; the
     * password may come from PGPASSWORD or ~/.pgpass instead. Required
     * with driver postgres. */
    char *url;
    /* What the store opens: `path` or `url`, by driver (not a key). */
    const char *location;
    /* Call records older than this many days are deleted (checked
     * hourly); 0 = kept forever, the default. */
    uint32_t retention_days;
    /* The answer that completes a call's screening decision waits this
     * long at most for the call's record to be committed (so a decision
     * answered survives a crash); past it the caller is answered anyway.
     * 0 = never wait. Default 250. */
    uint32_t commit_wait_ms;
    /* MiB of the answer log beside an SQLite file (src/store/answer_log.h),
     * which keeps an answered decision safe from a crash with no wait for
     * its commit; 0 = none, every such answer waits as above. Default 4. */
    uint32_t answer_log_mib;
  } store;

  struct {
    char *level; /* error | warn | info | debug; default info */
    enum config_log_format format; /* default logfmt */
    /* Phone numbers in log lines show only their last four digits;
     * default true. */
    bool mask_numbers;
  } log;

  /* The admin listener: JSON API, dashboard, /metrics (docs/admin-api.md). */
  struct {
    char *listen; /* "host:port"; default "127.0.0.1:8081"; "" = off */
    char *token;  /* bearer token; required when listen is not loopback */
  } admin;
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

/*
 * config_load() for the tools that make no Score lookup (calls, stats,
 * list, replay, forget, migrate): with `for_lookups` 0, missing TeleSign
 * credentials are not an error, so that those tools run on the server's
 * own file where the credentials come from its environment.
 */
int config_load_as(const char *path, int for_lookups, struct config **out,
                   char *err, size_t errlen);

/* Frees a config from config_load(); NULL is a no-op. */
void config_free(struct config *cfg);

/* Looks up the menu option for `digit` (one character); NULL if none. */
const struct config_menu_option *config_menu_option(const struct config *cfg,
                                                    char digit);

/* The provider's name as written in the file ("telesign", "simulator"). */
const char *config_provider_name(enum config_provider p);

#endif
