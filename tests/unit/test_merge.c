/*  test_merge - tests of the offer merge, change log, policy and proposals.
    Part of gokart-exchange; MIT licence.

    Scenario tests pin down each merge rule (last writer wins by (hlc,
    author), element-wise sets, superseded_by only for concurrent writers,
    policy rejections kept, proposals and their first valid answer, state
    serialisation), and a seeded property test feeds thousands of random
    two-member histories to two simulated members in different orders with
    duplicates and demands byte-identical results. GKX_SEED replays a run;
    GKX_ITERATIONS changes its length.
*/
#include <gkx/alloc.h>
#include <gkx/error.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>

#include <check.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Member ids: the advertiser's sorts before the publisher's. */
static uint8_t s_adv[GKX_MERGE_ID_BYTES];
static uint8_t s_pub[GKX_MERGE_ID_BYTES];

/* The genesis offer used by every test. */
static const char *s_genesis_text
    = "{\"name\": \"Puzzle Quest\", \"payout\": {\"model\": \"cpi\", \"amount\": \"2.50\","
      " \"currency\": \"USD\", \"events\": {\"purchase\": \"10.00\"}},"
      " \"targeting\": {\"countries\": [\"US\", \"CA\"]},"
      " \"schedule\": {\"start\": \"2026-06-01T00:00:00Z\"},"
      " \"settings\": {\"k0\": \"v\"}}";

/* A test entry and the body it owns. */
typedef struct {
    int kind;
    int role;
    uint64_t seq;
    uint64_t seen;
    uint64_t hlc;
    uint8_t hash[GKX_MERGE_HASH_BYTES];
    uint8_t *body;
    size_t len;
} t_entry_t;

/* Returns an hlc from milliseconds and counter. */
static uint64_t
s_hlc (uint64_t ms, uint64_t counter)
{
    return ms << 16 | counter;
}

/* Hashes an entry's fields into its hash, as a stand-in for the entry codec. */
static void
s_seal (t_entry_t *e)
{
    crypto_generichash_state st;
    uint8_t head[4 * 8];
    uint64_t fields[4] = {(uint64_t) e->kind << 8 | (uint64_t) e->role, e->seq, e->seen, e->hlc};
    memcpy (head, fields, sizeof (head));
    crypto_generichash_init (&st, NULL, 0, GKX_MERGE_HASH_BYTES);
    crypto_generichash_update (&st, head, sizeof (head));
    crypto_generichash_update (&st, e->body, e->len);
    crypto_generichash_final (&st, e->hash, GKX_MERGE_HASH_BYTES);
}

/* The genesis offer, parsed once: histories build thousands of entries. */
static gkx_offer_t *s_genesis_offer;
/* Its canonical bytes. */
static uint8_t *s_genesis_bytes;
/* Their length. */
static size_t s_genesis_len;

/* Returns the genesis offer, borrowed. */
static const gkx_offer_t *
s_genesis (void)
{
    if (!s_genesis_offer) {
        char err[GKX_ERRBUF_BYTES] = "";
        ck_assert_int_eq (gkx_offer_from_text (&s_genesis_offer, s_genesis_text, err), GKX_OK);
        gkx_offer_encode (s_genesis_offer, &s_genesis_bytes, &s_genesis_len);
    }
    return s_genesis_offer;
}

/* Opens a state on the genesis offer with a policy in JSON text (or NULL). */
static gkx_merge_t *
s_open (const char *policy_text)
{
    uint8_t *policy_bytes = NULL;
    size_t policy_len = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    s_genesis ();
    if (policy_text) {
        json_t *policy = json_loads (policy_text, 0, NULL);
        if (gkx_merge_policy_encode (&policy_bytes, &policy_len, policy, err) != GKX_OK) {
            ck_abort_msg ("policy: %s", err);
        }
        json_decref (policy);
    }
    gkx_merge_t *merge = NULL;
    if (gkx_merge_open (&merge, s_adv, s_pub, s_genesis_bytes, s_genesis_len, policy_bytes,
                        policy_len, err)
        != GKX_OK) {
        ck_abort_msg ("open: %s", err);
    }
    gkx_free (policy_bytes);
    return merge;
}

/* Makes an edit or propose entry from CLI edits separated by '\n'. */
static t_entry_t
s_ops_entry (int kind, int role, uint64_t seq, uint64_t seen, uint64_t hlc, const char *edits)
{
    const gkx_offer_t *offer = s_genesis ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    char *copy = gkx_strdup (edits);
    char *line = copy;
    while (line) {
        char *next = strchr (line, '\n');
        if (next) {
            *next++ = '\0';
        }
        if (gkx_offer_ops_parse_edit (ops, offer, line, err) != GKX_OK) {
            ck_abort_msg ("%s: %s", line, err);
        }
        line = next;
    }
    t_entry_t e = {kind, role, seq, seen, hlc, {0}, NULL, 0};
    if (gkx_offer_ops_encode (ops, &e.body, &e.len, err) != GKX_OK) {
        ck_abort_msg ("encode: %s", err);
    }
    s_seal (&e);
    gkx_free (copy);
    gkx_offer_ops_destroy (&ops);
    return e;
}

/* Makes an answer entry. */
static t_entry_t
s_answer_entry (int role, uint64_t seq, uint64_t seen, uint64_t hlc, int answer,
                const uint8_t proposal[GKX_MERGE_HASH_BYTES])
{
    t_entry_t e = {GKX_KIND_ANSWER, role, seq, seen, hlc, {0}, NULL, 0};
    if (gkx_merge_answer_encode (&e.body, &e.len, answer, proposal) != GKX_OK) {
        ck_abort_msg ("answer encode");
    }
    s_seal (&e);
    return e;
}

/* Applies a test entry, returning the code. */
static int
s_apply (gkx_merge_t *merge, const t_entry_t *t, char *err)
{
    gkx_merge_entry_t e = {t->kind, t->role, t->role == GKX_ROLE_ADVERTISER ? s_adv : s_pub,
                           t->seq, t->seen, t->hlc, t->hash, t->body, t->len};
    return gkx_merge_apply (merge, &e, err);
}

/* Applies and asserts success. */
static void
s_apply_ok (gkx_merge_t *merge, const t_entry_t *t)
{
    char err[GKX_ERRBUF_BYTES] = "";
    int rc = s_apply (merge, t, err);
    if (rc != GKX_OK) {
        ck_abort_msg ("apply: %d %s", rc, err);
    }
}

/* Returns a JSON value's text (caller frees). */
static char *
s_dump (json_t *json)
{
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS | JSON_ENCODE_ANY);
    json_decref (json);
    return text;
}

/* Returns the change log text. */
static char *
s_changes (gkx_merge_t *merge)
{
    return s_dump (gkx_merge_changes (merge, "Adv Inc", "Pub Ltd"));
}

/* Returns one field of the merged offer's JSON form as text. */
static char *
s_field (gkx_merge_t *merge, const char *group, const char *leaf)
{
    json_t *json = gkx_offer_to_json (gkx_merge_offer (merge));
    json_t *v = group ? json_object_get (json_object_get (json, group), leaf)
                      : json_object_get (json, leaf);
    char *text = json_dumps (v, GKX_OFFER_JSON_FLAGS | JSON_ENCODE_ANY);
    json_decref (json);
    return text;
}

/* Asserts a field's text. */
static void
s_expect_field (gkx_merge_t *merge, const char *group, const char *leaf, const char *want)
{
    char *got = s_field (merge, group, leaf);
    ck_assert_str_eq (got, want);
    free (got);
}

