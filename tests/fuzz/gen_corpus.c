/*  gen_corpus - writes the seed corpora of the fuzz targets.
    Part of gokart-exchange; MIT licence.

    usage: gen_corpus OUT_DIR
           gen_corpus --card-json CARD_JSON OUT   (a card's msgpack form)

    Every seed is made by the real code, the way the node makes it: two
    real stores (LMDB, in a temporary directory) of the fixed identities of
    fuzz.h share an offer, edit it from both sides, propose and accept,
    acknowledge, record conversions decided by the conversion rules and
    change a status; the entries they write become the entry seeds and,
    framed as the node frames them (gkx_sync_*_encode), the sync seeds: a
    share, catch-up batches, heads, card messages, a gap and an
    equivocating pair. Cards come from gkx_card_issue, withdrawals from
    gkx_withdrawal_new, directory messages from the gkx_dirmsg encoders,
    postback queries from gkx_postback_url's templates with the macros
    filled in as the MMPs fill them, configurations from gkx_config_write
    (what gkx init writes) with the optional sections of docs/config.md
    added, offers and edits from examples/offer.json and docs/offer-schema.md.

    tests/fuzz/make-corpus runs it, adds what real gkxd nodes write (an
    export, gkx card, postbacks to the endpoint) and replaces
    tests/fuzz/corpus. Writes OUT_DIR/TARGET/NAME files; exits 0 or 1.
*/
#include "fuzz.h"

#include <gkx/alloc.h>
#include <gkx/card.h>
#include <gkx/config.h>
#include <gkx/conversion.h>
#include <gkx/dirmsg.h>
#include <gkx/entry.h>
#include <gkx/kind.h>
#include <gkx/merge.h>
#include <gkx/offer.h>
#include <gkx/postback.h>
#include <gkx/store.h>
#include <gkx/sync.h>
#include <gkx/withdrawal.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for a path. */
#define S_PATH_BYTES 4096
/* Most entries the generator writes. */
#define S_ENTRIES_MAX 64
/* The stores' wall clock starts here (2024-06-01T00:00:00Z) and ticks. */
#define S_CLOCK_MS 1717200000000ULL

/* The offers of the corpora. */
#define S_OFFER_EXAMPLE                                                                     \
    "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\", \"payout\": {\"model\": "  \
    "\"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\", \"events\": {\"purchase\": "     \
    "\"10.00\"}}, \"caps\": {\"daily\": 200, \"monthly\": 5000}, \"targeting\": "           \
    "{\"countries\": [\"US\", \"CA\"], \"platforms\": [\"ios\"], \"device_types\": "       \
    "[\"phone\"]}, \"tracking_url\": "                                                      \
    "\"https://track.example.com/c?offer=1&click_id={click_id}&sub1={sub1}\", "            \
    "\"preview_url\": \"https://apps.example.com/puzzle-quest\", \"attribution\": "        \
    "{\"click_window_days\": 7, \"view_window_hours\": 24}, \"terms\": \"No incentivised " \
    "traffic.\"}"
#define S_OFFER_RULES                                                                       \
    "{\"name\": \"Shop CPA\", \"payout\": {\"model\": \"cpa\", \"amount\": \"1.00\", "      \
    "\"currency\": \"EUR\", \"events\": {\"purchase\": \"5.00\", \"signup\": \"0.50\"}, "   \
    "\"rules\": [{\"id\": \"de-android\", \"when\": {\"countries\": [\"DE\"], "             \
    "\"platforms\": [\"android\"]}, \"amount\": \"1.50\"}, {\"id\": \"purchase-fr\", "      \
    "\"when\": {\"countries\": [\"FR\"], \"event\": \"purchase\"}, \"amount\": \"6.00\"}]}, " \
    "\"targeting\": {\"countries\": [\"DE\", \"FR\"], \"platforms\": [\"android\", "       \
    "\"ios\", \"web\"]}, \"creatives\": [{\"id\": \"b1\", \"type\": \"image\", \"url\": "   \
    "\"https://cdn.example.com/b1.png\", \"width\": 320, \"height\": 50}], \"settings\": " \
    "{\"note\": \"weekly report\"}, \"conversion_policy\": {\"approval\": \"manual\", "    \
    "\"hold_days\": 14}, \"budget\": {\"daily\": \"100.00\", \"total\": \"5000.00\"}}"
#define S_OFFER_REVSHARE                                                                    \
    "{\"name\": \"Casino revshare\", \"status\": \"paused\", \"payout\": {\"model\": "      \
    "\"revshare\", \"amount\": \"25\", \"currency\": \"GBP\"}, \"schedule\": {\"start\": "  \
    "\"2024-01-01T00:00:00Z\", \"end\": \"2030-12-31T23:59:59Z\"}, \"caps\": {\"total\": "  \
    "100000}}"

/* Where the files go, and how many were written. */
static const char *s_out;
static int s_written;

