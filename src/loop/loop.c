/*
 * The event loop (see loop.h). One iteration:
 *
 *   1. run the deferred tasks queued so far;
 *   2. run the before-sleep hooks (they may arm timers or queue tasks);
 *   3. sleep in epoll_wait until the nearest timer deadline, or not at all
 *      when tasks are pending;
 *   4. refresh the clock, dispatch the ready file descriptors, then fire
 *      every timer whose deadline has passed.
 *
 * Timers are fired by comparing deadlines with the clock after every wake-up,
 * not only when epoll_wait times out: curl's timers starve under load
 * otherwise (see the stack reference, gotcha 3).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../util/err.h"
#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop {
  int epfd;
  int64_t now_ms;
  int64_t wall_offset_ms; /* loop_wall_ms() minus the real-time clock */
  int stopping;
  struct loop_timer *timers; /* unordered; few entries */
  struct loop_task *tasks_head;
  struct loop_task *tasks_tail;
  struct loop_task *running; /* rest of the batch loop_run_tasks runs */
  uint64_t timer_gen;        /* bumped at each firing pass */
  struct loop_hook *hooks;
  /* The batch being dispatched, so that a watcher stopped in the middle of
   * it is struck out and its memory may be freed at once. */
  struct epoll_event *batch;
  int batch_len;
};

static int64_t monotonic_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int loop_create(struct loop **out)
{
  struct loop *loop = calloc(1, sizeof(*loop));

  if (!loop)
    return VS_ERR_NOMEM;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) {
    free(loop);
    return VS_ERR_IO;
  }
  loop->now_ms = monotonic_ms();
  *out = loop;
  return VS_OK;
}

void loop_destroy(struct loop *loop)
{
  if (!loop)
    return;
  close(loop->epfd);
  free(loop);
}

int64_t loop_now_ms(const struct loop *loop)
{
  return loop->now_ms;
}

int64_t loop_update_time(struct loop *loop)
{
  loop->now_ms = monotonic_ms();
  return loop->now_ms;
}

static int64_t realtime_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_wall_ms(const struct loop *loop)
{
  return realtime_ms() + loop->wall_offset_ms;
}

void loop_set_wall_ms(struct loop *loop, int64_t unix_ms)
{
  int64_t real = realtime_ms();

  if (unix_ms > real + loop->wall_offset_ms)
    loop->wall_offset_ms = unix_ms - real;
}

/* ---- file descriptors ------------------------------------------------ */

int loop_io_start(struct loop *loop, struct loop_io *io, int fd,
                  uint32_t events, loop_io_cb cb, void *data)
{
  struct epoll_event ev;
  int op;

  if (io->active && io->fd != fd)
    loop_io_stop(loop, io);
  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.ptr = io;
  op = io->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (!io->active || io->want != events) {
    if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
      return VS_ERR_IO;
  }
  io->fd = fd;
  io->want = events;
  io->cb = cb;
  io->data = data;
  io->active = 1;
  return VS_OK;
}

void loop_io_stop(struct loop *loop, struct loop_io *io)
{
  if (!io->active)
    return;
  /* The fd may already be closed by its owner (curl does this); the
   * kernel then dropped it from the set and EBADF is harmless. */
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
  for (int i = 0; i < loop->batch_len; i++)
    if (loop->batch[i].data.ptr == io)
      loop->batch[i].data.ptr = NULL;
  io->active = 0;
  io->want = 0;
}

/* ---- timers ---------------------------------------------------------- */

void loop_timer_start(struct loop *loop, struct loop_timer *t,
                      int64_t deadline_ms, loop_timer_cb cb, void *data)
{
  t->deadline_ms = deadline_ms;
  t->cb = cb;
  t->data = data;
  t->gen = loop->timer_gen;
  if (!t->active) {
    t->next = loop->timers;
    loop->timers = t;
    t->active = 1;
  }
}

void loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
  struct loop_timer **pp;

  if (!t->active)
    return;
  for (pp = &loop->timers; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  t->active = 0;
  t->next = NULL;
}

/*
 * Fires the timers that were due when the pass began, earliest deadline
 * first. A callback may stop or re-arm any timer, so each round rescans the
 * list instead of trusting a saved `next`; a timer armed during the pass
 * (its generation is the pass's) waits for the next iteration, so a timer
 * that keeps re-arming itself in the past cannot keep the loop from polling.
 */
static void loop_fire_timers(struct loop *loop)
{
  uint64_t pass = ++loop->timer_gen;

  for (;;) {
    struct loop_timer *due = NULL;

    for (struct loop_timer *t = loop->timers; t; t = t->next)
      if (t->gen < pass && t->deadline_ms <= loop->now_ms &&
          (!due || t->deadline_ms < due->deadline_ms))
        due = t;
    if (!due)
      return;
    loop_timer_stop(loop, due);
    due->cb(due);
  }
}

/* ---- deferred tasks -------------------------------------------------- */

