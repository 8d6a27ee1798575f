/*  offer - the shared offer: schema, validation and edit operations.
    Part of gokart-exchange; MIT licence.

    The schema is one table, s_fields: every field's path, shape (scalar,
    set, keyed map, or keyed list shown as an array of objects with "id"),
    value rules and default. Everything else walks that table: importing the
    JSON form, checking the internal form decoded from msgpack, exporting,
    applying operations and turning CLI edits and merge patches into
    operations. The internal form is a jansson tree that holds only strings,
    integers, booleans, null, arrays and objects, so one canonical msgpack
    writer (keys sorted bytewise, smallest integers) serves the offer, the
    operation bodies and the digest.
*/
#include <gkx/alloc.h>
#include <gkx/calendar.h>
#include <gkx/codec.h>
#include <gkx/error.h>
#include <gkx/offer.h>

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

/* Largest amount: one billion units, in micro-units. */
#define S_AMOUNT_MAX 1000000000000000LL
/* Micro-units per unit. */
#define S_MICRO 1000000LL
/* A revshare payout is a percentage: at most 100.00. */
#define S_PERCENT_MAX (100LL * S_MICRO)
/* Most digits before the decimal point that cannot overflow int64 later. */
#define S_AMOUNT_INT_DIGITS 12
/* Decimals an amount may carry. */
#define S_AMOUNT_DECIMALS 6
/* Largest count for caps. */
#define S_COUNT_MAX 1000000000LL
/* Schedule times: 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define S_TIME_MIN 946684800LL
#define S_TIME_MAX 253402300799LL
/* Longest URL. */
#define S_URL_MAX 2048
/* Longest name-like key: event names, creative and rule ids, settings keys. */
#define S_KEY_MAX 64
/* Longest group name ("conversion_policy"), with room to spare. */
#define S_GROUP_MAX 32
/* Longest version component and most components of a version. */
#define S_VERSION_DIGITS 5
#define S_VERSION_PARTS 4
/* Creative width and height bounds in pixels. */
#define S_PIXELS_MAX 10000

/* What a value is; the JSON and internal forms differ only for amounts,
   times, creatives and rules. */
typedef enum {
    S_V_NONE = 0,  /* no value: the key spec of a scalar field */
    S_V_LINE,      /* one line of UTF-8 text */
    S_V_TEXT,      /* UTF-8 text that may hold newlines and tabs */
    S_V_ENUM,      /* one of a fixed list of words */
    S_V_AMOUNT,    /* decimal string <-> integer micro-units */
    S_V_CURRENCY,  /* ISO 4217 code */
    S_V_COUNT,     /* integer in a range */
    S_V_BOOL,      /* true or false */
    S_V_URL,       /* http(s) URL without macros */
    S_V_MACRO_URL, /* http(s) URL with documented {macros} */
    S_V_TIME,      /* ISO 8601 UTC string <-> Unix seconds */
    S_V_VERSION,   /* dotted numeric version */
    S_V_COUNTRY,   /* ISO 3166-1 alpha-2 */
    S_V_REGION,    /* ISO 3166-2 subdivision */
    S_V_NAME,      /* event name or id: letters, digits, _.:- */
    S_V_KEY,       /* settings key: free text without "=" */
    S_V_CREATIVE,  /* {type, url, width, height} */
    S_V_RULE,      /* {amount, when: {countries, event, platforms}} */
} s_vtype_t;

/* How a field holds its value. */
typedef enum {
    S_SCALAR = 1, /* one value: a last-writer-wins register */
    S_SET,        /* sorted array of unique strings */
    S_MAP,        /* map key -> value, a JSON object in JSON form */
    S_LIST,       /* map id -> object, an array of objects with "id" in JSON form */
} s_shape_t;

/* Rules for one value. */
typedef struct {
    /* what the value is */
    s_vtype_t type;
    /* whether null is allowed */
    bool nullable;
    /* byte length bounds for text, value bounds for numbers */
    long long min;
    long long max;
    /* NULL-terminated words for S_V_ENUM */
    const char *const *choices;
} s_spec_t;

/* One field of the schema. */
typedef struct {
    /* dotted path, at most one dot: "group.leaf" or "leaf" */
    const char *path;
    /* how the value is held */
    s_shape_t shape;
    /* rules for set elements and map keys */
    s_spec_t key;
    /* rules for scalar values and map values */
    s_spec_t value;
    /* most elements of a set or map */
    size_t max_elems;
    /* internal-form JSON of the default, NULL when the field is required */
    const char *fallback;
} s_field_t;

/* Operations and what they hold. */
typedef struct {
    /* a gkx_offer_verb_t */
    int verb;
    /* the field */
    const s_field_t *field;
    /* element or entry key, NULL for scalars */
    char *key;
    /* internal value for set and for add on maps, else NULL */
    json_t *value;
} s_op_t;

/* The offer: an internal-form tree holding every field. */
struct gkx_offer {
    /* groups are objects; leaves hold internal values */
    json_t *tree;
};

/* A growable list of operations. */
struct gkx_offer_ops {
    /* the operations in order */
    s_op_t *items;
    /* how many are used */
    size_t count;
    /* how many are allocated */
    size_t alloc;
};

/* Words of the enum fields, NULL-terminated. */
static const char *const s_status_words[] = {"active", "paused", NULL};
static const char *const s_model_words[] = {"cpa", "cpc", "cpi", "cpl",
                                            "cps", "revshare", NULL};
static const char *const s_platform_words[] = {"ios", "android", "web", "other", NULL};
static const char *const s_device_words[] = {"phone", "tablet", "desktop",
                                             "ctv", "other", NULL};
static const char *const s_connection_words[] = {"wifi", "cellular", "ethernet", NULL};
static const char *const s_approval_words[] = {"auto", "manual", NULL};
static const char *const s_creative_words[] = {"image", "video", "html", "text", NULL};
/* Verb words of operations, indexed by gkx_offer_verb_t. */
static const char *const s_verb_words[] = {NULL, "set", "add", "remove"};

/* Macros a tracking URL may carry, replaced by the node at click time. */
static const char *const s_macros[] = {
    "click_id", "sub1", "sub2", "sub3", "sub4", "sub5", "source",
    "publisher_id", "partnership_id", "country", "platform", "device_id",
    "idfa", "gaid", "timestamp", NULL,
};

/* ISO 3166-1 alpha-2 codes (iso-codes 4.15), each followed by a space. */
static const char s_countries[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN "
    "BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
    "DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL "
    "GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM "
    "JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME "
    "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD "
    "SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO "
    "TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW ";

/* ISO 4217 codes (iso-codes 4.15) less metals, bond units and test codes. */
static const char s_currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL "
    "BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF "
    "DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG "
    "HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP "
    "LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN "
    "NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG "
    "SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS "
    "UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL ";

/* Spec shorthands for the schema table. */
#define S_NOKEY {S_V_NONE, false, 0, 0, NULL}
#define S_AMOUNT(nullable) {S_V_AMOUNT, nullable, 0, S_AMOUNT_MAX, NULL}
#define S_CAP {S_V_COUNT, true, 0, S_COUNT_MAX, NULL}
#define S_NAMEKEY {S_V_NAME, false, 1, S_KEY_MAX, NULL}

/* The schema, in the order of the JSON form; checks run in this order. */
static const s_field_t s_fields[] = {
    {"name", S_SCALAR, S_NOKEY, {S_V_LINE, false, 1, 200, NULL}, 0, NULL},
    {"status", S_SCALAR, S_NOKEY, {S_V_ENUM, false, 0, 0, s_status_words}, 0, "\"active\""},
    {"payout.model", S_SCALAR, S_NOKEY, {S_V_ENUM, false, 0, 0, s_model_words}, 0, NULL},
    {"payout.amount", S_SCALAR, S_NOKEY, S_AMOUNT (false), 0, NULL},
    {"payout.currency", S_SCALAR, S_NOKEY, {S_V_CURRENCY, false, 0, 0, NULL}, 0, NULL},
    {"payout.events", S_MAP, S_NAMEKEY, S_AMOUNT (false), 100, "{}"},
    {"payout.rules", S_LIST, S_NAMEKEY, {S_V_RULE, false, 0, 0, NULL}, 100, "{}"},
    {"budget.daily", S_SCALAR, S_NOKEY, S_AMOUNT (true), 0, "null"},
    {"budget.monthly", S_SCALAR, S_NOKEY, S_AMOUNT (true), 0, "null"},
    {"budget.total", S_SCALAR, S_NOKEY, S_AMOUNT (true), 0, "null"},
    {"caps.daily", S_SCALAR, S_NOKEY, S_CAP, 0, "null"},
    {"caps.weekly", S_SCALAR, S_NOKEY, S_CAP, 0, "null"},
    {"caps.monthly", S_SCALAR, S_NOKEY, S_CAP, 0, "null"},
    {"caps.total", S_SCALAR, S_NOKEY, S_CAP, 0, "null"},
    {"targeting.countries", S_SET, {S_V_COUNTRY, false, 0, 0, NULL}, S_NOKEY, 250, "[]"},
    {"targeting.regions", S_SET, {S_V_REGION, false, 0, 0, NULL}, S_NOKEY, 1000, "[]"},
    {"targeting.platforms", S_SET, {S_V_ENUM, false, 0, 0, s_platform_words}, S_NOKEY, 16, "[]"},
    {"targeting.device_types", S_SET, {S_V_ENUM, false, 0, 0, s_device_words}, S_NOKEY, 16, "[]"},
    {"targeting.os_min", S_SCALAR, S_NOKEY, {S_V_VERSION, true, 0, 0, NULL}, 0, "null"},
    {"targeting.carriers", S_SET, {S_V_LINE, false, 1, 64, NULL}, S_NOKEY, 100, "[]"},
    {"targeting.connection_types", S_SET, {S_V_ENUM, false, 0, 0, s_connection_words},
     S_NOKEY, 16, "[]"},
    {"tracking_url", S_SCALAR, S_NOKEY, {S_V_MACRO_URL, true, 0, S_URL_MAX, NULL}, 0, "null"},
    {"preview_url", S_SCALAR, S_NOKEY, {S_V_URL, true, 0, S_URL_MAX, NULL}, 0, "null"},
    {"creatives", S_LIST, S_NAMEKEY, {S_V_CREATIVE, false, 0, 0, NULL}, 100, "{}"},
    {"schedule.start", S_SCALAR, S_NOKEY, {S_V_TIME, true, S_TIME_MIN, S_TIME_MAX, NULL}, 0,
     "null"},
    {"schedule.end", S_SCALAR, S_NOKEY, {S_V_TIME, true, S_TIME_MIN, S_TIME_MAX, NULL}, 0,
     "null"},
    {"attribution.click_window_days", S_SCALAR, S_NOKEY, {S_V_COUNT, false, 1, 90, NULL}, 0,
     "7"},
    {"attribution.view_window_hours", S_SCALAR, S_NOKEY, {S_V_COUNT, false, 0, 720, NULL}, 0,
     "24"},
    {"conversion_policy.approval", S_SCALAR, S_NOKEY,
     {S_V_ENUM, false, 0, 0, s_approval_words}, 0, "\"auto\""},
    {"conversion_policy.hold_days", S_SCALAR, S_NOKEY, {S_V_COUNT, false, 0, 60, NULL}, 0,
     "0"},
    {"conversion_policy.multiple_per_click", S_SCALAR, S_NOKEY,
     {S_V_BOOL, false, 0, 0, NULL}, 0, "false"},
    {"optimization.blocked_sources", S_SET, {S_V_LINE, false, 1, 128, NULL}, S_NOKEY, 1000,
     "[]"},
    {"terms", S_SCALAR, S_NOKEY, {S_V_TEXT, true, 0, 8000, NULL}, 0, "null"},
    {"settings", S_MAP, {S_V_KEY, false, 1, S_KEY_MAX, NULL}, {S_V_TEXT, false, 0, 1024, NULL},
     100, "{}"},
};

#define S_FIELD_COUNT (sizeof (s_fields) / sizeof (s_fields[0]))

/* Rule and creative parts, checked like fields. */
static const s_spec_t s_spec_country = {S_V_COUNTRY, false, 0, 0, NULL};
static const s_spec_t s_spec_platform = {S_V_ENUM, false, 0, 0, s_platform_words};
static const s_spec_t s_spec_event = S_NAMEKEY;
static const s_spec_t s_spec_rule_amount = S_AMOUNT (false);
static const s_spec_t s_spec_creative_type = {S_V_ENUM, false, 0, 0, s_creative_words};
static const s_spec_t s_spec_creative_url = {S_V_URL, false, 0, S_URL_MAX, NULL};
static const s_spec_t s_spec_pixels = {S_V_COUNT, false, 1, S_PIXELS_MAX, NULL};

static int s_check_value (const s_spec_t *spec, const json_t *v, const char *path,
                          char *errbuf);
static int s_import_value (const s_spec_t *spec, const json_t *ext, const char *path,
                           json_t **out_p, char *errbuf);
static json_t *s_export_value (const s_spec_t *spec, const json_t *v);

/* ---------------------------------------------------------------------- */
/* Small helpers                                                            */

/* Composes a field path for messages; a path longer than the buffer is cut,
   which only shortens a message. */
static void s_pathf (char *buf, size_t size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_pathf (char *buf, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (buf, size, fmt, args);
    va_end (args);
}

/* Orders C strings bytewise for qsort; strcmp compares as unsigned char. */
static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Finds a field by its exact path. */
static const s_field_t *
s_field_find (const char *path)
{
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        if (strcmp (s_fields[i].path, path) == 0) {
            return &s_fields[i];
        }
    }
    return NULL;
}

/* Whether name is the group part of some field's path. */
static bool
s_is_group (const char *name)
{
    size_t len = strlen (name);
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const char *p = s_fields[i].path;
        if (strncmp (p, name, len) == 0 && p[len] == '.') {
            return true;
        }
    }
    return false;
}