/* The entries the stores wrote, in the order they were written. */
typedef struct {
    gkx_entry_t *entry;
    int role;   /* the author's role */
} s_item_t;

static s_item_t s_log[S_ENTRIES_MAX];
static size_t s_log_count;

/* The stores' clock: one millisecond more at every read. */
static uint64_t
s_clock (void *arg)
{
    (void) arg;
    static uint64_t now = S_CLOCK_MS;
    return now++;
}

/* Stops the generator with a message. */
static void
s_die (const char *what, int rc, const char *errbuf)
{
    fprintf (stderr, "gen_corpus: %s: %s: %s\n", what, gkx_errname (rc), errbuf ? errbuf : "");
    exit (1);
}

/* Writes one file OUT/target/name. */
static void
s_write (const char *target, const char *name, const void *data, size_t size)
{
    char path[S_PATH_BYTES];
    snprintf (path, sizeof path, "%s/%s", s_out, target);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/%s/%s", s_out, target, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size || fclose (file) != 0) {
        perror (path);
        exit (1);
    }
    s_written++;
}

/* Writes a text file. */
static void
s_write_text (const char *target, const char *name, const char *text)
{
    s_write (target, name, text, strlen (text));
}

/* A growing byte buffer: a multipart message in the fuzz framing. */
typedef struct {
    msgpack_sbuffer buf;
    int frames;
} s_msg_t;

/* Appends one frame. */
static void
s_frame (s_msg_t *msg, const void *data, size_t size)
{
    if (msg->frames++ > 0) {
        msgpack_sbuffer_write (&msg->buf, GKX_FUZZ_FRAME_SEP, GKX_FUZZ_FRAME_SEP_BYTES);
    }
    msgpack_sbuffer_write (&msg->buf, data, size);
}

/* Appends an encoded header (consumes sbuf). */
static void
s_frame_sbuf (s_msg_t *msg, msgpack_sbuffer *sbuf)
{
    s_frame (msg, sbuf->data, sbuf->size);
    msgpack_sbuffer_destroy (sbuf);
}

/* Appends an entries message of the given log items. */
static void
s_entries (s_msg_t *msg, const uint8_t *pid, const size_t *index, size_t count)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_entries_encode (&sbuf, pid, count);
    s_frame_sbuf (msg, &sbuf);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const uint8_t *bytes = gkx_entry_bytes (s_log[index[i]].entry, &len);
        s_frame (msg, bytes, len);
    }
}

/* Appends a heads message for one partnership. */
static void
s_heads (s_msg_t *msg, const uint8_t *pid, int resync, uint64_t own, uint64_t yours)
{
    gkx_sync_head_t head;
    memcpy (head.pid, pid, GKX_ID_BYTES);
    head.own_seq = own;
    head.your_seq = yours;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_heads_encode (&sbuf, resync, &head, 1);
    s_frame_sbuf (msg, &sbuf);
}

/* Appends a card message. */
static void
s_card_msg (s_msg_t *msg, const gkx_card_t *card)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_card_encode (&sbuf);
    s_frame_sbuf (msg, &sbuf);
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    s_frame (msg, bytes, len);
}

/* Writes a message as one seed and resets it. */
static void
s_msg_write (s_msg_t *msg, const char *target, const char *name)
{
    s_write (target, name, msg->buf.data, msg->buf.size);
    msgpack_sbuffer_destroy (&msg->buf);
    msgpack_sbuffer_init (&msg->buf);
    msg->frames = 0;
}

/* Keeps an entry a store wrote or took in. */
static size_t
s_keep (gkx_entry_t *entry, int role)
{
    if (s_log_count == S_ENTRIES_MAX) {
        s_die ("log", GKX_ETOOBIG, "too many entries");
    }
    s_log[s_log_count].entry = entry;
    s_log[s_log_count].role = role;
    return s_log_count++;
}

/* Sends a kept entry into another store, as a peer's message would. */
static void
s_ingest (gkx_store_t *store, size_t index, const uint8_t *peer)
{
    size_t len;
    const uint8_t *bytes = gkx_entry_bytes (s_log[index].entry, &len);
    int result = 0;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_ingest (store, bytes, len, peer, &result, errbuf);
    if (rc != GKX_OK) {
        s_die ("ingest", rc, errbuf);
    }
}

/* Appends an edit or propose entry made of CLI edits; returns its index. */
static size_t
s_edit (gkx_store_t *store, const gkx_identity_t *id, int role, const uint8_t *pid, int kind,
        const char *const *edits, size_t count)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *current = NULL;
    int rc = gkx_store_offer (store, pid, &current, NULL);
    if (rc != GKX_OK) {
        s_die ("offer", rc, NULL);
    }
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    for (size_t i = 0; i < count; i++) {
        rc = gkx_offer_ops_parse_edit (ops, current, edits[i], errbuf);
        if (rc != GKX_OK) {
            s_die (edits[i], rc, errbuf);
        }
    }
    uint8_t *body = NULL;
    size_t len = 0;
    rc = gkx_offer_ops_encode (ops, &body, &len, errbuf);
    if (rc != GKX_OK) {
        s_die ("ops", rc, errbuf);
    }
    gkx_entry_t *entry = NULL;
    rc = gkx_store_append (store, id, pid, kind, body, len, &entry, errbuf);
    if (rc != GKX_OK) {
        s_die ("append edit", rc, errbuf);
    }
    gkx_free (body);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&current);
    return s_keep (entry, role);
}