/* Returns change record index i. */
static json_t *
s_record (gkx_merge_t *merge, size_t i)
{
    json_t *list = gkx_merge_changes (merge, "Adv Inc", "Pub Ltd");
    json_t *rec = json_incref (json_array_get (list, i));
    json_decref (list);
    ck_assert_ptr_nonnull (rec);
    return rec;
}

/* Frees test entries' bodies. */
static void
s_free_entries (t_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gkx_free (entries[i].body);
    }
}

/* Applies entries in the given index order to a fresh state and returns it. */
static gkx_merge_t *
s_replay (const char *policy, const t_entry_t *entries, const size_t *order, size_t n)
{
    gkx_merge_t *merge = s_open (policy);
    for (size_t i = 0; i < n; i++) {
        s_apply_ok (merge, &entries[order[i]]);
    }
    return merge;
}

/* Asserts two states render identically, byte for byte. */
static void
s_assert_same (gkx_merge_t *a, gkx_merge_t *b)
{
    uint8_t da[GKX_OFFER_DIGEST_BYTES], db[GKX_OFFER_DIGEST_BYTES];
    gkx_merge_digest (a, da, NULL);
    gkx_merge_digest (b, db, NULL);
    ck_assert_mem_eq (da, db, sizeof (da));
    char *ca = s_changes (a);
    char *cb = s_changes (b);
    ck_assert_str_eq (ca, cb);
    free (ca);
    free (cb);
    uint8_t *sa, *sb;
    size_t la, lb;
    gkx_merge_encode (a, &sa, &la);
    gkx_merge_encode (b, &sb, &lb);
    ck_assert_uint_eq (la, lb);
    ck_assert_mem_eq (sa, sb, la);
    gkx_free (sa);
    gkx_free (sb);
}

START_TEST (test_lww_conflict)
{
    t_entry_t e[2] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1000, 0),
                     "payout.amount=3.00"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (1001, 0),
                     "payout.amount=4.00"),
    };
    static const size_t fwd[] = {0, 1}, back[] = {1, 0};
    gkx_merge_t *a = s_replay (NULL, e, fwd, 2);
    gkx_merge_t *b = s_replay (NULL, e, back, 2);
    s_expect_field (a, "payout", "amount", "\"4.00\"");
    s_assert_same (a, b);
    json_t *rec = s_record (a, 0);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "old")), "2.50");
    ck_assert_str_eq (json_string_value (json_object_get (rec, "new")), "3.00");
    json_t *by = json_object_get (rec, "superseded_by");
    ck_assert_str_eq (json_string_value (json_object_get (by, "role")), "publisher");
    ck_assert_int_eq (json_integer_value (json_object_get (by, "seq")), 1);
    json_decref (rec);
    rec = s_record (a, 1);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "old")), "3.00");
    ck_assert_ptr_null (json_object_get (rec, "superseded_by"));
    json_decref (rec);
    gkx_merge_destroy (&a);
    gkx_merge_destroy (&b);
    gkx_merge_destroy (&b);
    s_free_entries (e, 2);
}
END_TEST

START_TEST (test_equal_clocks_and_causality)
{
    /* equal hlc: the greater author id (the publisher's here) wins */
    t_entry_t e[3] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (1000, 5), "caps.daily=10"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1000, 5), "caps.daily=20"),
        /* the advertiser saw the publisher's entry: a plain overwrite */
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 2, 1, s_hlc (1002, 0), "caps.daily=30"),
    };
    static const size_t o1[] = {0, 1}, o2[] = {1, 0};
    gkx_merge_t *a = s_replay (NULL, e, o1, 2);
    gkx_merge_t *b = s_replay (NULL, e, o2, 2);
    s_expect_field (a, "caps", "daily", "10");
    s_assert_same (a, b);
    s_apply_ok (a, &e[2]);
    s_expect_field (a, "caps", "daily", "30");
    json_t *rec = s_record (a, 1);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "author_role")), "publisher");
    ck_assert_ptr_null (json_object_get (rec, "superseded_by"));
    json_decref (rec);
    gkx_merge_destroy (&a);
    gkx_merge_destroy (&b);
    s_free_entries (e, 3);
}
END_TEST

START_TEST (test_set_races)
{
    t_entry_t e[4] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (2000, 0),
                     "targeting.countries+=FR\ntargeting.countries+=DE\nsettings.k1=a"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (2001, 0),
                     "targeting.countries-=US\ntargeting.countries-=DE\nsettings.k2=b"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (2002, 0),
                     "settings-=k0"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 2, 0, s_hlc (2003, 0),
                     "settings.k0=edited"),
    };
    static const size_t o1[] = {0, 1, 2, 3}, o2[] = {3, 2, 1, 0};
    gkx_merge_t *a = s_replay (NULL, e, o1, 4);
    gkx_merge_t *b = s_replay (NULL, e, o2, 4);
    /* different elements all take effect; DE's later remove wins; so does
       the later concurrent put of k0 over its removal */
    s_expect_field (a, "targeting", "countries", "[\"CA\",\"FR\"]");
    s_expect_field (a, NULL, "settings", "{\"k0\":\"edited\",\"k1\":\"a\",\"k2\":\"b\"}");
    s_assert_same (a, b);
    json_t *rec = s_record (a, 1);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "key")), "DE");
    ck_assert_ptr_nonnull (json_object_get (rec, "superseded_by"));
    json_decref (rec);
    rec = s_record (a, 0);
    ck_assert_ptr_null (json_object_get (rec, "superseded_by"));
    json_decref (rec);
    gkx_merge_destroy (&a);
    gkx_merge_destroy (&b);
    s_free_entries (e, 4);
}
END_TEST

START_TEST (test_duplicates_and_membership)
{
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_merge_t *m = s_open (NULL);
    t_entry_t e = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1, 0),
                               "status=paused");
    s_apply_ok (m, &e);
    uint8_t *before, *after;
    size_t lb, la;
    gkx_merge_encode (m, &before, &lb);
    s_apply_ok (m, &e);
    gkx_merge_encode (m, &after, &la);
    ck_assert_uint_eq (la, lb);
    ck_assert_mem_eq (after, before, la);
    ck_assert_uint_eq (gkx_merge_size (m), 1);
    t_entry_t other = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (2, 0),
                                   "status=active");
    ck_assert_int_eq (s_apply (m, &other, err), GKX_EEQUIVOCATION);
    ck_assert_str_eq (err, "entry: a different advertiser entry with seq 1 is held");
    gkx_merge_entry_t stranger = {GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, s_adv, 1, 0, 5,
                                  other.hash, other.body, other.len};
    ck_assert_int_eq (gkx_merge_apply (m, &stranger, err), GKX_ENOTMEMBER);
    ck_assert_str_eq (err, "author: not the publisher of this partnership");
    gkx_merge_entry_t bad = {GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, s_pub, 1, 0, 5,
                             other.hash, (const uint8_t *) "\x81", 1};
    ck_assert_int_eq (gkx_merge_apply (m, &bad, err), GKX_EBODY);
    ck_assert_str_eq (err, "body: malformed or truncated msgpack");
    bad.kind = GKX_KIND_ANSWER;
    ck_assert_int_eq (gkx_merge_apply (m, &bad, err), GKX_EBODY);
    ck_assert_str_eq (err, "body: malformed or truncated msgpack");
    bad.kind = GKX_KIND_CONVERSION;
    ck_assert_int_eq (gkx_merge_apply (m, &bad, err), GKX_OK);
    ck_assert_uint_eq (gkx_merge_size (m), 1);
    gkx_free (after);
    gkx_merge_encode (m, &after, &la);
    ck_assert_uint_eq (la, lb);
    ck_assert_mem_eq (after, before, la);
    gkx_free (before);
    gkx_free (after);
    gkx_merge_destroy (&m);
    s_free_entries (&e, 1);
    s_free_entries (&other, 1);
}
END_TEST

