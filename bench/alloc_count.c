/* Counts heap allocation calls by interposing glibc's allocator entry points in the benchmark
 * executable. The executable's definitions win symbol resolution for the whole process, so
 * calls from OpenBLAS, zlib and libc itself are counted too; each one forwards to glibc's
 * exported __libc_* implementation, so free() and the allocator's behaviour are unchanged.
 *
 * The counter is the one mutable global here, and it has to be: an allocator hook has no caller
 * to receive state from. It is atomic because OpenBLAS may own threads.
 *
 * Sanitizer runtimes interpose malloc themselves; a second interposer would hand them pointers
 * they never allocated, so the hook compiles away under AddressSanitizer. */
#include "bench/alloc_count.h"

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define CV_ALLOC_HOOK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define CV_ALLOC_HOOK 0
#endif
#endif
#ifndef CV_ALLOC_HOOK
#if defined(__GLIBC__) || defined(__linux__)
#define CV_ALLOC_HOOK 1
#else
#define CV_ALLOC_HOOK 0
#endif
#endif

#if CV_ALLOC_HOOK
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

static atomic_ulong alloc_calls; /* allocation calls since the process started */

/* glibc's own entry points, exported for exactly this kind of wrapper. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

/* Declared here because their feature-test macros are not on in this C11 build. */
void *memalign(size_t alignment, size_t size);
void *valloc(size_t size);
void *aligned_alloc(size_t alignment, size_t size);
int posix_memalign(void **out, size_t alignment, size_t size);

static void count_one(void) {
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
}

void *malloc(size_t size) {
    count_one();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_one();
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size) {
    count_one();
    return __libc_realloc(ptr, size);
}

void *memalign(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

void *valloc(size_t size) {
    count_one();
    return __libc_memalign(4096, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    /* The POSIX rule: a power of two that is a multiple of sizeof(void *). */
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    count_one();
    void *p = __libc_memalign(alignment, size);
    if (!p && size != 0) return ENOMEM;
    *out = p;
    return 0;
}

int cv_bench_alloc_counting(void) { return 1; }

unsigned long cv_bench_alloc_count(void) {
    return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}

#else

int cv_bench_alloc_counting(void) { return 0; }

unsigned long cv_bench_alloc_count(void) { return 0; }

#endif
