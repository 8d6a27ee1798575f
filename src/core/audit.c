/*  audit - offline verification of exported logs.
    Part of gokart-exchange; MIT licence.

    Entries are sorted per chain by seq, then each chain is walked once from
    seq 1: every rule that the store applies at ingest is applied again here,
    from the export alone, so an auditor trusts neither node.
*/
#include <gkx/alloc.h>
#include <gkx/audit.h>
#include <gkx/kind.h>

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An entry of one chain, with where it sits in the export. */
typedef struct {
    const gkx_entry_t *entry;
    size_t index;
} s_item_t;

/* One chain's valid entries, in seq order after sorting. */
typedef struct {
    s_item_t *items;
    size_t count;
    size_t capacity;
} s_chain_t;

/* The outcome of a verify. */
struct gkx_audit_report {
    gkx_audit_defect_t *defects;
    size_t count;
    size_t capacity;
    gkx_audit_chain_t chains[2];    /* [0] advertiser, [1] publisher */
};

/* Adds a defect. */
__attribute__ ((format (printf, 7, 8))) static void
s_defect (gkx_audit_report_t *self, size_t index, size_t other_index, int role, uint64_t seq,
          int code, const char *fmt, ...)
{
    if (self->count == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 16;
        self->defects = gkx_realloc (self->defects, self->capacity * sizeof *self->defects);
    }
    gkx_audit_defect_t *d = &self->defects[self->count++];
    d->index = index;
    d->other_index = other_index;
    d->role = role;
    d->seq = seq;
    d->code = code;
    va_list args;
    va_start (args, fmt);
    vsnprintf (d->message, sizeof d->message, fmt, args);
    va_end (args);
}

/* Appends an item to a chain. */
static void
s_chain_add (s_chain_t *chain, const gkx_entry_t *entry, size_t index)
{
    if (chain->count == chain->capacity) {
        chain->capacity = chain->capacity ? chain->capacity * 2 : 64;
        chain->items = gkx_realloc (chain->items, chain->capacity * sizeof *chain->items);
    }
    chain->items[chain->count].entry = entry;
    chain->items[chain->count].index = index;
    chain->count++;
}