START_TEST (test_policy_rejects)
{
    const char *policy = "{\"payout\": \"advertiser\", \"payout.events\": \"both\","
                         " \"caps.daily\": \"publisher\"}";
    gkx_merge_t *m = s_open (policy);
    t_entry_t e[2] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (10, 0),
                     "payout.amount=9\npayout.events.purchase=11\ncaps.daily=5"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 1, s_hlc (11, 0), "caps.daily=6"),
    };
    s_apply_ok (m, &e[0]);
    s_apply_ok (m, &e[1]);
    s_expect_field (m, "payout", "amount", "\"2.50\"");
    s_expect_field (m, "payout", "events", "{\"purchase\":\"11.00\"}");
    s_expect_field (m, "caps", "daily", "5");
    json_t *rec = s_record (m, 0);
    ck_assert (json_is_true (json_object_get (rec, "rejected")));
    ck_assert_str_eq (json_string_value (json_object_get (rec, "reason")),
                      "payout.amount: only the advertiser may change this field");
    ck_assert_str_eq (json_string_value (json_object_get (rec, "new")), "9.00");
    json_decref (rec);
    rec = s_record (m, 3);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "reason")),
                      "caps.daily: only the publisher may change this field");
    json_decref (rec);

    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, gkx_merge_offer (m), "payout.currency=EUR",
                                                err),
                      GKX_OK);
    ck_assert_int_eq (gkx_merge_check (m, GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, ops, err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "payout.currency: only the advertiser may change this field");
    ck_assert_int_eq (gkx_merge_check (m, GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, ops, err), GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, gkx_merge_offer (m),
                                                "schedule.end=2026-05-01T00:00:00Z", err),
                      GKX_OK);
    ck_assert_int_eq (gkx_merge_check (m, GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, ops, err),
                      GKX_EINVAL);
    ck_assert_str_eq (err, "schedule: start must be before end");
    gkx_offer_ops_destroy (&ops);
    ops = gkx_offer_ops_new ();
    ck_assert_int_eq (gkx_merge_check (m, GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, ops, err),
                      GKX_EINVAL);
    ck_assert_str_eq (err, "ops: no changes");
    gkx_offer_ops_destroy (&ops);
    gkx_merge_destroy (&m);
    s_free_entries (e, 2);
}
END_TEST

START_TEST (test_cross_field_conflict)
{
    /* each edit is valid alone; together the later one would end before start */
    t_entry_t e[2] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (10, 0),
                     "schedule.end=2026-07-01T00:00:00Z"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (11, 0),
                     "schedule.start=2026-08-01T00:00:00Z"),
    };
    static const size_t o1[] = {0, 1}, o2[] = {1, 0};
    gkx_merge_t *a = s_replay (NULL, e, o1, 2);
    gkx_merge_t *b = s_replay (NULL, e, o2, 2);
    s_assert_same (a, b);
    s_expect_field (a, "schedule", "start", "\"2026-06-01T00:00:00Z\"");
    json_t *rec = s_record (a, 1);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "reason")),
                      "schedule: start must be before end");
    json_decref (rec);
    gkx_merge_destroy (&a);
    gkx_merge_destroy (&b);
    s_free_entries (e, 2);
}
END_TEST

START_TEST (test_proposals)
{
    const char *policy = "{\"payout.amount\": \"propose\"}";
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_merge_t *m = s_open (policy);
    t_entry_t e[8];
    e[0] = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (100, 0),
                        "payout.amount=3.00");
    e[1] = s_ops_entry (GKX_KIND_PROPOSE, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (101, 0),
                        "payout.amount=3.00\nstatus=paused");
    e[2] = s_ops_entry (GKX_KIND_PROPOSE, GKX_ROLE_PUBLISHER, 1, 2, s_hlc (102, 0),
                        "payout.amount=1.00");
    /* the proposer cannot accept its own proposal */
    e[3] = s_answer_entry (GKX_ROLE_ADVERTISER, 3, 0, s_hlc (103, 0), GKX_MERGE_ACCEPT, e[1].hash);
    e[4] = s_answer_entry (GKX_ROLE_PUBLISHER, 2, 3, s_hlc (104, 0), GKX_MERGE_ACCEPT, e[1].hash);
    /* a second answer to a settled proposal does not count */
    e[5] = s_answer_entry (GKX_ROLE_PUBLISHER, 3, 3, s_hlc (105, 0), GKX_MERGE_DECLINE, e[1].hash);
    e[6] = s_answer_entry (GKX_ROLE_ADVERTISER, 4, 3, s_hlc (106, 0), GKX_MERGE_DECLINE, e[2].hash);
    e[7] = s_answer_entry (GKX_ROLE_ADVERTISER, 5, 3, s_hlc (107, 0), GKX_MERGE_WITHDRAW,
                           e[2].hash);
    for (int i = 0; i < 3; i++) {
        s_apply_ok (m, &e[i]);
    }
    s_expect_field (m, "payout", "amount", "\"2.50\"");
    json_t *rec = s_record (m, 0);
    ck_assert_str_eq (json_string_value (json_object_get (rec, "reason")),
                      "payout.amount: this field changes only by an accepted proposal");
    json_decref (rec);
    ck_assert_int_eq (gkx_merge_check_answer (m, GKX_ROLE_ADVERTISER, GKX_MERGE_ACCEPT, e[1].hash,
                                              err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "proposal: only the other side may accept it");
    ck_assert_int_eq (gkx_merge_check_answer (m, GKX_ROLE_PUBLISHER, GKX_MERGE_WITHDRAW,
                                              e[1].hash, err),
                      GKX_EPOLICY);
    ck_assert_str_eq (err, "proposal: only the proposer may withdraw it");
    ck_assert_int_eq (gkx_merge_check_answer (m, GKX_ROLE_PUBLISHER, GKX_MERGE_ACCEPT, e[1].hash,
                                              err),
                      GKX_OK);
    uint8_t unknown[GKX_MERGE_HASH_BYTES] = {0};
    ck_assert_int_eq (gkx_merge_check_answer (m, GKX_ROLE_PUBLISHER, GKX_MERGE_ACCEPT, unknown,
                                              err),
                      GKX_ENOTFOUND);
    char hex[2 * GKX_MERGE_HASH_BYTES + 1];
    sodium_bin2hex (hex, sizeof (hex), e[1].hash, GKX_MERGE_HASH_BYTES);
    hex[12] = '\0';
    uint8_t found[GKX_MERGE_HASH_BYTES];
    ck_assert_int_eq (gkx_merge_proposal_find (m, found, hex, err), GKX_OK);
    ck_assert_mem_eq (found, e[1].hash, GKX_MERGE_HASH_BYTES);
    ck_assert_int_eq (gkx_merge_proposal_find (m, found, "abc", err), GKX_EINVAL);
    ck_assert_str_eq (err, "proposal: \"abc\" is not 8 to 64 lowercase hex digits");

    for (int i = 3; i < 8; i++) {
        s_apply_ok (m, &e[i]);
    }
    s_expect_field (m, "payout", "amount", "\"3.00\"");
    s_expect_field (m, NULL, "status", "\"paused\"");
    ck_assert_int_eq (gkx_merge_check_answer (m, GKX_ROLE_PUBLISHER, GKX_MERGE_DECLINE, e[1].hash,
                                              err),
                      GKX_EINVAL);
    ck_assert_str_eq (err, "proposal: already accepted");

    json_t *props = gkx_merge_proposals (m, "Adv Inc", "Pub Ltd");
    ck_assert_uint_eq (json_array_size (props), 2);
    json_t *p0 = json_array_get (props, 0);
    json_t *p1 = json_array_get (props, 1);
    ck_assert_str_eq (json_string_value (json_object_get (p0, "status")), "accepted");
    ck_assert_str_eq (json_string_value (json_object_get (p1, "status")), "declined");
    json_t *answers = json_object_get (p0, "answers");
    ck_assert_uint_eq (json_array_size (answers), 3);
    ck_assert_str_eq (json_string_value (json_object_get (json_array_get (answers, 0), "reason")),
                      "proposal: only the other side may accept it");
    ck_assert_ptr_null (json_object_get (json_array_get (answers, 1), "rejected"));
    ck_assert_str_eq (json_string_value (json_object_get (json_array_get (answers, 2), "reason")),
                      "proposal: already accepted");
    answers = json_object_get (p1, "answers");
    ck_assert_str_eq (json_string_value (json_object_get (json_array_get (answers, 1), "reason")),
                      "proposal: only the proposer may withdraw it");
    json_decref (props);

    /* the accepted ops appear at the accept, authored by the proposer */
    json_t *list = gkx_merge_changes (m, "Adv Inc", "Pub Ltd");
    json_t *accepted = NULL;
    for (size_t i = 0; i < json_array_size (list); i++) {
        json_t *r = json_array_get (list, i);
        if (json_object_get (r, "accepted_by") && !accepted) {
            accepted = r;
        }
    }
    ck_assert_ptr_nonnull (accepted);
    ck_assert_str_eq (json_string_value (json_object_get (accepted, "field")), "payout.amount");
    ck_assert_str_eq (json_string_value (json_object_get (accepted, "author_name")), "Adv Inc");
    ck_assert_str_eq (json_string_value (json_object_get (accepted, "time")),
                      "1970-01-01T00:00:00.104Z");
    json_decref (list);

    /* any arrival order gives the same result */
    static const size_t order[] = {7, 5, 3, 1, 6, 0, 4, 2};
    gkx_merge_t *b = s_replay (policy, e, order, 8);
    s_assert_same (m, b);
    gkx_merge_destroy (&b);
    gkx_merge_destroy (&m);
    s_free_entries (e, 8);
}
END_TEST

