/*  alloc - allocation that never returns NULL.
    Part of gokart-exchange; MIT licence.
*/
#include <gkx/alloc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Out of memory leaves no consistent way forward; say so and stop. */
static void
s_oom (size_t size)
{
    fprintf (stderr, "gkx: out of memory allocating %zu bytes\n", size);
    abort ();
}

void *
gkx_zalloc (size_t size)
{
    void *ptr = calloc (1, size ? size : 1);
    if (!ptr) {
        s_oom (size);
    }
    return ptr;
}

void *
gkx_realloc (void *ptr, size_t size)
{
    void *grown = realloc (ptr, size ? size : 1);
    if (!grown) {
        s_oom (size);
    }
    return grown;
}

void *
gkx_memdup (const void *src, size_t size)
{
    void *copy = gkx_zalloc (size);
    if (size) {
        memcpy (copy, src, size);
    }
    return copy;
}

char *
gkx_strdup (const char *s)
{
    return gkx_memdup (s, strlen (s) + 1);
}

void
gkx_free (void *ptr)
{
    free (ptr);
}
