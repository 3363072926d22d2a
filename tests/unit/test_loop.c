/*
 * Unit tests for loop/loop: timer order and re-arming, deferred tasks and
 * their iteration boundaries, cross-thread wake-ups, file descriptor
 * watchers (including one stopped and freed by an earlier callback of the
 * same batch), before-sleep hooks and loop_stop.
 *
 * Every wait is bounded: the loop is driven with loop_run_once() and a small
 * timeout under an iteration cap, and an alarm ends a test that hangs
 * anyway, so a broken loop fails instead of blocking the suite. Nothing
 * asserts on timing beyond the order of events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../../src/loop/loop.h"
#include "../../src/util/err.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A generous bound on loop iterations for anything that should happen. */
#define MAX_ITER 500

/* Seconds after which a hung test is killed. */
#define WATCHDOG_S 20

/* What callbacks saw, in order. */
struct trace {
  int ids[64];
  int n;
};

static void trace_add(struct trace *tr, int id)
{
  if (tr->n < (int)ARRAYSIZE(tr->ids))
    tr->ids[tr->n] = id;
  tr->n++;
}

static int setup(void **state)
{
  struct loop *loop = NULL;

  alarm(WATCHDOG_S);
  if (loop_create(&loop) != VS_OK)
    return -1;
  *state = loop;
  return 0;
}

static int teardown(void **state)
{
  loop_destroy(*state);
  alarm(0);
  return 0;
}

/* Runs the loop until *count reaches `want` or the cap; returns *count. */
static int run_until(struct loop *loop, const int *count, int want)
{
  for (int i = 0; i < MAX_ITER && *count < want; i++)
    assert_int_equal(loop_run_once(loop, 20), VS_OK);
  return *count;
}

/* ---- timers ---------------------------------------------------------- */

struct tmr {
  struct loop_timer t;
  struct loop *loop;
  struct trace *tr;
  int id;
  int rearm;           /* times left to re-arm itself */
  int64_t rearm_delta; /* new deadline relative to loop_now_ms() */
  struct tmr *stop;    /* a timer to stop when this one fires */
  struct tmr *start;   /* a timer to arm when this one fires */
};

static void tmr_cb(struct loop_timer *t)
{
  struct tmr *m = t->data;

  assert_ptr_equal(&m->t, t);
  trace_add(m->tr, m->id);
  if (m->stop)
    loop_timer_stop(m->loop, &m->stop->t);
  if (m->start)
    loop_timer_start(m->loop, &m->start->t, loop_now_ms(m->loop) + 1, tmr_cb,
                     m->start);
  if (m->rearm > 0) {
    m->rearm--;
    loop_timer_start(m->loop, t, loop_now_ms(m->loop) + m->rearm_delta, tmr_cb,
                     m);
  }
}

static void tmr_init(struct tmr *m, struct loop *loop, struct trace *tr,
                     int id)
{
  memset(m, 0, sizeof(*m));
  m->loop = loop;
  m->tr = tr;
  m->id = id;
}

/* Timers armed in one order with future deadlines fire by deadline. */
static void test_timer_order(void **state)
{
  static const int64_t delta[] = {30, 10, 50, 20, 40};
  struct loop *loop = *state;
  struct tmr m[ARRAYSIZE(delta)];
  struct trace tr = {{0}, 0};
  int64_t now = loop_update_time(loop);

  for (size_t i = 0; i < ARRAYSIZE(delta); i++) {
    tmr_init(&m[i], loop, &tr, (int)delta[i]);
    loop_timer_start(loop, &m[i].t, now + delta[i], tmr_cb, &m[i]);
    assert_int_equal(m[i].t.deadline_ms, now + delta[i]);
  }
  assert_int_equal(run_until(loop, &tr.n, 5), 5);
  assert_int_equal(tr.ids[0], 10);
  assert_int_equal(tr.ids[1], 20);
  assert_int_equal(tr.ids[2], 30);
  assert_int_equal(tr.ids[3], 40);
  assert_int_equal(tr.ids[4], 50);
  /* Each fired once: nothing more comes. */
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 5);
}

