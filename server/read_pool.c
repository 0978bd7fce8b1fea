/* A pool of read-only store connections lent to thread-pool queries; see read_pool.h. */
#include "server/read_pool.h"

#include <stdlib.h>

#include <uv.h>

#include "common/err.h"

struct cv_read_pool {
    uv_mutex_t lock;                    /* guards free and n_free */
    uv_cond_t returned;                 /* signalled when a connection comes back */
    int size;                           /* connections owned */
    int n_free;                         /* of them, not lent: free[0..n_free) */
    cv_store_t *all[CV_READ_POOL_MAX];  /* every connection, for closing */
    cv_store_t *free[CV_READ_POOL_MAX]; /* the stack of connections not lent */
};

int cv_read_pool_create(cv_read_pool_t **out, const char *path, int size, char *err) {
    *out = NULL;
    if (size < 1 || size > CV_READ_POOL_MAX)
        return cv_errf(err, CV_EINVAL, "read pool: size must be in [1, %d], got %d",
                       CV_READ_POOL_MAX, size);
    cv_read_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool) return cv_errf(err, CV_ENOMEM, "read pool: out of memory");
    int rc = CV_ENOMEM;
    if (uv_mutex_init(&pool->lock)) goto free_pool;
    if (uv_cond_init(&pool->returned)) goto destroy_lock;
    for (; pool->size < size; pool->size++) {
        rc = cv_store_open_readonly(path, &pool->all[pool->size], err);
        if (rc) goto close_stores;
        pool->free[pool->size] = pool->all[pool->size];
    }
    pool->n_free = size;
    *out = pool;
    return 0;

close_stores:
    for (int i = 0; i < pool->size; i++)
        cv_store_close(pool->all[i]);
    uv_cond_destroy(&pool->returned);
destroy_lock:
    uv_mutex_destroy(&pool->lock);
free_pool:
    if (rc == CV_ENOMEM) cv_errf(err, CV_ENOMEM, "read pool: out of memory");
    free(pool);
    return rc;
}

void cv_read_pool_destroy(cv_read_pool_t *pool) {
    if (!pool) return;
    for (int i = 0; i < pool->size; i++)
        cv_store_close(pool->all[i]);
    uv_cond_destroy(&pool->returned);
    uv_mutex_destroy(&pool->lock);
    free(pool);
}

cv_store_t *cv_read_pool_acquire(cv_read_pool_t *pool) {
    uv_mutex_lock(&pool->lock);
    while (pool->n_free == 0)
        uv_cond_wait(&pool->returned, &pool->lock);
    cv_store_t *store = pool->free[--pool->n_free];
    uv_mutex_unlock(&pool->lock);
    return store;
}

void cv_read_pool_release(cv_read_pool_t *pool, cv_store_t *store) {
    uv_mutex_lock(&pool->lock);
    pool->free[pool->n_free++] = store;
    uv_cond_signal(&pool->returned);
    uv_mutex_unlock(&pool->lock);
}
