/*
 * loop.c: the request loop (see loop.h), a leader/follower pool.
 *
 * Threads of one pool take turns at the device: one of them, the reader, reads the next request.
 * A request ops_inline() vouches for is processed by the reader itself; any other is copied whole
 * (header and arguments) and queued for an idle thread, which processes it with
 * fuse_session_process_buf exactly as libfuse's own loops would (replies may come from any
 * thread). Should an inline request turn out to need the server after all (its cache entry was
 * invalidated in between) or to wait for a commit, its thread gives up the reader's role first
 * (loop_blocking, called from every place that waits), so the mount never stops reading requests
 * while one waits. A reader that finds more requests already waiting asks for another reader (up
 * to one per CPU); an extra reader that sees no request for EXTRA_READER_MS stops reading.
 *
 * Every pool thread blocks all signals: SIGTERM/SIGINT/SIGHUP reach the main thread, which waits
 * for the end and then cancels the reader out of its read of the device (cancellation is enabled
 * only around that read).
 */
#include "loop.h"

#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"

#define MAX_THREADS 64
#define START_THREADS 4   /* the first slow requests need not wait for a thread to start */
#define EXTRA_READER_MS 100 /* an extra reader that saw no request for this long stops reading */

struct job {
	struct job *next;
	struct fuse_buf buf;
};

static struct pool {
	struct coordfs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int nthreads, idle;
	int readers;              /* threads holding a reader's role */
	int want_readers;         /* more readers asked for (requests were waiting) */
	int max_readers;          /* one per CPU */
	int reading[MAX_THREADS]; /* which threads hold one (to cancel them at the end) */
	int stop;
	int res;                  /* how the loop ended (libfuse's convention) */
	sem_t finish;
	pthread_t th[MAX_THREADS];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Thread_local int is_reader, my_index;

static volatile sig_atomic_t caught;
static struct sigaction fuse_handler[NSIG];

/* Remember which signal ended the loop, let libfuse's handler do its part, wake the main thread. */
static void note_signal(int sig)
{
	caught = sig;
	if (fuse_handler[sig].sa_handler != SIG_DFL && fuse_handler[sig].sa_handler != SIG_IGN)
		fuse_handler[sig].sa_handler(sig);
	sem_post(&pool.finish);
}

static void wrap_signal(int sig)
{
	struct sigaction sa;
	if (sigaction(sig, NULL, &fuse_handler[sig]) || fuse_handler[sig].sa_handler == SIG_DFL ||
	    fuse_handler[sig].sa_handler == SIG_IGN || (fuse_handler[sig].sa_flags & SA_SIGINFO))
		return;
	sa = fuse_handler[sig];
	sa.sa_handler = note_signal;
	sigaction(sig, &sa, NULL);
}

static void *thread_main(void *arg);

/* One more pool thread (pool.mu held); -1 when none can start. */
static int add_thread(void)
{
	if (pool.nthreads == MAX_THREADS || pool.stop)
		return -1;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&pool.th[pool.nthreads], NULL, thread_main, (void *)(intptr_t)pool.nthreads);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -1;
	pool.nthreads++;
	pool.idle++;
	return 0;
}

/* Make sure an idle thread will pick up a job or the reader's role (pool.mu held). */
static void need_thread(void)
{
	if (pool.idle > 0)
		pthread_cond_signal(&pool.cv);
	else
		add_thread();
}

void loop_blocking(void)
{
	if (!is_reader)
		return;
	is_reader = 0;
	pthread_mutex_lock(&pool.mu);
	pool.reading[my_index] = 0;
	if (--pool.readers == 0)
		need_thread();
	pthread_mutex_unlock(&pool.mu);
}

/* Queue a copy of the request for another thread; 0, or -1 when it must be processed here. */
static int dispatch(const struct fuse_buf *buf, size_t len)
{
	struct job *j = malloc(sizeof(*j) + len);
	if (!j)
		return -1;
	memset(&j->buf, 0, sizeof(j->buf));
	j->buf.size = len;
	j->buf.mem = (char *)(j + 1);
	memcpy(j->buf.mem, buf->mem, len);
	j->next = NULL;
	pthread_mutex_lock(&pool.mu);
	if (pool.tail)
		pool.tail->next = j;
	else
		pool.head = j;
	pool.tail = j;
	need_thread();
	pthread_mutex_unlock(&pool.mu);
	return 0;
}

