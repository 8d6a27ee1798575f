/*  merge - the deterministic merge of a partnership's offer edits.
    Part of gokart-exchange; MIT licence.

    The state keeps the genesis and the edit, propose and answer entries
    sorted by their canonical key (hlc, author id, seq, entry hash). Every
    derived thing (offer, change records, proposals) is the fold of those
    entries in that order, so it depends only on which entries are held.
    An entry that sorts after every held one is folded at once; one that
    arrives out of order marks the derived state stale and the next reader
    folds again from the genesis. Folding in key order is the same as keeping
    the greatest key per register, since each operation's key is greater
    than all before it; it also lets rules that depend on several fields
    (schedule order, element limits) reject an operation deterministically.
*/
#include <gkx/alloc.h>
#include <gkx/error.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

/* Bytes of a hex id with its NUL. */
#define S_HEX_BYTES (2 * GKX_MERGE_HASH_BYTES + 1)
/* Shortest proposal id prefix accepted by gkx_merge_proposal_find. */
#define S_PREFIX_MIN 8
/* Most policy rules: one per field and group is plenty. */
#define S_POLICY_MAX 128
/* Bytes of an ISO 8601 time with milliseconds, with room for 5-digit years. */
#define S_TIME_BYTES 40
/* The offer's status field, whose writer gkx_merge_status_hlc reports. */
#define S_STATUS_PATH "status"

/* Who may change a field. */
typedef enum {
    S_MODE_BOTH = 0,                       /* either member, the default */
    S_MODE_ADVERTISER = GKX_ROLE_ADVERTISER, /* only the advertiser */
    S_MODE_PUBLISHER = GKX_ROLE_PUBLISHER,   /* only the publisher */
    S_MODE_PROPOSE = 3,                    /* only by an accepted proposal */
} s_mode_t;

/* Policy words, indexed by s_mode_t. */
static const char *const s_mode_words[] = {"both", "advertiser", "publisher", "propose"};

/* Answer words, indexed by gkx_merge_answer_t. */
static const char *const s_answer_words[] = {NULL, "accept", "decline", "withdraw"};

/* Status words of a proposal: pending, then the answer that counted. */
static const char *const s_status_words[] = {"pending", "accepted", "declined", "withdrawn"};

/* What a change record describes. */
typedef enum {
    S_REC_OP = 1,  /* one operation, applied or rejected */
    S_REC_PROPOSE, /* a proposal was made */
    S_REC_ANSWER,  /* a proposal was answered */
} s_rec_type_t;

/* One policy rule. */
typedef struct {
    /* field path or group */
    char *key;
    /* an s_mode_t */
    int mode;
} s_rule_t;

/* One held entry, with its decoded body. */
typedef struct {
    /* canonical key, first part */
    uint64_t hlc;
    /* chain position of the author */
    uint64_t seq;
    /* newest counterparty seq the author held: gives causality */
    uint64_t seen_seq;
    /* author id */
    uint8_t author[GKX_MERGE_ID_BYTES];
    /* entry hash: identity and last tie-break */
    uint8_t hash[GKX_MERGE_HASH_BYTES];
    /* author role */
    int role;
    /* entry kind: edit, propose or answer */
    int kind;
    /* the body as received, kept for serialisation */
    uint8_t *body;
    /* its length */
    size_t body_len;
    /* decoded operations of edit and propose entries */
    gkx_offer_ops_t *ops;
    /* decoded answer of answer entries */
    int answer;
    /* proposal an answer refers to */
    uint8_t proposal[GKX_MERGE_HASH_BYTES];
} s_entry_t;

/* One change record of the fold. */
typedef struct {
    /* an s_rec_type_t */
    int type;
    /* the entry that wrote the operation (the propose entry for accepted ops) */
    size_t source;
    /* the entry whose key the operation took (the accept for proposal ops) */
    size_t writer;
    /* operation index within source's ops */
    size_t op_index;
    /* JSON-form value before, for operations */
    json_t *old_value;
    /* JSON-form value after (or attempted), for operations */
    json_t *new_value;
    /* why it was rejected, NULL when applied */
    char *reason;
    /* entry of the concurrent operation that overwrote this one, or -1 */
    long superseded_by;
    /* entry of the proposal this record belongs to, or -1 */
    long proposal;
} s_record_t;

/* One proposal of the fold. */
typedef struct {
    /* the propose entry */
    size_t entry;
    /* 0 while pending, else the gkx_merge_answer_t that counted */
    int status;
    /* the answer entry that counted, or -1 */
    long answered_by;
    /* per operation: whether the policy let the proposer propose it */
    bool *allowed;
} s_proposal_t;

/* A partnership's merge state. */
/* A held entry's place in its author's chain. */
typedef struct {
    uint64_t seq;
    uint8_t hash[GKX_MERGE_HASH_BYTES];
} s_held_t;

