/*  test_offer - tests of the offer schema, validation and edit operations.
    Part of gokart-exchange; MIT licence.

    One case per validation rule (a loop test over a table, each row
    asserting the exact code and message), then the JSON form, the canonical
    msgpack form, CLI edits, merge patches, operation bodies, applying
    operations and payout precedence, each called the way a caller should.
*/
#include <gkx/alloc.h>
#include <gkx/error.h>
#include <gkx/offer.h>

#include <check.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The offer of issue 3, valid. */
static const char *s_base_text
    = "{\"name\": \"Puzzle Quest iOS US\", \"status\": \"active\","
      " \"payout\": {\"model\": \"cpi\", \"amount\": \"2.50\", \"currency\": \"USD\","
      " \"events\": {\"purchase\": \"10.00\"},"
      " \"rules\": [{\"id\": \"ca-android\", \"when\": {\"countries\": [\"CA\"],"
      " \"platforms\": [\"android\"], \"event\": \"install\"}, \"amount\": \"1.80\"}]},"
      " \"budget\": {\"daily\": \"500.00\", \"monthly\": \"10000.00\", \"total\": null},"
      " \"caps\": {\"daily\": 200, \"weekly\": null, \"monthly\": 5000, \"total\": null},"
      " \"targeting\": {\"countries\": [\"US\", \"CA\"], \"regions\": [],"
      " \"platforms\": [\"ios\"], \"device_types\": [\"phone\"], \"os_min\": \"15.0\","
      " \"carriers\": [], \"connection_types\": [\"wifi\"]},"
      " \"tracking_url\": \"https://track.example.com/c?offer=1&click_id={click_id}&sub1={sub1}\","
      " \"preview_url\": \"https://apps.example.com/puzzle-quest\","
      " \"creatives\": [{\"id\": \"banner-1\", \"type\": \"image\","
      " \"url\": \"https://cdn.example.com/b1.png\", \"width\": 320, \"height\": 50}],"
      " \"schedule\": {\"start\": \"2026-12-01T00:00:00Z\", \"end\": null},"
      " \"attribution\": {\"click_window_days\": 7, \"view_window_hours\": 24},"
      " \"conversion_policy\": {\"approval\": \"auto\", \"hold_days\": 0,"
      " \"multiple_per_click\": false},"
      " \"optimization\": {\"blocked_sources\": [\"sub-123\"]},"
      " \"terms\": \"No incentivised traffic.\","
      " \"settings\": {\"any_key\": \"any text value\"}}";

/* The base offer's canonical JSON form. */
static const char *s_base_canonical
    = "{\"attribution\":{\"click_window_days\":7,\"view_window_hours\":24},"
      "\"budget\":{\"daily\":\"500.00\",\"monthly\":\"10000.00\",\"total\":null},"
      "\"caps\":{\"daily\":200,\"monthly\":5000,\"total\":null,\"weekly\":null},"
      "\"conversion_policy\":{\"approval\":\"auto\",\"hold_days\":0,"
      "\"multiple_per_click\":false},"
      "\"creatives\":[{\"height\":50,\"id\":\"banner-1\",\"type\":\"image\","
      "\"url\":\"https://cdn.example.com/b1.png\",\"width\":320}],"
      "\"name\":\"Puzzle Quest iOS US\","
      "\"optimization\":{\"blocked_sources\":[\"sub-123\"]},"
      "\"payout\":{\"amount\":\"2.50\",\"currency\":\"USD\",\"events\":{\"purchase\":\"10.00\"},"
      "\"model\":\"cpi\",\"rules\":[{\"amount\":\"1.80\",\"id\":\"ca-android\","
      "\"when\":{\"countries\":[\"CA\"],\"event\":\"install\",\"platforms\":[\"android\"]}}]},"
      "\"preview_url\":\"https://apps.example.com/puzzle-quest\","
      "\"schedule\":{\"end\":null,\"start\":\"2026-12-01T00:00:00Z\"},"
      "\"settings\":{\"any_key\":\"any text value\"},\"status\":\"active\","
      "\"targeting\":{\"carriers\":[],\"connection_types\":[\"wifi\"],"
      "\"countries\":[\"CA\",\"US\"],\"device_types\":[\"phone\"],\"os_min\":\"15.0\","
      "\"platforms\":[\"ios\"],\"regions\":[]},"
      "\"terms\":\"No incentivised traffic.\","
      "\"tracking_url\":\"https://track.example.com/c?offer=1&click_id={click_id}&sub1={sub1}\"}";

/* One validation rule: put value (JSON text, or a generator, or NULL to
   delete) at path in the base offer, expect code and message. */
typedef struct {
    const char *path;
    const char *value;
    int code;
    const char *message;
} s_rule_case_t;

/* Values starting with "@" are generated: @str:N is a string of N "x",
   @url:N an https URL of N bytes, @arr:N an array of N distinct strings. */