/*
 * Timers that are all due in the same iteration still fire by deadline,
 * whatever order they were armed in.
 */
static void test_timer_order_same_iteration(void **state)
{
  static const int64_t delta[] = {-1, -3, -2, -5, -4};
  struct loop *loop = *state;
  struct tmr m[ARRAYSIZE(delta)];
  struct trace tr = {{0}, 0};
  int64_t now = loop_update_time(loop);

  for (size_t i = 0; i < ARRAYSIZE(delta); i++) {
    tmr_init(&m[i], loop, &tr, (int)-delta[i]);
    loop_timer_start(loop, &m[i].t, now + delta[i], tmr_cb, &m[i]);
  }
  assert_int_equal(loop_run_once(loop, 1000), VS_OK);
  assert_int_equal(tr.n, 5);
  assert_int_equal(tr.ids[0], 5);
  assert_int_equal(tr.ids[1], 4);
  assert_int_equal(tr.ids[2], 3);
  assert_int_equal(tr.ids[3], 2);
  assert_int_equal(tr.ids[4], 1);
}

/* A timer may re-arm itself from its callback. */
static void test_timer_rearm_in_callback(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct tmr m;

  tmr_init(&m, loop, &tr, 1);
  m.rearm = 3;
  m.rearm_delta = 2;
  loop_timer_start(loop, &m.t, loop_update_time(loop), tmr_cb, &m);
  assert_int_equal(run_until(loop, &tr.n, 4), 4);
  assert_int_equal(m.rearm, 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 5), VS_OK);
  assert_int_equal(tr.n, 4);
}

/*
 * "A deadline in the past fires on the next iteration", also when the timer
 * is re-armed from its own callback: one iteration must not keep firing the
 * same timer (curl asks for a 0 ms timeout again and again). The cap of 50
 * keeps a loop that does spin from hanging the test.
 */
static void test_timer_rearm_past_next_iteration(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct tmr m;

  tmr_init(&m, loop, &tr, 1);
  m.rearm = 50;
  m.rearm_delta = 0;
  loop_timer_start(loop, &m.t, loop_update_time(loop) - 1, tmr_cb, &m);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 2);
  loop_timer_stop(loop, &m.t);
}

/* Of two due timers that stop each other, exactly one fires. */
static void test_timer_stop_in_callback(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct tmr a;
  struct tmr b;
  struct tmr c;
  int64_t now = loop_update_time(loop);

  tmr_init(&a, loop, &tr, 1);
  tmr_init(&b, loop, &tr, 2);
  tmr_init(&c, loop, &tr, 3);
  a.stop = &b;
  b.stop = &a;
  a.start = &c;
  b.start = &c;
  loop_timer_start(loop, &a.t, now - 2, tmr_cb, &a);
  loop_timer_start(loop, &b.t, now - 2, tmr_cb, &b);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  assert_true(tr.ids[0] == 1 || tr.ids[0] == 2);
  /* The timer armed from the callback fires later, once. */
  assert_int_equal(run_until(loop, &tr.n, 2), 2);
  assert_int_equal(tr.ids[1], 3);
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 5), VS_OK);
  assert_int_equal(tr.n, 2);
}

/* A stopped timer never fires; stopping twice or unarmed is a no-op. */
static void test_timer_stopped(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct tmr past;
  struct tmr soon;
  struct tmr never;
  struct tmr keep;
  int64_t now = loop_update_time(loop);

  tmr_init(&past, loop, &tr, 1);
  tmr_init(&soon, loop, &tr, 2);
  tmr_init(&never, loop, &tr, 3);
  tmr_init(&keep, loop, &tr, 4);
  loop_timer_stop(loop, &never.t);
  loop_timer_start(loop, &past.t, now - 10, tmr_cb, &past);
  loop_timer_start(loop, &soon.t, now + 5, tmr_cb, &soon);
  loop_timer_start(loop, &keep.t, now + 30, tmr_cb, &keep);
  loop_timer_stop(loop, &past.t);
  loop_timer_stop(loop, &soon.t);
  loop_timer_stop(loop, &soon.t);
  /* The stopped ones are gone from the list; the other still fires. */
  assert_int_equal(run_until(loop, &tr.n, 1), 1);
  assert_int_equal(tr.ids[0], 4);
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 10), VS_OK);
  assert_int_equal(tr.n, 1);
}

