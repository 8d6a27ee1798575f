/*  metrics - a writer of the Prometheus text exposition format 0.0.4.
    Part of gokart-exchange; MIT licence.

    The text grows in one buffer, doubled as needed. The format's rules
    (https://prometheus.io/docs/instrumenting/exposition_formats/): lines end
    with "\n"; "# HELP name text" escapes backslash and newline in text;
    "# TYPE name counter|gauge" comes before the family's first sample; a
    sample is the name, optional labels {name="value",...} whose values
    escape backslash, double quote and newline, a space and a float that
    Go's ParseFloat reads (or NaN, +Inf, -Inf).
*/
#include <gkx/alloc.h>
#include <gkx/metrics.h>

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First size of the text buffer. */
#define S_INITIAL_BYTES 4096
/* Room for a number's text: "%.17g" of any double, and its NUL. */
#define S_NUMBER_BYTES 32
/* Largest magnitude below which every whole double is written exactly
   as an integer (2^53). */
#define S_EXACT_MAX 9007199254740992.0
/* Digits that round-trip most doubles, and those that round-trip all. */
#define S_DIGITS_SHORT 15
#define S_DIGITS_FULL 17

struct gkx_metrics {
    char *text;         /* the exposition so far, NUL-terminated */
    size_t len;         /* bytes in text, without the NUL */
    size_t cap;         /* bytes allocated for text */
    char *family;       /* the current family's name, NULL before the first */
};

/* Makes room for more bytes and the NUL. */
static void
s_reserve (gkx_metrics_t *self, size_t more)
{
    if (self->len + more + 1 <= self->cap) {
        return;
    }
    size_t cap = self->cap ? self->cap : S_INITIAL_BYTES;
    while (cap < self->len + more + 1) {
        cap *= 2;
    }
    self->text = gkx_realloc (self->text, cap);
    self->cap = cap;
}

/* Appends len bytes of data. */
static void
s_put (gkx_metrics_t *self, const char *data, size_t len)
{
    s_reserve (self, len);
    memcpy (self->text + self->len, data, len);
    self->len += len;
    self->text[self->len] = '\0';
}

/* Appends a NUL-terminated string. */
static void
s_puts (gkx_metrics_t *self, const char *text)
{
    s_put (self, text, strlen (text));
}

/* Appends text with backslash and newline escaped, and the double quote
   too when is_label (a label value). */
static void
s_put_escaped (gkx_metrics_t *self, const char *text, int is_label)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\') {
            s_put (self, "\\\\", 2);
        }
        else if (*p == '\n') {
            s_put (self, "\\n", 2);
        }
        else if (*p == '"' && is_label) {
            s_put (self, "\\\"", 2);
        }
        else {
            s_put (self, p, 1);
        }
    }
}

/* Returns 1 when name is a valid metric name (with colons) or, when
   is_label, a valid label name (no colons, not "__" reserved). */
static int
s_is_name (const char *name, int is_label)
{
    if (!name || !name[0] || (is_label && strncmp (name, "__", 2) == 0)) {
        return 0;
    }
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
                 || (c == ':' && !is_label) || (p > name && c >= '0' && c <= '9');
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* Writes a sample value: whole numbers below 2^53 as integers, others in
   the fewest digits (15 or 17) that read back as the same double. */
static void
s_number (char out[S_NUMBER_BYTES], double value)
{
    if (isnan (value)) {
        snprintf (out, S_NUMBER_BYTES, "NaN");
    }
    else if (isinf (value)) {
        snprintf (out, S_NUMBER_BYTES, "%s", value > 0 ? "+Inf" : "-Inf");
    }
    else if (value > -S_EXACT_MAX && value < S_EXACT_MAX && value == (double) (int64_t) value) {
        snprintf (out, S_NUMBER_BYTES, "%lld", (long long) value);
    }
    else {
        snprintf (out, S_NUMBER_BYTES, "%.*g", S_DIGITS_SHORT, value);
        if (strtod (out, NULL) != value) {
            snprintf (out, S_NUMBER_BYTES, "%.*g", S_DIGITS_FULL, value);
        }
    }
}

gkx_metrics_t *
gkx_metrics_new (void)
{
    gkx_metrics_t *self = gkx_zalloc (sizeof *self);
    s_reserve (self, 0);
    self->text[0] = '\0';
    return self;
}

void
gkx_metrics_destroy (gkx_metrics_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_metrics_t *self = *self_p;
    gkx_free (self->text);
    gkx_free (self->family);
    gkx_free (self);
    *self_p = NULL;
}

void
gkx_metrics_family (gkx_metrics_t *self, const char *name, gkx_metrics_type_t type,
                    const char *help)
{
    assert (self);
    assert (s_is_name (name, 0));
    assert (type == GKX_METRICS_COUNTER || type == GKX_METRICS_GAUGE);
    assert (help);
    size_t len = strlen (name);
    /* Counters end in _total (Prometheus and OpenMetrics naming). */
    assert (type != GKX_METRICS_COUNTER || (len > 6 && strcmp (name + len - 6, "_total") == 0));
    gkx_free (self->family);
    self->family = gkx_strdup (name);
    s_puts (self, "# HELP ");
    s_puts (self, name);
    s_puts (self, " ");
    s_put_escaped (self, help, 0);
    s_puts (self, "\n# TYPE ");
    s_puts (self, name);
    s_puts (self, type == GKX_METRICS_COUNTER ? " counter\n" : " gauge\n");
}

void
gkx_metrics_sample (gkx_metrics_t *self, const gkx_metrics_label_t *labels,
                    size_t labels_count, double value)
{
    assert (self);
    assert (self->family);
    assert (labels || labels_count == 0);
    s_puts (self, self->family);
    for (size_t i = 0; i < labels_count; i++) {
        assert (s_is_name (labels[i].name, 1));
        assert (labels[i].value);
        s_puts (self, i == 0 ? "{" : ",");
        s_puts (self, labels[i].name);
        s_puts (self, "=\"");
        s_put_escaped (self, labels[i].value, 1);
        s_puts (self, "\"");
    }
    char number[S_NUMBER_BYTES];
    s_number (number, value);
    s_puts (self, labels_count ? "} " : " ");
    s_puts (self, number);
    s_puts (self, "\n");
}

const char *
gkx_metrics_text (const gkx_metrics_t *self, size_t *len_p)
{
    assert (self);
    if (len_p) {
        *len_p = self->len;
    }
    return self->text;
}