static const s_rule_case_t s_rules[] = {
    {"", "[]", GKX_EINVAL, "offer: must be an object"},
    {"foo", "1", GKX_EINVAL, "foo: unknown field"},
    {"payout.foo", "1", GKX_EINVAL, "payout.foo: unknown field"},
    {"payout", "1", GKX_EINVAL, "payout: must be an object"},
    {"name", NULL, GKX_EINVAL, "name: is required"},
    {"status", "null", GKX_EINVAL, "status: must not be null"},
    {"name", "5", GKX_EINVAL, "name: must be a string"},
    {"name", "\"\"", GKX_EINVAL, "name: must be 1 to 200 bytes"},
    {"name", "\"a\\u0001b\"", GKX_EINVAL, "name: must not contain control characters"},
    {"terms", "@str:8001", GKX_EINVAL, "terms: must be at most 8000 bytes"},
    {"status", "\"gone\"", GKX_EINVAL, "status: \"gone\" is not one of active, paused"},
    {"payout.model", "\"cpm\"", GKX_EINVAL,
     "payout.model: \"cpm\" is not one of cpa, cpc, cpi, cpl, cps, revshare"},
    {"payout.amount", "2.5", GKX_EINVAL, "payout.amount: must be a decimal string such as \"2.50\""},
    {"payout.amount", "\"2.5x\"", GKX_EINVAL,
     "payout.amount: \"2.5x\" is not a decimal amount with up to 6 decimals"},
    {"payout.amount", "\"1000000000.000001\"", GKX_EINVAL,
     "payout.amount: must be at most 1000000000.00"},
    {"payout.currency", "\"XYZ\"", GKX_EINVAL,
     "payout.currency: \"XYZ\" is not an ISO 4217 currency code"},
    {"payout.events", "[]", GKX_EINVAL, "payout.events: must be an object"},
    {"payout.events", "{\"bad key\": \"1.00\"}", GKX_EINVAL,
     "payout.events: \"bad key\" is not a name of 1 to 64 letters, digits or \"_.:-\""},
    {"payout.events", "{\"purchase\": \"x\"}", GKX_EINVAL,
     "payout.events.purchase: \"x\" is not a decimal amount with up to 6 decimals"},
    {"payout.rules", "{}", GKX_EINVAL, "payout.rules: must be an array"},
    {"payout.rules", "[1]", GKX_EINVAL, "payout.rules[0]: must be an object"},
    {"payout.rules", "[{\"amount\": \"1.00\", \"when\": {\"event\": \"install\"}}]", GKX_EINVAL,
     "payout.rules[0].id: is required"},
    {"payout.rules",
     "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {\"event\": \"install\"}},"
     " {\"id\": \"r\", \"amount\": \"2.00\", \"when\": {\"event\": \"install\"}}]",
     GKX_EINVAL, "payout.rules[1].id: \"r\" is listed twice"},
    {"payout.rules", "[{\"id\": \"r\", \"when\": {\"event\": \"install\"}}]", GKX_EINVAL,
     "payout.rules[0].amount: is required"},
    {"payout.rules", "[{\"id\": \"r\", \"amount\": \"1.00\"}]", GKX_EINVAL,
     "payout.rules[0].when: is required"},
    {"payout.rules", "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {}}]", GKX_EINVAL,
     "payout.rules[0].when: must have at least one of countries, platforms, event"},
    {"payout.rules", "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {\"countries\": []}}]",
     GKX_EINVAL, "payout.rules[0].when.countries: must not be empty"},
    {"payout.rules", "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {\"os\": \"ios\"}}]",
     GKX_EINVAL, "payout.rules[0].when.os: unknown field"},
    {"payout.rules",
     "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {\"event\": \"x\"}, \"foo\": 1}]",
     GKX_EINVAL, "payout.rules[0].foo: unknown field"},
    {"payout.rules", "[{\"id\": \"r\", \"amount\": \"1.00\", \"when\": {\"platforms\": [\"tv\"]}}]",
     GKX_EINVAL,
     "payout.rules[0].when.platforms[0]: \"tv\" is not one of ios, android, web, other"},
    {"caps.daily", "\"5\"", GKX_EINVAL, "caps.daily: must be an integer"},
    {"caps.daily", "-1", GKX_EINVAL, "caps.daily: -1 is not between 0 and 1000000000"},
    {"targeting.countries", "\"US\"", GKX_EINVAL, "targeting.countries: must be an array"},
    {"targeting.countries", "[\"US\", \"CA\", \"XX\"]", GKX_EINVAL,
     "targeting.countries[2]: \"XX\" is not an ISO 3166-1 country code"},
    {"targeting.countries", "[\"US\", \"US\"]", GKX_EINVAL,
     "targeting.countries[1]: \"US\" is listed twice"},
    {"targeting.countries", "[1]", GKX_EINVAL, "targeting.countries[0]: must be a string"},
    {"targeting.carriers", "@arr:101", GKX_EINVAL, "targeting.carriers: at most 100 elements"},
    {"targeting.regions", "[\"US-\"]", GKX_EINVAL,
     "targeting.regions[0]: \"US-\" is not an ISO 3166-2 region code such as \"US-CA\""},
    {"targeting.platforms", "[\"tv\"]", GKX_EINVAL,
     "targeting.platforms[0]: \"tv\" is not one of ios, android, web, other"},
    {"targeting.os_min", "\"15.x\"", GKX_EINVAL,
     "targeting.os_min: \"15.x\" is not a version such as \"15.0\""},
    {"tracking_url", "\"ftp://track.example.com/\"", GKX_EINVAL,
     "tracking_url: must be an http or https URL"},
    {"tracking_url", "\"https://t.example.com/?a={foo}\"", GKX_EINVAL,
     "tracking_url: unknown macro \"{foo}\""},
    {"tracking_url", "\"https://t.example.com/?a={click_id\"", GKX_EINVAL,
     "tracking_url: unbalanced \"{\" or \"}\""},
    {"tracking_url", "@url:2049", GKX_EINVAL, "tracking_url: must be at most 2048 bytes"},
    {"preview_url", "\"https://a.example.com/{click_id}\"", GKX_EINVAL,
     "preview_url: macros are not allowed"},
    {"creatives", "[{\"id\": \"b\", \"type\": \"gif\", \"url\": \"https://c.example.com/b\"}]",
     GKX_EINVAL, "creatives[0].type: \"gif\" is not one of image, video, html, text"},
    {"creatives", "[{\"id\": \"b\", \"type\": \"image\"}]", GKX_EINVAL,
     "creatives[0].url: is required"},
    {"creatives",
     "[{\"id\": \"b\", \"type\": \"image\", \"url\": \"https://c.example.com/b\", \"width\": 0}]",
     GKX_EINVAL, "creatives[0].width: 0 is not between 1 and 10000"},
    {"creatives",
     "[{\"id\": \"b\", \"type\": \"image\", \"url\": \"https://c.example.com/b\", \"alt\": \"\"}]",
     GKX_EINVAL, "creatives[0].alt: unknown field"},
    {"schedule.start", "5", GKX_EINVAL,
     "schedule.start: must be a string such as \"2026-12-01T00:00:00Z\""},
    {"schedule.start", "\"2026-02-30T00:00:00Z\"", GKX_EINVAL,
     "schedule.start: \"2026-02-30T00:00:00Z\" is not a UTC time such as "
     "\"2026-12-01T00:00:00Z\""},
    {"schedule.end", "\"2026-11-01T00:00:00Z\"", GKX_EINVAL, "schedule: start must be before end"},
    {"attribution.click_window_days", "0", GKX_EINVAL,
     "attribution.click_window_days: 0 is not between 1 and 90"},
    {"conversion_policy.hold_days", "61", GKX_EINVAL,
     "conversion_policy.hold_days: 61 is not between 0 and 60"},
    {"conversion_policy.approval", "\"later\"", GKX_EINVAL,
     "conversion_policy.approval: \"later\" is not one of auto, manual"},
    {"conversion_policy.multiple_per_click", "\"yes\"", GKX_EINVAL,
     "conversion_policy.multiple_per_click: must be true or false"},
    {"optimization.blocked_sources", "[\"\"]", GKX_EINVAL,
     "optimization.blocked_sources[0]: must be 1 to 128 bytes"},
    {"settings", "[]", GKX_EINVAL, "settings: must be an object"},
    {"settings", "{\"a=b\": \"x\"}", GKX_EINVAL,
     "settings: \"a=b\" is not a key of 1 to 64 bytes without control characters, \"=\" or a "
     "final \"+\" or \"-\""},
    {"settings", "{\"k\": 1}", GKX_EINVAL, "settings.k: must be a string"},
    {"payout.model", "\"revshare\"", GKX_OK, NULL},
    {"payout.amount", "\"100.01\"", GKX_OK, NULL},
};