/* The reader's turn: read and handle one request. pool.mu is not held. Returns 0 to go on. */
static int read_one(struct fuse_buf *buf)
{
	struct fuse_session *se = pool.fs->se;
	int fd = fuse_session_fd(se);
	pthread_mutex_lock(&pool.mu);
	int extra = pool.readers > 1;
	pthread_mutex_unlock(&pool.mu);
	if (extra) {
		/* An extra reader reads only while requests keep coming. */
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, EXTRA_READER_MS) == 0) {
			pthread_mutex_lock(&pool.mu);
			if (pool.readers > 1) {
				pool.readers--;
				pool.reading[my_index] = 0;
				is_reader = 0;
			}
			pthread_mutex_unlock(&pool.mu);
			if (!is_reader)
				return 0;
		}
	}
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	int res = fuse_session_exited(se) ? 0 : fuse_session_receive_buf(se, buf);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	if (res == -EINTR)
		return 0;
	if (res <= 0) {
		/* Unmounted (0, the session is marked exited), told to exit, or an error. */
		pthread_mutex_lock(&pool.mu);
		if (!pool.stop) {
			pool.stop = 1;
			pool.res = res;
		}
		pthread_cond_broadcast(&pool.cv);
		pthread_mutex_unlock(&pool.mu);
		fuse_session_exit(se);
		sem_post(&pool.finish);
		return -1;
	}
	if (__atomic_load_n(&pool.readers, __ATOMIC_RELAXED) < pool.max_readers) {
		/* More requests already wait: callers on other CPUs; let another thread read too. */
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 0) > 0) {
			pthread_mutex_lock(&pool.mu);
			if (pool.readers + pool.want_readers < pool.max_readers) {
				pool.want_readers++;
				need_thread();
			}
			pthread_mutex_unlock(&pool.mu);
		}
	}
	int here = (buf->flags & FUSE_BUF_IS_FD) || (size_t)res < sizeof(struct fuse_in_header) ||
		   ops_inline(pool.fs, buf->mem, (size_t)res);
	if (here || dispatch(buf, (size_t)res))
		fuse_session_process_buf(se, buf);
	return 0;
}

static void *thread_main(void *arg)
{
	my_index = (int)(intptr_t)arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	struct fuse_buf buf;
	memset(&buf, 0, sizeof(buf));
	pthread_mutex_lock(&pool.mu);
	pool.idle--;
	while (!pool.stop) {
		if (!pool.readers || pool.want_readers) {
			/* Become a reader, and stay one while handling requests inline. */
			if (pool.want_readers)
				pool.want_readers--;
			pool.readers++;
			pool.reading[my_index] = 1;
			is_reader = 1;
			pthread_mutex_unlock(&pool.mu);
			while (is_reader && read_one(&buf) == 0)
				;
			pthread_mutex_lock(&pool.mu);
			if (is_reader) {
				is_reader = 0;
				pool.readers--;
				pool.reading[my_index] = 0;
			}
			continue;
		}
		if (pool.head) {
			struct job *j = pool.head;
			pool.head = j->next;
			if (!pool.head)
				pool.tail = NULL;
			pthread_mutex_unlock(&pool.mu);
			fuse_session_process_buf(pool.fs->se, &j->buf);
			free(j);
			pthread_mutex_lock(&pool.mu);
			continue;
		}
		pool.idle++;
		pthread_cond_wait(&pool.cv, &pool.mu);
		pool.idle--;
	}
	pthread_mutex_unlock(&pool.mu);
	free(buf.mem);
	return NULL;
}

int loop_run(struct coordfs *fs)
{
	pool.fs = fs;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pool.max_readers = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
	sem_init(&pool.finish, 0, 0);
	wrap_signal(SIGTERM);
	wrap_signal(SIGINT);
	wrap_signal(SIGHUP);
	pthread_mutex_lock(&pool.mu);
	for (int i = 0; i < START_THREADS; i++)
		add_thread();
	int started = pool.nthreads;
	pthread_mutex_unlock(&pool.mu);
	if (!started)
		return -ENOMEM;
	while (!fuse_session_exited(fs->se))
		sem_wait(&pool.finish);
	pthread_mutex_lock(&pool.mu);
	pool.stop = 1;
	pthread_cond_broadcast(&pool.cv);
	for (int i = 0; i < pool.nthreads; i++)
		if (pool.reading[i])
			pthread_cancel(pool.th[i]); /* out of its read of the device */
	int res = pool.res;
	pthread_mutex_unlock(&pool.mu);
	if (res > 0 || res == -ENODEV)
		res = 0;
	if (res == 0 && caught)
		res = caught;
	return res;
}

void loop_join(struct coordfs *fs)
{
	pthread_mutex_lock(&pool.mu);
	pool.stop = 1;
	pthread_cond_broadcast(&pool.cv);
	int n = pool.nthreads;
	pthread_mutex_unlock(&pool.mu);
	for (int i = 0; i < n; i++)
		pthread_join(pool.th[i], NULL);
	while (pool.head) {
		struct job *j = pool.head;
		pool.head = j->next;
		free(j);
	}
	pool.tail = NULL;
	fuse_session_reset(fs->se);
	sem_destroy(&pool.finish);
}