START_TEST (test_change_log_golden)
{
    t_entry_t e[2] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1796083200123ULL, 0),
                     "status=paused\ntargeting.countries+=FR"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (1796083200124ULL, 0),
                     "status=active"),
    };
    static const size_t order[] = {1, 0};
    gkx_merge_t *m = s_replay (NULL, e, order, 2);
    char *text = s_changes (m);
    char h0[65], h1[65], a[65], p[65];
    sodium_bin2hex (h0, sizeof (h0), e[0].hash, 32);
    sodium_bin2hex (h1, sizeof (h1), e[1].hash, 32);
    sodium_bin2hex (a, sizeof (a), s_adv, 32);
    sodium_bin2hex (p, sizeof (p), s_pub, 32);
    char want[4096];
    snprintf (want, sizeof (want),
              "[{\"author\":\"%s\",\"author_name\":\"Adv Inc\",\"author_role\":\"advertiser\","
              "\"entry\":{\"hash\":\"%s\",\"role\":\"advertiser\",\"seq\":1},"
              "\"field\":\"status\",\"new\":\"paused\",\"old\":\"active\",\"op\":\"set\","
              "\"superseded_by\":{\"hash\":\"%s\",\"role\":\"publisher\",\"seq\":1},"
              "\"time\":\"2026-12-01T00:00:00.123Z\"},"
              "{\"author\":\"%s\",\"author_name\":\"Adv Inc\",\"author_role\":\"advertiser\","
              "\"entry\":{\"hash\":\"%s\",\"role\":\"advertiser\",\"seq\":1},"
              "\"field\":\"targeting.countries\",\"key\":\"FR\",\"new\":[\"CA\",\"FR\",\"US\"],"
              "\"old\":[\"CA\",\"US\"],\"op\":\"add\",\"time\":\"2026-12-01T00:00:00.123Z\"},"
              "{\"author\":\"%s\",\"author_name\":\"Pub Ltd\",\"author_role\":\"publisher\","
              "\"entry\":{\"hash\":\"%s\",\"role\":\"publisher\",\"seq\":1},"
              "\"field\":\"status\",\"new\":\"active\",\"old\":\"paused\",\"op\":\"set\","
              "\"time\":\"2026-12-01T00:00:00.124Z\"}]",
              a, h0, h1, a, h0, p, h1);
    ck_assert_str_eq (text, want);
    char hex[GKX_OFFER_DIGEST_HEX_BYTES];
    uint8_t digest[GKX_OFFER_DIGEST_BYTES];
    gkx_merge_digest (m, digest, hex);
    ck_assert_uint_eq (strlen (hex), 64);
    free (text);
    gkx_merge_destroy (&m);
    s_free_entries (e, 2);
}
END_TEST

START_TEST (test_state_round_trip)
{
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_merge_t *m = s_open ("{\"targeting\": \"propose\"}");
    t_entry_t e[3] = {
        s_ops_entry (GKX_KIND_PROPOSE, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (5, 0),
                     "targeting.countries+=DE"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 1, s_hlc (6, 0), "name=Renamed"),
        {0},
    };
    e[2] = s_answer_entry (GKX_ROLE_ADVERTISER, 2, 1, s_hlc (7, 0), GKX_MERGE_ACCEPT, e[0].hash);
    for (int i = 0; i < 3; i++) {
        s_apply_ok (m, &e[i]);
    }
    uint8_t *bytes;
    size_t len;
    gkx_merge_encode (m, &bytes, &len);
    gkx_merge_t *back = NULL;
    ck_assert_int_eq (gkx_merge_decode (&back, bytes, len, err), GKX_OK);
    s_assert_same (m, back);
    s_expect_field (back, "targeting", "countries", "[\"CA\",\"DE\",\"US\"]");
    gkx_merge_destroy (&back);
    ck_assert_int_eq (gkx_merge_decode (&back, bytes, len - 1, err), GKX_EDECODE);
    ck_assert_str_eq (err, "state: malformed or truncated msgpack");
    /* "format" is followed by its value 1; make it 2 */
    uint8_t *at = NULL;
    for (size_t i = 0; i + 8 <= len && !at; i++) {
        if (memcmp (bytes + i, "\xa6" "format\x01", 8) == 0) {
            at = bytes + i;
        }
    }
    ck_assert_ptr_nonnull (at);
    at[7] = 2;
    ck_assert_int_eq (gkx_merge_decode (&back, bytes, len, err), GKX_EFORMAT);
    ck_assert_str_eq (err, "state: format 2 is not 1");
    ck_assert_ptr_null (back);
    gkx_free (bytes);
    gkx_merge_destroy (&m);
    s_free_entries (e, 3);
}
END_TEST