#define S_RULE_COUNT ((int) (sizeof (s_rules) / sizeof (s_rules[0])))

/* Builds a generated value for "@kind:N". */
static json_t *
s_generate (const char *spec)
{
    int n = atoi (strchr (spec, ':') + 1);
    if (strncmp (spec, "@arr:", 5) == 0) {
        json_t *arr = json_array ();
        for (int i = 0; i < n; i++) {
            char item[16];
            snprintf (item, sizeof (item), "c%d", i);
            json_array_append_new (arr, json_string (item));
        }
        return arr;
    }
    char *text = gkx_zalloc ((size_t) n + 1);
    memset (text, 'x', (size_t) n);
    if (strncmp (spec, "@url:", 5) == 0) {
        memcpy (text, "https://a.example.com/", 22);
    }
    json_t *s = json_string (text);
    gkx_free (text);
    return s;
}

/* Puts (or deletes, when value is NULL) a value at a dotted path. */
static void
s_put (json_t *root, const char *path, json_t *value)
{
    char group[64];
    const char *dot = strchr (path, '.');
    json_t *parent = root;
    const char *leaf = path;
    if (dot) {
        snprintf (group, sizeof (group), "%.*s", (int) (dot - path), path);
        parent = json_object_get (root, group);
        leaf = dot + 1;
    }
    if (value) {
        json_object_set_new (parent, leaf, value);
    }
    else {
        json_object_del (parent, leaf);
    }
}

/* Loads the base offer's JSON. */
static json_t *
s_base_json (void)
{
    json_t *json = json_loads (s_base_text, 0, NULL);
    ck_assert_ptr_nonnull (json);
    return json;
}

/* Returns the base offer, validated. */
static gkx_offer_t *
s_base_offer (void)
{
    gkx_offer_t *offer = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_from_text (&offer, s_base_text, err), GKX_OK);
    return offer;
}

START_TEST (test_validation_rule)
{
    const s_rule_case_t *rc = &s_rules[_i];
    json_t *json = s_base_json ();
    json_t *value = NULL;
    if (rc->value && rc->value[0] == '@') {
        value = s_generate (rc->value);
    }
    else if (rc->value) {
        value = json_loads (rc->value, JSON_DECODE_ANY, NULL);
        ck_assert_msg (value != NULL, "row %d: bad test JSON", _i);
    }
    if (rc->path[0] == '\0') {
        json_decref (json);
        json = value;
    }
    else {
        s_put (json, rc->path, value);
    }
    if (strcmp (rc->path, "payout.amount") == 0 && rc->code == GKX_OK) {
        /* over 100 is fine for cpi; as revshare the same amount is refused */
        s_put (json, "payout.model", json_string ("revshare"));
        s_put (json, "payout.events", json_object ());
    }
    gkx_offer_t *offer = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    int code = gkx_offer_from_json (&offer, json, err);
    if (rc->code == GKX_OK && strcmp (rc->path, "payout.amount") == 0) {
        ck_assert_int_eq (code, GKX_EINVAL);
        ck_assert_str_eq (err, "payout.amount: a revshare percentage must be at most 100.00");
    }
    else if (rc->code == GKX_OK) {
        /* revshare with the base's amounts (at most 10.00) is within 100% */
        ck_assert_msg (code == GKX_OK, "row %d: %s", _i, err);
    }
    else {
        ck_assert_msg (code == rc->code, "row %d: code %d, message %s", _i, code, err);
        ck_assert_str_eq (err, rc->message);
        ck_assert_ptr_null (offer);
    }
    gkx_offer_destroy (&offer);
    json_decref (json);
}
END_TEST