/* Appends an entry of kind with a ready body; returns its index. */
static size_t
s_append (gkx_store_t *store, const gkx_identity_t *id, int role, const uint8_t *pid, int kind,
          const uint8_t *body, size_t len)
{
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_entry_t *entry = NULL;
    int rc = gkx_store_append (store, id, pid, kind, body, len, &entry, errbuf);
    if (rc != GKX_OK) {
        s_die (gkx_kind_name (kind), rc, errbuf);
    }
    return s_keep (entry, role);
}

/* Records a conversion from postback facts; returns its index. */
static size_t
s_convert (gkx_store_t *store, const gkx_identity_t *id, const uint8_t *pid, const char *txid,
           const char *event, const char *country, const char *platform, uint64_t time,
           int rejected, const char *reason, int64_t revenue)
{
    gkx_store_convert_t *item = gkx_zalloc (sizeof *item);
    memcpy (item->pid, pid, GKX_ID_BYTES);
    gkx_conversion_t *d = &item->draft;
    snprintf (d->click_id, sizeof d->click_id, "clk-%s", txid);
    snprintf (d->event, sizeof d->event, "%s", event);
    snprintf (d->country, sizeof d->country, "%s", country);
    snprintf (d->platform, sizeof d->platform, "%s", platform);
    snprintf (d->sub[0], sizeof d->sub[0], "%s", "campaign-7");
    d->time = time;
    d->click_time = time - 600;
    gkx_postback_dedupe_key (d->dedupe, txid, event);
    item->facts = (gkx_conversion_facts_t) {d->event, d->country, d->platform, d->time,
                                            d->click_time, rejected, reason, revenue >= 0,
                                            revenue >= 0 ? revenue : 0};
    snprintf (item->revenue_currency, sizeof item->revenue_currency, "%s", "USD");
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_convert (store, id, item, 1, errbuf);
    if (rc != GKX_OK || item->rc != GKX_OK || !item->entry) {
        s_die ("convert", rc ? rc : item->rc, rc ? errbuf : item->errbuf);
    }
    size_t index = s_keep (item->entry, GKX_ROLE_ADVERTISER);
    gkx_free (item);
    return index;
}

/* Opens a store of identity id in dir/name. */
static gkx_store_t *
s_store (const char *dir, const char *name, const gkx_identity_t *id)
{
    char path[S_PATH_BYTES];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    gkx_store_options_t options = {.clock_ms = s_clock};
    gkx_store_t *store = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_store_open (&store, path, gkx_identity_id (id), &options, errbuf);
    if (rc != GKX_OK) {
        s_die ("store", rc, errbuf);
    }
    return store;
}

/* Issues a card. */
static gkx_card_t *
s_card (const gkx_identity_t *id, int role, const char *name, const char *endpoint,
        const char *email, const char **verticals, size_t nv, const char **countries, size_t nc)
{
    gkx_card_info_t info = {role, name, endpoint, email, verticals, nv, countries, nc,
                            S_CLOCK_MS};
    gkx_card_t *card = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    int rc = gkx_card_issue (&card, id, &info, errbuf);
    if (rc != GKX_OK) {
        s_die ("card", rc, errbuf);
    }
    return card;
}

/* Writes a card in both forms. */
static void
s_card_write (const gkx_card_t *card, const char *name)
{
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    s_write ("card", name, bytes, len);
    json_t *json = gkx_card_to_json (card);
    char *text = json_dumps (json, JSON_INDENT (2) | JSON_SORT_KEYS);
    char json_name[64];
    snprintf (json_name, sizeof json_name, "%s.json", name);
    s_write_text ("card", json_name, text);
    free (text);
    json_decref (json);
}

/* Removes one file or directory of a tree (nftw callback). */
static int
s_remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove (path);
    return 0;
}

