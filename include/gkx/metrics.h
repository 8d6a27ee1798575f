/*  metrics - a writer of the Prometheus text exposition format 0.0.4.
    Part of gokart-exchange; MIT licence.

    GET /metrics on gkxd's tenant API answers what a Prometheus server
    scrapes: one family per metric, its "# HELP" and "# TYPE" lines, then
    its samples, each "name{label="value",...} number". This module only
    writes that text, correctly: a sample always follows its family's TYPE
    line and bears its name, label values and help texts are escaped as the
    format says (backslash, double quote in label values, newline), and
    numbers are written so that a parser reads back the same double. What
    the node exposes, and from where, is the API's business (src/node/api.c,
    docs/api.md lists the metrics). Pure: no I/O, no clock.

    Names are the caller's constants, so a bad one is a programming error
    and asserts: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
    [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__", and a counter's name
    ends in "_total". Label values and help texts may be any UTF-8.
*/
#ifndef GKX_METRICS_H_INCLUDED
#define GKX_METRICS_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The Content-Type of the text this module writes. */
#define GKX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The type of a family, as its "# TYPE" line names it. */
typedef enum {
    GKX_METRICS_COUNTER = 1,    /* only goes up (or resets to 0 on a restart) */
    GKX_METRICS_GAUGE = 2,      /* goes up and down */
} gkx_metrics_type_t;

/* One label of a sample: its name and its value (any UTF-8, escaped here). */
typedef struct {
    const char *name;
    const char *value;
} gkx_metrics_label_t;

typedef struct gkx_metrics gkx_metrics_t;

/* Returns a new, empty exposition. Cannot fail. */
gkx_metrics_t *gkx_metrics_new (void);

/* Frees an exposition; accepts NULL; sets *self_p to NULL. */
void gkx_metrics_destroy (gkx_metrics_t **self_p);

/* Starts the family name of type with its help text: writes its "# HELP"
   and "# TYPE" lines. The samples written next belong to it. Each name is
   given once per exposition. */
void gkx_metrics_family (gkx_metrics_t *self, const char *name, gkx_metrics_type_t type,
                         const char *help);

/* Writes one sample of the current family (a family must be started): its
   name, the labels (labels_count of them, none when 0; labels may then be
   NULL) and value. NaN and infinities are written as NaN, +Inf and -Inf. */
void gkx_metrics_sample (gkx_metrics_t *self, const gkx_metrics_label_t *labels,
                         size_t labels_count, double value);

/* Returns the text written so far, NUL-terminated, and its length in
   *len_p (may be NULL). Borrowed until the next call on self. */
const char *gkx_metrics_text (const gkx_metrics_t *self, size_t *len_p);

#ifdef __cplusplus
}
#endif

#endif
