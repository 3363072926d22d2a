/*
 * libFuzzer target for config_load(): any bytes as a configuration file.
 *
 * config_load() takes a path, so each input is written to a memfd and
 * loaded through /proc/self/fd/N, which touches no disk and leaves nothing
 * behind. Beyond "no crash, no leak" (the sanitizers' part), the target
 * checks the loader's own promises: a failure always explains itself in one
 * line, and a success always has every string set and 1 to 12 options.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_config.c src/config/config.c src/util/buf.c \
 *     src/util/err.c src/util/log.c $(pkg-config --cflags --libs libcyaml \
 *     yaml-0.1) -o fuzz_config
 *   ./fuzz_config -max_total_time=60 tests/fuzz/corpus/config
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(const struct config *cfg)
{
  const char *const strings[] = {
      cfg->path,
      cfg->server.listen,
      cfg->server.webhook_path,
      cfg->telesign.customer_id,
      cfg->telesign.api_key,
      cfg->telesign.score_url,
      cfg->telesign.virtual_number,
      cfg->telesign.account_lifecycle_event,
      cfg->telesign.ca_file,
      cfg->screening.block_message,
      cfg->menu.greeting,
      cfg->menu.language,
      cfg->menu.invalid_message,
      cfg->menu.goodbye_message,
      cfg->menu.unavailable_message,
      cfg->store.path,
      cfg->log.level,
  };

  for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
    if (!strings[i])
      __builtin_trap();
  if (cfg->menu.options_count < 1 || cfg->menu.options_count > 12)
    __builtin_trap();
  for (unsigned i = 0; i < cfg->menu.options_count; i++) {
    const struct config_menu_option *o = &cfg->menu.options[i];

    if (strlen(o->digit) != 1 || !o->name[0] || !o->dial[0])
      __builtin_trap();
    if (config_menu_option(cfg, o->digit[0]) != o)
      __builtin_trap();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct config *cfg = NULL;
  char path[64];
  char err[512];
  size_t off = 0;
  int fd;
  int rc;

  fd = memfd_create("fuzz_config", MFD_CLOEXEC);
  if (fd < 0)
    return 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);

    if (n <= 0) {
      close(fd);
      return 0;
    }
    off += (size_t)n;
  }
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  rc = config_load(path, &cfg, err, sizeof(err));
  if (rc == 0) {
    check_loaded(cfg);
    config_free(cfg);
  } else if (cfg || !err[0] || strchr(err, '\n') ||
             strncmp(err, path, strlen(path)) != 0) {
    __builtin_trap();
  }
  close(fd);
  return 0;
}