/* The log, the entry seeds and the sync seeds. */
static void
s_logs (const char *tmp, gkx_identity_t *adv, gkx_identity_t *pub, gkx_identity_t *third,
        gkx_card_t *adv_card, gkx_card_t *pub_card)
{
    gkx_store_t *a = s_store (tmp, "a", adv);
    gkx_store_t *p = s_store (tmp, "p", pub);
    gkx_store_t *fork = s_store (tmp, "p-fork", pub);
    const uint8_t *a_id = gkx_identity_id (adv);
    const uint8_t *p_id = gkx_identity_id (pub);
    char errbuf[GKX_ERRBUF_BYTES] = "";
    gkx_offer_t *offer = NULL;
    int rc = gkx_offer_from_text (&offer, S_OFFER_EXAMPLE, errbuf);
    if (rc != GKX_OK) {
        s_die ("offer", rc, errbuf);
    }
    uint8_t *offer_bytes = NULL;
    size_t offer_len = 0;
    gkx_offer_encode (offer, &offer_bytes, &offer_len);
    gkx_offer_destroy (&offer);
    json_t *policy_json = json_pack ("{s:s, s:s}", "payout", "propose", "caps.daily", "advertiser");
    uint8_t *policy = NULL;
    size_t policy_len = 0;
    rc = gkx_merge_policy_encode (&policy, &policy_len, policy_json, errbuf);
    if (rc != GKX_OK) {
        s_die ("policy", rc, errbuf);
    }
    json_decref (policy_json);
    uint8_t pid[GKX_ID_BYTES];
    gkx_entry_t *genesis = NULL;
    rc = gkx_store_share (a, adv, p_id, offer_bytes, offer_len, policy, policy_len, pid, &genesis,
                          errbuf);
    if (rc != GKX_OK) {
        s_die ("share", rc, errbuf);
    }
    gkx_free (offer_bytes);
    gkx_free (policy);
    size_t g = s_keep (genesis, GKX_ROLE_ADVERTISER);
    s_ingest (p, g, a_id);
    s_ingest (fork, g, a_id);
    /* The publisher acknowledges, pauses and proposes a higher payout. */
    size_t p_ack = s_append (p, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_ACK, gkx_ack_body,
                             sizeof gkx_ack_body);
    static const char *const pause[] = {"status=paused", "settings.sub_id=pub-42"};
    size_t p_edit = s_edit (p, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_EDIT, pause, 2);
    static const char *const raise[] = {"payout.amount=3.00"};
    size_t p_propose = s_edit (p, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_PROPOSE, raise, 1);
    s_ingest (a, p_ack, p_id);
    s_ingest (a, p_edit, p_id);
    s_ingest (a, p_propose, p_id);
    /* The advertiser accepts, edits, resumes and records conversions. */
    uint8_t *body = NULL;
    size_t len = 0;
    if (gkx_merge_answer_encode (&body, &len, GKX_MERGE_ACCEPT,
                                 gkx_entry_hash (s_log[p_propose].entry))
        != GKX_OK) {
        s_die ("answer", GKX_EINVAL, NULL);
    }
    size_t a_answer = s_append (a, adv, GKX_ROLE_ADVERTISER, pid, GKX_KIND_ANSWER, body, len);
    gkx_free (body);
    static const char *const edits[] = {"status=active", "targeting.countries+=GB",
                                        "payout.events.signup=0.75",
                                        "creatives+={\"id\":\"b2\",\"type\":\"image\","
                                        "\"url\":\"https://cdn.example.com/b2.png\"}"};
    size_t a_edit = s_edit (a, adv, GKX_ROLE_ADVERTISER, pid, GKX_KIND_EDIT, edits, 4);
    uint64_t t = S_CLOCK_MS / 1000 - 3600;
    size_t c1 = s_convert (a, adv, pid, "af-1001", "install", "US", "ios", t, 0, NULL, -1);
    size_t c2 = s_convert (a, adv, pid, "af-1002", "purchase", "CA", "ios", t + 60, 0, NULL,
                           12500000);
    size_t c3 = s_convert (a, adv, pid, "adj-77", "install", "GB", "android", t + 120, 1, "bots",
                           -1);
    gkx_conversion_change_t change;
    memset (&change, 0, sizeof change);
    /* An approved conversion locks at once without a hold: the MMP's
       rejection is the one to overturn. */
    memcpy (change.conversion, gkx_entry_hash (s_log[c3].entry), GKX_CONVERSION_ID_BYTES);
    change.status = GKX_CONVERSION_APPROVED;
    snprintf (change.reason, sizeof change.reason, "%s", "reviewed: real users");
    if (gkx_conversion_change_encode (&body, &len, &change, errbuf) != GKX_OK) {
        s_die ("change", GKX_EINVAL, errbuf);
    }
    size_t a_change = s_append (a, adv, GKX_ROLE_ADVERTISER, pid, GKX_KIND_CONVERSION_STATUS,
                                body, len);
    gkx_free (body);
    const size_t a_chain[] = {g, a_answer, a_edit, c1, c2, c3, a_change};
    const size_t a_n = sizeof a_chain / sizeof a_chain[0];
    for (size_t i = 1; i < a_n; i++) {
        s_ingest (p, a_chain[i], a_id);
    }
    size_t p_ack2 = s_append (p, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_ACK, gkx_ack_body,
                              sizeof gkx_ack_body);
    const size_t p_chain[] = {p_ack, p_edit, p_propose, p_ack2};
    const size_t p_n = sizeof p_chain / sizeof p_chain[0];
    /* The fork: the publisher's other copy writes another entry at seq 2. */
    size_t f_ack = s_append (fork, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_ACK, gkx_ack_body,
                             sizeof gkx_ack_body);
    static const char *const other[] = {"settings.sub_id=other"};
    size_t f_edit = s_edit (fork, pub, GKX_ROLE_PUBLISHER, pid, GKX_KIND_EDIT, other, 1);
    (void) f_ack;

    /* Entry seeds: every entry, named by author, seq and kind. */
    for (size_t i = 0; i < s_log_count; i++) {
        char name[64];
        snprintf (name, sizeof name, "%s-%02llu-%s%s",
                  s_log[i].role == GKX_ROLE_ADVERTISER ? "adv" : "pub",
                  (unsigned long long) gkx_entry_seq (s_log[i].entry),
                  gkx_kind_name (gkx_entry_kind (s_log[i].entry)), i == f_edit ? "-fork" : "");
        size_t blen;
        const uint8_t *bytes = gkx_entry_bytes (s_log[i].entry, &blen);
        s_write ("entry", name, bytes, blen);
    }

    /* Sync seeds. */
    s_msg_t msg = {.frames = 0};
    msgpack_sbuffer_init (&msg.buf);
    s_entries (&msg, pid, &g, 1);
    s_msg_write (&msg, "sync", "share");
    /* The whole conversation in causal order, one entries message each,
       with the acknowledging heads between. */
    const size_t order[] = {g, p_ack, p_edit, p_propose, a_answer, a_edit, c1, c2, c3,
                            a_change, p_ack2};
    uint64_t a_seq = 0;
    uint64_t p_seq = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        s_entries (&msg, pid, &order[i], 1);
        if (s_log[order[i]].role == GKX_ROLE_ADVERTISER) {
            a_seq++;
        }
        else {
            p_seq++;
        }
        s_heads (&msg, pid, 0, p_seq, a_seq);
    }
    s_msg_write (&msg, "sync", "conversation");
    /* Catch-up: each chain in batches, as far as the other has seen it,
       then heads asking for a resync. */
    s_entries (&msg, pid, &g, 1);
    s_entries (&msg, pid, p_chain, p_n - 1);
    s_entries (&msg, pid, a_chain + 1, a_n - 1);
    s_entries (&msg, pid, &p_chain[p_n - 1], 1);
    s_heads (&msg, pid, 1, p_n, a_n);
    s_msg_write (&msg, "sync", "catchup");
    /* Introductions: both cards, then heads of a partnership not held. */
    s_card_msg (&msg, adv_card);
    s_card_msg (&msg, pub_card);
    s_heads (&msg, pid, 1, 0, 0);
    s_msg_write (&msg, "sync", "cards");
    /* A gap: the publisher's chain without its seq 2. */
    const size_t gap[] = {p_ack, p_propose, p_ack2};
    s_entries (&msg, pid, a_chain, 3);
    s_entries (&msg, pid, gap, 3);
    s_msg_write (&msg, "sync", "gap");
    /* Equivocation: two different publisher entries at seq 2. */
    const size_t equivocation[] = {p_ack, p_edit, f_edit};
    s_entries (&msg, pid, &g, 1);
    s_entries (&msg, pid, equivocation, 2);
    s_entries (&msg, pid, &equivocation[2], 1);
    s_msg_write (&msg, "sync", "equivocation");
    /* Replays and out-of-order: the advertiser's chain backwards. */
    const size_t backwards[] = {a_change, c3, c2, c1, a_edit, a_answer, g};
    s_entries (&msg, pid, backwards, 7);
    s_entries (&msg, pid, a_chain, a_n);
    s_entries (&msg, pid, a_chain, a_n);
    s_msg_write (&msg, "sync", "replay");
    /* Heads alone: an empty list, and one far ahead. */
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    gkx_sync_heads_encode (&sbuf, 1, NULL, 0);
    s_frame_sbuf (&msg, &sbuf);
    s_heads (&msg, pid, 0, UINT64_MAX, UINT64_MAX);
    s_msg_write (&msg, "sync", "heads");
    /* An entry of a third node, sent by a member. */
    gkx_store_t *c = s_store (tmp, "c", third);
    uint8_t other_pid[GKX_ID_BYTES];
    gkx_entry_t *foreign = NULL;
    offer = NULL;
    if (gkx_offer_from_text (&offer, S_OFFER_RULES, errbuf) != GKX_OK) {
        s_die ("offer", GKX_EINVAL, errbuf);
    }
    gkx_offer_encode (offer, &offer_bytes, &offer_len);
    gkx_offer_destroy (&offer);
    rc = gkx_store_share (c, third, p_id, offer_bytes, offer_len, NULL, 0, other_pid, &foreign,
                          errbuf);
    if (rc != GKX_OK) {
        s_die ("share", rc, errbuf);
    }
    gkx_free (offer_bytes);
    size_t f = s_keep (foreign, GKX_ROLE_ADVERTISER);
    s_entries (&msg, other_pid, &f, 1);
    s_msg_write (&msg, "sync", "foreign");
    size_t flen;
    const uint8_t *fbytes = gkx_entry_bytes (foreign, &flen);
    s_write ("entry", "third-01-genesis", fbytes, flen);
    msgpack_sbuffer_destroy (&msg.buf);
    gkx_store_close (&c);
    gkx_store_close (&a);
    gkx_store_close (&p);
    gkx_store_close (&fork);
}