/* Copies the group part of a field's path into group; returns false for a
   top-level field. */
static bool
s_field_group (const s_field_t *f, char group[S_GROUP_MAX], const char **leaf_p)
{
    const char *dot = strchr (f->path, '.');
    if (!dot) {
        *leaf_p = f->path;
        return false;
    }
    size_t len = (size_t) (dot - f->path);
    assert (len < S_GROUP_MAX);
    memcpy (group, f->path, len);
    group[len] = '\0';
    *leaf_p = dot + 1;
    return true;
}

/* Returns the object holding a field in an internal or JSON-form tree, or
   NULL when its group is missing or not an object; *leaf_p is the key. */
static json_t *
s_parent (const json_t *tree, const s_field_t *f, const char **leaf_p)
{
    char group[S_GROUP_MAX];
    if (!s_field_group (f, group, leaf_p)) {
        return (json_t *) tree;
    }
    json_t *parent = json_object_get (tree, group);
    return json_is_object (parent) ? parent : NULL;
}

/* Returns a field's value in a tree, borrowed, or NULL when absent. */
static json_t *
s_field_get (const json_t *tree, const s_field_t *f)
{
    const char *leaf;
    json_t *parent = s_parent (tree, f, &leaf);
    return parent ? json_object_get (parent, leaf) : NULL;
}

/* Stores a value (stealing the reference) at a field's place in a tree,
   creating its group object. */
static void
s_field_put (json_t *tree, const s_field_t *f, json_t *value)
{
    char group[S_GROUP_MAX];
    const char *leaf;
    json_t *parent = tree;
    if (s_field_group (f, group, &leaf)) {
        parent = json_object_get (tree, group);
        if (!parent) {
            parent = json_object ();
            json_object_set_new (tree, group, parent);
        }
    }
    json_object_set_new (parent, leaf, value);
}

/* Returns a JSON string for text known to be UTF-8; jansson only refuses
   invalid UTF-8, which every caller has ruled out. */
static json_t *
s_jstr (const char *text)
{
    json_t *s = json_string (text);
    assert (s);
    return s;
}

/* Whether word is in a NULL-terminated list. */
static bool
s_in_words (const char *const *words, const char *word)
{
    for (size_t i = 0; words[i]; i++) {
        if (strcmp (words[i], word) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether code of width letters appears in a space-separated code table. */
static bool
s_in_table (const char *table, const char *code, size_t width)
{
    if (strlen (code) != width) {
        return false;
    }
    for (size_t i = 0; i < width; i++) {
        if (code[i] < 'A' || code[i] > 'Z') {
            return false;
        }
    }
    for (const char *p = table; *p; p += width + 1) {
        if (memcmp (p, code, width) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether text has a control character; tabs and newlines pass when
   multiline. */
static bool
s_has_control (const char *text, size_t len, bool multiline)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];
        if (multiline && (c == '\n' || c == '\t')) {
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

/* Whether c may appear in an event name or id. */
static bool
s_is_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == ':' || c == '-';
}



/* Writes Unix seconds as "YYYY-MM-DDTHH:MM:SSZ". */
static void
s_time_text (char *buf, size_t size, long long secs)
{
    long long days = secs / 86400;
    long long rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    gkx_calendar_civil_from_days (days, &y, &m, &d);
    snprintf (buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", (long long) y, m, d, rem / 3600,
              rem / 60 % 60, rem % 60);
}

/* Reads exactly n decimal digits. */
static bool
s_digits (const char *p, size_t n, unsigned *value_p)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned) (p[i] - '0');
    }
    *value_p = v;
    return true;
}

/* Parses "YYYY-MM-DDTHH:MM:SSZ" into Unix seconds. */
static bool
s_time_parse (const char *text, long long *secs_p)
{
    unsigned y, mo, d, h, mi, s;
    if (strlen (text) != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T'
        || text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
        return false;
    }
    if (!s_digits (text, 4, &y) || !s_digits (text + 5, 2, &mo)
        || !s_digits (text + 8, 2, &d) || !s_digits (text + 11, 2, &h)
        || !s_digits (text + 14, 2, &mi) || !s_digits (text + 17, 2, &s)) {
        return false;
    }
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)
        || h > 23 || mi > 59 || s > 59) {
        return false;
    }
    *secs_p = gkx_calendar_days_from_civil (y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return true;
}

/* Writes micro-units as a decimal with 2 to 6 decimals ("2.50", "1.234567"). */
static void
s_amount_text (char *buf, size_t size, long long micro)
{
    char frac[S_AMOUNT_DECIMALS + 2];
    snprintf (frac, sizeof (frac), "%06lld", micro % S_MICRO);
    size_t keep = S_AMOUNT_DECIMALS;
    while (keep > 2 && frac[keep - 1] == '0') {
        keep--;
    }
    frac[keep] = '\0';
    snprintf (buf, size, "%lld.%s", micro / S_MICRO, frac);
}

/* Parses a decimal string with up to 6 decimals into micro-units. */
static bool
s_amount_parse (const char *text, long long *micro_p)
{
    const char *p = text;
    long long whole = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (++digits > S_AMOUNT_INT_DIGITS) {
            return false;
        }
        whole = whole * 10 + (*p - '0');
        p++;
    }
    if (digits == 0) {
        return false;
    }
    long long frac = 0;
    size_t decimals = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (++decimals > S_AMOUNT_DECIMALS) {
                return false;
            }
            frac = frac * 10 + (*p - '0');
            p++;
        }
        if (decimals == 0) {
            return false;
        }
    }
    if (*p != '\0') {
        return false;
    }
    for (size_t i = decimals; i < S_AMOUNT_DECIMALS; i++) {
        frac *= 10;
    }
    *micro_p = whole * S_MICRO + frac;
    return true;
}

/* Whether text is a dotted version of 1 to 4 numeric parts. */
static bool
s_is_version (const char *text)
{
    const char *p = text;
    for (size_t part = 0; part < S_VERSION_PARTS; part++) {
        size_t n = 0;
        while (*p >= '0' && *p <= '9') {
            p++;
            n++;
        }
        if (n == 0 || n > S_VERSION_DIGITS) {
            return false;
        }
        if (*p == '\0') {
            return true;
        }
        if (*p != '.') {
            return false;
        }
        p++;
    }
    return false;
}

/* Whether text is an ISO 3166-2 code: a country, "-", 1 to 3 letters or
   digits in upper case. */