/* Re-arming an active timer moves it rather than adding it twice. */
static void test_timer_move(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct tmr m;
  int64_t now = loop_update_time(loop);

  tmr_init(&m, loop, &tr, 1);
  loop_timer_start(loop, &m.t, now + 600000, tmr_cb, &m);
  loop_timer_start(loop, &m.t, now - 1, tmr_cb, &m);
  assert_int_equal(m.t.deadline_ms, now - 1);
  assert_int_equal(loop_run_once(loop, 1000), VS_OK);
  assert_int_equal(tr.n, 1);
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  /* And back into the far future: it must not fire. */
  loop_timer_start(loop, &m.t, now - 1, tmr_cb, &m);
  loop_timer_start(loop, &m.t, loop_now_ms(loop) + 600000, tmr_cb, &m);
  for (int i = 0; i < 5; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  loop_timer_stop(loop, &m.t);
}

/* Every callback of one iteration sees the same clock. */
static void test_now_is_per_iteration(void **state)
{
  struct loop *loop = *state;
  int64_t before = loop_now_ms(loop);
  int64_t after;

  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  after = loop_now_ms(loop);
  assert_true(after >= before);
  assert_int_equal(loop_now_ms(loop), after);
  assert_true(loop_update_time(loop) >= after);
}

/* ---- deferred tasks -------------------------------------------------- */

struct job {
  struct loop_task task;
  struct loop *loop;
  struct trace *tr;
  int id;
  struct job *queue;  /* a task to defer when this one runs */
  struct job *cancel; /* a task to cancel when this one runs */
};

static void job_cb(struct loop_task *task)
{
  struct job *j = task->data;

  assert_ptr_equal(&j->task, task);
  trace_add(j->tr, j->id);
  if (j->queue)
    loop_defer(j->loop, &j->queue->task, job_cb, j->queue);
  if (j->cancel)
    loop_defer_cancel(j->loop, &j->cancel->task);
}

static void job_init(struct job *j, struct loop *loop, struct trace *tr,
                     int id)
{
  memset(j, 0, sizeof(*j));
  j->loop = loop;
  j->tr = tr;
  j->id = id;
}

/* Tasks run on the next iteration, in the order queued, once each. */
static void test_defer(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct job j[3];

  for (int i = 0; i < 3; i++) {
    job_init(&j[i], loop, &tr, i + 1);
    loop_defer(loop, &j[i].task, job_cb, &j[i]);
  }
  /* Queuing a queued task is a no-op. */
  loop_defer(loop, &j[0].task, job_cb, &j[0]);
  /* Nothing runs inside loop_defer. */
  assert_int_equal(tr.n, 0);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 3);
  assert_int_equal(tr.ids[0], 1);
  assert_int_equal(tr.ids[1], 2);
  assert_int_equal(tr.ids[2], 3);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 3);
  /* A task that ran may be queued again. */
  loop_defer(loop, &j[1].task, job_cb, &j[1]);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 4);
  assert_int_equal(tr.ids[3], 2);
}

/* A task queued by a task runs on the following iteration, not this one. */
static void test_defer_from_task(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct job a;
  struct job b;
  struct job self;

  job_init(&a, loop, &tr, 1);
  job_init(&b, loop, &tr, 2);
  a.queue = &b;
  loop_defer(loop, &a.task, job_cb, &a);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  assert_int_equal(tr.ids[0], 1);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 2);
  assert_int_equal(tr.ids[1], 2);

  /* A task re-queuing itself runs once per iteration. */
  job_init(&self, loop, &tr, 3);
  self.queue = &self;
  loop_defer(loop, &self.task, job_cb, &self);
  for (int i = 0; i < 4; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 6);
  loop_defer_cancel(loop, &self.task);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 6);
}