/* Directory seeds: each message type with its frames. */
static void
s_dirmsgs (gkx_identity_t *adv, gkx_card_t *adv_card, gkx_card_t *pub_card)
{
    s_msg_t msg = {.frames = 0};
    msgpack_sbuffer_init (&msg.buf);
    msgpack_sbuffer sbuf;
    size_t len;
    const uint8_t *bytes;

    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_publish_encode (&sbuf, 1);
    s_frame_sbuf (&msg, &sbuf);
    bytes = gkx_card_bytes (pub_card, &len);
    s_frame (&msg, bytes, len);
    s_msg_write (&msg, "dirmsg", "publish");

    gkx_dirmsg_filter_t filter;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (gkx_dirmsg_filter_parse (&filter, "publisher", "games", "us", errbuf) != GKX_OK) {
        s_die ("filter", GKX_EINVAL, errbuf);
    }
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_list_encode (&sbuf, 2, &filter);
    s_frame_sbuf (&msg, &sbuf);
    s_frame (&msg, bytes, len);
    s_msg_write (&msg, "dirmsg", "list-filter");

    memset (&filter, 0, sizeof filter);
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_list_encode (&sbuf, 3, &filter);
    s_frame_sbuf (&msg, &sbuf);
    s_msg_write (&msg, "dirmsg", "list-any");

    gkx_withdrawal_t *w = gkx_withdrawal_new (adv, S_CLOCK_MS + 1000);
    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_withdraw_encode (&sbuf, 4);
    s_frame_sbuf (&msg, &sbuf);
    bytes = gkx_withdrawal_bytes (w, &len);
    s_frame (&msg, bytes, len);
    s_msg_write (&msg, "dirmsg", "withdraw");
    gkx_withdrawal_destroy (&w);

    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_ok_encode (&sbuf, 5);
    s_frame_sbuf (&msg, &sbuf);
    s_msg_write (&msg, "dirmsg", "ok");

    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_error_encode (&sbuf, 6, GKX_EPOLICY,
                             "card: withdrawn by its owner at 1717200001000");
    s_frame_sbuf (&msg, &sbuf);
    s_msg_write (&msg, "dirmsg", "error");

    msgpack_sbuffer_init (&sbuf);
    gkx_dirmsg_cards_encode (&sbuf, 7, 2, 1);
    s_frame_sbuf (&msg, &sbuf);
    bytes = gkx_card_bytes (adv_card, &len);
    s_frame (&msg, bytes, len);
    bytes = gkx_card_bytes (pub_card, &len);
    s_frame (&msg, bytes, len);
    s_msg_write (&msg, "dirmsg", "cards");
    msgpack_sbuffer_destroy (&msg.buf);
}

