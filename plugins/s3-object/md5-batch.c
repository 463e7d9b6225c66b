/* shardkit s3-object: MD5 digests of concurrent callers computed together
 * (see md5-batch.h).
 * GPL-3.0-or-later.
 *
 * A caller queues its message and, if nobody is running the lanes, runs
 * them itself: it takes up to 16 queued messages into lanes and advances
 * all of them a slice at a time, taking newcomers into free lanes between
 * slices (a message alone goes through OpenSSL's single-stream MD5,
 * faster than one lane, until another joins; two go through plain C
 * with their steps interleaved, faster than two lanes).  Once its own
 * message is done it puts the unfinished ones back at the head of the
 * queue and one of their owners takes over.
 *
 * A caller that wants SHA-256 too (md5_sha256_batch: a chunk PUT) has
 * it computed in the same pass, on CPUs with the SHA extensions
 * (md5-sha256.c): such messages go alone or two at a time through the
 * fused kernels, never with more or with MD5-only messages.  Newcomers
 * join only from the head of the queue, so no message waits forever.
 * Blocks that went through MD5 without SHA-256 (when one of two
 * messages was already in its padding blocks) are left to SHA-256 for
 * the owner to finish once the MD5 is done.  Owners sleep until their
 * message is done; the buffers stay valid because every owner waits for
 * its digest.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* SHA256_Update is deprecated for whole digests (EVP does those), but it
 * is the one way to go on from a bare SHA-256 state with OpenSSL.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "md5-batch.h"
#include "md5-lanes.h"
#include "md5-sha256.h"

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

  /* SHA-256 of the same message, advanced beside MD5 by the fused
   * kernels; it lags behind MD5 by any blocks hashed without it.
   */
  bool with_sha;
  uint32_t sha[8];
  const unsigned char *sha_next;        /* next block SHA-256 has to see */
  size_t sha_blocks;                    /* full blocks it has left */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress = PTHREAD_COND_INITIALIZER;
static struct md5_job *queue;   /* waiting for a lane, oldest first */
static bool running;            /* some caller is running the lanes */
static struct md5_batch_stats stats;
static bool no_lanes, no_sha;   /* md5_batch_set_cpu, for tests */
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

static bool
lanes_ok (void)
{
  return !no_lanes && md5_lanes_supported ();
}

static bool
sha_ok (void)
{
  return !no_sha && md5_sha256_supported ();
}

void
md5_batch_set_cpu (bool lanes, bool sha)
{
  no_lanes = !lanes;
  no_sha = !sha;
}