START_TEST (test_invalid_json_text)
{
    gkx_offer_t *offer = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_from_text (&offer, "{\"name\": ", err), GKX_EINVAL);
    /* the tail is jansson's own text, which differs between versions */
    ck_assert_msg (strncmp (err, "offer: invalid JSON at line 1 column 9: ", 40) == 0, "%s", err);
    ck_assert_int_eq (gkx_offer_from_text (&offer, "{\"name\": \"a\", \"name\": \"b\"}", err),
                      GKX_EINVAL);
    ck_assert_ptr_null (offer);
}
END_TEST

START_TEST (test_json_round_trip)
{
    gkx_offer_t *offer = s_base_offer ();
    char *text = gkx_offer_to_text (offer);
    ck_assert_str_eq (text, s_base_canonical);
    gkx_offer_t *again = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_from_text (&again, text, err), GKX_OK);
    ck_assert (gkx_offer_is_equal (offer, again));
    free (text);
    gkx_offer_destroy (&again);
    gkx_offer_destroy (&offer);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_defaults)
{
    gkx_offer_t *offer = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_from_text (&offer,
                                           "{\"name\": \"n\", \"payout\": {\"model\": \"cpa\","
                                           " \"amount\": \"1\", \"currency\": \"EUR\"}}",
                                           err),
                      GKX_OK);
    char *text = gkx_offer_to_text (offer);
    ck_assert_str_eq (
        text,
        "{\"attribution\":{\"click_window_days\":7,\"view_window_hours\":24},"
        "\"budget\":{\"daily\":null,\"monthly\":null,\"total\":null},"
        "\"caps\":{\"daily\":null,\"monthly\":null,\"total\":null,\"weekly\":null},"
        "\"conversion_policy\":{\"approval\":\"auto\",\"hold_days\":0,"
        "\"multiple_per_click\":false},\"creatives\":[],\"name\":\"n\","
        "\"optimization\":{\"blocked_sources\":[]},"
        "\"payout\":{\"amount\":\"1.00\",\"currency\":\"EUR\",\"events\":{},\"model\":\"cpa\","
        "\"rules\":[]},\"preview_url\":null,\"schedule\":{\"end\":null,\"start\":null},"
        "\"settings\":{},\"status\":\"active\",\"targeting\":{\"carriers\":[],"
        "\"connection_types\":[],\"countries\":[],\"device_types\":[],\"os_min\":null,"
        "\"platforms\":[],\"regions\":[]},\"terms\":null,\"tracking_url\":null}");
    free (text);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_amounts)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {{"0", "0.00"}, {"2.5", "2.50"}, {"1.234567", "1.234567"}, {"10.100", "10.10"},
                 {"1000000000", "1000000000.00"}};
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        json_t *json = s_base_json ();
        s_put (json, "payout.amount", json_string (cases[i].in));
        gkx_offer_t *offer = NULL;
        char err[GKX_ERRBUF_BYTES] = "";
        ck_assert_int_eq (gkx_offer_from_json (&offer, json, err), GKX_OK);
        json_t *out = gkx_offer_to_json (offer);
        ck_assert_str_eq (json_string_value (json_object_get (json_object_get (out, "payout"),
                                                              "amount")),
                          cases[i].out);
        json_decref (out);
        json_decref (json);
        gkx_offer_destroy (&offer);
    }
}
END_TEST

START_TEST (test_msgpack_round_trip_and_digest)
{
    gkx_offer_t *offer = s_base_offer ();
    uint8_t *bytes;
    size_t len;
    gkx_offer_encode (offer, &bytes, &len);
    gkx_offer_t *back = NULL;
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_decode (&back, bytes, len, err), GKX_OK);
    ck_assert (gkx_offer_is_equal (offer, back));
    uint8_t d1[GKX_OFFER_DIGEST_BYTES], d2[GKX_OFFER_DIGEST_BYTES];
    gkx_offer_digest (offer, d1);
    gkx_offer_digest (back, d2);
    ck_assert_mem_eq (d1, d2, sizeof (d1));
    char hex[GKX_OFFER_DIGEST_HEX_BYTES];
    for (size_t i = 0; i < sizeof (d1); i++) {
        snprintf (hex + 2 * i, 3, "%02x", d1[i]);
    }
    /* golden vector: changing the internal form changes every digest */
    ck_assert_str_eq (hex, "d35e8ea75f0205366388dbb5039b0a907ebb012dbd737ada0c0b21b69bac9176");
    gkx_free (bytes);
    gkx_offer_destroy (&back);
    gkx_offer_destroy (&offer);
}
END_TEST

/* Packs a map of given string pairs, in the order given. */
static void
s_pack_pairs (msgpack_sbuffer *sbuf, const char *const *pairs, size_t n)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, n);
    for (size_t i = 0; i < 2 * n; i++) {
        msgpack_pack_str (&pk, strlen (pairs[i]));
        msgpack_pack_str_body (&pk, pairs[i], strlen (pairs[i]));
    }
}