static bool
s_is_region (const char *text)
{
    size_t len = strlen (text);
    if (len < 4 || len > 6 || text[2] != '-') {
        return false;
    }
    char country[3] = {text[0], text[1], '\0'};
    if (!s_in_table (s_countries, country, 2)) {
        return false;
    }
    for (size_t i = 3; i < len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* Checks an http(s) URL and, when allowed, its {macros}. */
static int
s_check_url (const char *url, bool macros, const char *path, char *errbuf)
{
    const char *rest;
    if (strncmp (url, "https://", 8) == 0) {
        rest = url + 8;
    }
    else if (strncmp (url, "http://", 7) == 0) {
        rest = url + 7;
    }
    else {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an http or https URL", path);
    }
    if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#') {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an http or https URL", path);
    }
    for (const char *p = url; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c <= 0x20 || c >= 0x7f) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an http or https URL", path);
        }
    }
    for (const char *p = url; *p; p++) {
        if (*p == '}') {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: unbalanced \"{\" or \"}\"", path);
        }
        if (*p != '{') {
            continue;
        }
        if (!macros) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: macros are not allowed", path);
        }
        const char *end = strchr (p + 1, '}');
        const char *open = strchr (p + 1, '{');
        if (!end || (open && open < end)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: unbalanced \"{\" or \"}\"", path);
        }
        char name[S_KEY_MAX + 1];
        size_t len = (size_t) (end - p - 1);
        if (len > S_KEY_MAX) {
            len = S_KEY_MAX;
        }
        memcpy (name, p + 1, len);
        name[len] = '\0';
        if ((size_t) (end - p - 1) > S_KEY_MAX || !s_in_words (s_macros, name)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: unknown macro \"{%s}\"", path, name);
        }
        p = end;
    }
    return GKX_OK;
}

/* Writes "a, b, c" for an enum's words. */
static void
s_words_text (char *buf, size_t size, const char *const *words)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; words[i] && used < size; i++) {
        int n = snprintf (buf + used, size - used, "%s%s", i ? ", " : "", words[i]);
        if (n < 0) {
            break;
        }
        used += (size_t) n;
    }
}

/* ---------------------------------------------------------------------- */
/* Checking internal values                                                 */

/* Checks a text-like value's string-ness, control characters and length. */
static int
s_check_text (const s_spec_t *spec, const json_t *v, const char *path, char *errbuf)
{
    if (!json_is_string (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
    }
    const char *text = json_string_value (v);
    size_t len = json_string_length (v);
    bool multiline = spec->type == S_V_TEXT;
    if (strlen (text) != len || s_has_control (text, len, multiline)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must not contain control characters", path);
    }
    if ((long long) len < spec->min || (long long) len > spec->max) {
        if (spec->min > 0) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be %lld to %lld bytes", path,
                             spec->min, spec->max);
        }
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be at most %lld bytes", path,
                         spec->max);
    }
    return GKX_OK;
}

/* Checks an integer against a spec's bounds. */
static int
s_check_count (const s_spec_t *spec, const json_t *v, const char *path, char *errbuf)
{
    if (!json_is_integer (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an integer", path);
    }
    long long n = json_integer_value (v);
    if (n < spec->min || n > spec->max) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: %lld is not between %lld and %lld", path, n,
                         spec->min, spec->max);
    }
    return GKX_OK;
}

/* Checks an internal amount: integer micro-units within bounds. */
static int
s_check_amount (const s_spec_t *spec, const json_t *v, const char *path, char *errbuf)
{
    if (!json_is_integer (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an integer of micro-units", path);
    }
    long long n = json_integer_value (v);
    if (n < 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must not be negative", path);
    }
    if (n > spec->max) {
        char max[32];
        s_amount_text (max, sizeof (max), spec->max);
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be at most %s", path, max);
    }
    return GKX_OK;
}

/* Checks an internal set: array of unique valid strings in bytewise order. */
static int
s_check_set (const s_spec_t *spec, const json_t *v, size_t max, bool nonempty,
             const char *path, char *errbuf)
{
    if (!json_is_array (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an array", path);
    }
    size_t n = json_array_size (v);
    if (nonempty && n == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must not be empty", path);
    }
    if (n > max) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", path, max);
    }
    for (size_t i = 0; i < n; i++) {
        char sub[GKX_ERRBUF_BYTES];
        s_pathf (sub, sizeof (sub), "%s[%zu]", path, i);
        int rc = s_check_value (spec, json_array_get (v, i), sub, errbuf);
        if (rc) {
            return rc;
        }
        if (i > 0
            && strcmp (json_string_value (json_array_get (v, i - 1)),
                       json_string_value (json_array_get (v, i)))
                   >= 0) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: elements must be sorted and unique",
                             path);
        }
    }
    return GKX_OK;
}

/* Checks an internal creative: {type, url, width?, height?}. */
static int
s_check_creative (const json_t *v, const char *path, char *errbuf)
{
    char sub[GKX_ERRBUF_BYTES];
    if (!json_is_object (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
    }
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) v, k, item) {
        s_pathf (sub, sizeof (sub), "%s.%s", path, k);
        int rc = GKX_OK;
        if (strcmp (k, "type") == 0) {
            rc = s_check_value (&s_spec_creative_type, item, sub, errbuf);
        }
        else if (strcmp (k, "url") == 0) {
            rc = s_check_value (&s_spec_creative_url, item, sub, errbuf);
        }
        else if (strcmp (k, "width") == 0 || strcmp (k, "height") == 0) {
            rc = s_check_value (&s_spec_pixels, item, sub, errbuf);
        }
        else {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", sub);
        }
        if (rc) {
            return rc;
        }
    }
    if (!json_object_get (v, "type")) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s.type: is required", path);
    }
    if (!json_object_get (v, "url")) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s.url: is required", path);
    }
    return GKX_OK;
}

/* Checks an internal rule: {amount, when: {countries?, event?, platforms?}}. */
static int
s_check_rule (const json_t *v, const char *path, char *errbuf)
{
    char sub[GKX_ERRBUF_BYTES];
    if (!json_is_object (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
    }
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) v, k, item) {
        if (strcmp (k, "amount") != 0 && strcmp (k, "when") != 0) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s.%s: unknown field", path, k);
        }
    }
    json_t *amount = json_object_get (v, "amount");
    s_pathf (sub, sizeof (sub), "%s.amount", path);
    if (!amount) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: is required", sub);
    }
    int rc = s_check_value (&s_spec_rule_amount, amount, sub, errbuf);
    if (rc) {
        return rc;
    }
    json_t *when = json_object_get (v, "when");
    s_pathf (sub, sizeof (sub), "%s.when", path);
    if (!when) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: is required", sub);
    }
    if (!json_is_object (when)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", sub);
    }
    if (json_object_size (when) == 0) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "%s: must have at least one of countries, platforms, event", sub);
    }
    json_object_foreach (when, k, item) {
        s_pathf (sub, sizeof (sub), "%s.when.%s", path, k);
        if (strcmp (k, "countries") == 0) {
            rc = s_check_set (&s_spec_country, item, 250, true, sub, errbuf);
        }
        else if (strcmp (k, "platforms") == 0) {
            rc = s_check_set (&s_spec_platform, item, 16, true, sub, errbuf);
        }
        else if (strcmp (k, "event") == 0) {
            rc = s_check_value (&s_spec_event, item, sub, errbuf);
        }
        else {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", sub);
        }
        if (rc) {
            return rc;
        }
    }
    return GKX_OK;
}

/* Checks one internal value (never null: callers handle nullability). */
static int
s_check_value (const s_spec_t *spec, const json_t *v, const char *path, char *errbuf)
{
    char words[GKX_ERRBUF_BYTES];
    switch (spec->type) {
    case S_V_LINE:
    case S_V_TEXT:
        return s_check_text (spec, v, path, errbuf);
    case S_V_ENUM:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (!s_in_words (spec->choices, json_string_value (v))) {
            s_words_text (words, sizeof (words), spec->choices);
            return gkx_fail (errbuf, GKX_EINVAL, "%s: \"%s\" is not one of %s", path,
                             json_string_value (v), words);
        }
        return GKX_OK;
    case S_V_AMOUNT:
        return s_check_amount (spec, v, path, errbuf);
    case S_V_CURRENCY:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (!s_in_table (s_currencies, json_string_value (v), 3)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: \"%s\" is not an ISO 4217 currency code",
                             path, json_string_value (v));
        }
        return GKX_OK;
    case S_V_COUNT:
        return s_check_count (spec, v, path, errbuf);
    case S_V_BOOL:
        if (!json_is_boolean (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be true or false", path);
        }
        return GKX_OK;
    case S_V_URL:
    case S_V_MACRO_URL:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (json_string_length (v) > (size_t) spec->max) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be at most %lld bytes", path,
                             spec->max);
        }
        if (strlen (json_string_value (v)) != json_string_length (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an http or https URL", path);
        }
        return s_check_url (json_string_value (v), spec->type == S_V_MACRO_URL, path, errbuf);
    case S_V_TIME:
        if (!json_is_integer (v) || json_integer_value (v) < spec->min
            || json_integer_value (v) > spec->max) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: must be a time from 2000-01-01T00:00:00Z to "
                             "9999-12-31T23:59:59Z",
                             path);
        }
        return GKX_OK;
    case S_V_VERSION:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (!s_is_version (json_string_value (v))) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: \"%s\" is not a version such as \"15.0\"",
                             path, json_string_value (v));
        }
        return GKX_OK;
    case S_V_COUNTRY:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (!s_in_table (s_countries, json_string_value (v), 2)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not an ISO 3166-1 country code", path,
                             json_string_value (v));
        }
        return GKX_OK;
    case S_V_REGION:
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        if (!s_is_region (json_string_value (v))) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not an ISO 3166-2 region code such as \"US-CA\"",
                             path, json_string_value (v));
        }
        return GKX_OK;
    case S_V_NAME: {
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        const char *text = json_string_value (v);
        size_t len = json_string_length (v);
        bool ok = len >= 1 && len <= S_KEY_MAX && strlen (text) == len;
        for (size_t i = 0; ok && i < len; i++) {
            ok = s_is_name_char (text[i]);
        }
        if (!ok) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not a name of 1 to 64 letters, digits or \"_.:-\"",
                             path, text);
        }
        return GKX_OK;
    }
    case S_V_KEY: {
        if (!json_is_string (v)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be a string", path);
        }
        const char *text = json_string_value (v);
        size_t len = json_string_length (v);
        if (len < 1 || len > S_KEY_MAX || strlen (text) != len
            || s_has_control (text, len, false) || strchr (text, '=')
            || text[len - 1] == '+' || text[len - 1] == '-') {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not a key of 1 to 64 bytes without control "
                             "characters, \"=\" or a final \"+\" or \"-\"",
                             path, text);
        }
        return GKX_OK;
    }
    case S_V_CREATIVE:
        return s_check_creative (v, path, errbuf);
    case S_V_RULE:
        return s_check_rule (v, path, errbuf);
    case S_V_NONE:
        break;
    }
    return gkx_fail (errbuf, GKX_EINVAL, "%s: has no value", path);
}

