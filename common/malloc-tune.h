/* shardkit: keep nbdkit's request buffers mapped between connections.
 * GPL-3.0-or-later.
 *
 * nbdkit (1.32) gives each of its threads a request buffer as large
 * as the largest request it has served (16 threads per connection by
 * default; 4 MiB each when clients write whole 4 MiB chunks), and
 * frees it when the thread ends, that is when its connection closes.
 * With glibc's defaults a buffer of 4 MiB is an mmap of its own, and
 * once freed goes back to the kernel (munmap, or trimmed from the
 * arena past glibc's 8 MiB trim threshold): every connection faults
 * its buffers in afresh.  On the virtual machine of bench/README.md a
 * page fault costs about 20 microseconds, so for nbdcopy (4
 * connections) that is about a CPU second per session, whatever the
 * session moves.
 *
 * malloc_tune_for_request_buffers raises glibc's mmap threshold to its
 * maximum (32 MiB: buffers up to that size come from malloc's arenas)
 * and its trim threshold so that freed buffers stay mapped for the
 * next connection's threads.  The memory kept is at most what nbdkit's
 * threads used at their peak, and only until it is used again.  It
 * changes malloc for the whole nbdkit process (every plugin and filter
 * in it); it is called from .load, before any connection.
 */
#ifndef SHARDKIT_MALLOC_TUNE_H
#define SHARDKIT_MALLOC_TUNE_H

extern void malloc_tune_for_request_buffers (void);

#endif