/* Orders items by seq, then by position in the export. */
static int
s_item_compare (const void *a, const void *b)
{
    const s_item_t *x = a;
    const s_item_t *y = b;
    uint64_t sx = gkx_entry_seq (x->entry);
    uint64_t sy = gkx_entry_seq (y->entry);
    if (sx != sy) {
        return sx < sy ? -1 : 1;
    }
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Chain slot of a role. */
static int
s_slot (int role)
{
    return role == GKX_ROLE_ADVERTISER ? 0 : 1;
}

/* Role of an author in the header's partnership, or 0. */
static int
s_role_of (const gkx_logfile_header_t *header, const uint8_t *author)
{
    if (memcmp (author, header->advertiser, GKX_ID_BYTES) == 0) {
        return GKX_ROLE_ADVERTISER;
    }
    if (memcmp (author, header->publisher, GKX_ID_BYTES) == 0) {
        return GKX_ROLE_PUBLISHER;
    }
    return 0;
}

/* Sorts entries into the two chains, reporting those that cannot join one. */
static void
s_collect (gkx_audit_report_t *self, const gkx_logfile_t *log, s_chain_t chains[2])
{
    const gkx_logfile_header_t *header = gkx_logfile_header (log);
    size_t count = gkx_logfile_count (log);
    if (header->entry_count != count) {
        s_defect (self, GKX_AUDIT_NO_ENTRY, GKX_AUDIT_NO_ENTRY, 0, 0, GKX_EDECODE,
                  "the header announces %llu entries but the export holds %zu (truncated?)",
                  (unsigned long long) header->entry_count, count);
    }
    if (!s_role_of (header, header->exported_by)) {
        s_defect (self, GKX_AUDIT_NO_ENTRY, GKX_AUDIT_NO_ENTRY, 0, 0, GKX_ENOTMEMBER,
                  "the exporting node is not a member of the partnership");
    }
    for (size_t i = 0; i < count; i++) {
        const char *message = NULL;
        int error = gkx_logfile_entry_error (log, i, &message);
        const gkx_entry_t *entry = gkx_logfile_entry (log, i);
        if (error != GKX_OK) {
            s_defect (self, i, GKX_AUDIT_NO_ENTRY, 0, 0, error, "%s", message);
            continue;
        }
        uint64_t seq = gkx_entry_seq (entry);
        int role = s_role_of (header, gkx_entry_author (entry));
        if (memcmp (gkx_entry_pid (entry), header->pid, GKX_ID_BYTES) != 0) {
            s_defect (self, i, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EINVAL,
                      "the entry belongs to another partnership");
            continue;
        }
        if (role == 0) {
            s_defect (self, i, GKX_AUDIT_NO_ENTRY, 0, seq, GKX_ENOTMEMBER,
                      "the author is not a member of the partnership");
            continue;
        }
        if (gkx_entry_verify (entry) != GKX_OK) {
            s_defect (self, i, GKX_AUDIT_NO_ENTRY, role, seq, GKX_ESIGNATURE,
                      "the signature does not verify for the author");
            continue;
        }
        s_chain_add (&chains[s_slot (role)], entry, i);
    }
    for (int c = 0; c < 2; c++) {
        if (chains[c].count) {
            qsort (chains[c].items, chains[c].count, sizeof (s_item_t), s_item_compare);
        }
    }
}

/* Finds the entry at seq in a sorted chain, or NULL. */
static const gkx_entry_t *
s_find (const s_chain_t *chain, uint64_t seq)
{
    size_t lo = 0;
    size_t hi = chain->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = gkx_entry_seq (chain->items[mid].entry);
        if (s < seq) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < chain->count && gkx_entry_seq (chain->items[lo].entry) == seq
        ? chain->items[lo].entry : NULL;
}

/* Checks an entry's genesis rules. */
static void
s_check_genesis (gkx_audit_report_t *self, const gkx_logfile_header_t *header, int role,
                 const s_item_t *item)
{
    uint64_t seq = gkx_entry_seq (item->entry);
    int is_genesis = gkx_entry_kind (item->entry) == GKX_KIND_GENESIS;
    if ((role == GKX_ROLE_ADVERTISER && seq == 1) != is_genesis) {
        s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EBODY,
                  "the advertiser's chain, and only it, starts with the genesis entry");
        return;
    }
    if (!is_genesis) {
        return;
    }
    uint8_t advertiser[GKX_ID_BYTES];
    uint8_t publisher[GKX_ID_BYTES];
    gkx_genesis_members (item->entry, advertiser, publisher);
    if (memcmp (advertiser, header->advertiser, GKX_ID_BYTES) != 0
        || memcmp (publisher, header->publisher, GKX_ID_BYTES) != 0) {
        s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EBODY,
                  "the genesis names other members than the export's header");
    }
}