/* Checks a field's internal value: shape, elements, keys and limits. */
static int
s_check_field (const s_field_t *f, const json_t *v, const char *path, char *errbuf)
{
    char sub[GKX_ERRBUF_BYTES];
    if (f->shape == S_SCALAR) {
        if (json_is_null (v)) {
            if (!f->value.nullable) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: must not be null", path);
            }
            return GKX_OK;
        }
        return s_check_value (&f->value, v, path, errbuf);
    }
    if (f->shape == S_SET) {
        return s_check_set (&f->key, v, f->max_elems, false, path, errbuf);
    }
    if (!json_is_object (v)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
    }
    if (json_object_size (v) > f->max_elems) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", path, f->max_elems);
    }
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) v, k, item) {
        json_t *key = s_jstr (k);
        int rc = s_check_value (&f->key, key, path, errbuf);
        json_decref (key);
        if (rc) {
            return rc;
        }
        s_pathf (sub, sizeof (sub), "%s.%s", path, k);
        rc = s_check_value (&f->value, item, sub, errbuf);
        if (rc) {
            return rc;
        }
    }
    return GKX_OK;
}

/* Checks a revshare percentage (no-op for other models). */
static int
s_check_percent (bool revshare, const json_t *amount, const char *path, char *errbuf)
{
    if (revshare && json_integer_value (amount) > S_PERCENT_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "%s: a revshare percentage must be at most 100.00", path);
    }
    return GKX_OK;
}

/* Collects an object's keys sorted bytewise into a new array the caller
   frees; the strings belong to the object. */
static const char **
s_sorted_keys (const json_t *obj, size_t *count_p)
{
    size_t n = json_object_size (obj);
    const char **keys = gkx_zalloc ((n ? n : 1) * sizeof (*keys));
    size_t i = 0;
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) obj, k, item) {
        keys[i++] = k;
    }
    qsort (keys, n, sizeof (*keys), s_strcmp_p);
    *count_p = n;
    return keys;
}

/* Checks the rules that tie fields together, in a fixed order so that the
   message is the same on every node. */
static int
s_cross_check (const json_t *tree, char *errbuf)
{
    const json_t *start = s_field_get (tree, s_field_find ("schedule.start"));
    const json_t *end = s_field_get (tree, s_field_find ("schedule.end"));
    if (json_is_integer (start) && json_is_integer (end)
        && json_integer_value (start) >= json_integer_value (end)) {
        return gkx_fail (errbuf, GKX_EINVAL, "schedule: start must be before end");
    }
    const json_t *model = s_field_get (tree, s_field_find ("payout.model"));
    bool revshare = json_is_string (model) && strcmp (json_string_value (model), "revshare") == 0;
    if (!revshare) {
        return GKX_OK;
    }
    int rc = s_check_percent (true, s_field_get (tree, s_field_find ("payout.amount")),
                              "payout.amount", errbuf);
    if (rc) {
        return rc;
    }
    char sub[GKX_ERRBUF_BYTES];
    const json_t *events = s_field_get (tree, s_field_find ("payout.events"));
    size_t n;
    const char **keys = s_sorted_keys (events, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        s_pathf (sub, sizeof (sub), "payout.events.%s", keys[i]);
        rc = s_check_percent (true, json_object_get (events, keys[i]), sub, errbuf);
    }
    gkx_free (keys);
    if (rc) {
        return rc;
    }
    const json_t *rules = s_field_get (tree, s_field_find ("payout.rules"));
    keys = s_sorted_keys (rules, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        s_pathf (sub, sizeof (sub), "payout.rules.%s.amount", keys[i]);
        rc = s_check_percent (true,
                              json_object_get (json_object_get (rules, keys[i]), "amount"),
                              sub, errbuf);
    }
    gkx_free (keys);
    return rc;
}

/* Rejects keys of a JSON-form object (offer or patch) that name no field or
   group, and groups that are not objects. */
static int
s_check_keys (const json_t *ext, char *errbuf)
{
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) ext, k, item) {
        if (s_field_find (k)) {
            continue;
        }
        if (!s_is_group (k)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", k);
        }
        if (!json_is_object (item)) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", k);
        }
        const char *k2;
        json_t *item2;
        json_object_foreach (item, k2, item2) {
            char path[GKX_ERRBUF_BYTES];
            s_pathf (path, sizeof (path), "%s.%s", k, k2);
            if (!s_field_find (path)) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", path);
            }
        }
    }
    return GKX_OK;
}

/* Checks a whole internal-form tree: exactly the schema's fields, each
   valid, and the cross-field rules. */
static int
s_check_tree (const json_t *tree, char *errbuf)
{
    if (!json_is_object (tree)) {
        return gkx_fail (errbuf, GKX_EINVAL, "offer: must be an object");
    }
    int rc = s_check_keys (tree, errbuf);
    if (rc != GKX_OK) {
        return rc;
    }
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *f = &s_fields[i];
        const json_t *v = s_field_get (tree, f);
        if (!v) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: is required", f->path);
        }
        rc = s_check_field (f, v, f->path, errbuf);
        if (rc) {
            return rc;
        }
    }
    return s_cross_check (tree, errbuf);
}

/* ---------------------------------------------------------------------- */
/* JSON form -> internal form                                               */

/* Imports a JSON array of strings as an internal set: valid, unique, sorted. */
static int
s_import_set (const s_spec_t *spec, const json_t *ext, size_t max, bool nonempty,
              const char *path, json_t **out_p, char *errbuf)
{
    if (!json_is_array (ext)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an array", path);
    }
    size_t n = json_array_size (ext);
    if (nonempty && n == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must not be empty", path);
    }
    if (n > max) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", path, max);
    }
    char sub[GKX_ERRBUF_BYTES];
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get (ext, i);
        s_pathf (sub, sizeof (sub), "%s[%zu]", path, i);
        int rc = s_check_value (spec, item, sub, errbuf);
        if (rc) {
            return rc;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal (json_array_get (ext, j), item)) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: \"%s\" is listed twice", sub,
                                 json_string_value (item));
            }
        }
    }
    const char **items = gkx_zalloc ((n ? n : 1) * sizeof (*items));
    for (size_t i = 0; i < n; i++) {
        items[i] = json_string_value (json_array_get (ext, i));
    }
    qsort (items, n, sizeof (*items), s_strcmp_p);
    json_t *out = json_array ();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new (out, s_jstr (items[i]));
    }
    gkx_free (items);
    *out_p = out;
    return GKX_OK;
}

/* Imports a JSON-form creative (its "id" already taken by the caller). */
static int
s_import_creative (const json_t *ext, const char *path, json_t **out_p, char *errbuf)
{
    if (!json_is_object (ext)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
    }
    json_t *out = json_object ();
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) ext, k, item) {
        if (strcmp (k, "id") == 0) {
            continue;
        }
        if ((strcmp (k, "width") == 0 || strcmp (k, "height") == 0) && json_is_null (item)) {
            continue;
        }
        json_object_set (out, k, item);
    }
    int rc = s_check_creative (out, path, errbuf);
    if (rc) {
        json_decref (out);
        return rc;
    }
    *out_p = out;
    return GKX_OK;
}

/* Imports a JSON-form payout rule (its "id" already taken by the caller). */
static int
s_import_rule (const json_t *ext, const char *path, json_t **out_p, char *errbuf)
{
    char sub[GKX_ERRBUF_BYTES];
    if (!json_is_object (ext)) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
    }
    const char *k;
    json_t *item;
    json_object_foreach ((json_t *) ext, k, item) {
        if (strcmp (k, "id") != 0 && strcmp (k, "amount") != 0 && strcmp (k, "when") != 0) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s.%s: unknown field", path, k);
        }
    }
    json_t *out = json_object ();
    json_t *value = NULL;
    int rc = GKX_OK;
    s_pathf (sub, sizeof (sub), "%s.amount", path);
    json_t *amount = json_object_get (ext, "amount");
    if (!amount) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "%s: is required", sub);
        goto cleanup;
    }
    rc = s_import_value (&s_spec_rule_amount, amount, sub, &value, errbuf);
    if (rc) {
        goto cleanup;
    }
    json_object_set_new (out, "amount", value);
    s_pathf (sub, sizeof (sub), "%s.when", path);
    json_t *when = json_object_get (ext, "when");
    if (!when) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "%s: is required", sub);
        goto cleanup;
    }
    if (!json_is_object (when)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", sub);
        goto cleanup;
    }
    json_t *iwhen = json_object ();
    json_object_set_new (out, "when", iwhen);
    json_object_foreach (when, k, item) {
        s_pathf (sub, sizeof (sub), "%s.when.%s", path, k);
        if (strcmp (k, "countries") == 0) {
            rc = s_import_set (&s_spec_country, item, 250, true, sub, &value, errbuf);
        }
        else if (strcmp (k, "platforms") == 0) {
            rc = s_import_set (&s_spec_platform, item, 16, true, sub, &value, errbuf);
        }
        else if (strcmp (k, "event") == 0) {
            rc = s_check_value (&s_spec_event, item, sub, errbuf);
            value = rc ? NULL : json_incref (item);
        }
        else {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", sub);
        }
        if (rc) {
            goto cleanup;
        }
        json_object_set_new (iwhen, k, value);
    }
    rc = s_check_rule (out, path, errbuf);
    if (rc) {
        goto cleanup;
    }
    *out_p = out;
    return GKX_OK;
cleanup:
    json_decref (out);
    return rc;
}

/* Imports one JSON-form value into internal form (never null). */
static int
s_import_value (const s_spec_t *spec, const json_t *ext, const char *path, json_t **out_p,
                char *errbuf)
{
    long long n;
    int rc;
    switch (spec->type) {
    case S_V_AMOUNT:
        if (!json_is_string (ext)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: must be a decimal string such as \"2.50\"", path);
        }
        if (!s_amount_parse (json_string_value (ext), &n)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not a decimal amount with up to 6 decimals", path,
                             json_string_value (ext));
        }
        *out_p = json_integer (n);
        break;
    case S_V_TIME:
        if (!json_is_string (ext)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: must be a string such as \"2026-12-01T00:00:00Z\"", path);
        }
        if (!s_time_parse (json_string_value (ext), &n)) {
            return gkx_fail (errbuf, GKX_EINVAL,
                             "%s: \"%s\" is not a UTC time such as \"2026-12-01T00:00:00Z\"",
                             path, json_string_value (ext));
        }
        *out_p = json_integer (n);
        break;
    case S_V_CREATIVE:
        return s_import_creative (ext, path, out_p, errbuf);
    case S_V_RULE:
        return s_import_rule (ext, path, out_p, errbuf);
    default:
        *out_p = json_incref ((json_t *) ext);
        break;
    }
    rc = s_check_value (spec, *out_p, path, errbuf);
    if (rc) {
        json_decref (*out_p);
        *out_p = NULL;
    }
    return rc;
}

