/* shardkit s3-object: MD5 digests of concurrent callers computed together
 * (see md5-batch.h).
 * GPL-3.0-or-later.
 *
 * A caller queues its message and, if nobody is running the lanes, runs
 * them itself: it takes up to 16 queued messages into lanes and advances
 * all of them a slice at a time, taking newcomers into free lanes between
 * slices (a message alone goes through OpenSSL's single-stream MD5,
 * faster than one lane, until another joins; two go through plain C
 * with their steps interleaved, faster than two lanes).  Once its own message is done it puts the unfinished ones back
 * at the head of the queue and one of their owners takes over.  Owners
 * sleep until their message is done; the buffers stay valid because
 * every owner waits for its digest.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "md5-batch.h"
#include "md5-lanes.h"

/* Blocks of every lane per pass: 4 KiB, a few microseconds, so that a
 * newcomer soon gets a lane.
 */
#define SLICE 64

/* Below this OpenSSL is as fast and no other caller would join in time. */
#define MIN_BATCH (64 * 1024)

struct md5_job {
  uint32_t state[4];
  const unsigned char *next;    /* the next full block of the message */
  size_t data_blocks;           /* full blocks of the message left */
  unsigned char pad[128];       /* the final block(s): tail and padding */
  size_t pad_blocks, pad_left;  /* final blocks in all, and left */
  bool done;
  struct md5_job *queued_next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress = PTHREAD_COND_INITIALIZER;
static struct md5_job *queue;   /* waiting for a lane, oldest first */
static bool running;            /* some caller is running the lanes */
static struct md5_batch_stats stats;
static const unsigned char zeros[SLICE * 64];   /* for idle lanes */

static const unsigned char *
job_data (const struct md5_job *j)
{
  if (j->data_blocks > 0)
    return j->next;
  return j->pad + 64 * (j->pad_blocks - j->pad_left);
}

/* Blocks that can be read contiguously at job_data. */
static size_t
job_run (const struct md5_job *j)
{
  return j->data_blocks > 0 ? j->data_blocks : j->pad_left;
}

static void
job_advance (struct md5_job *j, size_t n)
{
  if (j->data_blocks > 0) {
    j->next += 64 * n;
    j->data_blocks -= n;
  }
  else
    j->pad_left -= n;
  j->done = j->data_blocks == 0 && j->pad_left == 0;
}

/* Called with the lock held; returns with it held once ME is done. */
static void
run_lanes (struct md5_job *me)
{
  struct md5_job *lane[MD5_LANES];
  uint32_t state[MD5_LANES][4];
  const unsigned char *data[MD5_LANES];
  size_t n = 0, i, j, k;
  bool finished;

  for (;;) {
    while (n < MD5_LANES && queue) {
      lane[n++] = queue;
      queue = queue->queued_next;
    }
    if (n > stats.max_shared)
      stats.max_shared = (unsigned) n;
    k = SLICE;
    for (i = 0; i < n; ++i)
      if (job_run (lane[i]) < k)
        k = job_run (lane[i]);
    memset (state, 0, sizeof state);
    for (i = 0; i < MD5_LANES; ++i) {
      if (i < n) {
        memcpy (state[i], lane[i]->state, sizeof state[i]);
        data[i] = job_data (lane[i]);
      }
      else
        data[i] = zeros;
    }

    pthread_mutex_unlock (&lock);
    if (n == 1)                 /* alone for now: newcomers join later */
      md5_blocks_scalar (state[0], data[0], k);
    else if (n == 2)            /* two chains in the integer units */
      md5_blocks_scalar_x2 (state[0], state[1], data[0], data[1], k);
    else if (n <= MD5_LANES / 2)
      md5_lanes_blocks_8 (state, data, k);
    else
      md5_lanes_blocks (state, data, k);
    pthread_mutex_lock (&lock);

    if (n == 1)
      stats.bytes_alone += 64 * k;
    else
      stats.bytes_shared += 64 * k * n;
    finished = false;
    for (i = j = 0; i < n; ++i) {
      memcpy (lane[i]->state, state[i], sizeof state[i]);
      job_advance (lane[i], k);
      if (lane[i]->done)
        finished = true;
      else
        lane[j++] = lane[i];
    }
    n = j;
    if (finished)
      pthread_cond_broadcast (&progress);
    if (me->done) {
      /* Hand the rest on, ahead of anything queued since. */
      while (n > 0) {
        lane[--n]->queued_next = queue;
        queue = lane[n];
      }
      return;
    }
  }
}

static int
md5_openssl (const void *data, size_t len, unsigned char out[16])
{
  if (EVP_Digest (data, len, out, NULL, EVP_md5 (), NULL) != 1) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int
md5_batch (const void *data, size_t len, unsigned char out[16])
{
  struct md5_job job = { .next = data, .data_blocks = len / 64 };
  struct md5_job **tail;

  if (len < MIN_BATCH || !md5_lanes_supported ())
    return md5_openssl (data, len, out);

  memcpy (job.state, md5_iv, sizeof job.state);
  job.pad_blocks = job.pad_left =
    md5_padding ((const unsigned char *) data + len / 64 * 64, len, job.pad);

  pthread_mutex_lock (&lock);
  for (tail = &queue; *tail; tail = &(*tail)->queued_next)
    ;
  *tail = &job;
  while (!job.done) {
    if (!running) {
      running = true;
      run_lanes (&job);
      running = false;
      pthread_cond_broadcast (&progress);
    }
    else
      pthread_cond_wait (&progress, &lock);
  }
  pthread_mutex_unlock (&lock);

  md5_state_bytes (job.state, out);
  return 0;
}

void
md5_batch_get_stats (struct md5_batch_stats *out)
{
  pthread_mutex_lock (&lock);
  *out = stats;
  pthread_mutex_unlock (&lock);
}