/* The value an MMP puts in a parameter of role field, for one postback. */
static const char *
s_value (int field, int variant)
{
    switch (field) {
        case GKX_POSTBACK_CLICK_ID: return variant == 2 ? "c0ffee-42.x_y" : "clk-9f2c1a";
        case GKX_POSTBACK_TXID: return variant == 1 ? "af-txn-0002" : "af-txn-0001";
        case GKX_POSTBACK_EVENT: return variant == 1 ? "purchase" : "install";
        case GKX_POSTBACK_ACTIVITY: return variant == 2 ? "rejected_install" : "event";
        case GKX_POSTBACK_TIME: return variant == 1 ? "2024-06-01T10:15:30Z" : "1717236930";
        case GKX_POSTBACK_TIME_ALT: return "1717236000";
        case GKX_POSTBACK_CLICK_TIME: return variant == 1 ? "1717236000123" : "1717235000";
        case GKX_POSTBACK_REVENUE: return variant == 1 ? "12.50" : "";
        case GKX_POSTBACK_CURRENCY: return "USD";
        case GKX_POSTBACK_PAYOUT: return variant == 1 ? "4.5" : "";
        case GKX_POSTBACK_COUNTRY: return variant == 2 ? "gb" : "US";
        case GKX_POSTBACK_PLATFORM: return variant == 2 ? "Android" : "ios";
        case GKX_POSTBACK_SUB1: return "campaign%207";
        case GKX_POSTBACK_SUB2: return "adset+b";
        case GKX_POSTBACK_SUB3: return "%E2%82%AC";
        case GKX_POSTBACK_REJECTED: return variant == 2 ? "true" : "false";
        case GKX_POSTBACK_REASON: return variant == 2 ? "bots" : "";
        case GKX_POSTBACK_REASON_DETAIL: return variant == 2 ? "site_blacklist" : "";
        default: return "";
    }
}