struct gkx_merge {
    /* member ids, indexed by role - 1 */
    uint8_t members[2][GKX_MERGE_ID_BYTES];
    /* canonical genesis offer, kept for serialisation */
    uint8_t *offer_bytes;
    /* its length */
    size_t offer_len;
    /* canonical genesis policy, kept for serialisation */
    uint8_t *policy_bytes;
    /* its length */
    size_t policy_len;
    /* the decoded genesis offer, the start of every fold */
    gkx_offer_t *genesis;
    /* policy rules */
    s_rule_t *rules;
    /* how many */
    size_t rule_count;
    /* held entries, sorted by canonical key */
    s_entry_t *entries;
    /* how many */
    size_t count;
    /* how many allocated */
    size_t alloc;
    /* whether the derived fields below reflect every held entry */
    bool fresh;
    /* the folded offer */
    gkx_offer_t *offer;
    /* change records in fold order */
    s_record_t *records;
    /* how many */
    size_t record_count;
    /* how many allocated */
    size_t record_alloc;
    /* proposals in fold order */
    s_proposal_t *proposals;
    /* how many */
    size_t proposal_count;
    /* how many allocated */
    size_t proposal_alloc;
    /* register or element ("path\x1fkey") -> index of its last applied record */
    json_t *writers;
    /* hlc of the entry that gave "status" its current value; 0 for the genesis's */
    uint64_t status_hlc;
    /* per role - 1: the held entries' seqs and hashes, sorted by seq, so a
       duplicate or an equivocation is found without scanning every entry */
    s_held_t *held[2];
    /* how many, per role - 1 */
    size_t held_count[2];
    /* how many allocated, per role - 1 */
    size_t held_alloc[2];
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                  */

/* Writes bytes as lowercase hex. */
static void
s_hex (char *hex, const uint8_t *bytes, size_t len)
{
    sodium_bin2hex (hex, 2 * len + 1, bytes, len);
}

/* Returns a JSON string of hex. */
static json_t *
s_hex_json (const uint8_t *bytes, size_t len)
{
    char hex[S_HEX_BYTES];
    assert (len <= GKX_MERGE_HASH_BYTES);
    s_hex (hex, bytes, len);
    return json_string (hex);
}

/* Writes an hlc's milliseconds as an ISO 8601 UTC time. */
static void
s_hlc_time (char *buf, size_t size, uint64_t hlc)
{
    uint64_t ms = hlc >> 16;
    long long secs = (long long) (ms / 1000);
    long long z = secs / 86400 + 719468;
    long long rem = secs % 86400;
    long long era = z / 146097;
    unsigned doe = (unsigned) (z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = (long long) yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf (buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03uZ", y, m, d, rem / 3600,
              rem / 60 % 60, rem % 60, (unsigned) (ms % 1000));
}

/* Returns a JSON string of text that may have been cut inside a UTF-8
   sequence (errbuf truncation): invalid tails are dropped. */
static json_t *
s_text_json (const char *text)
{
    size_t len = strlen (text);
    json_t *s = json_stringn (text, len);
    while (!s && len > 0) {
        len--;
        s = json_stringn (text, len);
    }
    return s ? s : json_string ("");
}

/* Orders entries canonically: (hlc, author id, seq, hash). */
static int
s_entry_cmp (const s_entry_t *a, const s_entry_t *b)
{
    if (a->hlc != b->hlc) {
        return a->hlc < b->hlc ? -1 : 1;
    }
    int cmp = memcmp (a->author, b->author, GKX_MERGE_ID_BYTES);
    if (cmp) {
        return cmp;
    }
    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    return memcmp (a->hash, b->hash, GKX_MERGE_HASH_BYTES);
}

/* Whether neither entry was written with knowledge of the other: entries of
   one author are ordered by their chain; across authors, seen_seq says what
   the author had received. */
static bool
s_is_concurrent (const s_entry_t *a, const s_entry_t *b)
{
    if (a->role == b->role) {
        return false;
    }
    bool b_saw_a = b->seen_seq >= a->seq;
    bool a_saw_b = a->seen_seq >= b->seq;
    return !b_saw_a && !a_saw_b;
}

/* Frees what an entry owns. */
static void
s_entry_clear (s_entry_t *e)
{
    gkx_free (e->body);
    gkx_offer_ops_destroy (&e->ops);
}

/* ---------------------------------------------------------------------- */
/* Policy                                                                   */

/* Parses a policy word. */
static int
s_mode_parse (const char *word)
{
    for (int i = S_MODE_BOTH; i <= S_MODE_PROPOSE; i++) {
        if (strcmp (word, s_mode_words[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Orders policy rules by key bytewise. */
static int
s_rule_cmp (const void *a, const void *b)
{
    return strcmp (((const s_rule_t *) a)->key, ((const s_rule_t *) b)->key);
}

/* Frees a rule array. */
static void
s_rules_free (s_rule_t *rules, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        gkx_free (rules[i].key);
    }
    gkx_free (rules);
}

/* Validates a JSON-form policy into sorted rules. */
static int
s_policy_from_json (s_rule_t **rules_p, size_t *count_p, const json_t *policy, int code,
                    char *errbuf)
{
    if (policy && !json_is_object (policy)) {
        return gkx_fail (errbuf, code, "policy: must be an object");
    }
    size_t n = policy ? json_object_size (policy) : 0;
    if (n > S_POLICY_MAX) {
        return gkx_fail (errbuf, code, "policy: at most %d rules", S_POLICY_MAX);
    }
    s_rule_t *rules = gkx_zalloc ((n ? n : 1) * sizeof (*rules));
    size_t i = 0;
    const char *k;
    json_t *v;
    if (policy) {
        json_object_foreach ((json_t *) policy, k, v) {
            int mode = json_is_string (v) ? s_mode_parse (json_string_value (v)) : -1;
            int rc = GKX_OK;
            if (!gkx_offer_is_path (k)) {
                rc = gkx_fail (errbuf, code, "policy.%s: not a field or group of fields", k);
            }
            else if (mode < 0) {
                rc = gkx_fail (errbuf, code,
                               "policy.%s: must be one of both, advertiser, publisher, propose",
                               k);
            }
            if (rc) {
                s_rules_free (rules, i);
                return rc;
            }
            rules[i].key = gkx_strdup (k);
            rules[i].mode = mode;
            i++;
        }
    }
    qsort (rules, n, sizeof (*rules), s_rule_cmp);
    *rules_p = rules;
    *count_p = n;
    return GKX_OK;
}

/* Writes rules as the canonical msgpack policy map. */
static void
s_policy_pack (uint8_t **bytes_p, size_t *len_p, const s_rule_t *rules, size_t count)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, count);
    for (size_t i = 0; i < count; i++) {
        const char *word = s_mode_words[rules[i].mode];
        msgpack_pack_str (&pk, strlen (rules[i].key));
        msgpack_pack_str_body (&pk, rules[i].key, strlen (rules[i].key));
        msgpack_pack_str (&pk, strlen (word));
        msgpack_pack_str_body (&pk, word, strlen (word));
    }
    *bytes_p = gkx_memdup (sbuf.data ? sbuf.data : "", sbuf.size);
    *len_p = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

/* Decodes a canonical policy map into rules; malformed gives GKX_EBODY. */
static int
s_policy_decode (s_rule_t **rules_p, size_t *count_p, const uint8_t *bytes, size_t len,
                 char *errbuf)
{
    msgpack_unpacked result;
    size_t off = 0;
    json_t *json = json_object ();
    int rc = GKX_OK;
    msgpack_unpacked_init (&result);
    if (msgpack_unpack_next (&result, (const char *) bytes, len, &off) != MSGPACK_UNPACK_SUCCESS
        || off != len || result.data.type != MSGPACK_OBJECT_MAP) {
        rc = gkx_fail (errbuf, GKX_EBODY, "policy: must be one msgpack map");
        goto cleanup;
    }
    const msgpack_object_map *map = &result.data.via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        const msgpack_object *v = &map->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || v->type != MSGPACK_OBJECT_STR
            || k->via.str.size == 0) {
            rc = gkx_fail (errbuf, GKX_EBODY, "policy: keys and values must be strings");
            goto cleanup;
        }
        json_t *key = json_stringn (k->via.str.ptr, k->via.str.size);
        json_t *val = v->via.str.size ? json_stringn (v->via.str.ptr, v->via.str.size) : NULL;
        if (!key || !val || memchr (k->via.str.ptr, '\0', k->via.str.size)) {
            json_decref (key);
            json_decref (val);
            rc = gkx_fail (errbuf, GKX_EBODY, "policy: keys and values must be words");
            goto cleanup;
        }
        json_object_set_new (json, json_string_value (key), val);
        json_decref (key);
    }
    rc = s_policy_from_json (rules_p, count_p, json, GKX_EBODY, errbuf);
    if (rc) {
        goto cleanup;
    }
    uint8_t *again;
    size_t again_len;
    s_policy_pack (&again, &again_len, *rules_p, *count_p);
    bool same = again_len == len && memcmp (again, bytes, len) == 0;
    gkx_free (again);
    if (!same) {
        s_rules_free (*rules_p, *count_p);
        rc = gkx_fail (errbuf, GKX_EBODY, "policy: not canonical msgpack");
    }
cleanup:
    json_decref (json);
    msgpack_unpacked_destroy (&result);
    return rc;
}

int
gkx_merge_policy_encode (uint8_t **bytes_p, size_t *len_p, const json_t *policy, char *errbuf)
{
    assert (bytes_p && len_p);
    s_rule_t *rules;
    size_t count;
    int rc = s_policy_from_json (&rules, &count, policy, GKX_EINVAL, errbuf);
    if (rc) {
        return rc;
    }
    s_policy_pack (bytes_p, len_p, rules, count);
    s_rules_free (rules, count);
    return GKX_OK;
}

int
gkx_merge_policy_decode (json_t **policy_p, const uint8_t *bytes, size_t len, char *errbuf)
{
    assert (policy_p);
    s_rule_t *rules;
    size_t count;
    int rc = s_policy_decode (&rules, &count, bytes ? bytes : (const uint8_t *) "", len, errbuf);
    if (rc) {
        return rc;
    }
    json_t *json = json_object ();
    for (size_t i = 0; i < count; i++) {
        json_object_set_new (json, rules[i].key, json_string (s_mode_words[rules[i].mode]));
    }
    s_rules_free (rules, count);
    *policy_p = json;
    return GKX_OK;
}

/* The mode of the most specific rule for path: the field itself, then its
   group; "both" when no rule names either. */
static int
s_policy_mode (const gkx_merge_t *self, const char *path)
{
    int mode = S_MODE_BOTH;
    size_t best = 0;
    for (size_t i = 0; i < self->rule_count; i++) {
        const char *key = self->rules[i].key;
        size_t len = strlen (key);
        bool hit = strcmp (key, path) == 0 || (strncmp (key, path, len) == 0 && path[len] == '.');
        if (hit && len > best) {
            best = len;
            mode = self->rules[i].mode;
        }
    }
    return mode;
}

/* Returns GKX_OK when role may edit (or propose, when proposing) the field
   at path, else GKX_EPOLICY with the reason in why. */
static int
s_policy_allows (const gkx_merge_t *self, const char *path, int role, bool proposing,
                 char *why)
{
    int mode = s_policy_mode (self, path);
    if (mode == S_MODE_BOTH || mode == role) {
        return GKX_OK;
    }
    if (mode == S_MODE_PROPOSE) {
        if (proposing) {
            return GKX_OK;
        }
        return gkx_fail (why, GKX_EPOLICY, "%s: this field changes only by an accepted proposal",
                         path);
    }
    return gkx_fail (why, GKX_EPOLICY, "%s: only the %s may change this field", path,
                     gkx_role_name (mode));
}

/* ---------------------------------------------------------------------- */
/* Answer bodies                                                            */

int
gkx_merge_answer_encode (uint8_t **body_p, size_t *len_p, int answer,
                         const uint8_t proposal[GKX_MERGE_HASH_BYTES])
{
    assert (body_p && len_p && proposal);
    if (answer < GKX_MERGE_ACCEPT || answer > GKX_MERGE_WITHDRAW) {
        return GKX_EINVAL;
    }
    const char *word = s_answer_words[answer];
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    msgpack_pack_str (&pk, 6);
    msgpack_pack_str_body (&pk, "answer", 6);
    msgpack_pack_str (&pk, strlen (word));
    msgpack_pack_str_body (&pk, word, strlen (word));
    msgpack_pack_str (&pk, 8);
    msgpack_pack_str_body (&pk, "proposal", 8);
    msgpack_pack_bin (&pk, GKX_MERGE_HASH_BYTES);
    msgpack_pack_bin_body (&pk, proposal, GKX_MERGE_HASH_BYTES);
    *body_p = gkx_memdup (sbuf.data, sbuf.size);
    *len_p = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    return GKX_OK;
}

/* Whether a msgpack string equals text. */
static bool
s_str_is (const msgpack_object *o, const char *text)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen (text)
           && memcmp (o->via.str.ptr, text, o->via.str.size) == 0;
}

int
gkx_merge_answer_decode (int *answer_p, uint8_t proposal[GKX_MERGE_HASH_BYTES],
                         const uint8_t *body, size_t len, char *errbuf)
{
    assert (answer_p && proposal);
    msgpack_unpacked result;
    size_t off = 0;
    int rc = GKX_OK;
    msgpack_unpacked_init (&result);
    if (msgpack_unpack_next (&result, (const char *) (body ? body : (const uint8_t *) ""), len,
                             &off)
            != MSGPACK_UNPACK_SUCCESS
        || off != len) {
        rc = gkx_fail (errbuf, GKX_EBODY, "body: malformed or truncated msgpack");
        goto cleanup;
    }
    const msgpack_object *o = &result.data;
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 2
        || !s_str_is (&o->via.map.ptr[0].key, "answer")
        || !s_str_is (&o->via.map.ptr[1].key, "proposal")) {
        rc = gkx_fail (errbuf, GKX_EBODY, "body: must be a map of answer and proposal");
        goto cleanup;
    }
    int answer = 0;
    for (int i = GKX_MERGE_ACCEPT; i <= GKX_MERGE_WITHDRAW; i++) {
        if (s_str_is (&o->via.map.ptr[0].val, s_answer_words[i])) {
            answer = i;
        }
    }
    if (!answer) {
        rc = gkx_fail (errbuf, GKX_EBODY, "answer: must be accept, decline or withdraw");
        goto cleanup;
    }
    const msgpack_object *p = &o->via.map.ptr[1].val;
    if (p->type != MSGPACK_OBJECT_BIN || p->via.bin.size != GKX_MERGE_HASH_BYTES) {
        rc = gkx_fail (errbuf, GKX_EBODY, "proposal: must be a %d-byte entry hash",
                       GKX_MERGE_HASH_BYTES);
        goto cleanup;
    }
    uint8_t *again;
    size_t again_len;
    rc = gkx_merge_answer_encode (&again, &again_len, answer, (const uint8_t *) p->via.bin.ptr);
    assert (rc == GKX_OK);
    bool same = again_len == len && memcmp (again, body, len) == 0;
    gkx_free (again);
    if (!same) {
        rc = gkx_fail (errbuf, GKX_EBODY, "body: not canonical msgpack");
        goto cleanup;
    }
    *answer_p = answer;
    memcpy (proposal, p->via.bin.ptr, GKX_MERGE_HASH_BYTES);
cleanup:
    msgpack_unpacked_destroy (&result);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Folding                                                                  */

/* Drops every derived record, proposal and the folded offer. */
static void
s_derived_clear (gkx_merge_t *self)
{
    for (size_t i = 0; i < self->record_count; i++) {
        json_decref (self->records[i].old_value);
        json_decref (self->records[i].new_value);
        gkx_free (self->records[i].reason);
    }
    self->record_count = 0;
    for (size_t i = 0; i < self->proposal_count; i++) {
        gkx_free (self->proposals[i].allowed);
    }
    self->proposal_count = 0;
    gkx_offer_destroy (&self->offer);
    json_decref (self->writers);
    self->writers = NULL;
    self->status_hlc = 0;
}

/* Appends a zeroed record and returns it. */
static s_record_t *
s_record_push (gkx_merge_t *self, int type, size_t source, size_t writer)
{
    if (self->record_count == self->record_alloc) {
        self->record_alloc = self->record_alloc ? self->record_alloc * 2 : 16;
        self->records
            = gkx_realloc (self->records, self->record_alloc * sizeof (*self->records));
    }
    s_record_t *rec = &self->records[self->record_count++];
    memset (rec, 0, sizeof (*rec));
    rec->type = type;
    rec->source = source;
    rec->writer = writer;
    rec->superseded_by = -1;
    rec->proposal = -1;
    return rec;
}

/* Folds operation index of source's ops, taking writer's key; proposal is
   the propose entry for accepted operations, -1 for edits. */
static void
s_fold_op (gkx_merge_t *self, size_t source, size_t writer, size_t index, long proposal)
{
    const s_entry_t *src = &self->entries[source];
    gkx_offer_op_info_t info;
    char why[GKX_ERRBUF_BYTES];
    gkx_offer_ops_info (src->ops, index, &info);
    s_record_t *rec = s_record_push (self, S_REC_OP, source, writer);
    rec->op_index = index;
    rec->proposal = proposal;
    size_t rec_index = self->record_count - 1;
    int rc = GKX_OK;
    if (proposal < 0) {
        rc = s_policy_allows (self, info.path, src->role, false, why);
    }
    if (rc) {
        gkx_offer_preview (self->offer, src->ops, index, &rec->old_value, &rec->new_value, NULL);
    }
    else {
        rc = gkx_offer_apply (self->offer, src->ops, index, &rec->old_value, &rec->new_value,
                              why);
    }
    if (rc) {
        rec->reason = gkx_strdup (why);
        return;
    }
    /* a set to the value already in force is a write, but the status did
       not change then: keeping the earlier hlc keeps a pause's start where
       it was, which is what the conversion rules ask of it */
    if (strcmp (info.path, S_STATUS_PATH) == 0 && !json_equal (rec->old_value, rec->new_value)) {
        self->status_hlc = self->entries[writer].hlc;
    }
    char target[2 * GKX_ERRBUF_BYTES];
    snprintf (target, sizeof (target), "%s\x1f%s", info.path, info.key ? info.key : "");
    json_t *prev = json_object_get (self->writers, target);
    if (prev) {
        s_record_t *before = &self->records[json_integer_value (prev)];
        if (s_is_concurrent (&self->entries[before->writer], &self->entries[writer])) {
            before->superseded_by = (long) writer;
        }
    }
    json_object_set_new (self->writers, target, json_integer ((json_int_t) rec_index));
}

/* Finds the folded proposal made by the entry with this hash. */
static s_proposal_t *
s_proposal_get (gkx_merge_t *self, const uint8_t hash[GKX_MERGE_HASH_BYTES])
{
    for (size_t i = 0; i < self->proposal_count; i++) {
        if (memcmp (self->entries[self->proposals[i].entry].hash, hash, GKX_MERGE_HASH_BYTES)
            == 0) {
            return &self->proposals[i];
        }
    }
    return NULL;
}

/* Returns GKX_OK when role may give answer to p now, else a code and why. */
static int
s_answer_allows (gkx_merge_t *self, const s_proposal_t *p, int role, int answer, char *why)
{
    if (!p) {
        return gkx_fail (why, GKX_ENOTFOUND, "proposal: no such proposal before this answer");
    }
    int proposer = self->entries[p->entry].role;
    if (answer == GKX_MERGE_WITHDRAW && role != proposer) {
        return gkx_fail (why, GKX_EPOLICY, "proposal: only the proposer may withdraw it");
    }
    if (answer != GKX_MERGE_WITHDRAW && role == proposer) {
        return gkx_fail (why, GKX_EPOLICY, "proposal: only the other side may %s it",
                         s_answer_words[answer]);
    }
    if (p->status) {
        return gkx_fail (why, GKX_EINVAL, "proposal: already %s", s_status_words[p->status]);
    }
    return GKX_OK;
}

/* Folds one entry on top of the derived state. */
static void
s_fold_entry (gkx_merge_t *self, size_t index)
{
    s_entry_t *e = &self->entries[index];
    char why[GKX_ERRBUF_BYTES];
    if (e->kind == GKX_KIND_EDIT) {
        for (size_t i = 0; i < gkx_offer_ops_size (e->ops); i++) {
            s_fold_op (self, index, index, i, -1);
        }
        return;
    }
    if (e->kind == GKX_KIND_PROPOSE) {
        if (self->proposal_count == self->proposal_alloc) {
            self->proposal_alloc = self->proposal_alloc ? self->proposal_alloc * 2 : 8;
            self->proposals = gkx_realloc (self->proposals,
                                           self->proposal_alloc * sizeof (*self->proposals));
        }
        size_t n = gkx_offer_ops_size (e->ops);
        s_proposal_t *p = &self->proposals[self->proposal_count++];
        p->entry = index;
        p->status = 0;
        p->answered_by = -1;
        p->allowed = gkx_zalloc (n * sizeof (bool));
        s_record_t *rec = s_record_push (self, S_REC_PROPOSE, index, index);
        rec->proposal = (long) index;
        for (size_t i = 0; i < n; i++) {
            gkx_offer_op_info_t info;
            gkx_offer_ops_info (e->ops, i, &info);
            p->allowed[i] = s_policy_allows (self, info.path, e->role, true, why) == GKX_OK;
            if (!p->allowed[i]) {
                rec = s_record_push (self, S_REC_OP, index, index);
                rec->op_index = i;
                rec->proposal = (long) index;
                rec->reason = gkx_strdup (why);
                gkx_offer_preview (self->offer, e->ops, i, &rec->old_value, &rec->new_value,
                                   NULL);
            }
        }
        return;
    }
    assert (e->kind == GKX_KIND_ANSWER);
    s_proposal_t *p = s_proposal_get (self, e->proposal);
    int rc = s_answer_allows (self, p, e->role, e->answer, why);
    s_record_t *rec = s_record_push (self, S_REC_ANSWER, index, index);
    rec->proposal = p ? (long) p->entry : -1;
    if (rc) {
        rec->reason = gkx_strdup (why);
        return;
    }
    p->status = e->answer;
    p->answered_by = (long) index;
    if (e->answer != GKX_MERGE_ACCEPT) {
        return;
    }
    const s_entry_t *pe = &self->entries[p->entry];
    for (size_t i = 0; i < gkx_offer_ops_size (pe->ops); i++) {
        if (p->allowed[i]) {
            s_fold_op (self, p->entry, index, i, (long) p->entry);
        }
    }
}

/* Folds every held entry from the genesis. */
static void
s_fold_all (gkx_merge_t *self)
{
    s_derived_clear (self);
    self->offer = gkx_offer_dup (self->genesis);
    self->writers = json_object ();
    for (size_t i = 0; i < self->count; i++) {
        s_fold_entry (self, i);
    }
    self->fresh = true;
}

/* Makes the derived state reflect every held entry. */
static void
s_ensure (gkx_merge_t *self)
{
    if (!self->fresh) {
        s_fold_all (self);
    }
}

/* ---------------------------------------------------------------------- */
/* Life cycle and applying                                                  */

int
gkx_merge_open (gkx_merge_t **self_p, const uint8_t advertiser[GKX_MERGE_ID_BYTES],
                const uint8_t publisher[GKX_MERGE_ID_BYTES], const uint8_t *offer,
                size_t offer_len, const uint8_t *policy, size_t policy_len, char *errbuf)
{
    assert (self_p && advertiser && publisher);
    gkx_offer_t *genesis;
    int rc = gkx_offer_decode (&genesis, offer, offer_len, errbuf);
    if (rc) {
        return rc;
    }
    s_rule_t *rules = NULL;
    size_t rule_count = 0;
    uint8_t *policy_bytes;
    size_t policy_bytes_len;
    if (policy) {
        rc = s_policy_decode (&rules, &rule_count, policy, policy_len, errbuf);
        if (rc) {
            gkx_offer_destroy (&genesis);
            return rc;
        }
        policy_bytes = gkx_memdup (policy, policy_len);
        policy_bytes_len = policy_len;
    }
    else {
        rules = gkx_zalloc (sizeof (*rules));
        s_policy_pack (&policy_bytes, &policy_bytes_len, rules, 0);
    }
    gkx_merge_t *self = gkx_zalloc (sizeof (*self));
    memcpy (self->members[0], advertiser, GKX_MERGE_ID_BYTES);
    memcpy (self->members[1], publisher, GKX_MERGE_ID_BYTES);
    self->offer_bytes = gkx_memdup (offer, offer_len);
    self->offer_len = offer_len;
    self->policy_bytes = policy_bytes;
    self->policy_len = policy_bytes_len;
    self->genesis = genesis;
    self->rules = rules;
    self->rule_count = rule_count;
    s_fold_all (self);
    *self_p = self;
    return GKX_OK;
}

void
gkx_merge_destroy (gkx_merge_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    gkx_merge_t *self = *self_p;
    s_derived_clear (self);
    gkx_free (self->records);
    gkx_free (self->proposals);
    for (size_t i = 0; i < self->count; i++) {
        s_entry_clear (&self->entries[i]);
    }
    gkx_free (self->entries);
    gkx_free (self->held[0]);
    gkx_free (self->held[1]);
    s_rules_free (self->rules, self->rule_count);
    gkx_offer_destroy (&self->genesis);
    gkx_free (self->offer_bytes);
    gkx_free (self->policy_bytes);
    gkx_free (self);
    *self_p = NULL;
}

/* The held entry of role with seq, or NULL; *at_p is where it is or would go. */
static const s_held_t *
s_held_find (const gkx_merge_t *self, int role, uint64_t seq, size_t *at_p)
{
    const s_held_t *held = self->held[role - 1];
    size_t lo = 0;
    size_t hi = self->held_count[role - 1];
    /* chains arrive in order: the usual place is the end */
    if (hi > 0 && held[hi - 1].seq < seq) {
        lo = hi;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (held[mid].seq < seq) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    *at_p = lo;
    return lo < self->held_count[role - 1] && held[lo].seq == seq ? &held[lo] : NULL;
}

/* Records a newly held entry of role at place at (from s_held_find). */
static void
s_held_insert (gkx_merge_t *self, int role, size_t at, uint64_t seq, const uint8_t *hash)
{
    int r = role - 1;
    if (self->held_count[r] == self->held_alloc[r]) {
        self->held_alloc[r] = self->held_alloc[r] ? self->held_alloc[r] * 2 : 16;
        self->held[r] = gkx_realloc (self->held[r], self->held_alloc[r] * sizeof (s_held_t));
    }
    memmove (&self->held[r][at + 1], &self->held[r][at],
             (self->held_count[r] - at) * sizeof (s_held_t));
    self->held[r][at].seq = seq;
    memcpy (self->held[r][at].hash, hash, GKX_MERGE_HASH_BYTES);
    self->held_count[r]++;
}

int
gkx_merge_apply (gkx_merge_t *self, const gkx_merge_entry_t *entry, char *errbuf)
{
    assert (self && entry);
    if (entry->kind != GKX_KIND_EDIT && entry->kind != GKX_KIND_PROPOSE
        && entry->kind != GKX_KIND_ANSWER) {
        return GKX_OK;
    }
    assert (entry->author && entry->hash);
    if ((entry->role != GKX_ROLE_ADVERTISER && entry->role != GKX_ROLE_PUBLISHER)
        || memcmp (entry->author, self->members[entry->role - 1], GKX_MERGE_ID_BYTES) != 0) {
        return gkx_fail (errbuf, GKX_ENOTMEMBER, "author: not the %s of this partnership",
                         gkx_role_name (entry->role) ? gkx_role_name (entry->role) : "member");
    }
    size_t at;
    const s_held_t *held = s_held_find (self, entry->role, entry->seq, &at);
    if (held) {
        if (memcmp (held->hash, entry->hash, GKX_MERGE_HASH_BYTES) == 0) {
            return GKX_OK;
        }
        return gkx_fail (errbuf, GKX_EEQUIVOCATION,
                         "entry: a different %s entry with seq %" PRIu64 " is held",
                         gkx_role_name (entry->role), entry->seq);
    }
    s_entry_t e;
    memset (&e, 0, sizeof (e));
    e.hlc = entry->hlc;
    e.seq = entry->seq;
    e.seen_seq = entry->seen_seq;
    e.role = entry->role;
    e.kind = entry->kind;
    memcpy (e.author, entry->author, GKX_MERGE_ID_BYTES);
    memcpy (e.hash, entry->hash, GKX_MERGE_HASH_BYTES);
    int rc;
    if (entry->kind == GKX_KIND_ANSWER) {
        rc = gkx_merge_answer_decode (&e.answer, e.proposal, entry->body, entry->body_len,
                                      errbuf);
    }
    else {
        rc = gkx_offer_ops_decode (&e.ops, entry->body, entry->body_len, errbuf);
    }
    if (rc) {
        return rc;
    }
    e.body = gkx_memdup (entry->body, entry->body_len);
    e.body_len = entry->body_len;
    size_t lo = 0;
    size_t hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s_entry_cmp (&self->entries[mid], &e) < 0) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    if (self->count == self->alloc) {
        self->alloc = self->alloc ? self->alloc * 2 : 16;
        self->entries = gkx_realloc (self->entries, self->alloc * sizeof (*self->entries));
    }
    memmove (&self->entries[lo + 1], &self->entries[lo],
             (self->count - lo) * sizeof (*self->entries));
    self->entries[lo] = e;
    self->count++;
    s_held_insert (self, entry->role, at, entry->seq, entry->hash);
    if (self->fresh && lo == self->count - 1) {
        s_fold_entry (self, lo);
    }
    else {
        self->fresh = false;
    }
    return GKX_OK;
}

size_t
gkx_merge_size (const gkx_merge_t *self)
{
    assert (self);
    return self->count;
}

const gkx_offer_t *
gkx_merge_offer (gkx_merge_t *self)
{
    assert (self);
    s_ensure (self);
    return self->offer;
}

uint64_t
gkx_merge_status_hlc (gkx_merge_t *self)
{
    assert (self);
    s_ensure (self);
    return self->status_hlc;
}

int
gkx_merge_offer_at (gkx_merge_t *self, uint64_t advertiser_seq, uint64_t publisher_seq,
                    gkx_offer_t **offer_p, uint64_t *status_hlc_p)
{
    assert (self && offer_p);
    /* the fold runs on a scratch state that borrows the genesis, rules and
       entries and owns only its derived fields, so self's stay as they are;
       entry indexes are self's, which keeps the canonical order of the subset */
    gkx_merge_t scratch = *self;
    scratch.offer = gkx_offer_dup (self->genesis);
    scratch.writers = json_object ();
    scratch.records = NULL;
    scratch.record_count = 0;
    scratch.record_alloc = 0;
    scratch.proposals = NULL;
    scratch.proposal_count = 0;
    scratch.proposal_alloc = 0;
    scratch.status_hlc = 0;
    const uint64_t cut[2] = {advertiser_seq, publisher_seq};
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = &self->entries[i];
        if (e->seq <= cut[e->role - 1]) {
            s_fold_entry (&scratch, i);
        }
    }
    *offer_p = scratch.offer;
    scratch.offer = NULL;
    if (status_hlc_p) {
        *status_hlc_p = scratch.status_hlc;
    }
    s_derived_clear (&scratch);
    gkx_free (scratch.records);
    gkx_free (scratch.proposals);
    return GKX_OK;
}

void
gkx_merge_digest (gkx_merge_t *self, uint8_t digest[GKX_OFFER_DIGEST_BYTES],
                  char hex[GKX_OFFER_DIGEST_HEX_BYTES])
{
    assert (self && digest);
    gkx_offer_digest (gkx_merge_offer (self), digest);
    if (hex) {
        s_hex (hex, digest, GKX_OFFER_DIGEST_BYTES);
    }
}

/* ---------------------------------------------------------------------- */
/* Rendering                                                                */

/* Returns {"role", "seq", "hash"} naming an entry. */
static json_t *
s_entry_ref (const s_entry_t *e)
{
    json_t *ref = json_object ();
    json_object_set_new (ref, "role", json_string (gkx_role_name (e->role)));
    json_object_set_new (ref, "seq", json_integer ((json_int_t) e->seq));
    json_object_set_new (ref, "hash", s_hex_json (e->hash, GKX_MERGE_HASH_BYTES));
    return ref;
}

/* Adds author, author_role, author_name and time to a record object. */
static void
s_put_author (json_t *obj, const s_entry_t *author, uint64_t hlc, const char *const names[2])
{
    char time[S_TIME_BYTES];
    s_hlc_time (time, sizeof (time), hlc);
    json_object_set_new (obj, "author", s_hex_json (author->author, GKX_MERGE_ID_BYTES));
    json_object_set_new (obj, "author_role", json_string (gkx_role_name (author->role)));
    json_object_set_new (obj, "author_name", s_text_json (names[author->role - 1]));
    json_object_set_new (obj, "time", json_string (time));
}

/* Renders one change record. */
static json_t *
s_record_json (gkx_merge_t *self, const s_record_t *rec, const char *const names[2])
{
    const s_entry_t *src = &self->entries[rec->source];
    const s_entry_t *writer = &self->entries[rec->writer];
    json_t *obj = json_object ();
    s_put_author (obj, src, writer->hlc, names);
    json_object_set_new (obj, "entry", s_entry_ref (src));
    if (rec->type == S_REC_OP) {
        gkx_offer_op_info_t info;
        static const char *const verbs[] = {NULL, "set", "add", "remove"};
        gkx_offer_ops_info (src->ops, rec->op_index, &info);
        json_object_set_new (obj, "op", json_string (verbs[info.verb]));
        json_object_set_new (obj, "field", json_string (info.path));
        if (info.key) {
            json_object_set_new (obj, "key", json_string (info.key));
        }
        json_object_set (obj, "old", rec->old_value);
        json_object_set (obj, "new", rec->new_value);
        if (rec->writer != rec->source) {
            json_object_set_new (obj, "accepted_by", s_entry_ref (writer));
        }
    }
    else if (rec->type == S_REC_PROPOSE) {
        json_object_set_new (obj, "op", json_string ("propose"));
        json_object_set_new (obj, "ops", gkx_offer_ops_to_json (src->ops));
    }
    else {
        json_object_set_new (obj, "op", json_string (s_answer_words[src->answer]));
    }
    if (rec->type == S_REC_ANSWER) {
        json_object_set_new (obj, "proposal", s_hex_json (src->proposal, GKX_MERGE_HASH_BYTES));
    }
    else if (rec->proposal >= 0) {
        json_object_set_new (obj, "proposal",
                             s_hex_json (self->entries[rec->proposal].hash,
                                         GKX_MERGE_HASH_BYTES));
    }
    if (rec->superseded_by >= 0) {
        json_object_set_new (obj, "superseded_by",
                             s_entry_ref (&self->entries[rec->superseded_by]));
    }
    if (rec->reason) {
        json_object_set_new (obj, "rejected", json_true ());
        json_object_set_new (obj, "reason", s_text_json (rec->reason));
    }
    return obj;
}

json_t *
gkx_merge_changes (gkx_merge_t *self, const char *advertiser_name, const char *publisher_name)
{
    assert (self);
    s_ensure (self);
    const char *names[2] = {advertiser_name ? advertiser_name : "",
                            publisher_name ? publisher_name : ""};
    json_t *list = json_array ();
    for (size_t i = 0; i < self->record_count; i++) {
        json_array_append_new (list, s_record_json (self, &self->records[i], names));
    }
    return list;
}

json_t *
gkx_merge_proposals (gkx_merge_t *self, const char *advertiser_name, const char *publisher_name)
{
    assert (self);
    s_ensure (self);
    const char *names[2] = {advertiser_name ? advertiser_name : "",
                            publisher_name ? publisher_name : ""};
    json_t *list = json_array ();
    for (size_t i = 0; i < self->proposal_count; i++) {
        const s_proposal_t *p = &self->proposals[i];
        const s_entry_t *e = &self->entries[p->entry];
        json_t *obj = json_object ();
        json_object_set_new (obj, "id", s_hex_json (e->hash, GKX_MERGE_HASH_BYTES));
        s_put_author (obj, e, e->hlc, names);
        json_object_set_new (obj, "entry", s_entry_ref (e));
        json_object_set_new (obj, "ops", gkx_offer_ops_to_json (e->ops));
        json_object_set_new (obj, "status", json_string (s_status_words[p->status]));
        if (p->answered_by >= 0) {
            json_object_set_new (obj, "answered_by",
                                 s_entry_ref (&self->entries[p->answered_by]));
        }
        json_t *answers = json_array ();
        for (size_t r = 0; r < self->record_count; r++) {
            const s_record_t *rec = &self->records[r];
            if (rec->type == S_REC_ANSWER && rec->proposal == (long) p->entry) {
                json_array_append_new (answers, s_record_json (self, rec, names));
            }
        }
        json_object_set_new (obj, "answers", answers);
        json_array_append_new (list, obj);
    }
    return list;
}

/* ---------------------------------------------------------------------- */
/* Checks before writing                                                    */

int
gkx_merge_check (gkx_merge_t *self, int kind, int role, const gkx_offer_ops_t *ops,
                 char *errbuf)
{
    assert (self && ops);
    if (kind != GKX_KIND_EDIT && kind != GKX_KIND_PROPOSE) {
        return gkx_fail (errbuf, GKX_EINVAL, "kind: must be edit or propose");
    }
    if (role != GKX_ROLE_ADVERTISER && role != GKX_ROLE_PUBLISHER) {
        return gkx_fail (errbuf, GKX_EINVAL, "role: must be advertiser or publisher");
    }
    size_t n = gkx_offer_ops_size (ops);
    if (n == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "ops: no changes");
    }
    if (n > GKX_OFFER_OPS_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "ops: at most %d operations", GKX_OFFER_OPS_MAX);
    }
    s_ensure (self);
    gkx_offer_t *copy = gkx_offer_dup (self->offer);
    int rc = GKX_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        gkx_offer_op_info_t info;
        gkx_offer_ops_info (ops, i, &info);
        rc = s_policy_allows (self, info.path, role, kind == GKX_KIND_PROPOSE, errbuf);
        if (!rc) {
            rc = gkx_offer_apply (copy, ops, i, NULL, NULL, errbuf);
        }
    }
    gkx_offer_destroy (&copy);
    return rc;
}