/* Imports a JSON-form collection: an object (S_MAP) or an array of objects
   with "id" (S_LIST); returns the internal map. */
static int
s_import_collection (const s_field_t *f, const json_t *ext, const char *path, json_t **out_p,
                     char *errbuf)
{
    char sub[GKX_ERRBUF_BYTES];
    json_t *out = json_object ();
    json_t *value = NULL;
    int rc = GKX_OK;
    if (f->shape == S_MAP) {
        if (!json_is_object (ext)) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", path);
            goto cleanup;
        }
        if (json_object_size (ext) > f->max_elems) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", path, f->max_elems);
            goto cleanup;
        }
        const char *k;
        json_t *item;
        json_object_foreach ((json_t *) ext, k, item) {
            json_t *key = s_jstr (k);
            rc = s_check_value (&f->key, key, path, errbuf);
            json_decref (key);
            if (rc) {
                goto cleanup;
            }
            s_pathf (sub, sizeof (sub), "%s.%s", path, k);
            rc = s_import_value (&f->value, item, sub, &value, errbuf);
            if (rc) {
                goto cleanup;
            }
            json_object_set_new (out, k, value);
        }
        *out_p = out;
        return GKX_OK;
    }
    if (!json_is_array (ext)) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "%s: must be an array", path);
        goto cleanup;
    }
    if (json_array_size (ext) > f->max_elems) {
        rc = gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", path, f->max_elems);
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size (ext); i++) {
        json_t *item = json_array_get (ext, i);
        s_pathf (sub, sizeof (sub), "%s[%zu]", path, i);
        if (!json_is_object (item)) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: must be an object", sub);
            goto cleanup;
        }
        json_t *id = json_object_get (item, "id");
        char idpath[GKX_ERRBUF_BYTES];
        s_pathf (idpath, sizeof (idpath), "%s.id", sub);
        if (!id) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: is required", idpath);
            goto cleanup;
        }
        rc = s_check_value (&f->key, id, idpath, errbuf);
        if (rc) {
            goto cleanup;
        }
        if (json_object_get (out, json_string_value (id))) {
            rc = gkx_fail (errbuf, GKX_EINVAL, "%s: \"%s\" is listed twice", idpath,
                           json_string_value (id));
            goto cleanup;
        }
        rc = s_import_value (&f->value, item, sub, &value, errbuf);
        if (rc) {
            goto cleanup;
        }
        json_object_set_new (out, json_string_value (id), value);
    }
    *out_p = out;
    return GKX_OK;
cleanup:
    json_decref (out);
    return rc;
}

/* Imports one field's JSON-form value. */
static int
s_import_field (const s_field_t *f, const json_t *ext, const char *path, json_t **out_p,
                char *errbuf)
{
    if (f->shape == S_SCALAR) {
        if (json_is_null (ext)) {
            if (!f->value.nullable) {
                return gkx_fail (errbuf, GKX_EINVAL, "%s: must not be null", path);
            }
            *out_p = json_null ();
            return GKX_OK;
        }
        return s_import_value (&f->value, ext, path, out_p, errbuf);
    }
    if (f->shape == S_SET) {
        return s_import_set (&f->key, ext, f->max_elems, false, path, out_p, errbuf);
    }
    return s_import_collection (f, ext, path, out_p, errbuf);
}


/* ---------------------------------------------------------------------- */
/* Internal form -> JSON form                                               */

/* Exports one internal value (never null) to JSON form. */
static json_t *
s_export_value (const s_spec_t *spec, const json_t *v)
{
    char text[64];
    if (spec->type == S_V_AMOUNT) {
        s_amount_text (text, sizeof (text), json_integer_value (v));
        return s_jstr (text);
    }
    if (spec->type == S_V_TIME) {
        s_time_text (text, sizeof (text), json_integer_value (v));
        return s_jstr (text);
    }
    if (spec->type == S_V_RULE) {
        json_t *out = json_deep_copy (v);
        json_object_set_new (out, "amount",
                             s_export_value (&s_spec_rule_amount,
                                             json_object_get (v, "amount")));
        return out;
    }
    if (spec->type == S_V_CREATIVE) {
        return json_deep_copy (v);
    }
    return json_incref ((json_t *) v);
}

/* Exports one entry of a collection: the value, with "id" for lists. */
static json_t *
s_export_entry (const s_field_t *f, const char *key, const json_t *v)
{
    json_t *out = s_export_value (&f->value, v);
    if (f->shape == S_LIST) {
        json_object_set_new (out, "id", s_jstr (key));
    }
    return out;
}

/* Exports one field's internal value to JSON form. */
static json_t *
s_export_field (const s_field_t *f, const json_t *v)
{
    if (f->shape == S_SCALAR) {
        return json_is_null (v) ? json_null () : s_export_value (&f->value, v);
    }
    if (f->shape == S_SET) {
        return json_copy ((json_t *) v);
    }
    size_t n;
    const char **keys = s_sorted_keys (v, &n);
    json_t *out = f->shape == S_MAP ? json_object () : json_array ();
    for (size_t i = 0; i < n; i++) {
        json_t *entry = s_export_entry (f, keys[i], json_object_get (v, keys[i]));
        if (f->shape == S_MAP) {
            json_object_set_new (out, keys[i], entry);
        }
        else {
            json_array_append_new (out, entry);
        }
    }
    gkx_free (keys);
    return out;
}

/* ---------------------------------------------------------------------- */
/* Canonical msgpack                                                        */

/* Writes an internal-form value as canonical msgpack: map keys sorted
   bytewise, integers in their smallest encoding, no floats. */
static void
s_pack (msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof (v)) {
    case JSON_OBJECT: {
        size_t n;
        const char **keys = s_sorted_keys (v, &n);
        msgpack_pack_map (pk, n);
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen (keys[i]);
            msgpack_pack_str (pk, len);
            msgpack_pack_str_body (pk, keys[i], len);
            s_pack (pk, json_object_get (v, keys[i]));
        }
        gkx_free (keys);
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array (pk, json_array_size (v));
        for (size_t i = 0; i < json_array_size (v); i++) {
            s_pack (pk, json_array_get (v, i));
        }
        break;
    case JSON_STRING:
        msgpack_pack_str (pk, json_string_length (v));
        msgpack_pack_str_body (pk, json_string_value (v), json_string_length (v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64 (pk, json_integer_value (v));
        break;
    case JSON_TRUE:
        msgpack_pack_true (pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false (pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil (pk);
        break;
    case JSON_REAL:
        /* internal forms are built only from integers; a real is a bug here */
        assert (!"real number in an internal-form value");
        msgpack_pack_nil (pk);
        break;
    }
}

/* Encodes an internal-form value into a new buffer. */
static void
s_encode (const json_t *v, uint8_t **bytes_p, size_t *len_p)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    s_pack (&pk, v);
    *bytes_p = gkx_memdup (sbuf.data ? sbuf.data : "", sbuf.size);
    *len_p = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

/* Converts a msgpack object to an internal-form JSON value; refuses floats,
   binaries, extensions, non-string keys, NUL and invalid UTF-8. */
static int
s_unpack (const msgpack_object *o, json_t **out_p, const char *what, char *errbuf)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        *out_p = json_null ();
        return GKX_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        *out_p = json_boolean (o->via.boolean);
        return GKX_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            return gkx_fail (errbuf, GKX_EBODY, "%s: integer out of range", what);
        }
        *out_p = json_integer ((json_int_t) o->via.u64);
        return GKX_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out_p = json_integer ((json_int_t) o->via.i64);
        return GKX_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return gkx_fail (errbuf, GKX_EBODY, "%s: floats are not allowed", what);
    case MSGPACK_OBJECT_STR: {
        const char *ptr = o->via.str.ptr;
        size_t len = o->via.str.size;
        json_t *s = len ? json_stringn (ptr, len) : json_string ("");
        if (!s || memchr (ptr ? ptr : "", '\0', len)) {
            json_decref (s);
            return gkx_fail (errbuf, GKX_EBODY, "%s: strings must be UTF-8 without NUL",
                             what);
        }
        *out_p = s;
        return GKX_OK;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array ();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *item;
            int rc = s_unpack (&o->via.array.ptr[i], &item, what, errbuf);
            if (rc) {
                json_decref (arr);
                return rc;
            }
            json_array_append_new (arr, item);
        }
        *out_p = arr;
        return GKX_OK;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object ();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *key = NULL;
            json_t *item = NULL;
            int rc = GKX_OK;
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                rc = gkx_fail (errbuf, GKX_EBODY, "%s: map keys must be strings", what);
            }
            if (!rc) {
                rc = s_unpack (&kv->key, &key, what, errbuf);
            }
            if (!rc) {
                rc = s_unpack (&kv->val, &item, what, errbuf);
            }
            if (rc) {
                json_decref (key);
                json_decref (obj);
                return rc;
            }
            json_object_set_new (obj, json_string_value (key), item);
            json_decref (key);
        }
        *out_p = obj;
        return GKX_OK;
    }
    default:
        return gkx_fail (errbuf, GKX_EBODY, "%s: binary and extension values are not allowed",
                         what);
    }
}

/* Decodes canonical msgpack bytes into an internal-form JSON value, and
   proves canonicity by re-encoding and comparing. */