/* A cancelled task does not run; the others do. */
static void test_defer_cancel(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct job j[4];

  for (int i = 0; i < 4; i++)
    job_init(&j[i], loop, &tr, i + 1);
  /* Cancelling a task that is not queued is a no-op. */
  loop_defer_cancel(loop, &j[3].task);
  for (int i = 0; i < 4; i++)
    loop_defer(loop, &j[i].task, job_cb, &j[i]);
  loop_defer_cancel(loop, &j[1].task); /* middle */
  loop_defer_cancel(loop, &j[3].task); /* tail */
  loop_defer_cancel(loop, &j[3].task); /* twice */
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 2);
  assert_int_equal(tr.ids[0], 1);
  assert_int_equal(tr.ids[1], 3);
  /* After cancelling the tail, new tasks still queue behind the rest. */
  loop_defer(loop, &j[0].task, job_cb, &j[0]);
  loop_defer(loop, &j[1].task, job_cb, &j[1]);
  loop_defer_cancel(loop, &j[1].task);
  loop_defer(loop, &j[2].task, job_cb, &j[2]);
  loop_defer_cancel(loop, &j[0].task); /* head */
  loop_defer(loop, &j[3].task, job_cb, &j[3]);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 4);
  assert_int_equal(tr.ids[2], 3);
  assert_int_equal(tr.ids[3], 4);
}

/*
 * A task cancelled by an earlier task of the same batch does not run, and
 * the tasks after it still do (and can be queued again afterwards).
 */
static void test_defer_cancel_from_task(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct job j[3];

  for (int i = 0; i < 3; i++)
    job_init(&j[i], loop, &tr, i + 1);
  j[0].cancel = &j[1];
  for (int i = 0; i < 3; i++)
    loop_defer(loop, &j[i].task, job_cb, &j[i]);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 2);
  assert_int_equal(tr.ids[0], 1);
  assert_int_equal(tr.ids[1], 3);
  /* The third is not stuck as "queued". */
  j[0].cancel = NULL;
  loop_defer(loop, &j[2].task, job_cb, &j[2]);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 3);
  assert_int_equal(tr.ids[2], 3);
}

/* ---- wake-ups from other threads -------------------------------------- */

struct wake {
  struct loop_async async;
  int calls;
  int sends;    /* how many sends the thread makes */
  int delay_us; /* before the first send */
};

static void wake_cb(struct loop_async *a)
{
  struct wake *w = a->data;

  assert_ptr_equal(&w->async, a);
  w->calls++;
}

static void *sender(void *arg)
{
  struct wake *w = arg;

  if (w->delay_us)
    usleep((useconds_t)w->delay_us);
  for (int i = 0; i < w->sends; i++)
    loop_async_send(&w->async);
  return NULL;
}