void loop_defer(struct loop *loop, struct loop_task *task, loop_task_cb cb,
                void *data)
{
  task->cb = cb;
  task->data = data;
  if (task->queued)
    return;
  task->next = NULL;
  task->queued = 1;
  if (loop->tasks_tail)
    loop->tasks_tail->next = task;
  else
    loop->tasks_head = task;
  loop->tasks_tail = task;
}

void loop_defer_cancel(struct loop *loop, struct loop_task *task)
{
  struct loop_task *prev = NULL;

  if (!task->queued)
    return;
  /* The task may be in the batch being run rather than in the queue. */
  for (struct loop_task **pp = &loop->running; *pp; pp = &(*pp)->next) {
    if (*pp == task) {
      *pp = task->next;
      task->queued = 0;
      task->next = NULL;
      return;
    }
  }
  for (struct loop_task *t = loop->tasks_head; t; prev = t, t = t->next) {
    if (t != task)
      continue;
    if (prev)
      prev->next = t->next;
    else
      loop->tasks_head = t->next;
    if (loop->tasks_tail == t)
      loop->tasks_tail = prev;
    break;
  }
  task->queued = 0;
  task->next = NULL;
}

/*
 * Runs the tasks that were queued when this call began; tasks they queue
 * wait for the next iteration, so a task that re-queues itself cannot keep
 * the loop from polling.
 */
static void loop_run_tasks(struct loop *loop)
{
  loop->running = loop->tasks_head;
  loop->tasks_head = NULL;
  loop->tasks_tail = NULL;
  while (loop->running) {
    struct loop_task *t = loop->running;

    loop->running = t->next;
    t->queued = 0;
    t->next = NULL;
    t->cb(t);
  }
}

/* ---- hooks ----------------------------------------------------------- */

void loop_hook_add(struct loop *loop, struct loop_hook *h, loop_hook_cb cb,
                   void *data)
{
  h->cb = cb;
  h->data = data;
  h->next = loop->hooks;
  loop->hooks = h;
}

void loop_hook_remove(struct loop *loop, struct loop_hook *h)
{
  for (struct loop_hook **pp = &loop->hooks; *pp; pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      h->next = NULL;
      return;
    }
  }
}

/* ---- wake-ups from other threads -------------------------------------- */

static void loop_async_ready(struct loop_io *io, uint32_t events)
{
  struct loop_async *a = io->data;
  uint64_t n;

  (void)events;
  /* Drain the counter first: sends that race with the callback then wake
   * the loop again instead of being lost. */
  if (read(io->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
    return;
  a->cb(a);
}

int loop_async_init(struct loop *loop, struct loop_async *a, loop_async_cb cb,
                    void *data)
{
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  if (fd < 0)
    return VS_ERR_IO;
  memset(a, 0, sizeof(*a));
  a->cb = cb;
  a->data = data;
  if (loop_io_start(loop, &a->io, fd, EPOLLIN, loop_async_ready, a)) {
    close(fd);
    return VS_ERR_IO;
  }
  return VS_OK;
}

void loop_async_send(struct loop_async *a)
{
  uint64_t one = 1;

  /* EAGAIN means the counter is saturated, which still wakes the loop. */
  if (write(a->io.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
    return;
}

void loop_async_close(struct loop *loop, struct loop_async *a)
{
  int fd = a->io.fd;

  loop_io_stop(loop, &a->io);
  close(fd);
}

/* ---- running ----------------------------------------------------------- */

static int loop_wait_ms(struct loop *loop, int max_wait_ms)
{
  int64_t wait = max_wait_ms;

  /* Pending tasks, or a hook that just asked the loop to stop, must not
   * wait for the next event. */
  if (loop->tasks_head || loop->stopping)
    return 0;
  for (struct loop_timer *t = loop->timers; t; t = t->next) {
    int64_t d = t->deadline_ms - loop->now_ms;

    if (d < 0)
      d = 0;
    if (wait < 0 || d < wait)
      wait = d;
  }
  return wait > 60000 ? 60000 : (int)wait;
}

int loop_run_once(struct loop *loop, int max_wait_ms)
{
  struct epoll_event events[LOOP_MAX_EVENTS];
  int n;

  loop_run_tasks(loop);
  for (struct loop_hook *h = loop->hooks; h; h = h->next)
    h->cb(h);
  n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS,
                 loop_wait_ms(loop, max_wait_ms));
  loop_update_time(loop);
  if (n < 0) {
    if (errno != EINTR)
      return VS_ERR_IO;
    n = 0;
  }
  loop->batch = events;
  loop->batch_len = n;
  for (int i = 0; i < n; i++) {
    struct loop_io *io = events[i].data.ptr;

    /* NULL when an earlier callback of this batch stopped the watcher. */
    if (io)
      io->cb(io, events[i].events);
  }
  loop->batch = NULL;
  loop->batch_len = 0;
  loop_fire_timers(loop);
  return VS_OK;
}

int loop_run(struct loop *loop)
{
  int rc = VS_OK;

  loop->stopping = 0;
  while (!loop->stopping && rc == VS_OK)
    rc = loop_run_once(loop, -1);
  return rc;
}

void loop_stop(struct loop *loop)
{
  loop->stopping = 1;
}
