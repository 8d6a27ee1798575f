/*  alloc - allocation that never returns NULL.
    Part of gokart-exchange; MIT licence.

    Out of memory is not an error a node can recover from mid-transaction, so
    every allocation in libgkx goes through these wrappers, which abort with a
    message instead of returning NULL (CZMQ, Redis zmalloc). Sizes that come
    from untrusted input are checked against limits before they get here.
*/
#ifndef GKX_ALLOC_H_INCLUDED
#define GKX_ALLOC_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns size zeroed bytes; aborts on out of memory. */
void *gkx_zalloc (size_t size);

/* Resizes ptr (may be NULL); aborts on out of memory. */
void *gkx_realloc (void *ptr, size_t size);

/* Returns a copy of size bytes at src; aborts on out of memory. */
void *gkx_memdup (const void *src, size_t size);

/* Returns a copy of a NUL-terminated string; aborts on out of memory. */
char *gkx_strdup (const char *s);

/* Frees what the functions above returned; NULL is allowed. */
void gkx_free (void *ptr);

#ifdef __cplusplus
}
#endif

#endif