static int
s_decode (json_t **out_p, const uint8_t *bytes, size_t len, const char *what, char *errbuf)
{
    msgpack_unpacked result;
    size_t off = 0;
    json_t *out = NULL;
    int rc = GKX_OK;
    msgpack_unpacked_init (&result);
    msgpack_unpack_return ret
        = msgpack_unpack_next (&result, (const char *) (bytes ? bytes : (const uint8_t *) ""),
                               len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        rc = gkx_fail (errbuf, GKX_EBODY, "%s: malformed or truncated msgpack", what);
        goto cleanup;
    }
    if (off != len) {
        rc = gkx_fail (errbuf, GKX_EBODY, "%s: trailing bytes after the value", what);
        goto cleanup;
    }
    rc = s_unpack (&result.data, &out, what, errbuf);
    if (rc) {
        goto cleanup;
    }
    uint8_t *again;
    size_t again_len;
    s_encode (out, &again, &again_len);
    bool same = again_len == len && memcmp (again, bytes, len) == 0;
    gkx_free (again);
    if (!same) {
        rc = gkx_fail (errbuf, GKX_EBODY, "%s: not canonical msgpack", what);
        goto cleanup;
    }
    *out_p = out;
    out = NULL;
cleanup:
    json_decref (out);
    msgpack_unpacked_destroy (&result);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Offers                                                                   */

/* Wraps a tree (stolen) in a new offer. */
static gkx_offer_t *
s_offer_wrap (json_t *tree)
{
    gkx_offer_t *self = gkx_zalloc (sizeof (*self));
    self->tree = tree;
    return self;
}

int
gkx_offer_from_json (gkx_offer_t **offer_p, const json_t *json, char *errbuf)
{
    assert (offer_p);
    if (!json_is_object (json)) {
        return gkx_fail (errbuf, GKX_EINVAL, "offer: must be an object");
    }
    int rc = s_check_keys (json, errbuf);
    if (rc) {
        return rc;
    }
    json_t *tree = json_object ();
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *f = &s_fields[i];
        const json_t *ext = s_field_get (json, f);
        json_t *value = NULL;
        if (!ext) {
            if (!f->fallback) {
                rc = gkx_fail (errbuf, GKX_EINVAL, "%s: is required", f->path);
                break;
            }
            value = json_loads (f->fallback, JSON_DECODE_ANY, NULL);
            assert (value);
        }
        else {
            rc = s_import_field (f, ext, f->path, &value, errbuf);
            if (rc) {
                break;
            }
        }
        s_field_put (tree, f, value);
    }
    if (!rc) {
        rc = s_cross_check (tree, errbuf);
    }
    if (rc) {
        json_decref (tree);
        return rc;
    }
    *offer_p = s_offer_wrap (tree);
    return GKX_OK;
}

int
gkx_offer_from_text (gkx_offer_t **offer_p, const char *text, char *errbuf)
{
    assert (offer_p && text);
    json_error_t error;
    json_t *json = json_loads (text, JSON_REJECT_DUPLICATES, &error);
    if (!json) {
        return gkx_fail (errbuf, GKX_EINVAL, "offer: invalid JSON at line %d column %d: %s",
                         error.line, error.column, error.text);
    }
    int rc = gkx_offer_from_json (offer_p, json, errbuf);
    json_decref (json);
    return rc;
}

json_t *
gkx_offer_to_json (const gkx_offer_t *self)
{
    assert (self);
    json_t *out = json_object ();
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const s_field_t *f = &s_fields[i];
        s_field_put (out, f, s_export_field (f, s_field_get (self->tree, f)));
    }
    return out;
}

char *
gkx_offer_to_text (const gkx_offer_t *self)
{
    json_t *json = gkx_offer_to_json (self);
    char *text = json_dumps (json, GKX_OFFER_JSON_FLAGS);
    json_decref (json);
    assert (text);
    return text;
}

void
gkx_offer_encode (const gkx_offer_t *self, uint8_t **bytes_p, size_t *len_p)
{
    assert (self && bytes_p && len_p);
    s_encode (self->tree, bytes_p, len_p);
}

int
gkx_offer_decode (gkx_offer_t **offer_p, const uint8_t *bytes, size_t len, char *errbuf)
{
    assert (offer_p);
    json_t *tree;
    int rc = s_decode (&tree, bytes, len, "offer", errbuf);
    if (rc) {
        return rc;
    }
    char why[GKX_ERRBUF_BYTES];
    rc = s_check_tree (tree, why);
    if (rc) {
        json_decref (tree);
        return gkx_fail (errbuf, GKX_EBODY, "offer: %s", why);
    }
    *offer_p = s_offer_wrap (tree);
    return GKX_OK;
}

gkx_offer_t *
gkx_offer_dup (const gkx_offer_t *self)
{
    assert (self);
    return s_offer_wrap (json_deep_copy (self->tree));
}

void
gkx_offer_destroy (gkx_offer_t **self_p)
{
    if (self_p && *self_p) {
        json_decref ((*self_p)->tree);
        gkx_free (*self_p);
        *self_p = NULL;
    }
}

void
gkx_offer_digest (const gkx_offer_t *self, uint8_t digest[GKX_OFFER_DIGEST_BYTES])
{
    uint8_t *bytes;
    size_t len;
    gkx_offer_encode (self, &bytes, &len);
    crypto_generichash (digest, GKX_OFFER_DIGEST_BYTES, bytes, len, NULL, 0);
    gkx_free (bytes);
}

int
gkx_offer_is_equal (const gkx_offer_t *self, const gkx_offer_t *other)
{
    assert (self && other);
    return json_equal (self->tree, other->tree);
}

/* Whether text is in a rule's condition array (absent arrays match). */
static bool
s_rule_has (const json_t *cond, const char *text)
{
    if (!cond) {
        return true;
    }
    if (!text) {
        return false;
    }
    for (size_t i = 0; i < json_array_size (cond); i++) {
        if (strcmp (json_string_value (json_array_get (cond, i)), text) == 0) {
            return true;
        }
    }
    return false;
}

const json_t *
gkx_offer_value (const gkx_offer_t *self, const char *path)
{
    assert (self && path);
    const s_field_t *f = s_field_find (path);
    if (!f) {
        return NULL;
    }
    const json_t *value = s_field_get (self->tree, f);
    return value && (json_is_string (value) || json_is_integer (value) || json_is_null (value))
               ? value : NULL;
}

int64_t
gkx_offer_payout (const gkx_offer_t *self, const char *event, const char *country,
                  const char *platform)
{
    assert (self);
    const json_t *rules = s_field_get (self->tree, s_field_find ("payout.rules"));
    size_t n;
    const char **keys = s_sorted_keys (rules, &n);
    const json_t *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *rule = json_object_get (rules, keys[i]);
        const json_t *when = json_object_get (rule, "when");
        const json_t *ev = json_object_get (when, "event");
        if (ev && (!event || strcmp (json_string_value (ev), event) != 0)) {
            continue;
        }
        if (!s_rule_has (json_object_get (when, "countries"), country)
            || !s_rule_has (json_object_get (when, "platforms"), platform)) {
            continue;
        }
        /* ids are visited in bytewise order, so a tie keeps the smaller id */
        if (json_object_size (when) > best_score) {
            best = rule;
            best_score = json_object_size (when);
        }
    }
    gkx_free (keys);
    if (best) {
        return json_integer_value (json_object_get (best, "amount"));
    }
    const json_t *events = s_field_get (self->tree, s_field_find ("payout.events"));
    if (event && json_object_get (events, event)) {
        return json_integer_value (json_object_get (events, event));
    }
    return json_integer_value (s_field_get (self->tree, s_field_find ("payout.amount")));
}

/* ---------------------------------------------------------------------- */
/* Applying operations                                                      */

/* Finds text in a sorted set; returns whether present and where it is or
   would go. */
static bool
s_set_find (const json_t *set, const char *text, size_t *pos_p)
{
    size_t lo = 0;
    size_t hi = json_array_size (set);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp (json_string_value (json_array_get (set, mid)), text);
        if (cmp == 0) {
            *pos_p = mid;
            return true;
        }
        if (cmp < 0) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    *pos_p = lo;
    return false;
}

/* Applies op to tree; on failure, or when commit is false, restores the
   tree. Fills old/new in JSON form when asked. */
static int
s_apply (json_t *tree, const s_op_t *op, bool commit, json_t **old_p, json_t **new_p,
         char *errbuf)
{
    const s_field_t *f = op->field;
    const char *leaf;
    json_t *parent = s_parent (tree, f, &leaf);
    json_t *cur = json_object_get (parent, leaf);
    json_t *old_ext = NULL;
    json_t *new_ext = NULL;
    int rc = GKX_OK;
    assert (parent && cur);
    if (f->shape == S_SCALAR) {
        json_t *saved = json_incref (cur);
        old_ext = s_export_field (f, saved);
        new_ext = s_export_field (f, op->value);
        json_object_set (parent, leaf, op->value);
        rc = s_cross_check (tree, errbuf);
        if (rc || !commit) {
            json_object_set (parent, leaf, saved);
        }
        json_decref (saved);
    }
    else if (f->shape == S_SET) {
        size_t pos;
        bool present = s_set_find (cur, op->key, &pos);
        old_ext = s_export_field (f, cur);
        bool changed = false;
        if (op->verb == GKX_OFFER_OP_ADD && !present) {
            json_array_insert_new (cur, pos, s_jstr (op->key));
            changed = true;
            if (json_array_size (cur) > f->max_elems) {
                rc = gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", f->path,
                               f->max_elems);
            }
        }
        else if (op->verb == GKX_OFFER_OP_REMOVE && present) {
            json_array_remove (cur, pos);
            changed = true;
        }
        new_ext = s_export_field (f, cur);
        if (changed && (rc || !commit)) {
            if (op->verb == GKX_OFFER_OP_ADD) {
                json_array_remove (cur, pos);
            }
            else {
                json_array_insert_new (cur, pos, s_jstr (op->key));
            }
        }
    }
    else {
        json_t *saved = json_object_get (cur, op->key);
        json_incref (saved);
        old_ext = saved ? s_export_entry (f, op->key, saved) : json_null ();
        if (op->verb == GKX_OFFER_OP_ADD) {
            new_ext = s_export_entry (f, op->key, op->value);
            if (!saved && json_object_size (cur) >= f->max_elems) {
                rc = gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", f->path,
                               f->max_elems);
            }
            else {
                json_object_set (cur, op->key, op->value);
                rc = s_cross_check (tree, errbuf);
            }
        }
        else {
            new_ext = json_null ();
            json_object_del (cur, op->key);
        }
        if (rc || !commit) {
            if (saved) {
                json_object_set (cur, op->key, saved);
            }
            else {
                json_object_del (cur, op->key);
            }
        }
        json_decref (saved);
    }
    if (old_p) {
        *old_p = old_ext;
    }
    else {
        json_decref (old_ext);
    }
    if (new_p) {
        *new_p = new_ext;
    }
    else {
        json_decref (new_ext);
    }
    return rc;
}

int
gkx_offer_apply (gkx_offer_t *self, const gkx_offer_ops_t *ops, size_t index, json_t **old_p,
                 json_t **new_p, char *errbuf)
{
    assert (self && ops && index < ops->count);
    return s_apply (self->tree, &ops->items[index], true, old_p, new_p, errbuf);
}