START_TEST (test_codecs)
{
    char err[GKX_ERRBUF_BYTES] = "";
    uint8_t *bytes;
    size_t len;
    json_t *policy = json_loads ("{\"payout\": \"sometimes\"}", 0, NULL);
    ck_assert_int_eq (gkx_merge_policy_encode (&bytes, &len, policy, err), GKX_EINVAL);
    ck_assert_str_eq (err, "policy.payout: must be one of both, advertiser, publisher, propose");
    json_decref (policy);
    policy = json_loads ("{\"payout.nope\": \"both\"}", 0, NULL);
    ck_assert_int_eq (gkx_merge_policy_encode (&bytes, &len, policy, err), GKX_EINVAL);
    ck_assert_str_eq (err, "policy.payout.nope: not a field or group of fields");
    json_decref (policy);
    policy = json_loads ("{\"status\": \"publisher\", \"payout\": \"propose\"}", 0, NULL);
    ck_assert_int_eq (gkx_merge_policy_encode (&bytes, &len, policy, err), GKX_OK);
    json_decref (policy);
    ck_assert_int_eq (gkx_merge_policy_decode (&policy, bytes, len, err), GKX_OK);
    char *text = s_dump (policy);
    ck_assert_str_eq (text, "{\"payout\":\"propose\",\"status\":\"publisher\"}");
    free (text);
    /* keys out of order are not canonical */
    static const uint8_t unsorted[] = {0x82, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa4, 'b',
                                       'o', 't', 'h', 0xa6, 'p', 'a', 'y', 'o', 'u', 't',
                                       0xa4, 'b', 'o', 't', 'h'};
    ck_assert_int_eq (gkx_merge_policy_decode (&policy, unsorted, sizeof (unsorted), err),
                      GKX_EBODY);
    ck_assert_str_eq (err, "policy: not canonical msgpack");
    gkx_free (bytes);

    uint8_t proposal[GKX_MERGE_HASH_BYTES], back[GKX_MERGE_HASH_BYTES];
    memset (proposal, 7, sizeof (proposal));
    ck_assert_int_eq (gkx_merge_answer_encode (&bytes, &len, GKX_MERGE_DECLINE, proposal), GKX_OK);
    int answer = 0;
    ck_assert_int_eq (gkx_merge_answer_decode (&answer, back, bytes, len, err), GKX_OK);
    ck_assert_int_eq (answer, GKX_MERGE_DECLINE);
    ck_assert_mem_eq (back, proposal, sizeof (back));
    bytes[9] = 'X';
    ck_assert_int_eq (gkx_merge_answer_decode (&answer, back, bytes, len, err), GKX_EBODY);
    ck_assert_str_eq (err, "answer: must be accept, decline or withdraw");
    gkx_free (bytes);
    ck_assert_int_eq (gkx_merge_answer_encode (&bytes, &len, 9, proposal), GKX_EINVAL);
}
END_TEST

/* Returns the canonical bytes of an offer as hex text (caller frees). */
static char *
s_offer_hex (const gkx_offer_t *offer)
{
    uint8_t *bytes;
    size_t len;
    gkx_offer_encode (offer, &bytes, &len);
    char *hex = gkx_zalloc (2 * len + 1);
    sodium_bin2hex (hex, 2 * len + 1, bytes, len);
    gkx_free (bytes);
    return hex;
}

/* Asserts one field of the offer at a cut. */
static void
s_expect_at (gkx_merge_t *merge, uint64_t adv_seq, uint64_t pub_seq, const char *group,
             const char *leaf, const char *want)
{
    gkx_offer_t *offer = NULL;
    ck_assert_int_eq (gkx_merge_offer_at (merge, adv_seq, pub_seq, &offer, NULL), GKX_OK);
    json_t *json = gkx_offer_to_json (offer);
    json_t *v = group ? json_object_get (json_object_get (json, group), leaf)
                      : json_object_get (json, leaf);
    char *got = json_dumps (v, GKX_OFFER_JSON_FLAGS | JSON_ENCODE_ANY);
    if (strcmp (got, want) != 0) {
        ck_abort_msg ("cut (%" PRIu64 ", %" PRIu64 ") %s.%s: got %s, want %s", adv_seq, pub_seq,
                      group ? group : "", leaf, got, want);
    }
    free (got);
    json_decref (json);
    gkx_offer_destroy (&offer);
}

/* Asserts that the offer at a cut has the same bytes as the current offer. */
static void
s_expect_at_current (gkx_merge_t *merge, uint64_t adv_seq, uint64_t pub_seq)
{
    gkx_offer_t *offer = NULL;
    uint64_t status_hlc = 1;
    ck_assert_int_eq (gkx_merge_offer_at (merge, adv_seq, pub_seq, &offer, &status_hlc), GKX_OK);
    ck_assert_uint_eq (status_hlc, gkx_merge_status_hlc (merge));
    char *at = s_offer_hex (offer);
    char *now = s_offer_hex (gkx_merge_offer (merge));
    ck_assert_str_eq (at, now);
    gkx_free (at);
    gkx_free (now);
    gkx_offer_destroy (&offer);
}

START_TEST (test_offer_at_edits)
{
    t_entry_t e[3] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1000, 0),
                     "payout.amount=3.00"),
        /* concurrent with both advertiser entries, and the greatest key */
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 0, s_hlc (1003, 0),
                     "payout.amount=4.00\ntargeting.countries+=FR"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (1002, 0), "caps.daily=5"),
    };
    static const size_t order[] = {2, 1, 0};
    gkx_merge_t *m = s_replay (NULL, e, order, 3);
    char *before = s_offer_hex (gkx_merge_offer (m));
    /* before and after the advertiser's first edit */
    s_expect_at (m, 0, 0, "payout", "amount", "\"2.50\"");
    s_expect_at (m, 1, 0, "payout", "amount", "\"3.00\"");
    s_expect_at (m, 1, 0, "caps", "daily", "null");
    /* the advertiser's causal past at seq 2: the concurrent edit does not count */
    s_expect_at (m, 2, 0, "payout", "amount", "\"3.00\"");
    s_expect_at (m, 2, 0, "caps", "daily", "5");
    s_expect_at (m, 2, 0, "targeting", "countries", "[\"CA\",\"US\"]");
    /* the publisher's edit alone, and with everything */
    s_expect_at (m, 0, 1, "payout", "amount", "\"4.00\"");
    s_expect_at (m, 0, 1, "caps", "daily", "null");
    s_expect_at (m, 2, 1, "payout", "amount", "\"4.00\"");
    s_expect_at (m, 2, 1, "targeting", "countries", "[\"CA\",\"FR\",\"US\"]");
    /* the full cut, and any cut beyond it, is the current offer; the last
       seqs held name the smallest such cut */
    ck_assert_uint_eq (gkx_merge_last_seq (m, GKX_ROLE_ADVERTISER), 2);
    ck_assert_uint_eq (gkx_merge_last_seq (m, GKX_ROLE_PUBLISHER), 1);
    s_expect_at_current (m, 2, 1);
    s_expect_at_current (m, UINT64_MAX, UINT64_MAX);
    /* reading cuts leaves the state as it was */
    char *after = s_offer_hex (gkx_merge_offer (m));
    ck_assert_str_eq (before, after);
    gkx_free (before);
    gkx_free (after);
    gkx_merge_destroy (&m);
    s_free_entries (e, 3);
}
END_TEST

