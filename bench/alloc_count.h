/* Process-wide count of heap allocation calls, for benchmarks that must show a loop allocates
 * nothing. Linked into bench programs only. */
#ifndef CV_BENCH_ALLOC_COUNT_H
#define CV_BENCH_ALLOC_COUNT_H

/* 1 when the counting hook is compiled in; 0 in sanitizer builds, whose runtime owns malloc. */
int cv_bench_alloc_counting(void);

/* Allocation calls (malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc,
 * valloc) made so far by any code in the process, the program's shared libraries included;
 * always 0 when cv_bench_alloc_counting() is 0. */
unsigned long cv_bench_alloc_count(void);

#endif