/* Sends made before the loop runs coalesce into one callback. */
static void test_async_coalesces(void **state)
{
  struct loop *loop = *state;
  struct wake w;
  pthread_t th;

  memset(&w, 0, sizeof(w));
  w.sends = 1000;
  assert_int_equal(loop_async_init(loop, &w.async, wake_cb, &w), VS_OK);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(w.calls, 0);
  assert_int_equal(pthread_create(&th, NULL, sender, &w), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.calls, 0);
  assert_int_equal(loop_run_once(loop, 1000), VS_OK);
  assert_int_equal(w.calls, 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(w.calls, 1);
  /* And it works again afterwards, from this thread too. */
  loop_async_send(&w.async);
  loop_async_send(&w.async);
  assert_int_equal(run_until(loop, &w.calls, 2), 2);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(w.calls, 2);
  loop_async_close(loop, &w.async);
}

/* A send from another thread wakes a loop that is asleep. */
static void test_async_wakes(void **state)
{
  struct loop *loop = *state;
  struct wake w;
  pthread_t th;
  int i;

  memset(&w, 0, sizeof(w));
  w.sends = 1;
  w.delay_us = 20000;
  assert_int_equal(loop_async_init(loop, &w.async, wake_cb, &w), VS_OK);
  assert_int_equal(pthread_create(&th, NULL, sender, &w), 0);
  /* Nothing else can end these waits early: no timers, no tasks. */
  for (i = 0; i < 5 && w.calls == 0; i++)
    assert_int_equal(loop_run_once(loop, 2000), VS_OK);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.calls, 1);
  loop_async_close(loop, &w.async);
}

/* ---- file descriptors ------------------------------------------------ */

struct watch {
  struct loop_io io;
  struct loop *loop;
  struct trace *tr;
  int id;
  int rfd;
  uint32_t events;
  int drain;             /* read what is there */
  struct watch **victim; /* stop and free *victim, then clear it */
};

static void watch_cb(struct loop_io *io, uint32_t events)
{
  struct watch *w = io->data;
  char buf[16];

  assert_ptr_equal(&w->io, io);
  trace_add(w->tr, w->id);
  w->events = events;
  if (w->drain)
    assert_true(read(w->rfd, buf, sizeof(buf)) > 0);
  if (w->victim && *w->victim) {
    loop_io_stop(w->loop, &(*w->victim)->io);
    free(*w->victim);
    *w->victim = NULL;
  }
}

static void make_pipe(int fds[2])
{
  assert_int_equal(pipe(fds), 0);
}

/* A watcher fires when its pipe is readable, and only then. */
static void test_io_readable(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct watch w;
  int fds[2];

  make_pipe(fds);
  memset(&w, 0, sizeof(w));
  w.loop = loop;
  w.tr = &tr;
  w.id = 1;
  w.rfd = fds[0];
  w.drain = 1;
  assert_int_equal(loop_io_start(loop, &w.io, fds[0], EPOLLIN, watch_cb, &w),
                   VS_OK);
  assert_int_equal(w.io.fd, fds[0]);
  assert_int_equal(w.io.want, EPOLLIN);
  assert_ptr_equal(w.io.data, &w);
  /* Not readable yet. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 0);
  assert_int_equal(write(fds[1], "x", 1), 1);
  assert_int_equal(run_until(loop, &tr.n, 1), 1);
  assert_true(w.events & EPOLLIN);
  /* Drained: level-triggered, so no more calls. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  /* Undrained data keeps firing, once per iteration. */
  w.drain = 0;
  assert_int_equal(write(fds[1], "y", 1), 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 100), VS_OK);
  assert_int_equal(tr.n, 4);
  /* Stopped: readable, but silent. */
  loop_io_stop(loop, &w.io);
  loop_io_stop(loop, &w.io);
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 4);
  /* Restarted with the data still there. */
  w.drain = 1;
  assert_int_equal(loop_io_start(loop, &w.io, fds[0], EPOLLIN, watch_cb, &w),
                   VS_OK);
  assert_int_equal(run_until(loop, &tr.n, 5), 5);
  loop_io_stop(loop, &w.io);
  close(fds[0]);
  close(fds[1]);
}

/* A writable pipe end reports EPOLLOUT; changing the mask takes effect. */
static void test_io_mask(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct watch w;
  int fds[2];

  make_pipe(fds);
  memset(&w, 0, sizeof(w));
  w.loop = loop;
  w.tr = &tr;
  w.id = 7;
  assert_int_equal(loop_io_start(loop, &w.io, fds[1], EPOLLOUT, watch_cb, &w),
                   VS_OK);
  assert_int_equal(loop_run_once(loop, 1000), VS_OK);
  assert_int_equal(tr.n, 1);
  assert_true(w.events & EPOLLOUT);
  /* Same fd, now only EPOLLIN, which a write end never is. */
  assert_int_equal(loop_io_start(loop, &w.io, fds[1], EPOLLIN, watch_cb, &w),
                   VS_OK);
  assert_int_equal(w.io.want, EPOLLIN);
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  loop_io_stop(loop, &w.io);
  close(fds[0]);
  close(fds[1]);
}