int
gkx_merge_check_answer (gkx_merge_t *self, int role, int answer,
                        const uint8_t proposal[GKX_MERGE_HASH_BYTES], char *errbuf)
{
    assert (self && proposal);
    if (answer < GKX_MERGE_ACCEPT || answer > GKX_MERGE_WITHDRAW) {
        return gkx_fail (errbuf, GKX_EINVAL, "answer: must be accept, decline or withdraw");
    }
    s_ensure (self);
    const s_proposal_t *p = s_proposal_get (self, proposal);
    int rc = s_answer_allows (self, p, role, answer, errbuf);
    if (rc || answer != GKX_MERGE_ACCEPT) {
        return rc;
    }
    const s_entry_t *pe = &self->entries[p->entry];
    gkx_offer_t *copy = gkx_offer_dup (self->offer);
    for (size_t i = 0; i < gkx_offer_ops_size (pe->ops) && !rc; i++) {
        if (p->allowed[i]) {
            rc = gkx_offer_apply (copy, pe->ops, i, NULL, NULL, errbuf);
        }
    }
    gkx_offer_destroy (&copy);
    return rc;
}

int
gkx_merge_proposal_find (gkx_merge_t *self, uint8_t proposal[GKX_MERGE_HASH_BYTES],
                         const char *prefix, char *errbuf)
{
    assert (self && proposal && prefix);
    size_t len = strlen (prefix);
    bool hex = len >= S_PREFIX_MIN && len < S_HEX_BYTES;
    for (size_t i = 0; hex && i < len; i++) {
        hex = (prefix[i] >= '0' && prefix[i] <= '9') || (prefix[i] >= 'a' && prefix[i] <= 'f');
    }
    if (!hex) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "proposal: \"%s\" is not 8 to 64 lowercase hex digits", prefix);
    }
    s_ensure (self);
    const s_entry_t *found = NULL;
    for (size_t i = 0; i < self->proposal_count; i++) {
        const s_entry_t *e = &self->entries[self->proposals[i].entry];
        char id[S_HEX_BYTES];
        s_hex (id, e->hash, GKX_MERGE_HASH_BYTES);
        if (strncmp (id, prefix, len) == 0) {
            if (found) {
                return gkx_fail (errbuf, GKX_EINVAL, "proposal: \"%s\" is ambiguous", prefix);
            }
            found = e;
        }
    }
    if (!found) {
        return gkx_fail (errbuf, GKX_ENOTFOUND, "proposal: no proposal \"%s\"", prefix);
    }
    memcpy (proposal, found->hash, GKX_MERGE_HASH_BYTES);
    return GKX_OK;
}

