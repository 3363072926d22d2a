/*
 * libFuzzer target for the packed call record (store/store_schema.h), the
 * format the answer log (store/answer_log.c) reads back from its file at
 * start, where a disk may have damaged it past its checksum's notice.
 *
 * Each input is offered to call_packed_valid(); when it is accepted, it is
 * unpacked and the invariants that the replay relies on are checked (a
 * violation traps, so that libFuzzer records the input):
 *
 *  - every text field of the call is NUL-terminated inside its array, and
 *    the reference is not empty;
 *  - packing the call again gives back exactly the input, so nothing was
 *    read past it or lost.
 *
 * Build: see tests/fuzz/meson.build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/store/call.h"
#include "../../src/store/store_schema.h"

static struct call_layout layout;

/* libFuzzer's entry points; declared for -Wmissing-prototypes. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  call_layout_init(&layout);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  unsigned char *again;
  struct call c;

  if (!call_packed_valid(&layout, data, size))
    return 0;
  call_unpack(&layout, data, &c);
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    const char *t = (const char *)&c + call_text_cols[i].off;

    if (strnlen(t, call_text_cols[i].size) >= call_text_cols[i].size)
      __builtin_trap();
  }
  if (!c.ref[0] || call_packed_size(&layout, &c) != size)
    __builtin_trap();
  again = malloc(size);
  if (!again)
    return 0;
  call_pack(&layout, &c, again);
  if (memcmp(again, data, size) != 0)
    __builtin_trap();
  free(again);
  return 0;
}
