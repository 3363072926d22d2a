/*
 * Records the store keeps besides calls: list entries and what we know of
 * each caller number. Like struct call, they are fixed-size and copied by
 * value between the loop thread and the store worker.
 */
#ifndef VS_STORE_RECORDS_H
#define VS_STORE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

#define LIST_ENTRY_SIZE 18 /* 15 digits, '*', NUL, and one to spare */
#define LIST_NOTE_SIZE  128

enum list_kind { LIST_ALLOW = 0, LIST_BLOCK = 1 };

/* One allow or block list entry (table `lists`, key kind + entry). */
struct list_entry {
  enum list_kind kind;
  char entry[LIST_ENTRY_SIZE]; /* digits, optionally ending in '*' */
  char note[LIST_NOTE_SIZE];   /* free text: who added it and why */
  char source[16];             /* "cli", "import", "challenge", "api" */
  int64_t created_ms;          /* Unix ms */
  int64_t expires_ms;          /* Unix ms; 0 = never */
};

/* "allow" / "block"; list_kind_parse returns -1 for anything else. */
const char *list_kind_name(enum list_kind k);
int list_kind_parse(const char *s);

/*
 * What we know of one caller number (table `numbers`, key number): its
 * challenge pass, its failed challenges and its cached Score result.
 */
struct number_record {
  char number[CALL_NUMBER_SIZE];
  int64_t pass_expires_ms;     /* Unix ms; 0 = no pass */
  uint32_t challenge_failures; /* failed challenges since the last pass */
  int64_t last_failure_ms;     /* Unix ms of the last failed challenge */
  int64_t score_fetched_ms;    /* Unix ms of the cached lookup; 0 = none */
  int32_t score;               /* cached risk.score, -1 when none */
  char risk_level[16];
  char recommendation[16];
  char phone_type[24];
  char score_ref[CALL_REF_SIZE];
};

/*
 * The note of the block list entry that failed challenges put a number
 * on: "failed N challenges".
 */
void list_entry_note_failures(struct list_entry *e, uint32_t failures);

/* An empty record for `number` (score -1, everything else 0). */
void number_record_init(struct number_record *r, const char *number);

#endif