START_TEST (test_decode_rejects)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_t *back = NULL;
    uint8_t *bytes;
    size_t len;
    char err[GKX_ERRBUF_BYTES] = "";
    gkx_offer_encode (offer, &bytes, &len);
    ck_assert_int_eq (gkx_offer_decode (&back, bytes, len - 1, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: malformed or truncated msgpack");
    uint8_t *longer = gkx_zalloc (len + 1);
    memcpy (longer, bytes, len);
    ck_assert_int_eq (gkx_offer_decode (&back, longer, len + 1, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: trailing bytes after the value");
    gkx_free (longer);
    gkx_free (bytes);

    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    static const char *const unsorted[] = {"status", "active", "name", "n"};
    s_pack_pairs (&sbuf, unsorted, 2);
    ck_assert_int_eq (gkx_offer_decode (&back, (uint8_t *) sbuf.data, sbuf.size, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: not canonical msgpack");
    msgpack_sbuffer_clear (&sbuf);
    static const char *const sorted[] = {"name", "n", "status", "active"};
    s_pack_pairs (&sbuf, sorted, 2);
    ck_assert_int_eq (gkx_offer_decode (&back, (uint8_t *) sbuf.data, sbuf.size, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: payout.model: is required");
    msgpack_sbuffer_clear (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str (&pk, 4);
    msgpack_pack_str_body (&pk, "name", 4);
    msgpack_pack_double (&pk, 1.5);
    ck_assert_int_eq (gkx_offer_decode (&back, (uint8_t *) sbuf.data, sbuf.size, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: floats are not allowed");
    msgpack_sbuffer_clear (&sbuf);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str (&pk, 4);
    msgpack_pack_str_body (&pk, "name", 4);
    msgpack_pack_str (&pk, 2);
    msgpack_pack_str_body (&pk, "\xff\xfe", 2);
    ck_assert_int_eq (gkx_offer_decode (&back, (uint8_t *) sbuf.data, sbuf.size, err), GKX_EBODY);
    ck_assert_str_eq (err, "offer: strings must be UTF-8 without NUL");
    msgpack_sbuffer_destroy (&sbuf);
    ck_assert_ptr_null (back);
    gkx_offer_destroy (&offer);
}
END_TEST

/* Parses edits into ops on the base offer and returns their JSON text. */
static char *
s_edits (const char *const *edits, size_t n, int expect, const char *message)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    int rc = GKX_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = gkx_offer_ops_parse_edit (ops, offer, edits[i], err);
    }
    ck_assert_msg (rc == expect, "code %d: %s", rc, err);
    if (message) {
        ck_assert_str_eq (err, message);
    }
    json_t *json = gkx_offer_ops_to_json (ops);
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS);
    json_decref (json);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
    return text;
}

START_TEST (test_parse_edits)
{
    static const char *const edits[] = {
        "status=paused",
        "payout.amount=3",
        "caps.daily=null",
        "caps.weekly=70",
        "name=\"null\"",
        "targeting.countries+=FR",
        "targeting.countries-=\"US\"",
        "payout.events.signup=0.5",
        "payout.events-=purchase",
        "settings.note=hello = world",
        "settings.any_key=null",
        "creatives+={\"id\": \"b2\", \"type\": \"video\", \"url\": \"https://c.example.com/v\"}",
        "payout.rules.fr={\"amount\": \"3.00\", \"when\": {\"countries\": [\"FR\"]}}",
        "targeting.platforms=[\"android\", \"ios\"]",
        "optimization.blocked_sources=null",
        "conversion_policy.multiple_per_click=true",
        "schedule.end=2027-01-01T00:00:00Z",
    };
    char *text = s_edits (edits, sizeof (edits) / sizeof (edits[0]), GKX_OK, NULL);
    ck_assert_str_eq (
        text,
        "[{\"field\":\"status\",\"op\":\"set\",\"value\":\"paused\"},"
        "{\"field\":\"payout.amount\",\"op\":\"set\",\"value\":\"3.00\"},"
        "{\"field\":\"caps.daily\",\"op\":\"set\",\"value\":null},"
        "{\"field\":\"caps.weekly\",\"op\":\"set\",\"value\":70},"
        "{\"field\":\"name\",\"op\":\"set\",\"value\":\"null\"},"
        "{\"field\":\"targeting.countries\",\"key\":\"FR\",\"op\":\"add\"},"
        "{\"field\":\"targeting.countries\",\"key\":\"US\",\"op\":\"remove\"},"
        "{\"field\":\"payout.events\",\"key\":\"signup\",\"op\":\"add\",\"value\":\"0.50\"},"
        "{\"field\":\"payout.events\",\"key\":\"purchase\",\"op\":\"remove\"},"
        "{\"field\":\"settings\",\"key\":\"note\",\"op\":\"add\",\"value\":\"hello = world\"},"
        "{\"field\":\"settings\",\"key\":\"any_key\",\"op\":\"remove\"},"
        "{\"field\":\"creatives\",\"key\":\"b2\",\"op\":\"add\",\"value\":{\"id\":\"b2\","
        "\"type\":\"video\",\"url\":\"https://c.example.com/v\"}},"
        "{\"field\":\"payout.rules\",\"key\":\"fr\",\"op\":\"add\",\"value\":{\"amount\":\"3.00\","
        "\"id\":\"fr\",\"when\":{\"countries\":[\"FR\"]}}},"
        "{\"field\":\"targeting.platforms\",\"key\":\"android\",\"op\":\"add\"},"
        "{\"field\":\"optimization.blocked_sources\",\"key\":\"sub-123\",\"op\":\"remove\"},"
        "{\"field\":\"conversion_policy.multiple_per_click\",\"op\":\"set\",\"value\":true},"
        "{\"field\":\"schedule.end\",\"op\":\"set\",\"value\":\"2027-01-01T00:00:00Z\"}]");
    free (text);
}
END_TEST

START_TEST (test_parse_edit_errors)
{
    static const struct {
        const char *edit;
        const char *message;
    } cases[] = {
        {"status", "\"status\": an edit is PATH=VALUE, PATH+=VALUE or PATH-=VALUE"},
        {"=x", "\"=x\": an edit is PATH=VALUE, PATH+=VALUE or PATH-=VALUE"},
        {"nope=1", "nope: unknown field"},
        {"status=gone", "status: \"gone\" is not one of active, paused"},
        {"name=null", "name: must not be null"},
        {"caps.daily=lots", "caps.daily: must be an integer"},
        {"name+=x", "name: += and -= need a set-valued field"},
        {"targeting.countries+=XX", "targeting.countries: \"XX\" is not an ISO 3166-1 country code"},
        {"payout.events.bad key=1", "payout.events: \"bad key\" is not a name of 1 to 64 letters, "
                                    "digits or \"_.:-\""},
        {"payout.events.x+=1", "payout.events.x: use payout.events.x=VALUE or payout.events-=KEY"},
        {"creatives+=[1]", "creatives: += needs a JSON object"},
        {"creatives+={\"type\": \"image\"}", "creatives.id: is required"},
        {"creatives.b={\"id\": \"c\", \"type\": \"image\", \"url\": \"https://c.example.com/\"}",
         "creatives.b.id: must match the key"},
        {"targeting.countries=[\"US\", \"XX\"]",
         "targeting.countries[1]: \"XX\" is not an ISO 3166-1 country code"},
        {"name=\"unterminated", "name: cannot read value \"\"unterminated\""},
        /* found by tests/fuzz/fuzz_offer: a key that is not UTF-8 tripped an assert */
        {"payout.events.\xff=1", "edit: not valid UTF-8"},
        {"name=caf\xc3", "edit: not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        const char *edits[] = {cases[i].edit};
        char *text = s_edits (edits, 1, GKX_EINVAL, cases[i].message);
        ck_assert_str_eq (text, "[]");
        free (text);
    }
}
END_TEST

START_TEST (test_merge_patch)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    json_t *patch = json_loads (
        "{\"status\": \"active\", \"caps\": {\"daily\": 250},"
        " \"payout\": {\"events\": {\"purchase\": null, \"level\": \"1.25\"},"
        "              \"rules\": []},"
        " \"targeting\": {\"countries\": [\"US\", \"FR\"]},"
        " \"creatives\": [{\"id\": \"banner-1\", \"type\": \"image\","
        "   \"url\": \"https://cdn.example.com/b1.png\", \"width\": 320, \"height\": 50}],"
        " \"settings\": null}",
        0, NULL);
    ck_assert_int_eq (gkx_offer_ops_from_patch (ops, offer, patch, err), GKX_OK);
    json_t *json = gkx_offer_ops_to_json (ops);
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS);
    ck_assert_str_eq (
        text,
        "[{\"field\":\"payout.events\",\"key\":\"purchase\",\"op\":\"remove\"},"
        "{\"field\":\"payout.events\",\"key\":\"level\",\"op\":\"add\",\"value\":\"1.25\"},"
        "{\"field\":\"payout.rules\",\"key\":\"ca-android\",\"op\":\"remove\"},"
        "{\"field\":\"caps.daily\",\"op\":\"set\",\"value\":250},"
        "{\"field\":\"targeting.countries\",\"key\":\"CA\",\"op\":\"remove\"},"
        "{\"field\":\"targeting.countries\",\"key\":\"FR\",\"op\":\"add\"},"
        "{\"field\":\"settings\",\"key\":\"any_key\",\"op\":\"remove\"}]");
    free (text);
    json_decref (json);
    json_decref (patch);
    size_t before = gkx_offer_ops_size (ops);
    patch = json_loads ("{\"caps\": {\"daily\": 1}, \"targeting\": {\"bogus\": 1}}", 0, NULL);
    ck_assert_int_eq (gkx_offer_ops_from_patch (ops, offer, patch, err), GKX_EINVAL);
    ck_assert_str_eq (err, "targeting.bogus: unknown field");
    json_decref (patch);
    patch = json_loads ("{\"caps\": {\"daily\": 1}, \"name\": null}", 0, NULL);
    ck_assert_int_eq (gkx_offer_ops_from_patch (ops, offer, patch, err), GKX_EINVAL);
    ck_assert_str_eq (err, "name: must not be null");
    ck_assert_uint_eq (gkx_offer_ops_size (ops), before);
    json_decref (patch);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_ops_body_round_trip)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    uint8_t *body;
    size_t len;
    ck_assert_int_eq (gkx_offer_ops_encode (ops, &body, &len, err), GKX_EINVAL);
    ck_assert_str_eq (err, "ops: no changes");
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "payout.amount=2.75", err), GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "targeting.countries+=DE", err),
                      GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "payout.events.x=1", err), GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_encode (ops, &body, &len, err), GKX_OK);
    /* {"ops": [{"op": "set", "path": "payout.amount", "value": 2750000}, ...]} */
    static const uint8_t head[] = {0x81, 0xa3, 'o', 'p', 's', 0x93, 0x83, 0xa2, 'o', 'p',
                                   0xa3, 's', 'e', 't'};
    ck_assert_mem_eq (body, head, sizeof (head));
    gkx_offer_ops_t *back = NULL;
    ck_assert_int_eq (gkx_offer_ops_decode (&back, body, len, err), GKX_OK);
    ck_assert_uint_eq (gkx_offer_ops_size (back), 3);
    gkx_offer_op_info_t info;
    gkx_offer_ops_info (back, 1, &info);
    ck_assert_int_eq (info.verb, GKX_OFFER_OP_ADD);
    ck_assert_str_eq (info.path, "targeting.countries");
    ck_assert_str_eq (info.key, "DE");
    uint8_t *again;
    size_t again_len;
    ck_assert_int_eq (gkx_offer_ops_encode (back, &again, &again_len, err), GKX_OK);
    ck_assert_uint_eq (again_len, len);
    ck_assert_mem_eq (again, body, len);
    gkx_free (again);
    gkx_free (body);
    gkx_offer_ops_destroy (&back);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
}
END_TEST

/* Packs a one-op body from a JSON description (internal form). */
static void
s_pack_json (msgpack_packer *pk, const json_t *v)
{
    if (json_is_object (v)) {
        /* keys in the order the test wrote them; tests write them sorted */
        msgpack_pack_map (pk, json_object_size (v));
        const char *k;
        json_t *item;
        json_object_foreach ((json_t *) v, k, item) {
            msgpack_pack_str (pk, strlen (k));
            msgpack_pack_str_body (pk, k, strlen (k));
            s_pack_json (pk, item);
        }
    }
    else if (json_is_array (v)) {
        msgpack_pack_array (pk, json_array_size (v));
        for (size_t i = 0; i < json_array_size (v); i++) {
            s_pack_json (pk, json_array_get (v, i));
        }
    }
    else if (json_is_string (v)) {
        msgpack_pack_str (pk, json_string_length (v));
        msgpack_pack_str_body (pk, json_string_value (v), json_string_length (v));
    }
    else if (json_is_integer (v)) {
        msgpack_pack_int64 (pk, json_integer_value (v));
    }
    else if (json_is_real (v)) {
        msgpack_pack_double (pk, json_real_value (v));
    }
    else if (json_is_null (v)) {
        msgpack_pack_nil (pk);
    }
    else {
        if (json_is_true (v)) {
            msgpack_pack_true (pk);
        }
        else {
            msgpack_pack_false (pk);
        }
    }
}

START_TEST (test_ops_decode_rejects)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"ops\": []}", "ops: must hold 1 to 1024 operations"},
        {"{\"list\": []}", "body: must be a map with only \"ops\", an array"},
        {"{\"ops\": [1]}", "ops[0]: must be a map"},
        {"{\"ops\": [{\"op\": \"put\", \"path\": \"name\", \"value\": \"x\"}]}",
         "ops[0].op: must be set, add or remove"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"nope\", \"value\": \"x\"}]}",
         "ops[0].path: must name a field"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"name\"}]}", "ops[0].value: is required"},
        {"{\"ops\": [{\"extra\": 1, \"op\": \"set\", \"path\": \"name\", \"value\": \"x\"}]}",
         "ops[0].extra: unknown field"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"targeting.countries\", \"value\": []}]}",
         "ops[0]: set is not allowed on targeting.countries"},
        {"{\"ops\": [{\"op\": \"add\", \"path\": \"targeting.countries\"}]}",
         "ops[0].key: is required"},
        {"{\"ops\": [{\"key\": \"US\", \"op\": \"remove\", \"path\": \"targeting.countries\","
         " \"value\": 1}]}",
         "ops[0].value: is not allowed"},
        {"{\"ops\": [{\"key\": \"XX\", \"op\": \"add\", \"path\": \"targeting.countries\"}]}",
         "ops[0]: targeting.countries: \"XX\" is not an ISO 3166-1 country code"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"payout.amount\", \"value\": \"2.50\"}]}",
         "ops[0]: payout.amount: must be an integer of micro-units"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"name\", \"value\": null}]}",
         "ops[0]: name: must not be null"},
        {"{\"ops\": [{\"op\": \"set\", \"path\": \"caps.daily\", \"value\": 1.5}]}",
         "body: floats are not allowed"},
        {"{\"ops\": [{\"path\": \"name\", \"op\": \"set\", \"value\": \"x\"}]}",
         "body: not canonical msgpack"},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        json_t *json = json_loads (cases[i].json, JSON_PRESERVE_ORDER, NULL);
        ck_assert_ptr_nonnull (json);
        msgpack_sbuffer sbuf;
        msgpack_packer pk;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        s_pack_json (&pk, json);
        gkx_offer_ops_t *ops = NULL;
        char err[GKX_ERRBUF_BYTES] = "";
        ck_assert_int_eq (gkx_offer_ops_decode (&ops, (uint8_t *) sbuf.data, sbuf.size, err),
                          GKX_EBODY);
        ck_assert_str_eq (err, cases[i].message);
        ck_assert_ptr_null (ops);
        msgpack_sbuffer_destroy (&sbuf);
        json_decref (json);
    }
}
END_TEST

