/*
 * The event loop: one epoll instance, a few timers, deferred tasks and
 * cross-thread wake-ups. It is the only place the process sleeps.
 *
 * One thread creates the loop, runs it and owns everything registered on
 * it; every function here must be called from that thread, except
 * loop_async_send(), which any thread may call. Callbacks run on the loop
 * thread, one at a time, never from inside the function that registered
 * them.
 *
 * Handles (loop_io, loop_timer, loop_task, loop_async) are structs that the
 * caller embeds in its own objects, as in libuv: the loop never allocates or
 * frees them. A handle must be stopped before its memory is reused; stopping
 * a handle that is not active is a no-op. A watcher stopped from inside a
 * callback may be freed at once: the loop drops any event still pending for
 * it in the batch being dispatched.
 *
 * Timers are kept in a short list and the next deadline is found by a scan:
 * the loop serves a handful of timers (curl's, the HTTP servers', shutdown),
 * and per-request deadlines belong to curl. A heap can replace the list if
 * that ever changes.
 */
#ifndef VS_LOOP_LOOP_H
#define VS_LOOP_LOOP_H

#include <stdint.h>

struct loop;

/* ---- file descriptors ------------------------------------------------ */

struct loop_io;
/* `events` is the epoll mask that fired (EPOLLIN, EPOLLOUT, EPOLLERR...). */
typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);

struct loop_io {
  int fd;        /* read-only while active */
  uint32_t want; /* read-only: the epoll mask asked for */
  loop_io_cb cb;
  void *data; /* the owner's pointer, untouched by the loop */
  int active; /* private */
};

/*
 * Watches `fd` for `events` (EPOLLIN and/or EPOLLOUT; level-triggered). If
 * `io` is already active on the same fd, only the mask and callback change.
 * Returns 0 or VS_ERR_IO.
 */
int loop_io_start(struct loop *loop, struct loop_io *io, int fd,
                  uint32_t events, loop_io_cb cb, void *data);

/* Stops watching; the fd itself is not closed. */
void loop_io_stop(struct loop *loop, struct loop_io *io);

/* ---- timers ---------------------------------------------------------- */

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);

struct loop_timer {
  int64_t deadline_ms; /* read-only: absolute, on loop_now_ms()'s clock */
  loop_timer_cb cb;
  void *data;
  struct loop_timer *next; /* private */
  uint64_t gen;            /* private: when it was armed */
  int active;              /* private */
};

/*
 * Arms `t` to fire once at the absolute monotonic time `deadline_ms`
 * (re-arming an active timer moves it). A deadline in the past fires on the
 * next iteration, never in the one that armed it. Timers due together fire
 * in deadline order.
 */
void loop_timer_start(struct loop *loop, struct loop_timer *t,
                      int64_t deadline_ms, loop_timer_cb cb, void *data);
void loop_timer_stop(struct loop *loop, struct loop_timer *t);

/*
 * Monotonic milliseconds, refreshed at each wake-up so that every callback
 * of one iteration sees the same time.
 */
int64_t loop_now_ms(const struct loop *loop);

/* Re-reads the clock now (for long callbacks and tests). */
int64_t loop_update_time(struct loop *loop);

/*
 * Unix milliseconds: the time call records, list expiry, velocity windows
 * and the score cache are kept in. It is the system's real-time clock
 * unless loop_set_wall_ms() has set it, which only the traffic simulator
 * does (serve --simulated-clock), so that a day of calls can be played in
 * a minute with every time-based rule seeing the day's own times.
 */
int64_t loop_wall_ms(const struct loop *loop);

/*
 * Sets the wall clock to `unix_ms` from now on: later readings advance
 * with the real-time clock from there. Never moves it backwards, so that
 * records and windows keep their order.
 */
void loop_set_wall_ms(struct loop *loop, int64_t unix_ms);

/* ---- deferred tasks -------------------------------------------------- */

struct loop_task;
typedef void (*loop_task_cb)(struct loop_task *task);

struct loop_task {
  loop_task_cb cb;
  void *data;
  struct loop_task *next; /* private */
  int queued;             /* private */
};

/*
 * Runs `task` on the next iteration, before the loop sleeps again. This is
 * how an operation that can finish at once (a simulated score, a cached
 * call state) still completes from the loop rather than from inside the
 * call that started it. Queuing a queued task is a no-op.
 */
void loop_defer(struct loop *loop, struct loop_task *task, loop_task_cb cb,
                void *data);
void loop_defer_cancel(struct loop *loop, struct loop_task *task);

/* ---- wake-ups from other threads -------------------------------------- */

struct loop_async;
typedef void (*loop_async_cb)(struct loop_async *a);

struct loop_async {
  loop_async_cb cb;
  void *data;
  struct loop_io io; /* private: the eventfd */
};

/*
 * Creates an eventfd-backed wake-up whose callback runs on the loop thread
 * after any number of loop_async_send() calls (they coalesce). Returns 0 or
 * VS_ERR_IO. Close with loop_async_close() on the loop thread.
 */
int loop_async_init(struct loop *loop, struct loop_async *a, loop_async_cb cb,
                    void *data);
/* Safe from any thread. */
void loop_async_send(struct loop_async *a);
void loop_async_close(struct loop *loop, struct loop_async *a);

/* ---- hooks and running ------------------------------------------------ */

struct loop_hook;
typedef void (*loop_hook_cb)(struct loop_hook *h);

struct loop_hook {
  loop_hook_cb cb;
  void *data;
  struct loop_hook *next; /* private */
};

/*
 * Adds a callback run once per iteration just before the loop sleeps (the
 * place to batch work and to refresh a library's timeout, as Redis's
 * beforeSleep does). Remove it before freeing it.
 */
void loop_hook_add(struct loop *loop, struct loop_hook *h, loop_hook_cb cb,
                   void *data);
void loop_hook_remove(struct loop *loop, struct loop_hook *h);

/* Creates a loop; returns 0 or VS_ERR_NOMEM / VS_ERR_IO. */
int loop_create(struct loop **out);

/*
 * Frees the loop. Every handle must already be stopped or closed; the fds
 * they watched are the owners' to close.
 */
void loop_destroy(struct loop *loop);

/*
 * Runs until loop_stop() is called from a callback. Returns 0, or VS_ERR_IO
 * if epoll_wait fails for a reason other than a signal.
 */
int loop_run(struct loop *loop);

/* Makes loop_run() return after the current iteration. */
void loop_stop(struct loop *loop);

/*
 * Runs one iteration, sleeping at most `max_wait_ms` (-1: until something
 * happens). For tools and tests that drive the loop until a condition holds.
 */
int loop_run_once(struct loop *loop, int max_wait_ms);

#endif