/*
 * Two readable pipes in one batch: whichever callback runs first stops and
 * frees the other's watcher, whose callback must then not be called (ASan
 * reports the use after free if it is).
 */
static void test_io_stop_in_batch(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct watch *w[2];
  int fds[2][2];

  for (int i = 0; i < 2; i++) {
    make_pipe(fds[i]);
    assert_int_equal(write(fds[i][1], "x", 1), 1);
    w[i] = calloc(1, sizeof(*w[i]));
    assert_non_null(w[i]);
    w[i]->loop = loop;
    w[i]->tr = &tr;
    w[i]->id = i;
    w[i]->rfd = fds[i][0];
    w[i]->drain = 1;
  }
  w[0]->victim = &w[1];
  w[1]->victim = &w[0];
  for (int i = 0; i < 2; i++)
    assert_int_equal(
        loop_io_start(loop, &w[i]->io, fds[i][0], EPOLLIN, watch_cb, w[i]),
        VS_OK);
  /* Both are readable before the loop looks, so they share a batch. */
  assert_int_equal(loop_run_once(loop, 1000), VS_OK);
  assert_int_equal(tr.n, 1);
  assert_true(w[0] == NULL || w[1] == NULL);
  assert_false(w[0] == NULL && w[1] == NULL);
  /* The survivor still works; the victim's fd stays silent. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 1);
  for (int i = 0; i < 2; i++) {
    if (w[i]) {
      w[i]->victim = NULL;
      assert_int_equal(write(fds[i][1], "y", 1), 1);
      assert_int_equal(run_until(loop, &tr.n, 2), 2);
      assert_int_equal(tr.ids[1], i);
      loop_io_stop(loop, &w[i]->io);
      free(w[i]);
    }
  }
  for (int i = 0; i < 2; i++) {
    close(fds[i][0]);
    close(fds[i][1]);
  }
}

/* ---- hooks and running ------------------------------------------------ */

struct hook {
  struct loop_hook h;
  struct trace *tr;
  int id;
};

static void hook_cb(struct loop_hook *h)
{
  struct hook *k = h->data;

  assert_ptr_equal(&k->h, h);
  trace_add(k->tr, k->id);
}

/* Hooks run once per iteration, after the tasks, until removed. */
static void test_hooks(void **state)
{
  struct loop *loop = *state;
  struct trace tr = {{0}, 0};
  struct hook a;
  struct hook b;
  struct job j;

  a.tr = &tr;
  a.id = 100;
  b.tr = &tr;
  b.id = 200;
  loop_hook_add(loop, &a.h, hook_cb, &a);
  for (int i = 0; i < 3; i++)
    assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tr.ids[i], 100);
  /* A task queued before the iteration runs before the hook. */
  job_init(&j, loop, &tr, 1);
  loop_defer(loop, &j.task, job_cb, &j);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 5);
  assert_int_equal(tr.ids[3], 1);
  assert_int_equal(tr.ids[4], 100);
  /* Two hooks: both run, each once. */
  loop_hook_add(loop, &b.h, hook_cb, &b);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 7);
  assert_true((tr.ids[5] == 100 && tr.ids[6] == 200) ||
              (tr.ids[5] == 200 && tr.ids[6] == 100));
  loop_hook_remove(loop, &a.h);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 8);
  assert_int_equal(tr.ids[7], 200);
  loop_hook_remove(loop, &b.h);
  loop_hook_remove(loop, &b.h);
  assert_int_equal(loop_run_once(loop, 0), VS_OK);
  assert_int_equal(tr.n, 8);
}