START_TEST (test_apply_and_preview)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "targeting.countries+=FR", err),
                      GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "schedule.end=2026-01-01T00:00:00Z",
                                                err),
                      GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "payout.model=revshare", err),
                      GKX_OK);
    json_t *old_value, *new_value;
    uint8_t before[GKX_OFFER_DIGEST_BYTES], after[GKX_OFFER_DIGEST_BYTES];
    gkx_offer_digest (offer, before);
    ck_assert_int_eq (gkx_offer_preview (offer, ops, 0, &old_value, &new_value, err), GKX_OK);
    gkx_offer_digest (offer, after);
    ck_assert_mem_eq (before, after, sizeof (before));
    json_decref (old_value);
    json_decref (new_value);
    ck_assert_int_eq (gkx_offer_apply (offer, ops, 0, &old_value, &new_value, err), GKX_OK);
    char *o = json_dumps (old_value, GKX_OFFER_JSON_FLAGS | JSON_ENCODE_ANY);
    char *n = json_dumps (new_value, GKX_OFFER_JSON_FLAGS | JSON_ENCODE_ANY);
    ck_assert_str_eq (o, "[\"CA\",\"US\"]");
    ck_assert_str_eq (n, "[\"CA\",\"FR\",\"US\"]");
    free (o);
    free (n);
    json_decref (old_value);
    json_decref (new_value);
    gkx_offer_digest (offer, before);
    ck_assert_int_eq (gkx_offer_apply (offer, ops, 1, NULL, NULL, err), GKX_EINVAL);
    ck_assert_str_eq (err, "schedule: start must be before end");
    ck_assert_int_eq (gkx_offer_apply (offer, ops, 2, NULL, NULL, err), GKX_OK);
    gkx_offer_digest (offer, after);
    ck_assert_mem_ne (before, after, sizeof (before));
    gkx_offer_ops_destroy (&ops);

    ops = gkx_offer_ops_new ();
    ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, "payout.events.big=150", err), GKX_OK);
    ck_assert_int_eq (gkx_offer_apply (offer, ops, 0, NULL, NULL, err), GKX_EINVAL);
    ck_assert_str_eq (err, "payout.events.big: a revshare percentage must be at most 100.00");
    for (int i = 0; i < 100; i++) {
        char edit[64];
        snprintf (edit, sizeof (edit), "settings.k%d=v", i);
        ck_assert_int_eq (gkx_offer_ops_parse_edit (ops, offer, edit, err), GKX_OK);
    }
    /* the base has one setting: 99 more reach the limit of 100 */
    for (size_t i = 1; i < 100; i++) {
        ck_assert_int_eq (gkx_offer_apply (offer, ops, i, NULL, NULL, err), GKX_OK);
    }
    ck_assert_int_eq (gkx_offer_apply (offer, ops, 100, NULL, NULL, err), GKX_EINVAL);
    ck_assert_str_eq (err, "settings: at most 100 elements");
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_payout_precedence)
{
    gkx_offer_t *offer = s_base_offer ();
    gkx_offer_ops_t *ops = gkx_offer_ops_new ();
    char err[GKX_ERRBUF_BYTES] = "";
    ck_assert_int_eq (gkx_offer_ops_parse_edit (
                          ops, offer,
                          "payout.rules+={\"id\": \"ca\", \"amount\": \"1.50\","
                          " \"when\": {\"countries\": [\"CA\"]}}",
                          err),
                      GKX_OK);
    ck_assert_int_eq (gkx_offer_ops_parse_edit (
                          ops, offer,
                          "payout.rules+={\"id\": \"a-ca\", \"amount\": \"1.40\","
                          " \"when\": {\"countries\": [\"CA\", \"US\"]}}",
                          err),
                      GKX_OK);
    for (size_t i = 0; i < gkx_offer_ops_size (ops); i++) {
        ck_assert_int_eq (gkx_offer_apply (offer, ops, i, NULL, NULL, err), GKX_OK);
    }
    /* default, per-event, then rules by specificity, ties to the smaller id */
    ck_assert_int_eq (gkx_offer_payout (offer, NULL, "DE", "ios"), 2500000);
    ck_assert_int_eq (gkx_offer_payout (offer, "purchase", "DE", "ios"), 10000000);
    ck_assert_int_eq (gkx_offer_payout (offer, "install", "CA", "android"), 1800000);
    ck_assert_int_eq (gkx_offer_payout (offer, "purchase", "CA", "ios"), 1400000);
    ck_assert_int_eq (gkx_offer_payout (offer, "install", "CA", "ios"), 1400000);
    ck_assert_int_eq (gkx_offer_payout (offer, NULL, NULL, NULL), 2500000);
    gkx_offer_ops_destroy (&ops);
    gkx_offer_destroy (&offer);
}
END_TEST