int
gkx_offer_preview (const gkx_offer_t *self, const gkx_offer_ops_t *ops, size_t index,
                   json_t **old_p, json_t **new_p, char *errbuf)
{
    assert (self && ops && index < ops->count);
    json_t *copy = json_deep_copy (self->tree);
    int rc = s_apply (copy, &ops->items[index], false, old_p, new_p, errbuf);
    json_decref (copy);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Operation lists                                                          */

gkx_offer_ops_t *
gkx_offer_ops_new (void)
{
    return gkx_zalloc (sizeof (gkx_offer_ops_t));
}

/* Drops the operations from index count on, so a failed parse leaves the
   list as it was. */
static void
s_ops_truncate (gkx_offer_ops_t *self, size_t count)
{
    while (self->count > count) {
        s_op_t *op = &self->items[--self->count];
        gkx_free (op->key);
        json_decref (op->value);
    }
}

void
gkx_offer_ops_destroy (gkx_offer_ops_t **self_p)
{
    if (self_p && *self_p) {
        s_ops_truncate (*self_p, 0);
        gkx_free ((*self_p)->items);
        gkx_free (*self_p);
        *self_p = NULL;
    }
}

size_t
gkx_offer_ops_size (const gkx_offer_ops_t *self)
{
    assert (self);
    return self->count;
}

void
gkx_offer_ops_info (const gkx_offer_ops_t *self, size_t index, gkx_offer_op_info_t *info)
{
    assert (self && info && index < self->count);
    info->verb = self->items[index].verb;
    info->path = self->items[index].field->path;
    info->key = self->items[index].key;
}

/* Appends an operation; takes the value reference. */
static void
s_ops_push (gkx_offer_ops_t *self, int verb, const s_field_t *f, const char *key,
            json_t *value)
{
    if (self->count == self->alloc) {
        self->alloc = self->alloc ? self->alloc * 2 : 8;
        self->items = gkx_realloc (self->items, self->alloc * sizeof (*self->items));
    }
    s_op_t *op = &self->items[self->count++];
    op->verb = verb;
    op->field = f;
    op->key = key ? gkx_strdup (key) : NULL;
    op->value = value;
}

/* Diffs a collection field (internal maps) and appends the operations that
   turn cur into want: removes first, then puts, each in key order. */
static void
s_diff_collection (gkx_offer_ops_t *self, const s_field_t *f, const json_t *cur,
                   const json_t *want)
{
    size_t n;
    const char **keys = s_sorted_keys (cur, &n);
    for (size_t i = 0; i < n; i++) {
        if (!json_object_get (want, keys[i])) {
            s_ops_push (self, GKX_OFFER_OP_REMOVE, f, keys[i], NULL);
        }
    }
    gkx_free (keys);
    keys = s_sorted_keys (want, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_object_get (want, keys[i]);
        json_t *c = json_object_get (cur, keys[i]);
        if (!c || !json_equal (c, w)) {
            s_ops_push (self, GKX_OFFER_OP_ADD, f, keys[i], json_incref (w));
        }
    }
    gkx_free (keys);
}

/* Diffs a set field (sorted internal arrays) into removes then adds. */
static void
s_diff_set (gkx_offer_ops_t *self, const s_field_t *f, const json_t *cur, const json_t *want)
{
    size_t pos;
    for (size_t i = 0; i < json_array_size (cur); i++) {
        const char *e = json_string_value (json_array_get (cur, i));
        if (!s_set_find (want, e, &pos)) {
            s_ops_push (self, GKX_OFFER_OP_REMOVE, f, e, NULL);
        }
    }
    for (size_t i = 0; i < json_array_size (want); i++) {
        const char *e = json_string_value (json_array_get (want, i));
        if (!s_set_find (cur, e, &pos)) {
            s_ops_push (self, GKX_OFFER_OP_ADD, f, e, NULL);
        }
    }
}

/* Appends the operations for one field of a merge patch. */
static int
s_patch_field (gkx_offer_ops_t *self, const gkx_offer_t *current, const s_field_t *f,
               const json_t *pv, char *errbuf)
{
    const json_t *cur = s_field_get (current->tree, f);
    json_t *want = NULL;
    int rc;
    if (f->shape == S_SCALAR) {
        rc = s_import_field (f, pv, f->path, &want, errbuf);
        if (rc) {
            return rc;
        }
        if (json_equal (cur, want)) {
            json_decref (want);
        }
        else {
            s_ops_push (self, GKX_OFFER_OP_SET, f, NULL, want);
        }
        return GKX_OK;
    }
    if (f->shape == S_SET) {
        if (json_is_null (pv)) {
            want = json_array ();
        }
        else {
            rc = s_import_field (f, pv, f->path, &want, errbuf);
            if (rc) {
                return rc;
            }
        }
        s_diff_set (self, f, cur, want);
        json_decref (want);
        return GKX_OK;
    }
    if (json_is_null (pv)) {
        want = json_object ();
    }
    else if (f->shape == S_MAP && json_is_object (pv)) {
        /* RFC 7386 merges objects member by member: null removes, a value puts */
        want = json_copy ((json_t *) cur);
        const char *k;
        json_t *item;
        json_object_foreach ((json_t *) pv, k, item) {
            char sub[GKX_ERRBUF_BYTES];
            json_t *key = s_jstr (k);
            rc = s_check_value (&f->key, key, f->path, errbuf);
            json_decref (key);
            json_t *value = NULL;
            s_pathf (sub, sizeof (sub), "%s.%s", f->path, k);
            if (!rc && json_is_null (item)) {
                json_object_del (want, k);
            }
            else if (!rc) {
                rc = s_import_value (&f->value, item, sub, &value, errbuf);
                if (!rc) {
                    json_object_set_new (want, k, value);
                }
            }
            if (rc) {
                json_decref (want);
                return rc;
            }
        }
        if (json_object_size (want) > f->max_elems) {
            json_decref (want);
            return gkx_fail (errbuf, GKX_EINVAL, "%s: at most %zu elements", f->path,
                             f->max_elems);
        }
    }
    else {
        rc = s_import_field (f, pv, f->path, &want, errbuf);
        if (rc) {
            return rc;
        }
    }
    s_diff_collection (self, f, cur, want);
    json_decref (want);
    return GKX_OK;
}

int
gkx_offer_ops_from_patch (gkx_offer_ops_t *self, const gkx_offer_t *current,
                          const json_t *patch, char *errbuf)
{
    assert (self && current);
    if (!json_is_object (patch)) {
        return gkx_fail (errbuf, GKX_EINVAL, "patch: must be an object");
    }
    int rc = s_check_keys (patch, errbuf);
    if (rc) {
        return rc;
    }
    size_t before = self->count;
    for (size_t i = 0; i < S_FIELD_COUNT && !rc; i++) {
        const json_t *pv = s_field_get (patch, &s_fields[i]);
        if (pv) {
            rc = s_patch_field (self, current, &s_fields[i], pv, errbuf);
        }
    }
    if (rc) {
        s_ops_truncate (self, before);
    }
    return rc;
}

/* Reads CLI value text as JSON where the value is structured, else as a
   string ("null" is null; a leading quote makes it a JSON string). */
static json_t *
s_text_json (const char *text, bool structured)
{
    if (strcmp (text, "null") == 0) {
        return json_null ();
    }
    if (structured || text[0] == '"') {
        json_t *v = json_loads (text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (v || text[0] == '"') {
            return v;
        }
    }
    return json_string (text);
}

/* Whether a value spec reads its CLI text as JSON (numbers, booleans,
   objects) rather than as a string. */
static bool
s_is_structured (const s_spec_t *spec)
{
    return spec->type == S_V_COUNT || spec->type == S_V_BOOL || spec->type == S_V_CREATIVE
           || spec->type == S_V_RULE;
}

/* Appends the operations of one CLI edit; the caller restores the list on
   failure. */
static int
s_parse_edit (gkx_offer_ops_t *self, const gkx_offer_t *current, const char *edit,
              char *errbuf)
{
    const char *eq = strchr (edit, '=');
    if (!eq || eq == edit) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "\"%s\": an edit is PATH=VALUE, PATH+=VALUE or PATH-=VALUE", edit);
    }
    int verb = GKX_OFFER_OP_SET;
    size_t path_len = (size_t) (eq - edit);
    if (eq[-1] == '+' || eq[-1] == '-') {
        verb = eq[-1] == '+' ? GKX_OFFER_OP_ADD : GKX_OFFER_OP_REMOVE;
        path_len--;
    }
    char path[GKX_ERRBUF_BYTES];
    if (path_len == 0 || path_len >= sizeof (path)) {
        return gkx_fail (errbuf, GKX_EINVAL,
                         "\"%s\": an edit is PATH=VALUE, PATH+=VALUE or PATH-=VALUE", edit);
    }
    memcpy (path, edit, path_len);
    path[path_len] = '\0';
    const char *text = eq + 1;
    const s_field_t *f = s_field_find (path);
    const char *key = NULL;
    if (!f) {
        for (size_t i = 0; i < S_FIELD_COUNT; i++) {
            size_t len = strlen (s_fields[i].path);
            if ((s_fields[i].shape == S_MAP || s_fields[i].shape == S_LIST)
                && strncmp (path, s_fields[i].path, len) == 0 && path[len] == '.') {
                f = &s_fields[i];
                key = path + len + 1;
                break;
            }
        }
    }
    if (!f) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: unknown field", path);
    }
    int rc;
    json_t *value = NULL;
    if (key) {
        /* COLLECTION.KEY=VALUE puts one entry; =null removes it */
        if (verb != GKX_OFFER_OP_SET) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: use %s=VALUE or %s-=KEY", path, path,
                             f->path);
        }
        json_t *jkey = s_jstr (key);
        rc = s_check_value (&f->key, jkey, f->path, errbuf);
        json_decref (jkey);
        if (rc) {
            return rc;
        }
        json_t *ext = s_text_json (text, s_is_structured (&f->value));
        if (!ext) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: cannot read value \"%s\"", path, text);
        }
        if (json_is_null (ext)) {
            json_decref (ext);
            s_ops_push (self, GKX_OFFER_OP_REMOVE, f, key, NULL);
            return GKX_OK;
        }
        json_t *id = json_object_get (ext, "id");
        if (f->shape == S_LIST && id
            && (!json_is_string (id) || strcmp (json_string_value (id), key) != 0)) {
            json_decref (ext);
            return gkx_fail (errbuf, GKX_EINVAL, "%s.id: must match the key", path);
        }
        rc = s_import_value (&f->value, ext, path, &value, errbuf);
        json_decref (ext);
        if (rc) {
            return rc;
        }
        s_ops_push (self, GKX_OFFER_OP_ADD, f, key, value);
        return GKX_OK;
    }
    if (verb == GKX_OFFER_OP_SET) {
        bool structured = f->shape != S_SCALAR || s_is_structured (&f->value);
        json_t *ext = s_text_json (text, structured);
        if (!ext) {
            return gkx_fail (errbuf, GKX_EINVAL, "%s: cannot read value \"%s\"", path, text);
        }
        if (f->shape == S_SCALAR) {
            /* an explicit set is kept even when the local view already holds
               the value: it still wins over a concurrent edit in flight */
            rc = s_import_field (f, ext, path, &value, errbuf);
            if (!rc) {
                s_ops_push (self, GKX_OFFER_OP_SET, f, NULL, value);
            }
        }
        else {
            rc = s_patch_field (self, current, f, ext, errbuf);
        }
        json_decref (ext);
        return rc;
    }
    if (f->shape == S_SCALAR) {
        return gkx_fail (errbuf, GKX_EINVAL, "%s: += and -= need a set-valued field", path);
    }
    if (verb == GKX_OFFER_OP_REMOVE || f->shape == S_SET) {
        json_t *elem = s_text_json (text, false);
        if (!elem || json_is_null (elem)) {
            json_decref (elem);
            return gkx_fail (errbuf, GKX_EINVAL, "%s: cannot read element \"%s\"", path, text);
        }
        rc = s_check_value (&f->key, elem, f->path, errbuf);
        if (!rc) {
            s_ops_push (self, verb, f, json_string_value (elem), NULL);
        }
        json_decref (elem);
        return rc;
    }
    json_t *ext = json_loads (text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object (ext)) {
        json_decref (ext);
        return gkx_fail (errbuf, GKX_EINVAL, "%s: += needs a JSON object", path);
    }
    if (f->shape == S_MAP) {
        json_t *want = NULL;
        rc = s_import_collection (f, ext, f->path, &want, errbuf);
        if (!rc) {
            size_t n;
            const char **keys = s_sorted_keys (want, &n);
            for (size_t i = 0; i < n; i++) {
                s_ops_push (self, GKX_OFFER_OP_ADD, f, keys[i],
                            json_incref (json_object_get (want, keys[i])));
            }
            gkx_free (keys);
        }
        json_decref (want);
        json_decref (ext);
        return rc;
    }
    json_t *id = json_object_get (ext, "id");
    char idpath[GKX_ERRBUF_BYTES];
    s_pathf (idpath, sizeof (idpath), "%s.id", f->path);
    rc = id ? s_check_value (&f->key, id, idpath, errbuf)
            : gkx_fail (errbuf, GKX_EINVAL, "%s: is required", idpath);
    if (!rc) {
        char sub[GKX_ERRBUF_BYTES];
        s_pathf (sub, sizeof (sub), "%s.%s", f->path, json_string_value (id));
        rc = s_import_value (&f->value, ext, sub, &value, errbuf);
    }
    if (!rc) {
        s_ops_push (self, GKX_OFFER_OP_ADD, f, json_string_value (id), value);
    }
    json_decref (ext);
    return rc;
}