START_TEST (test_offer_at_proposals)
{
    const char *policy = "{\"payout.amount\": \"propose\"}";
    t_entry_t e[4];
    e[0] = s_ops_entry (GKX_KIND_PROPOSE, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (100, 0),
                        "payout.amount=3.00");
    e[1] = s_answer_entry (GKX_ROLE_PUBLISHER, 1, 1, s_hlc (101, 0), GKX_MERGE_ACCEPT, e[0].hash);
    /* the advertiser has not seen the accept yet */
    e[2] = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (102, 0), "status=paused");
    /* rejected by the policy in every cut */
    e[3] = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 2, 2, s_hlc (103, 0),
                        "payout.amount=9.00");
    static const size_t order[] = {3, 1, 2, 0};
    gkx_merge_t *m = s_replay (policy, e, order, 4);
    s_expect_field (m, "payout", "amount", "\"3.00\"");
    /* the proposal alone changes nothing */
    s_expect_at (m, 1, 0, "payout", "amount", "\"2.50\"");
    /* accept outside the cut: the proposal is not applied */
    s_expect_at (m, 2, 0, "payout", "amount", "\"2.50\"");
    s_expect_at (m, 2, 0, NULL, "status", "\"paused\"");
    /* accept inside but the proposal outside: the answer does not count */
    s_expect_at (m, 0, 1, "payout", "amount", "\"2.50\"");
    s_expect_at (m, 0, 2, "payout", "amount", "\"2.50\"");
    /* both inside */
    s_expect_at (m, 1, 1, "payout", "amount", "\"3.00\"");
    s_expect_at (m, 1, 1, NULL, "status", "\"active\"");
    s_expect_at (m, 2, 2, "payout", "amount", "\"3.00\"");
    s_expect_at_current (m, 2, 2);
    gkx_merge_destroy (&m);
    s_free_entries (e, 4);
}
END_TEST

/* The status's writer: the edit that changed it, at the cut asked for;
   0 while the genesis's status is in force. */
START_TEST (test_status_hlc_edits)
{
    t_entry_t e[5] = {
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (1000, 0),
                     "payout.amount=3.00"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (2000, 3), "status=paused"),
        /* pausing a paused offer again: the pause still began at 2000 */
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 3, 0, s_hlc (3000, 0),
                     "status=paused\nname=Again"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_PUBLISHER, 1, 3, s_hlc (4000, 0), "status=active"),
        s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 4, 1, s_hlc (5000, 1), "status=paused"),
    };
    static const size_t order[] = {4, 2, 0, 3, 1};
    gkx_merge_t *m = s_replay (NULL, e, order, 5);
    ck_assert_uint_eq (gkx_merge_status_hlc (m), s_hlc (5000, 1));
    s_expect_field (m, NULL, "status", "\"paused\"");
    static const struct {
        uint64_t adv;
        uint64_t pub;
        uint64_t want;
    } cuts[] = {
        {0, 0, 0},
        {1, 0, 0},
        {2, 0, (2000ULL << 16) | 3},
        {3, 0, (2000ULL << 16) | 3},
        {3, 1, 4000ULL << 16},
        {4, 1, (5000ULL << 16) | 1},
        /* the advertiser's last pause without the publisher's resume */
        {4, 0, (2000ULL << 16) | 3},
    };
    for (size_t i = 0; i < sizeof (cuts) / sizeof (cuts[0]); i++) {
        gkx_offer_t *offer = NULL;
        uint64_t got = UINT64_MAX;
        ck_assert_int_eq (gkx_merge_offer_at (m, cuts[i].adv, cuts[i].pub, &offer, &got), GKX_OK);
        if (got != cuts[i].want) {
            ck_abort_msg ("cut (%" PRIu64 ", %" PRIu64 "): status hlc %" PRIu64 ", want %" PRIu64,
                          cuts[i].adv, cuts[i].pub, got, cuts[i].want);
        }
        gkx_offer_destroy (&offer);
    }
    /* a cut beyond everything is the current state; a NULL out-parameter is fine */
    s_expect_at_current (m, UINT64_MAX, UINT64_MAX);
    gkx_offer_t *offer = NULL;
    ck_assert_int_eq (gkx_merge_offer_at (m, 2, 0, &offer, NULL), GKX_OK);
    gkx_offer_destroy (&offer);
    /* reading cuts leaves the current value alone */
    ck_assert_uint_eq (gkx_merge_status_hlc (m), s_hlc (5000, 1));
    gkx_merge_destroy (&m);
    s_free_entries (e, 5);
}
END_TEST

/* A fresh state reports the genesis's status (0); an edit the policy
   rejects does not count; an accepted proposal's status change takes the
   accept's hlc, and a state rebuilt from its serialisation agrees. */