/* Postback seeds: for each MMP, the URL's own query (macros unreplaced)
   and three postbacks with the macros filled in. */
static void
s_postbacks (void)
{
    for (size_t m = 0; m < gkx_postback_mmp_count (); m++) {
        const char *mmp = gkx_postback_mmp_name (m);
        char errbuf[GKX_ERRBUF_BYTES] = "";
        char *url = gkx_postback_url (mmp, "https://pb.example.com/postback", "k3Xf9QpZ",
                                      "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg", errbuf);
        if (!url) {
            s_die ("postback url", GKX_EINVAL, errbuf);
        }
        char name[64];
        char text[GKX_POSTBACK_QUERY_MAX];
        snprintf (text, sizeof text, "%s\n%s", mmp, strchr (url, '?') + 1);
        snprintf (name, sizeof name, "%s-template", mmp);
        s_write_text ("postback", name, text);
        gkx_free (url);
        for (int variant = 0; variant < 3; variant++) {
            int n = snprintf (text, sizeof text, "%s\np=k3Xf9QpZ&t=Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4"
                              "cXV1eHF1dXg", mmp);
            for (int field = 0; field < GKX_POSTBACK_FIELD_COUNT; field++) {
                const char *param = gkx_postback_param (mmp, field);
                const char *value = s_value (field, variant);
                /* Two roles may read one parameter (a time and its fallback). */
                int seen = 0;
                for (int before = 0; param && before < field; before++) {
                    const char *earlier = gkx_postback_param (mmp, before);
                    seen |= earlier && strcmp (earlier, param) == 0;
                }
                if (param && !seen && (value[0] || variant == 0)) {
                    n += snprintf (text + n, sizeof text - (size_t) n, "&%s=%s", param, value);
                }
            }
            snprintf (name, sizeof name, "%s-%d", mmp, variant);
            s_write_text ("postback", name, text);
        }
    }
}

/* Config seeds: what gkx init writes, and the optional sections. */
static void
s_configs (const char *tmp)
{
    static const char *const extra[] = {
        "",
        "\n[postback]\nbase_url = https://pb.example.com/postback/\n"
        "allow_from = 10.0.0.0/8, 192.168.1.7 ::1\nallow_from = 2001:db8::/32\n",
        "\n[webhook]\nurl = https://hooks.example.com/gkx\n"
        "secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
        "\n[smtp]\nurl = smtps://mail.example.com:465\nuser = gkx\npassword_file = smtp.pass\n"
        "from = ops@example.com\n\n[notify]\nto = a@example.com, b@example.com\n"
        "window_seconds = 120\n",
        "\n[directory]\nserve = true\nlisten = tcp://0.0.0.0:7790\n"
        "publish_to = tcp://dir.example.com:7790@"
        "b2c8d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1\n",
    };
    static const char *const names[] = {"init", "postback", "webhook", "smtp", "directory"};
    for (int role = GKX_ROLE_ADVERTISER; role <= GKX_ROLE_PUBLISHER; role++) {
        char dir[S_PATH_BYTES / 2];
        snprintf (dir, sizeof dir, "%s/conf-%d", tmp, role);
        mkdir (dir, 0700);
        gkx_config_init_t init = {
            .role = role,
            .name = role == GKX_ROLE_ADVERTISER ? "Acme Games" : "Ad Network One",
            .email = "ops@example.com",
        };
        char errbuf[GKX_ERRBUF_BYTES] = "";
        int rc = gkx_config_write (dir, &init, errbuf);
        if (rc != GKX_OK) {
            s_die ("config", rc, errbuf);
        }
        char path[S_PATH_BYTES];
        snprintf (path, sizeof path, "%s/%s", dir, GKX_CONFIG_NAME);
        FILE *file = fopen (path, "rb");
        static char text[65536];
        size_t len = file ? fread (text, 1, sizeof text - 1024, file) : 0;
        if (file) {
            fclose (file);
        }
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            char name[64];
            snprintf (name, sizeof name, "%s-%s", gkx_role_name (role), names[i]);
            snprintf (text + len, sizeof text - len, "%s", extra[i]);
            s_write_text ("config", name, text);
        }
    }
}

