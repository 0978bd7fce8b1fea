/* CV_VECTOR_CLONES: marks a function to be compiled also for AVX2 and AVX-512 on x86-64, the
 * widest the CPU supports picked when the program loads (GCC's target_clones, an ifunc). The
 * baseline x86-64 target gives the vectorizer only 4-wide SSE2. No clone enables FMA, so no
 * multiply-add is contracted and every path computes bit-identical values.
 *
 * Clang before 16 names a non-static clone's dispatcher "f.ifunc", so callers in other files
 * fail to link (seen with the clang fuzz build); such compilers, and other targets, get the
 * portable code only. */
#ifndef CV_VECTOR_CLONES_H
#define CV_VECTOR_CLONES_H

#if defined(__x86_64__) && defined(__has_attribute) && \
    !(defined(__clang__) && __clang_major__ < 16)
#if __has_attribute(target_clones)
#define CV_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef CV_VECTOR_CLONES
#define CV_VECTOR_CLONES
#endif

#endif
