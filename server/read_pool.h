/* A small pool of read-only stores for queries run on the libuv thread pool.
 *
 * A store connection serves one thread at a time (store.h), so each query borrows a connection
 * for its duration: cv_read_pool_acquire hands out a free one under a mutex and waits while all
 * are lent; cv_read_pool_release gives it back. The connections are opened when the pool is
 * created, so a database that cannot be read is reported at start-up rather than on a request.
 *
 * Threads: acquire and release may be called from any thread; create and destroy from one
 * thread while no connection is lent. */
#ifndef CV_READ_POOL_H
#define CV_READ_POOL_H

#include "server/store.h"

#define CV_READ_POOL_MAX 64 /* connections a pool may hold */

typedef struct cv_read_pool cv_read_pool_t;

/* Opens size (1..CV_READ_POOL_MAX) read-only stores on the database at path (copied). On success
 * *out owns them (cv_read_pool_destroy); on failure nothing is left open and err says why. */
int cv_read_pool_create(cv_read_pool_t **out, const char *path, int size, char *err);

/* Closes every connection and frees the pool. Every acquired store must have been released.
 * Accepts NULL. */
void cv_read_pool_destroy(cv_read_pool_t *pool);

/* Lends a connection, waiting while all are lent. The caller gives it back with
 * cv_read_pool_release and uses it from one thread meanwhile. */
cv_store_t *cv_read_pool_acquire(cv_read_pool_t *pool);

/* Gives back a connection lent by cv_read_pool_acquire. */
void cv_read_pool_release(cv_read_pool_t *pool, cv_store_t *store);

#endif