int
gkx_offer_ops_parse_edit (gkx_offer_ops_t *self, const gkx_offer_t *current, const char *edit,
                          char *errbuf)
{
    assert (self && current && edit);
    /* The edit's key and value become JSON strings, which must be UTF-8
       (an edit from argv need not be); the message does not quote it. */
    if (!gkx_codec_is_utf8 (edit, strlen (edit))) {
        return gkx_fail (errbuf, GKX_EINVAL, "edit: not valid UTF-8");
    }
    size_t before = self->count;
    int rc = s_parse_edit (self, current, edit, errbuf);
    if (rc) {
        s_ops_truncate (self, before);
    }
    return rc;
}

/* Builds the internal-form JSON of the operations, as carried in bodies. */
static json_t *
s_ops_body (const gkx_offer_ops_t *self)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < self->count; i++) {
        const s_op_t *op = &self->items[i];
        json_t *item = json_object ();
        json_object_set_new (item, "op", s_jstr (s_verb_words[op->verb]));
        json_object_set_new (item, "path", s_jstr (op->field->path));
        if (op->key) {
            json_object_set_new (item, "key", s_jstr (op->key));
        }
        if (op->value) {
            json_object_set (item, "value", op->value);
        }
        json_array_append_new (list, item);
    }
    json_t *body = json_object ();
    json_object_set_new (body, "ops", list);
    return body;
}

int
gkx_offer_ops_encode (const gkx_offer_ops_t *self, uint8_t **body_p, size_t *len_p,
                      char *errbuf)
{
    assert (self && body_p && len_p);
    if (self->count == 0) {
        return gkx_fail (errbuf, GKX_EINVAL, "ops: no changes");
    }
    if (self->count > GKX_OFFER_OPS_MAX) {
        return gkx_fail (errbuf, GKX_EINVAL, "ops: at most %d operations", GKX_OFFER_OPS_MAX);
    }
    json_t *body = s_ops_body (self);
    s_encode (body, body_p, len_p);
    json_decref (body);
    return GKX_OK;
}

/* Validates one decoded operation and appends it. */
static int
s_decode_op (gkx_offer_ops_t *self, const json_t *item, size_t index, char *errbuf)
{
    char why[GKX_ERRBUF_BYTES];
    if (!json_is_object (item)) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu]: must be a map", index);
    }
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *) item, k, v) {
        if (strcmp (k, "op") != 0 && strcmp (k, "path") != 0 && strcmp (k, "key") != 0
            && strcmp (k, "value") != 0) {
            return gkx_fail (errbuf, GKX_EBODY, "ops[%zu].%s: unknown field", index, k);
        }
    }
    json_t *jverb = json_object_get (item, "op");
    int verb = 0;
    for (int i = GKX_OFFER_OP_SET; i <= GKX_OFFER_OP_REMOVE; i++) {
        if (json_is_string (jverb) && strcmp (json_string_value (jverb), s_verb_words[i]) == 0) {
            verb = i;
        }
    }
    if (!verb) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu].op: must be set, add or remove", index);
    }
    json_t *jpath = json_object_get (item, "path");
    const s_field_t *f = json_is_string (jpath) ? s_field_find (json_string_value (jpath)) : NULL;
    if (!f) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu].path: must name a field", index);
    }
    json_t *key = json_object_get (item, "key");
    json_t *value = json_object_get (item, "value");
    bool want_key = f->shape != S_SCALAR;
    bool want_value = verb == GKX_OFFER_OP_SET
                      || (verb == GKX_OFFER_OP_ADD && (f->shape == S_MAP || f->shape == S_LIST));
    if ((f->shape == S_SCALAR) != (verb == GKX_OFFER_OP_SET)) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu]: %s is not allowed on %s", index,
                         s_verb_words[verb], f->path);
    }
    if (want_key != (key != NULL)) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu].key: %s", index,
                         want_key ? "is required" : "is not allowed");
    }
    if (want_value != (value != NULL)) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu].value: %s", index,
                         want_value ? "is required" : "is not allowed");
    }
    int rc = GKX_OK;
    if (key) {
        rc = s_check_value (&f->key, key, f->path, why);
    }
    if (!rc && value && f->shape == S_SCALAR) {
        rc = s_check_field (f, value, f->path, why);
    }
    else if (!rc && value) {
        char sub[GKX_ERRBUF_BYTES];
        s_pathf (sub, sizeof (sub), "%s.%s", f->path, json_string_value (key));
        rc = s_check_value (&f->value, value, sub, why);
    }
    if (rc) {
        return gkx_fail (errbuf, GKX_EBODY, "ops[%zu]: %s", index, why);
    }
    s_ops_push (self, verb, f, key ? json_string_value (key) : NULL,
                value ? json_incref (value) : NULL);
    return GKX_OK;
}

int
gkx_offer_ops_decode (gkx_offer_ops_t **ops_p, const uint8_t *body, size_t len, char *errbuf)
{
    assert (ops_p);
    json_t *json;
    int rc = s_decode (&json, body, len, "body", errbuf);
    if (rc) {
        return rc;
    }
    gkx_offer_ops_t *self = gkx_offer_ops_new ();
    json_t *list = json_object_get (json, "ops");
    if (!json_is_object (json) || json_object_size (json) != 1 || !json_is_array (list)) {
        rc = gkx_fail (errbuf, GKX_EBODY, "body: must be a map with only \"ops\", an array");
    }
    else if (json_array_size (list) == 0 || json_array_size (list) > GKX_OFFER_OPS_MAX) {
        rc = gkx_fail (errbuf, GKX_EBODY, "ops: must hold 1 to %d operations",
                       GKX_OFFER_OPS_MAX);
    }
    for (size_t i = 0; !rc && i < json_array_size (list); i++) {
        rc = s_decode_op (self, json_array_get (list, i), i, errbuf);
    }
    json_decref (json);
    if (rc) {
        gkx_offer_ops_destroy (&self);
        return rc;
    }
    *ops_p = self;
    return GKX_OK;
}

json_t *
gkx_offer_ops_to_json (const gkx_offer_ops_t *self)
{
    assert (self);
    json_t *list = json_array ();
    for (size_t i = 0; i < self->count; i++) {
        const s_op_t *op = &self->items[i];
        json_t *item = json_object ();
        json_object_set_new (item, "op", s_jstr (s_verb_words[op->verb]));
        json_object_set_new (item, "field", s_jstr (op->field->path));
        if (op->key) {
            json_object_set_new (item, "key", s_jstr (op->key));
        }
        if (op->value && op->field->shape == S_SCALAR) {
            json_object_set_new (item, "value", s_export_field (op->field, op->value));
        }
        else if (op->value) {
            json_object_set_new (item, "value", s_export_entry (op->field, op->key, op->value));
        }
        json_array_append_new (list, item);
    }
    return list;
}

int
gkx_offer_is_country (const char *code)
{
    return s_in_table (s_countries, code, 2);
}

int
gkx_offer_is_currency (const char *code)
{
    return s_in_table (s_currencies, code, 3);
}

int
gkx_offer_is_path (const char *path)
{
    assert (path);
    return s_field_find (path) != NULL || s_is_group (path);
}