/* Offer seeds: offers alone, and with edits and merge patches. */
static void
s_offers (void)
{
    s_write_text ("offer", "example", S_OFFER_EXAMPLE);
    s_write_text ("offer", "rules", S_OFFER_RULES);
    s_write_text ("offer", "revshare", S_OFFER_REVSHARE);
    s_write_text ("offer", "minimal", "{\"name\": \"x\", \"payout\": {\"model\": \"cpi\", "
                                      "\"amount\": \"0.01\", \"currency\": \"USD\"}}");
    static const struct {
        const char *name;
        const char *offer;
        const char *edits;
    } edited[] = {
        {"example-edits", S_OFFER_EXAMPLE,
         "payout.amount=3.00\ntargeting.countries+=FR\ntargeting.countries-=CA\n"
         "payout.events.signup=0.75\nstatus=paused\ncaps.daily=null"},
        {"example-patch", S_OFFER_EXAMPLE,
         "{\"payout\": {\"amount\": \"2.75\", \"events\": {\"purchase\": null}}, "
         "\"targeting\": {\"countries\": [\"US\", \"GB\"]}, \"terms\": null}"},
        {"rules-edits", S_OFFER_RULES,
         "payout.rules+={\"id\":\"us-ios\",\"when\":{\"countries\":[\"US\"],"
         "\"platforms\":[\"ios\"]},\"amount\":\"2.00\"}\npayout.rules-=de-android\n"
         "creatives.b1={\"type\":\"video\",\"url\":\"https://cdn.example.com/v.mp4\"}\n"
         "settings.note=monthly\nsettings.extra=1"},
        {"revshare-patch", S_OFFER_REVSHARE,
         "{\"status\": \"active\", \"schedule\": {\"end\": null}, \"caps\": {\"daily\": 10}}\n"
         "payout.amount=30"},
    };
    for (size_t i = 0; i < sizeof edited / sizeof edited[0]; i++) {
        size_t a = strlen (edited[i].offer);
        size_t b = strlen (edited[i].edits);
        char *buf = gkx_zalloc (a + 1 + b);
        memcpy (buf, edited[i].offer, a);
        memcpy (buf + a + 1, edited[i].edits, b);
        s_write ("offer", edited[i].name, buf, a + 1 + b);
        gkx_free (buf);
    }
}

/* Writes the msgpack form of the card in JSON form in file in (as `gkx card
   --json` prints it) to file out; returns the exit status. */
static int
s_card_from_json (const char *in, const char *out)
{
    json_error_t error;
    json_t *json = json_load_file (in, 0, &error);
    gkx_card_t *card = NULL;
    char errbuf[GKX_ERRBUF_BYTES] = "";
    if (!json || gkx_card_from_json (&card, json, errbuf) != GKX_OK) {
        fprintf (stderr, "gen_corpus: %s: %s\n", in, json ? errbuf : error.text);
        json_decref (json);
        return 1;
    }
    size_t len;
    const uint8_t *bytes = gkx_card_bytes (card, &len);
    FILE *file = fopen (out, "wb");
    int rc = file && fwrite (bytes, 1, len, file) == len ? 0 : 1;
    if (file && fclose (file) != 0) {
        rc = 1;
    }
    gkx_card_destroy (&card);
    json_decref (json);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && strcmp (argv[1], "--card-json") == 0) {
        return s_card_from_json (argv[2], argv[3]);
    }
    if (argc != 2) {
        fprintf (stderr, "usage: gen_corpus OUT_DIR\n       gen_corpus --card-json CARD_JSON OUT\n");
        return 2;
    }
    s_out = argv[1];
    mkdir (s_out, 0755);
    char tmp[] = "/tmp/gkx-gen-corpus-XXXXXX";
    if (!mkdtemp (tmp)) {
        perror ("mkdtemp");
        return 1;
    }
    gkx_identity_t *adv = gkx_fuzz_identity (1);
    gkx_identity_t *pub = gkx_fuzz_identity (2);
    gkx_identity_t *third = gkx_fuzz_identity (3);
    static const char *verticals[] = {"games", "finance"};
    static const char *countries[] = {"US", "CA", "GB"};
    gkx_card_t *adv_card = s_card (adv, GKX_ROLE_ADVERTISER, "Acme Games",
                                   "tcp://adv.example.com:7700", "ops@acme.example", verticals, 2,
                                   countries, 3);
    gkx_card_t *pub_card = s_card (pub, GKX_ROLE_PUBLISHER, "Ad Network One", "", "",
                                   verticals, 1, countries, 1);
    gkx_card_t *third_card = s_card (third, GKX_ROLE_ADVERTISER, "Third \xc3\x89" "diteur",
                                     "tcp://[::1]:7700", "", NULL, 0, NULL, 0);
    s_card_write (adv_card, "advertiser");
    s_card_write (pub_card, "publisher");
    s_card_write (third_card, "third");
    s_logs (tmp, adv, pub, third, adv_card, pub_card);
    s_dirmsgs (adv, adv_card, pub_card);
    s_postbacks ();
    s_configs (tmp);
    s_offers ();
    for (size_t i = 0; i < s_log_count; i++) {
        gkx_entry_destroy (&s_log[i].entry);
    }
    gkx_card_destroy (&adv_card);
    gkx_card_destroy (&pub_card);
    gkx_card_destroy (&third_card);
    gkx_identity_destroy (&adv);
    gkx_identity_destroy (&pub);
    gkx_identity_destroy (&third);
    nftw (tmp, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    printf ("gen_corpus: %d files in %s\n", s_written, s_out);
    return 0;
}