/* ---------------------------------------------------------------------- */
/* Serialisation                                                            */

/* Packs a string key. */
static void
s_pack_key (msgpack_packer *pk, const char *key)
{
    msgpack_pack_str (pk, strlen (key));
    msgpack_pack_str_body (pk, key, strlen (key));
}

/* Packs a binary value. */
static void
s_pack_bin (msgpack_packer *pk, const uint8_t *bytes, size_t len)
{
    msgpack_pack_bin (pk, len);
    msgpack_pack_bin_body (pk, bytes, len);
}

void
gkx_merge_encode (const gkx_merge_t *self, uint8_t **bytes_p, size_t *len_p)
{
    assert (self && bytes_p && len_p);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    /* keys in bytewise order, as every canonical map */
    msgpack_pack_map (&pk, 5);
    s_pack_key (&pk, "entries");
    msgpack_pack_array (&pk, self->count);
    for (size_t i = 0; i < self->count; i++) {
        const s_entry_t *e = &self->entries[i];
        msgpack_pack_map (&pk, 8);
        s_pack_key (&pk, "author");
        s_pack_bin (&pk, e->author, GKX_MERGE_ID_BYTES);
        s_pack_key (&pk, "body");
        s_pack_bin (&pk, e->body, e->body_len);
        s_pack_key (&pk, "hash");
        s_pack_bin (&pk, e->hash, GKX_MERGE_HASH_BYTES);
        s_pack_key (&pk, "hlc");
        msgpack_pack_uint64 (&pk, e->hlc);
        s_pack_key (&pk, "kind");
        msgpack_pack_int (&pk, e->kind);
        s_pack_key (&pk, "role");
        msgpack_pack_int (&pk, e->role);
        s_pack_key (&pk, "seen");
        msgpack_pack_uint64 (&pk, e->seen_seq);
        s_pack_key (&pk, "seq");
        msgpack_pack_uint64 (&pk, e->seq);
    }
    s_pack_key (&pk, "format");
    msgpack_pack_int (&pk, GKX_MERGE_FORMAT);
    s_pack_key (&pk, "members");
    msgpack_pack_array (&pk, 2);
    s_pack_bin (&pk, self->members[0], GKX_MERGE_ID_BYTES);
    s_pack_bin (&pk, self->members[1], GKX_MERGE_ID_BYTES);
    s_pack_key (&pk, "offer");
    s_pack_bin (&pk, self->offer_bytes, self->offer_len);
    s_pack_key (&pk, "policy");
    s_pack_bin (&pk, self->policy_bytes, self->policy_len);
    *bytes_p = gkx_memdup (sbuf.data, sbuf.size);
    *len_p = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

/* Returns the value under key in a msgpack map, or NULL. */
static const msgpack_object *
s_map_get (const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        if (s_str_is (&map->via.map.ptr[i].key, key)) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

/* Whether o is a binary of exactly len bytes (any length when len is 0). */
static bool
s_is_bin (const msgpack_object *o, size_t len)
{
    return o && o->type == MSGPACK_OBJECT_BIN && (len == 0 || o->via.bin.size == len);
}

/* Reads an unsigned integer field. */
static bool
s_get_uint (const msgpack_object *map, const char *key, uint64_t *value_p)
{
    const msgpack_object *o = s_map_get (map, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return false;
    }
    *value_p = o->via.u64;
    return true;
}

/* Rebuilds a state from a decoded serialisation. */
static int
s_decode_state (gkx_merge_t **self_p, const msgpack_object *root, char *errbuf)
{
    uint64_t format;
    if (!s_get_uint (root, "format", &format)) {
        return gkx_fail (errbuf, GKX_EDECODE, "state: format is missing");
    }
    if (format != GKX_MERGE_FORMAT) {
        return gkx_fail (errbuf, GKX_EFORMAT, "state: format %" PRIu64 " is not %d", format,
                         GKX_MERGE_FORMAT);
    }
    const msgpack_object *members = s_map_get (root, "members");
    const msgpack_object *offer = s_map_get (root, "offer");
    const msgpack_object *policy = s_map_get (root, "policy");
    const msgpack_object *entries = s_map_get (root, "entries");
    if (!members || members->type != MSGPACK_OBJECT_ARRAY || members->via.array.size != 2
        || !s_is_bin (&members->via.array.ptr[0], GKX_MERGE_ID_BYTES)
        || !s_is_bin (&members->via.array.ptr[1], GKX_MERGE_ID_BYTES) || !s_is_bin (offer, 0)
        || !s_is_bin (policy, 0) || !entries || entries->type != MSGPACK_OBJECT_ARRAY) {
        return gkx_fail (errbuf, GKX_EDECODE, "state: members, offer, policy or entries");
    }
    gkx_merge_t *self;
    char why[GKX_ERRBUF_BYTES];
    int rc = gkx_merge_open (&self, (const uint8_t *) members->via.array.ptr[0].via.bin.ptr,
                             (const uint8_t *) members->via.array.ptr[1].via.bin.ptr,
                             (const uint8_t *) offer->via.bin.ptr, offer->via.bin.size,
                             (const uint8_t *) policy->via.bin.ptr, policy->via.bin.size, why);
    if (rc) {
        return gkx_fail (errbuf, GKX_EDECODE, "state: %s", why);
    }
    for (uint32_t i = 0; i < entries->via.array.size && !rc; i++) {
        const msgpack_object *m = &entries->via.array.ptr[i];
        const msgpack_object *author = s_map_get (m, "author");
        const msgpack_object *body = s_map_get (m, "body");
        const msgpack_object *hash = s_map_get (m, "hash");
        uint64_t kind, role;
        gkx_merge_entry_t e;
        memset (&e, 0, sizeof (e));
        if (!s_is_bin (author, GKX_MERGE_ID_BYTES) || !s_is_bin (hash, GKX_MERGE_HASH_BYTES)
            || !body || body->type != MSGPACK_OBJECT_BIN || !s_get_uint (m, "hlc", &e.hlc)
            || !s_get_uint (m, "kind", &kind) || !s_get_uint (m, "role", &role)
            || !s_get_uint (m, "seen", &e.seen_seq) || !s_get_uint (m, "seq", &e.seq)
            || (kind != GKX_KIND_EDIT && kind != GKX_KIND_PROPOSE && kind != GKX_KIND_ANSWER)) {
            rc = gkx_fail (errbuf, GKX_EDECODE, "state: entries[%" PRIu32 "] is malformed", i);
            break;
        }
        e.kind = (int) kind;
        e.role = role <= GKX_ROLE_PUBLISHER ? (int) role : 0;
        e.author = (const uint8_t *) author->via.bin.ptr;
        e.hash = (const uint8_t *) hash->via.bin.ptr;
        e.body = (const uint8_t *) body->via.bin.ptr;
        e.body_len = body->via.bin.size;
        rc = gkx_merge_apply (self, &e, why);
        if (rc) {
            rc = gkx_fail (errbuf, GKX_EDECODE, "state: entries[%" PRIu32 "]: %s", i, why);
        }
    }
    if (rc) {
        gkx_merge_destroy (&self);
        return rc;
    }
    *self_p = self;
    return GKX_OK;
}

int
gkx_merge_decode (gkx_merge_t **self_p, const uint8_t *bytes, size_t len, char *errbuf)
{
    assert (self_p);
    msgpack_unpacked result;
    size_t off = 0;
    gkx_merge_t *self = NULL;
    int rc;
    msgpack_unpacked_init (&result);
    if (msgpack_unpack_next (&result, (const char *) (bytes ? bytes : (const uint8_t *) ""), len,
                             &off)
            != MSGPACK_UNPACK_SUCCESS
        || off != len) {
        rc = gkx_fail (errbuf, GKX_EDECODE, "state: malformed or truncated msgpack");
        goto cleanup;
    }
    rc = s_decode_state (&self, &result.data, errbuf);
    if (rc) {
        goto cleanup;
    }
    uint8_t *again;
    size_t again_len;
    gkx_merge_encode (self, &again, &again_len);
    bool same = again_len == len && memcmp (again, bytes, len) == 0;
    gkx_free (again);
    if (!same) {
        gkx_merge_destroy (&self);
        rc = gkx_fail (errbuf, GKX_EDECODE, "state: not canonical msgpack");
        goto cleanup;
    }
    *self_p = self;
cleanup:
    msgpack_unpacked_destroy (&result);
    return rc;
}

uint64_t
gkx_merge_last_seq (const gkx_merge_t *self, int role)
{
    assert (self);
    uint64_t last = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (self->entries[i].role == role && self->entries[i].seq > last) {
            last = self->entries[i].seq;
        }
    }
    return last;
}