START_TEST (test_is_path)
{
    ck_assert (gkx_offer_is_path ("payout"));
    ck_assert (gkx_offer_is_path ("payout.amount"));
    ck_assert (gkx_offer_is_path ("settings"));
    ck_assert (!gkx_offer_is_path ("pay"));
    ck_assert (!gkx_offer_is_path ("payout.x"));
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("offer");
    TCase *tc = tcase_create ("validation");
    tcase_add_loop_test (tc, test_validation_rule, 0, S_RULE_COUNT);
    tcase_add_test (tc, test_invalid_json_text);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("forms");
    tcase_add_test (tc, test_json_round_trip);
    tcase_add_test (tc, test_defaults);
    tcase_add_test (tc, test_amounts);
    tcase_add_test (tc, test_msgpack_round_trip_and_digest);
    tcase_add_test (tc, test_decode_rejects);
    suite_add_tcase (suite, tc);
    tc = tcase_create ("ops");
    tcase_add_test (tc, test_parse_edits);
    tcase_add_test (tc, test_parse_edit_errors);
    tcase_add_test (tc, test_merge_patch);
    tcase_add_test (tc, test_ops_body_round_trip);
    tcase_add_test (tc, test_ops_decode_rejects);
    tcase_add_test (tc, test_apply_and_preview);
    tcase_add_test (tc, test_payout_precedence);
    tcase_add_test (tc, test_is_path);
    suite_add_tcase (suite, tc);
    SRunner *sr = srunner_create (suite);
    srunner_set_tap (sr, "-");
    srunner_run_all (sr, CK_SILENT);
    int failed = srunner_ntests_failed (sr);
    srunner_free (sr);
    return failed ? 1 : 0;
}