/* Walks one chain from seq 1 applying the chain and cross-link rules. */
static void
s_walk (gkx_audit_report_t *self, const gkx_logfile_header_t *header, int role,
        const s_chain_t *chain, const s_chain_t *other)
{
    gkx_audit_chain_t *summary = &self->chains[s_slot (role)];
    int other_role = role == GKX_ROLE_ADVERTISER ? GKX_ROLE_PUBLISHER : GKX_ROLE_ADVERTISER;
    const gkx_entry_t *prev = NULL;
    uint64_t expected = 1;
    for (size_t i = 0; i < chain->count; i++) {
        const s_item_t *item = &chain->items[i];
        const gkx_entry_t *entry = item->entry;
        uint64_t seq = gkx_entry_seq (entry);
        if (prev && seq == gkx_entry_seq (prev)) {
            if (memcmp (gkx_entry_hash (prev), gkx_entry_hash (entry), GKX_HASH_BYTES) != 0) {
                s_defect (self, item->index, chain->items[i - 1].index, role, seq,
                          GKX_EEQUIVOCATION,
                          "equivocation: the %s signed two different entries at seq %llu",
                          gkx_role_name (role), (unsigned long long) seq);
            }
            continue;
        }
        if (seq != expected) {
            s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EGAP,
                      "%s seq %llu follows seq %llu: entries are missing",
                      gkx_role_name (role), (unsigned long long) seq,
                      (unsigned long long) expected - 1);
        }
        else if (prev && memcmp (gkx_entry_prev_hash (entry), gkx_entry_hash (prev),
                                 GKX_HASH_BYTES) != 0) {
            s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EPREV,
                      "%s seq %llu: prev_hash is not the hash of seq %llu",
                      gkx_role_name (role), (unsigned long long) seq,
                      (unsigned long long) seq - 1);
        }
        if (prev && gkx_entry_hlc (entry) <= gkx_entry_hlc (prev)) {
            s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_ECLOCK,
                      "%s seq %llu: the clock does not advance", gkx_role_name (role),
                      (unsigned long long) seq);
        }
        if (prev && gkx_entry_seen_seq (entry) < gkx_entry_seen_seq (prev)) {
            s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_ECROSSLINK,
                      "%s seq %llu: seen_seq goes back", gkx_role_name (role),
                      (unsigned long long) seq);
        }
        s_check_genesis (self, header, role, item);
        uint64_t seen = gkx_entry_seen_seq (entry);
        if (seen > 0) {
            const gkx_entry_t *target = s_find (other, seen);
            if (!target) {
                s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_EAHEAD,
                          "%s seq %llu: its cross-link names %s seq %llu, which is not in "
                          "the export", gkx_role_name (role), (unsigned long long) seq,
                          gkx_role_name (other_role), (unsigned long long) seen);
            }
            else if (memcmp (gkx_entry_hash (target), gkx_entry_seen_hash (entry),
                             GKX_HASH_BYTES) != 0) {
                s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_ECROSSLINK,
                          "%s seq %llu: seen_hash is not the hash of %s seq %llu",
                          gkx_role_name (role), (unsigned long long) seq,
                          gkx_role_name (other_role), (unsigned long long) seen);
            }
            else if (gkx_entry_hlc (entry) <= gkx_entry_hlc (target)) {
                s_defect (self, item->index, GKX_AUDIT_NO_ENTRY, role, seq, GKX_ECLOCK,
                          "%s seq %llu: the clock is not past the entry it has seen",
                          gkx_role_name (role), (unsigned long long) seq);
            }
        }
        if (summary->entries == 0) {
            summary->first_hlc = gkx_entry_hlc (entry);
        }
        summary->entries++;
        summary->head_seq = seq;
        memcpy (summary->head_hash, gkx_entry_hash (entry), GKX_HASH_BYTES);
        summary->last_hlc = gkx_entry_hlc (entry);
        gkx_audit_chain_t *other_summary = &self->chains[s_slot (other_role)];
        if (seen > other_summary->acknowledged_seq) {
            other_summary->acknowledged_seq = seen;
        }
        prev = entry;
        expected = seq + 1;
    }
}

gkx_audit_report_t *
gkx_audit_verify (const gkx_logfile_t *log)
{
    assert (log);
    gkx_audit_report_t *self = gkx_zalloc (sizeof *self);
    s_chain_t chains[2];
    memset (chains, 0, sizeof chains);
    s_collect (self, log, chains);
    const gkx_logfile_header_t *header = gkx_logfile_header (log);
    if (chains[0].count == 0) {
        s_defect (self, GKX_AUDIT_NO_ENTRY, GKX_AUDIT_NO_ENTRY, GKX_ROLE_ADVERTISER, 1,
                  GKX_EGAP, "the export has no valid genesis entry");
    }
    s_walk (self, header, GKX_ROLE_ADVERTISER, &chains[0], &chains[1]);
    s_walk (self, header, GKX_ROLE_PUBLISHER, &chains[1], &chains[0]);
    gkx_free (chains[0].items);
    gkx_free (chains[1].items);
    return self;
}