START_TEST (test_status_hlc_policy_and_proposals)
{
    gkx_merge_t *fresh = s_open (NULL);
    ck_assert_uint_eq (gkx_merge_status_hlc (fresh), 0);
    gkx_merge_destroy (&fresh);

    const char *policy = "{\"status\": \"propose\"}";
    t_entry_t e[3];
    /* refused by the policy: status changes only by an accepted proposal */
    e[0] = s_ops_entry (GKX_KIND_EDIT, GKX_ROLE_ADVERTISER, 1, 0, s_hlc (100, 0), "status=paused");
    e[1] = s_ops_entry (GKX_KIND_PROPOSE, GKX_ROLE_ADVERTISER, 2, 0, s_hlc (200, 0),
                        "status=paused");
    e[2] = s_answer_entry (GKX_ROLE_PUBLISHER, 1, 2, s_hlc (300, 7), GKX_MERGE_ACCEPT, e[1].hash);
    static const size_t order[] = {2, 0, 1};
    gkx_merge_t *m = s_replay (policy, e, order, 3);
    s_expect_field (m, NULL, "status", "\"paused\"");
    ck_assert_uint_eq (gkx_merge_status_hlc (m), s_hlc (300, 7));
    uint64_t at = UINT64_MAX;
    gkx_offer_t *offer = NULL;
    /* the proposal without its accept, and the rejected edit: still the genesis's */
    ck_assert_int_eq (gkx_merge_offer_at (m, 2, 0, &offer, &at), GKX_OK);
    ck_assert_uint_eq (at, 0);
    gkx_offer_destroy (&offer);
    s_expect_at_current (m, 2, 1);

    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_merge_encode (m, &bytes, &len);
    gkx_merge_t *back = NULL;
    ck_assert_int_eq (gkx_merge_decode (&back, bytes, len, err), GKX_OK);
    ck_assert_uint_eq (gkx_merge_status_hlc (back), s_hlc (300, 7));
    gkx_merge_destroy (&back);
    gkx_free (bytes);
    gkx_merge_destroy (&m);
    s_free_entries (e, 3);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Property test                                                            */

/* Histories each iteration tests, unless GKX_ITERATIONS says otherwise. */
#define S_ITERATIONS 10000
/* Seed used when GKX_SEED is not set. */
#define S_DEFAULT_SEED 0x6b617274ULL
/* Most entries in one history. */
#define S_HISTORY_MAX 20
/* Most entries a member receives, duplicates included. */
#define S_DELIVERY_MAX (3 * S_HISTORY_MAX)

/* splitmix64: a small PRNG whose whole state is one word, easy to replay. */
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Returns a number below n. */
static uint64_t
s_below (uint64_t *state, uint64_t n)
{
    return s_rand (state) % n;
}

/* Policies the histories run under, drawn per history. */
static const char *const s_policies[] = {
    NULL,
    "{\"payout.amount\": \"propose\"}",
    "{\"caps\": \"advertiser\", \"targeting.countries\": \"publisher\"}",
    "{\"payout\": \"propose\", \"status\": \"publisher\", \"payout.events\": \"both\"}",
};

/* Writes one random CLI edit. */
static void
s_random_edit (uint64_t *rng, char *buf, size_t size)
{
    static const char *const countries[] = {"US", "CA", "FR", "DE"};
    switch (s_below (rng, 14)) {
    case 0:
        snprintf (buf, size, "payout.amount=%u.%02u", (unsigned) s_below (rng, 150),
                  (unsigned) s_below (rng, 100));
        break;
    case 1:
        snprintf (buf, size, "payout.model=%s", s_below (rng, 2) ? "revshare" : "cpi");
        break;
    case 2:
        snprintf (buf, size, "status=%s", s_below (rng, 2) ? "paused" : "active");
        break;
    case 3:
        if (s_below (rng, 3)) {
            snprintf (buf, size, "caps.daily=%u", (unsigned) s_below (rng, 5));
        }
        else {
            snprintf (buf, size, "caps.daily=null");
        }
        break;
    case 4:
        snprintf (buf, size, "name=n%u", (unsigned) s_below (rng, 3));
        break;
    case 5:
    case 6:
        snprintf (buf, size, "targeting.countries%s=%s", s_below (rng, 2) ? "+" : "-",
                  countries[s_below (rng, 4)]);
        break;
    case 7:
        snprintf (buf, size, "payout.events.purchase=%u", (unsigned) s_below (rng, 120));
        break;
    case 8:
        snprintf (buf, size, "payout.events-=purchase");
        break;
    case 9:
        snprintf (buf, size, "settings.k%u=v%u", (unsigned) s_below (rng, 3),
                  (unsigned) s_below (rng, 3));
        break;
    case 10:
        snprintf (buf, size, "settings-=k%u", (unsigned) s_below (rng, 3));
        break;
    case 11:
        snprintf (buf, size, "schedule.%s=2026-%02u-01T00:00:00Z",
                  s_below (rng, 2) ? "start" : "end", (unsigned) (1 + s_below (rng, 12)));
        break;
    case 12:
        snprintf (buf, size,
                  "creatives+={\"id\": \"b%u\", \"type\": \"image\","
                  " \"url\": \"https://c.example.com/%u\"}",
                  (unsigned) s_below (rng, 2), (unsigned) s_below (rng, 3));
        break;
    default:
        snprintf (buf, size, "creatives-=b%u", (unsigned) s_below (rng, 2));
        break;
    }
}

/* One simulated member while a history is written. */
typedef struct {
    /* its role */
    int role;
    /* its last seq */
    uint64_t seq;
    /* its last hlc */
    uint64_t hlc;
    /* counterparty entries received so far (a prefix of its chain) */
    uint64_t seen;
    /* its physical clock in ms, skewed per member */
    uint64_t clock;
} t_node_t;

/* Writes a random two-member history into entries; returns its length. */
static size_t
s_random_history (uint64_t *rng, t_entry_t *entries)
{
    t_node_t nodes[2] = {{GKX_ROLE_ADVERTISER, 0, 0, 0, 1000}, {GKX_ROLE_PUBLISHER, 0, 0, 0, 1000}};
    /* per author, the indexes of its entries in chain order */
    size_t chain[2][S_HISTORY_MAX];
    size_t n = 5 + s_below (rng, S_HISTORY_MAX - 4);
    nodes[1].clock += s_below (rng, 50);
    for (size_t i = 0; i < n; i++) {
        int a = (int) s_below (rng, 2);
        t_node_t *me = &nodes[a];
        t_node_t *other = &nodes[1 - a];
        /* receive some of the other's chain; sometimes nothing for long */
        if (s_below (rng, 3) && other->seq > me->seen) {
            uint64_t upto = me->seen + 1 + s_below (rng, other->seq - me->seen);
            for (uint64_t s = me->seen + 1; s <= upto; s++) {
                uint64_t h = entries[chain[1 - a][s - 1]].hlc;
                me->hlc = h > me->hlc ? h : me->hlc;
            }
            me->seen = upto;
        }
        me->clock += s_below (rng, 4);
        uint64_t hlc = s_hlc (me->clock, 0);
        if (s_below (rng, 8) == 0 && other->hlc > me->hlc) {
            /* equal clocks across authors */
            hlc = other->hlc;
        }
        else if (s_below (rng, 20) == 0) {
            /* a clock far ahead */
            hlc = s_hlc (me->clock + 100000, 0);
        }
        me->hlc = hlc > me->hlc ? hlc : me->hlc + 1;
        me->seq++;
        chain[a][me->seq - 1] = i;
        /* answer a proposal this member knows of, if any */
        size_t known[S_HISTORY_MAX];
        size_t nknown = 0;
        for (size_t j = 0; j < i; j++) {
            const t_entry_t *p = &entries[j];
            bool mine = p->role == me->role;
            if (p->kind == GKX_KIND_PROPOSE && (mine || p->seq <= me->seen)) {
                known[nknown++] = j;
            }
        }
        uint64_t pick = s_below (rng, 100);
        if (pick < 25 && nknown) {
            uint8_t target[GKX_MERGE_HASH_BYTES];
            memcpy (target, entries[known[s_below (rng, nknown)]].hash, sizeof (target));
            if (s_below (rng, 20) == 0) {
                target[0] ^= 1;
            }
            entries[i] = s_answer_entry (me->role, me->seq, me->seen, me->hlc,
                                         (int) (1 + s_below (rng, 3)), target);
            continue;
        }
        char edits[512] = "";
        size_t used = 0;
        size_t ops = 1 + s_below (rng, 3);
        for (size_t k = 0; k < ops; k++) {
            char one[160];
            s_random_edit (rng, one, sizeof (one));
            used += (size_t) snprintf (edits + used, sizeof (edits) - used, "%s%s",
                                       k ? "\n" : "", one);
        }
        int kind = pick < 40 ? GKX_KIND_PROPOSE : GKX_KIND_EDIT;
        entries[i] = s_ops_entry (kind, me->role, me->seq, me->seen, me->hlc, edits);
    }
    return n;
}

/* Fills order with a random delivery of n entries, with duplicates. */
static size_t
s_random_delivery (uint64_t *rng, size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    size_t total = n;
    size_t dups = s_below (rng, n + 1);
    for (size_t i = 0; i < dups; i++) {
        order[total++] = s_below (rng, n);
    }
    for (size_t i = total - 1; i > 0; i--) {
        size_t j = s_below (rng, i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return total;
}

START_TEST (test_property_convergence)
{
    const char *seed_env = getenv ("GKX_SEED");
    const char *iter_env = getenv ("GKX_ITERATIONS");
    uint64_t seed = seed_env ? strtoull (seed_env, NULL, 0) : S_DEFAULT_SEED;
    long iterations = iter_env ? strtol (iter_env, NULL, 10) : S_ITERATIONS;
    for (long it = 0; it < iterations; it++) {
        uint64_t rng = seed + (uint64_t) it * 0x9e3779b97f4a7c15ULL;
        t_entry_t entries[S_HISTORY_MAX];
        size_t n = s_random_history (&rng, entries);
        const char *policy = s_policies[s_below (&rng, 4)];
        size_t order_a[S_DELIVERY_MAX], order_b[S_DELIVERY_MAX];
        size_t na = s_random_delivery (&rng, order_a, n);
        size_t nb = s_random_delivery (&rng, order_b, n);
        gkx_merge_t *a = s_replay (policy, entries, order_a, na);
        gkx_merge_t *b = s_replay (policy, entries, order_b, nb);
        uint8_t da[GKX_OFFER_DIGEST_BYTES], db[GKX_OFFER_DIGEST_BYTES];
        gkx_merge_digest (a, da, NULL);
        gkx_merge_digest (b, db, NULL);
        char *ca = s_changes (a);
        char *cb = s_changes (b);
        char *pa = s_dump (gkx_merge_proposals (a, "A", "P"));
        char *pb = s_dump (gkx_merge_proposals (b, "A", "P"));
        uint8_t *sa, *sb;
        size_t la, lb;
        gkx_merge_encode (a, &sa, &la);
        gkx_merge_encode (b, &sb, &lb);
        bool same = memcmp (da, db, sizeof (da)) == 0 && strcmp (ca, cb) == 0
                    && strcmp (pa, pb) == 0 && la == lb && memcmp (sa, sb, la) == 0
                    && gkx_merge_status_hlc (a) == gkx_merge_status_hlc (b);
        if (same && it % 16 == 0) {
            /* restoring the serialised state and rebuilding from scratch agree */
            char err[GKX_ERRBUF_BYTES] = "";
            gkx_merge_t *c = NULL;
            same = gkx_merge_decode (&c, sa, la, err) == GKX_OK;
            if (same) {
                uint8_t dc[GKX_OFFER_DIGEST_BYTES];
                gkx_merge_digest (c, dc, NULL);
                char *cc = s_changes (c);
                same = memcmp (da, dc, sizeof (da)) == 0 && strcmp (ca, cc) == 0
                       && gkx_merge_status_hlc (c) == gkx_merge_status_hlc (a);
                free (cc);
            }
            gkx_merge_destroy (&c);
        }
        if (!same) {
            fprintf (stderr,
                     "property test failed: replay with GKX_SEED=%" PRIu64
                     " (iteration %ld)\nA: %s\nB: %s\n",
                     seed, it, ca, cb);
        }
        if (!same) {
            ck_abort_msg ("diverged at seed %" PRIu64 " iteration %ld", seed, it);
        }
        free (ca);
        free (cb);
        free (pa);
        free (pb);
        gkx_free (sa);
        gkx_free (sb);
        gkx_merge_destroy (&a);
        gkx_merge_destroy (&b);
        s_free_entries (entries, n);
    }
}
END_TEST

/* Histories the cut test runs, unless GKX_ITERATIONS says otherwise. */
#define S_CUT_ITERATIONS 3000
/* Cuts tried per history. */
#define S_CUTS 4

/* Returns a random cut seq for a chain of last seq top: from before the
   first entry to past the last. */
static uint64_t
s_random_seq (uint64_t *rng, uint64_t top)
{
    return s_below (rng, top + 2);
}

START_TEST (test_property_offer_at)
{
    const char *seed_env = getenv ("GKX_SEED");
    const char *iter_env = getenv ("GKX_ITERATIONS");
    uint64_t seed = seed_env ? strtoull (seed_env, NULL, 0) : S_DEFAULT_SEED;
    long iterations = iter_env ? strtol (iter_env, NULL, 10) : S_CUT_ITERATIONS;
    for (long it = 0; it < iterations; it++) {
        /* a different stream from the convergence test's */
        uint64_t rng = ~seed + (uint64_t) it * 0x9e3779b97f4a7c15ULL;
        t_entry_t entries[S_HISTORY_MAX];
        size_t n = s_random_history (&rng, entries);
        const char *policy = s_policies[s_below (&rng, 4)];
        size_t order[S_DELIVERY_MAX];
        size_t total = s_random_delivery (&rng, order, n);
        gkx_merge_t *full = s_replay (policy, entries, order, total);
        uint64_t top[2] = {0, 0};
        for (size_t i = 0; i < n; i++) {
            uint64_t *t = &top[entries[i].role - 1];
            *t = entries[i].seq > *t ? entries[i].seq : *t;
        }
        uint8_t before[GKX_OFFER_DIGEST_BYTES];
        gkx_merge_digest (full, before, NULL);
        for (int c = 0; c < S_CUTS; c++) {
            uint64_t cut[2];
            if (c % 2) {
                /* an entry's causal past: its chain before it (or with it)
                   and the other chain up to its seen_seq */
                const t_entry_t *e = &entries[s_below (&rng, n)];
                cut[e->role - 1] = e->seq - s_below (&rng, 2);
                cut[2 - e->role] = e->seen;
            }
            else {
                cut[0] = s_random_seq (&rng, top[0]);
                cut[1] = s_random_seq (&rng, top[1]);
            }
            gkx_offer_t *at = NULL;
            uint64_t at_status_hlc = UINT64_MAX;
            ck_assert_int_eq (gkx_merge_offer_at (full, cut[0], cut[1], &at, &at_status_hlc),
                              GKX_OK);
            /* a fresh state holding only the entries inside the cut, applied
               in the same shuffled order with its duplicates */
            gkx_merge_t *part = s_open (policy);
            for (size_t i = 0; i < total; i++) {
                const t_entry_t *e = &entries[order[i]];
                if (e->seq <= cut[e->role - 1]) {
                    s_apply_ok (part, e);
                }
            }
            char *want = s_offer_hex (gkx_merge_offer (part));
            char *got = s_offer_hex (at);
            if (strcmp (want, got) != 0 || at_status_hlc != gkx_merge_status_hlc (part)) {
                char *changes = s_changes (part);
                fprintf (stderr,
                         "offer_at property failed: replay with GKX_SEED=%" PRIu64
                         " (iteration %ld, cut %" PRIu64 ", %" PRIu64 ")\nchanges: %s\n",
                         seed, it, cut[0], cut[1], changes);
                free (changes);
                ck_abort_msg ("offer_at differs at seed %" PRIu64 " iteration %ld", seed, it);
            }
            gkx_free (want);
            gkx_free (got);
            gkx_offer_destroy (&at);
            gkx_merge_destroy (&part);
        }
        /* the cuts left the full state's offer alone */
        uint8_t after[GKX_OFFER_DIGEST_BYTES];
        gkx_merge_digest (full, after, NULL);
        ck_assert_mem_eq (before, after, sizeof (before));
        gkx_merge_destroy (&full);
        s_free_entries (entries, n);
    }
}
END_TEST

int
main (void)
{
    if (sodium_init () < 0) {
        return 99;
    }
    memset (s_adv, 0x11, sizeof (s_adv));
    memset (s_pub, 0x22, sizeof (s_pub));
    Suite *suite = suite_create ("merge");
    TCase *tc = tcase_create ("rules");
    tcase_add_test (tc, test_lww_conflict);
    tcase_add_test (tc, test_equal_clocks_and_causality);
    tcase_add_test (tc, test_set_races);
    tcase_add_test (tc, test_duplicates_and_membership);
    tcase_add_test (tc, test_policy_rejects);
    tcase_add_test (tc, test_cross_field_conflict);
    tcase_add_test (tc, test_proposals);
    tcase_add_test (tc, test_change_log_golden);
    tcase_add_test (tc, test_state_round_trip);
    tcase_add_test (tc, test_codecs);
    tcase_add_test (tc, test_offer_at_edits);
    tcase_add_test (tc, test_offer_at_proposals);
    tcase_add_test (tc, test_status_hlc_edits);
    tcase_add_test (tc, test_status_hlc_policy_and_proposals);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("property");
    tcase_add_test (tc, test_property_convergence);
    tcase_add_test (tc, test_property_offer_at);
    /* ASan and valgrind are several times slower than a plain build */
    tcase_set_timeout (tc, 600);
    suite_add_tcase (suite, tc);
    SRunner *sr = srunner_create (suite);
    srunner_set_tap (sr, "-");
    srunner_run_all (sr, CK_SILENT);
    int failed = srunner_ntests_failed (sr);
    srunner_free (sr);
    gkx_offer_destroy (&s_genesis_offer);
    gkx_free (s_genesis_bytes);
    return failed ? 1 : 0;
}