struct stopper {
  struct loop_timer t;
  struct loop_task task;
  struct loop_hook hook;
  struct loop *loop;
  int fired;
};

static void stop_timer_cb(struct loop_timer *t)
{
  struct stopper *s = t->data;

  s->fired++;
  loop_stop(s->loop);
}

static void stop_task_cb(struct loop_task *task)
{
  struct stopper *s = task->data;

  s->fired++;
  loop_stop(s->loop);
}

static void stop_hook_cb(struct loop_hook *h)
{
  struct stopper *s = h->data;

  s->fired++;
  loop_stop(s->loop);
}

static void count_hook_cb(struct loop_hook *h)
{
  int *n = h->data;

  (*n)++;
}

/*
 * Runs loop_run() with a safety timer that stops it after `bound_ms`, so a
 * stop that is not honoured fails the test instead of hanging it. Returns
 * 1 if the safety timer was needed.
 */
static int run_bounded(struct loop *loop, int bound_ms)
{
  struct stopper safety;

  memset(&safety, 0, sizeof(safety));
  safety.loop = loop;
  loop_timer_start(loop, &safety.t, loop_update_time(loop) + bound_ms,
                   stop_timer_cb, &safety);
  assert_int_equal(loop_run(loop), VS_OK);
  loop_timer_stop(loop, &safety.t);
  return safety.fired;
}

/* loop_stop() from a timer makes loop_run() return, and again later. */
static void test_loop_stop(void **state)
{
  struct loop *loop = *state;
  struct loop_hook counter;
  struct stopper s;
  int iterations = 0;

  memset(&s, 0, sizeof(s));
  s.loop = loop;
  loop_hook_add(loop, &counter, count_hook_cb, &iterations);
  loop_timer_start(loop, &s.t, loop_update_time(loop) + 5, stop_timer_cb, &s);
  assert_int_equal(run_bounded(loop, 5000), 0);
  assert_int_equal(s.fired, 1);
  assert_true(iterations >= 1 && iterations < MAX_ITER);

  /* A second run is not ended by the first stop. */
  iterations = 0;
  loop_timer_start(loop, &s.t, loop_update_time(loop) + 20, stop_timer_cb, &s);
  assert_int_equal(run_bounded(loop, 5000), 0);
  assert_int_equal(s.fired, 2);
  assert_true(iterations >= 1);
  loop_hook_remove(loop, &counter);
}

/*
 * loop_stop() from a task or a hook of an otherwise idle loop: the loop
 * must not go to sleep with nothing to wake it.
 */
static void test_loop_stop_before_sleep(void **state)
{
  struct loop *loop = *state;
  struct stopper s;

  memset(&s, 0, sizeof(s));
  s.loop = loop;
  loop_defer(loop, &s.task, stop_task_cb, &s);
  assert_int_equal(run_bounded(loop, 2000), 0);
  assert_int_equal(s.fired, 1);

  loop_hook_add(loop, &s.hook, stop_hook_cb, &s);
  assert_int_equal(run_bounded(loop, 2000), 0);
  assert_int_equal(s.fired, 2);
  loop_hook_remove(loop, &s.hook);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_timer_order),
      T(test_timer_order_same_iteration),
      T(test_timer_rearm_in_callback),
      T(test_timer_rearm_past_next_iteration),
      T(test_timer_stop_in_callback),
      T(test_timer_stopped),
      T(test_timer_move),
      T(test_now_is_per_iteration),
      T(test_defer),
      T(test_defer_from_task),
      T(test_defer_cancel),
      T(test_defer_cancel_from_task),
      T(test_async_coalesces),
      T(test_async_wakes),
      T(test_io_readable),
      T(test_io_mask),
      T(test_io_stop_in_batch),
      T(test_hooks),
      T(test_loop_stop),
      T(test_loop_stop_before_sleep),
  };
#undef T

  return cmocka_run_group_tests(tests, NULL, NULL);
}