void
gkx_audit_report_destroy (gkx_audit_report_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_free ((*self_p)->defects);
    gkx_free (*self_p);
    *self_p = NULL;
}

int
gkx_audit_is_sound (const gkx_audit_report_t *self)
{
    return self->count == 0;
}

size_t
gkx_audit_defect_count (const gkx_audit_report_t *self)
{
    return self->count;
}

const gkx_audit_defect_t *
gkx_audit_defect (const gkx_audit_report_t *self, size_t i)
{
    assert (i < self->count);
    return &self->defects[i];
}

const gkx_audit_chain_t *
gkx_audit_chain (const gkx_audit_report_t *self, int role)
{
    return &self->chains[s_slot (role)];
}

/* The hash of the first entry at seq in an export's chain, or NULL. */
static const uint8_t *
s_hash_at (const s_chain_t *chain, uint64_t seq)
{
    const gkx_entry_t *entry = s_find (chain, seq);
    return entry ? gkx_entry_hash (entry) : NULL;
}

/* Number of contiguous entries from seq 1. */
static uint64_t
s_contiguous (const s_chain_t *chain)
{
    uint64_t length = 0;
    while (s_find (chain, length + 1)) {
        length++;
    }
    return length;
}

int
gkx_audit_compare (const gkx_logfile_t *a, const gkx_logfile_t *b,
                   gkx_audit_comparison_t out[2], char *errbuf)
{
    const gkx_logfile_header_t *ha = gkx_logfile_header (a);
    const gkx_logfile_header_t *hb = gkx_logfile_header (b);
    if (memcmp (ha->pid, hb->pid, GKX_ID_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "the two exports are of different partnerships");
    }
    gkx_audit_report_t *scratch_a = gkx_zalloc (sizeof *scratch_a);
    gkx_audit_report_t *scratch_b = gkx_zalloc (sizeof *scratch_b);
    s_chain_t ca[2];
    s_chain_t cb[2];
    memset (ca, 0, sizeof ca);
    memset (cb, 0, sizeof cb);
    s_collect (scratch_a, a, ca);
    s_collect (scratch_b, b, cb);
    for (int c = 0; c < 2; c++) {
        gkx_audit_comparison_t *cmp = &out[c];
        memset (cmp, 0, sizeof *cmp);
        cmp->role = c == 0 ? GKX_ROLE_ADVERTISER : GKX_ROLE_PUBLISHER;
        cmp->a_length = s_contiguous (&ca[c]);
        cmp->b_length = s_contiguous (&cb[c]);
        uint64_t common = cmp->a_length < cmp->b_length ? cmp->a_length : cmp->b_length;
        for (uint64_t seq = 1; seq <= common; seq++) {
            if (memcmp (s_hash_at (&ca[c], seq), s_hash_at (&cb[c], seq), GKX_HASH_BYTES) != 0) {
                cmp->relation = GKX_AUDIT_FORK;
                cmp->fork_seq = seq;
                break;
            }
        }
        if (cmp->relation == 0) {
            cmp->relation = cmp->a_length == cmp->b_length ? GKX_AUDIT_EQUAL
                : cmp->a_length < cmp->b_length ? GKX_AUDIT_A_PREFIX : GKX_AUDIT_B_PREFIX;
        }
        gkx_free (ca[c].items);
        gkx_free (cb[c].items);
    }
    gkx_audit_report_destroy (&scratch_a);
    gkx_audit_report_destroy (&scratch_b);
    return GKX_OK;
}

const char *
gkx_audit_relation_name (int relation)
{
    switch (relation) {
        case GKX_AUDIT_EQUAL: return "equal";
        case GKX_AUDIT_A_PREFIX: return "a-prefix";
        case GKX_AUDIT_B_PREFIX: return "b-prefix";
        case GKX_AUDIT_FORK: return "fork";
        default: return "unknown";
    }
}