/* Called with the lock held; returns with it held once ME is done. */
static void
run_lanes (struct md5_job *me)
{
  struct md5_job *lane[MD5_LANES];
  uint32_t state[MD5_LANES][4];
  const unsigned char *data[MD5_LANES];
  uint32_t sha[2][8];
  const unsigned char *sha_data[2];
  size_t n = 0, i, j, k;
  bool finished, fused;
  const size_t md5_only_max = lanes_ok () ? MD5_LANES : 2;

  for (;;) {
    /* Messages that want SHA-256 too (set only where sha_ok) go at most two
     * at a time through the fused kernels, and apart from MD5-only ones:
     * there both digests cost about 0.9 s/GiB a message, against
     * 1.2-1.3 for three or four messages in the MD5 lanes plus SHA-256
     * on its own (bench/md5-batch).  Newcomers that do not fit wait at
     * the head of the queue until the lanes drain.
     */
    while (queue &&
           (n == 0 ||
            (queue->with_sha == lane[0]->with_sha &&
             n < (lane[0]->with_sha ? 2 : md5_only_max)))) {
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
    /* One or two messages, all wanting SHA-256 and still in their data
     * (K is then no more than their data blocks, and SHA-256 has at
     * least as many left): both digests in one pass.
     */
    fused = n <= 2;
    for (i = 0; i < n && fused; ++i)
      fused = lane[i]->with_sha && lane[i]->data_blocks > 0 &&
        k <= lane[i]->sha_blocks;
    if (fused) {
      for (i = 0; i < n; ++i) {
        memcpy (sha[i], lane[i]->sha, sizeof sha[i]);
        sha_data[i] = lane[i]->sha_next;
      }
    }

    pthread_mutex_unlock (&lock);
    if (n == 1 && fused)
      md5_sha256_blocks (state[0], data[0], sha[0], sha_data[0], k);
    else if (n == 1)            /* alone for now: newcomers join later */
      md5_blocks_scalar (state[0], data[0], k);
    else if (n == 2 && fused)
      md5_sha256_blocks_x2 (state[0], data[0], sha[0], sha_data[0],
                            state[1], data[1], sha[1], sha_data[1], k);
    else if (n == 2)            /* two chains in the integer units */
      md5_blocks_scalar_x2 (state[0], state[1], data[0], data[1], k);
    else if (n <= MD5_LANES / 2)
      md5_lanes_blocks_8 (state, data, k);
    else
      md5_lanes_blocks (state, data, k);
    pthread_mutex_lock (&lock);

    if (fused) {
      for (i = 0; i < n; ++i) {
        memcpy (lane[i]->sha, sha[i], sizeof sha[i]);
        lane[i]->sha_next += 64 * k;
        lane[i]->sha_blocks -= k;
      }
      stats.bytes_sha_fused += 64 * k * n;
      if (n == 2)
        stats.bytes_sha_fused_pairs += 64 * k * n;
    }

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

/* A whole digest through OpenSSL (EVP_md5 or EVP_sha256). */
static int
openssl_digest (const EVP_MD *md, const void *data, size_t len,
                unsigned char *out)
{
  if (EVP_Digest (data, len, out, NULL, md, NULL) != 1) {
    errno = EIO;
    return -1;
  }
  return 0;
}

/* SHA-256 from STATE, which has seen the first DONE bytes of a message,
 * over the REST_LEN bytes left at REST, padding included.
 */
static void
sha256_finish (const uint32_t state[8], uint64_t done,
               const unsigned char *rest, size_t rest_len,
               unsigned char out[32])
{
  SHA256_CTX ctx;

  /* A context holding STATE with no partial block buffered, and the
   * bit count of what it has seen.
   */
  SHA256_Init (&ctx);
  memcpy (ctx.h, state, sizeof ctx.h);
  ctx.Nl = (SHA_LONG) (done << 3);
  ctx.Nh = (SHA_LONG) (done >> 29);
  SHA256_Update (&ctx, rest, rest_len);
  SHA256_Final (out, &ctx);
}

int
md5_batch (const void *data, size_t len, unsigned char out[16])
{
  return md5_sha256_batch (data, len, out, NULL);
}

int
md5_sha256_batch (const void *data, size_t len, unsigned char md5[16],
                  unsigned char sha256[32])
{
  struct md5_job job = { .next = data, .data_blocks = len / 64 };
  struct md5_job **tail;
  const bool fuse_sha = sha256 && sha_ok ();

  /* The runner pays off with the MD5 lanes, or for SHA-256 in the same
   * pass (CPUs with the SHA extensions but no AVX-512 too).
   */
  if (len < MIN_BATCH || (!lanes_ok () && !fuse_sha)) {
    if (sha256 && openssl_digest (EVP_sha256 (), data, len, sha256) == -1)
      return -1;
    return openssl_digest (EVP_md5 (), data, len, md5);
  }
  if (sha256 && !fuse_sha) {
    if (openssl_digest (EVP_sha256 (), data, len, sha256) == -1)
      return -1;
    sha256 = NULL;
  }
  if (sha256) {
    job.with_sha = true;
    memcpy (job.sha, sha256_iv, sizeof job.sha);
    job.sha_next = data;
    job.sha_blocks = len / 64;
  }

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
  if (job.with_sha)
    stats.bytes_sha_lagged += 64 * job.sha_blocks;
  pthread_mutex_unlock (&lock);

  md5_state_bytes (job.state, md5);
  if (sha256) {
    size_t done = (size_t) (job.sha_next - (const unsigned char *) data);
    sha256_finish (job.sha, done, job.sha_next, len - done, sha256);
  }
  return 0;
}

void
md5_batch_get_stats (struct md5_batch_stats *out)
{
  pthread_mutex_lock (&lock);
  *out = stats;
  pthread_mutex_unlock (&lock);
}
