/*  cmd_offer - gkx offer, pause, resume, changes, proposals, accept, decline,
    withdraw and export: one partnership's shared offer.
    Part of gokart-exchange; MIT licence.

    Each verb names the partnership by its id (gkx partnerships lists them)
    and sends one request to the running node's tenant API (docs/api.md),
    which checks every edit against the current offer and the partnership's
    policy before it writes the entry. Edits use the syntax of
    docs/offer-schema.md section 3: PATH=VALUE, PATH+=ELEMENT, PATH-=ELEMENT,
    PATH=null; the edits of one command form one entry.
*/
#include "cli.h"
#include "client.h"

#include <gkx/alloc.h>
#include <gkx/kind.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest request path built, and longest part after the partnership id. */
#define S_URL_BYTES 512
#define S_SUFFIX_BYTES 160
/* Length of the short proposal id shown in tables. */
#define S_SHORT_ID 12
/* Fewest and most hex digits of a proposal id or prefix. */
#define S_PROPOSAL_MIN 8
#define S_PROPOSAL_MAX 64

/* The string member key of object, or "" when absent. */
static const char *
s_str (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "";
}

/* Returns value as compact JSON (the caller frees it with gkx_free). */
static char *
s_json_text (const json_t *value)
{
    char *dumped = value ? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *text = gkx_strdup (dumped ? dumped : "null");
    free (dumped);
    return text;
}

/* Returns value as text for people (the caller frees it with gkx_free): a
   string as is, anything else as compact JSON. */
static char *
s_text (const json_t *value)
{
    return json_is_string (value) ? gkx_strdup (json_string_value (value)) : s_json_text (value);
}

/* A growing piece of text. */
typedef struct {
    char *data;                 /* the text, NUL-terminated; ours */
    size_t len;                 /* its length */
} s_text_t;

/* Appends text to buf. */
static void
s_append (s_text_t *buf, const char *text)
{
    size_t len = strlen (text);
    buf->data = gkx_realloc (buf->data, buf->len + len + 1);
    memcpy (buf->data + buf->len, text, len + 1);
    buf->len += len;
}

/* Appends text to buf, then frees text (from gkx_zalloc). */
static void
s_append_free (s_text_t *buf, char *text)
{
    s_append (buf, text);
    gkx_free (text);
}

/* Appends an operation list ([{"op", "field", "key", "value"}]) in the CLI
   edit syntax, comma-separated. */
static void
s_append_ops (s_text_t *buf, const json_t *ops)
{
    size_t i;
    json_t *op;
    json_array_foreach (ops, i, op) {
        const char *verb = s_str (op, "op");
        const json_t *key = json_object_get (op, "key");
        const json_t *value = json_object_get (op, "value");
        s_append (buf, i ? ", " : "");
        s_append (buf, s_str (op, "field"));
        if (strcmp (verb, "set") == 0) {
            s_append (buf, "=");
            s_append_free (buf, s_text (value));
        }
        else if (strcmp (verb, "add") == 0 && value) {
            s_append (buf, ".");
            s_append (buf, json_string_value (key) ? json_string_value (key) : "");
            s_append (buf, "=");
            s_append_free (buf, s_text (value));
        }
        else {
            s_append (buf, strcmp (verb, "add") == 0 ? "+=" : "-=");
            s_append (buf, json_string_value (key) ? json_string_value (key) : "");
        }
    }
}

/* Writes the first S_SHORT_ID characters of an id into out. */
static const char *
s_short (char out[S_SHORT_ID + 1], const char *id)
{
    snprintf (out, S_SHORT_ID + 1, "%s", id);
    return out;
}

/* Builds "/v1/partnerships/PID" followed by suffix into url. */
static void
s_url (char url[S_URL_BYTES], const char *pid, const char *suffix)
{
    snprintf (url, S_URL_BYTES, "/v1/partnerships/%s%s", pid, suffix);
}

/* Checks a proposal id or prefix (8 to 64 hex digits); prints the problem
   and returns CLI_USAGE when it is not. */
static int
s_proposal_check (const cli_spec_t *spec, const char *text)
{
    size_t len = strlen (text);
    if (len < S_PROPOSAL_MIN || len > S_PROPOSAL_MAX
        || strspn (text, "0123456789abcdefABCDEF") != len) {
        fprintf (stderr, "gkx %s: proposal id \"%.80s\": expected %d to %d hex digits (see gkx "
                         "proposals)\n",
                 spec->name, text, S_PROPOSAL_MIN, S_PROPOSAL_MAX);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Adds the rows of one JSON value of the offer to a FIELD/VALUE table,
   under path: groups are walked, sets joined, keyed arrays shown per id. */
static void
s_offer_rows (cli_table_t *table, const char *path, const json_t *value)
{
    if (json_is_object (value) && json_object_size (value) > 0) {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            size_t len = strlen (path) + strlen (key) + 2;
            char *sub = gkx_zalloc (len);
            snprintf (sub, len, "%s%s%s", path, *path ? "." : "", key);
            s_offer_rows (table, sub, member);
            gkx_free (sub);
        }
        return;
    }
    if (json_is_null (value) || (json_is_object (value) && json_object_size (value) == 0)
        || (json_is_array (value) && json_array_size (value) == 0)) {
        cli_table_add (table, path, "(none)");
        return;
    }
    if (!json_is_array (value)) {
        char *text = s_text (value);
        cli_table_add (table, path, text);
        gkx_free (text);
        return;
    }
    size_t i;
    json_t *item;
    int is_keyed = 1;
    json_array_foreach (value, i, item) {
        is_keyed &= json_is_string (json_object_get (item, "id"));
    }
    if (!is_keyed) {
        s_text_t joined = {NULL, 0};
        json_array_foreach (value, i, item) {
            s_append (&joined, i ? ", " : "");
            s_append_free (&joined, s_text (item));
        }
        cli_table_add (table, path, joined.data);
        gkx_free (joined.data);
        return;
    }
    json_array_foreach (value, i, item) {
        size_t len = strlen (path) + strlen (s_str (item, "id")) + 3;
        char *sub = gkx_zalloc (len);
        snprintf (sub, len, "%s[%s]", path, s_str (item, "id"));
        json_t *rest = json_deep_copy (item);
        json_object_del (rest, "id");
        char *text = s_json_text (rest);
        cli_table_add (table, sub, text);
        gkx_free (text);
        json_decref (rest);
        gkx_free (sub);
    }
}

/* Usage of gkx offer. */
static const cli_spec_t s_offer_spec = {
    "offer",
    "usage: gkx offer show PID [--json] [--digest]\n"
    "       gkx offer set PID EDIT... [--json]\n"
    "       gkx offer propose PID EDIT... [--json]\n\n"
    "show     the partnership's current offer, field by field, and its state digest;\n"
    "         --digest prints only the digest (equal digests on both nodes mean\n"
    "         equal offers)\n"
    "set      changes the offer now; the edits form one entry, checked against\n"
    "         the current offer and the partnership's policy before it is written\n"
    "propose  proposes the edits; they apply when the other side accepts (gkx\n"
    "         accept); prints the proposal id\n\n"
    "EDIT is PATH=VALUE (set), PATH=null (clear), PATH+=ELEMENT (add to a set),\n"
    "PATH-=ELEMENT (remove), COLLECTION.KEY=VALUE (put an entry), for example\n"
    "payout.amount=3.00 targeting.countries+=FR status=paused\n"
    "(docs/offer-schema.md lists every field).\n",
    CLI_OPT_JSON | CLI_OPT_DIGEST, 1, -1};

/* gkx offer show PID. */
static int
s_offer_show (const cli_args_t *args, const char *pid, const char *dir)
{
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    s_url (url, pid, args->digest ? "/offer?digest=1" : "/offer");
    if (cli_api (dir, "GET", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args->json) {
        cli_json_print (reply);
    }
    else if (args->digest) {
        printf ("%s\n", s_str (reply, "digest"));
    }
    else {
        printf ("partnership:  %s\ndigest:       %s\n\n", pid, s_str (reply, "digest"));
        cli_table_t *table = cli_table_new (2, "FIELD", "VALUE");
        s_offer_rows (table, "", json_object_get (reply, "offer"));
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

/* gkx offer set|propose PID EDIT...: one edit or propose entry. */
static int
s_offer_write (const cli_args_t *args, const char *pid, const char *dir, int is_propose)
{
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    json_t *edits = json_array ();
    for (int i = 2; i < args->count; i++) {
        json_t *edit = json_string (args->args[i]);
        if (!edit) {
            json_decref (edits);
            return cli_fail ("edit %d is not valid UTF-8", i - 1);
        }
        json_array_append_new (edits, edit);
    }
    json_t *body = json_pack ("{s:o}", "edits", edits);
    s_url (url, pid, is_propose ? "/proposals" : "/offer");
    int rc = cli_api (dir, is_propose ? "POST" : "PATCH", url, body, &reply);
    json_decref (body);
    if (rc != CLI_OK) {
        return CLI_FAIL;
    }
    if (args->json) {
        cli_json_print (reply);
    }
    else if (is_propose) {
        printf ("%s\n", s_str (reply, "proposal"));
    }
    else {
        printf ("offer updated; digest %s\n", s_str (reply, "digest"));
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_offer (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_offer_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    const char *verb = args.args[0];
    int is_show = strcmp (verb, "show") == 0;
    int is_set = strcmp (verb, "set") == 0;
    int is_propose = strcmp (verb, "propose") == 0;
    const char *problem = NULL;
    if (!is_show && !is_set && !is_propose) {
        problem = "expected show, set or propose";
    }
    else if (is_show ? args.count != 2 : args.count < 3) {
        problem = is_show ? "show takes one partnership id" : "give PID and at least one EDIT";
    }
    else if (args.digest && !is_show) {
        problem = "--digest goes with show";
    }
    if (problem) {
        fprintf (stderr, "gkx offer: %s\n\n", problem);
        fputs (s_offer_spec.usage, stderr);
        return CLI_USAGE;
    }
    char pid[GKX_ID_TEXT_BYTES];
    if (cli_pid_parse (pid, &s_offer_spec, args.args[1]) != CLI_OK) {
        return CLI_USAGE;
    }
    return is_show ? s_offer_show (&args, pid, dir) : s_offer_write (&args, pid, dir, is_propose);
}

/* Usage of gkx pause. */
static const cli_spec_t s_pause_spec = {
    "pause",
    "usage: gkx pause PID [--json]\n\n"
    "Pauses the partnership's offer (the edit status=paused); the other side sees\n"
    "it at once. Either side may pause unless the policy says otherwise.\n",
    CLI_OPT_JSON, 1, 1};

/* Usage of gkx resume. */
static const cli_spec_t s_resume_spec = {
    "resume",
    "usage: gkx resume PID [--json]\n\n"
    "Resumes a paused offer (the edit status=active).\n",
    CLI_OPT_JSON, 1, 1};

/* gkx pause|resume PID. */
static int
s_set_status (int argc, char **argv, const char *dir, const cli_spec_t *spec, const char *action,
              const char *done)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    char pid[GKX_ID_TEXT_BYTES];
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    if (cli_pid_parse (pid, spec, args.args[0]) != CLI_OK) {
        return CLI_USAGE;
    }
    s_url (url, pid, action);
    if (cli_api (dir, "POST", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
    }
    else {
        printf ("%s %s; digest %s\n", done, pid, s_str (reply, "digest"));
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_pause (int argc, char **argv, const char *dir)
{
    return s_set_status (argc, argv, dir, &s_pause_spec, "/pause", "paused");
}

int
cli_resume (int argc, char **argv, const char *dir)
{
    return s_set_status (argc, argv, dir, &s_resume_spec, "/resume", "resumed");
}

/* Usage of gkx changes. */
static const cli_spec_t s_changes_spec = {
    "changes",
    "usage: gkx changes PID [--json]\n\n"
    "The partnership's change log: every operation and proposal event in the\n"
    "merge order, with its time and author. STATE is final once the other side\n"
    "has acknowledged the entry (both signatures cover it), pending before;\n"
    "superseded when a concurrent edit won, rejected when the policy or a rule\n"
    "refused it. Both nodes print the same log once they hold the same entries;\n"
    "--json prints the records (docs/offer-schema.md section 7, and \"final\").\n",
    CLI_OPT_JSON, 1, 1};

/* Returns the CHANGE text of one change-log record (the caller frees it
   with gkx_free). */
static char *
s_change_text (const json_t *record)
{
    s_text_t buf = {NULL, 0};
    const char *op = s_str (record, "op");
    const char *field = s_str (record, "field");
    const json_t *key = json_object_get (record, "key");
    const json_t *new_value = json_object_get (record, "new");
    char id[S_SHORT_ID + 1];
    s_short (id, s_str (record, "proposal"));
    s_append (&buf, "");
    if (strcmp (op, "set") == 0) {
        s_append (&buf, field);
        s_append (&buf, ": ");
        s_append_free (&buf, s_json_text (json_object_get (record, "old")));
        s_append (&buf, " -> ");
        s_append_free (&buf, s_json_text (new_value));
    }
    else if ((strcmp (op, "add") == 0 || strcmp (op, "remove") == 0) && json_is_string (key)) {
        int is_set = json_is_array (new_value);
        s_append (&buf, field);
        if (strcmp (op, "add") == 0 && !is_set) {
            s_append (&buf, ".");
            s_append (&buf, json_string_value (key));
            s_append (&buf, " = ");
            s_append_free (&buf, s_json_text (new_value));
        }
        else {
            s_append (&buf, strcmp (op, "add") == 0 ? " += " : " -= ");
            s_append (&buf, json_string_value (key));
        }
    }
    else if (strcmp (op, "propose") == 0) {
        s_append (&buf, "proposes ");
        s_append_ops (&buf, json_object_get (record, "ops"));
        s_append (&buf, " (proposal ");
        s_append (&buf, id);
        s_append (&buf, ")");
    }
    else {
        s_append (&buf, strcmp (op, "accept") == 0    ? "accepts"
                        : strcmp (op, "decline") == 0 ? "declines"
                        : strcmp (op, "withdraw") == 0 ? "withdraws"
                                                       : op);
        s_append (&buf, " proposal ");
        s_append (&buf, id);
    }
    if (json_object_get (record, "accepted_by")) {
        s_append (&buf, " (accepted proposal ");
        s_append (&buf, id);
        s_append (&buf, ")");
    }
    if (json_is_true (json_object_get (record, "rejected"))) {
        s_append (&buf, " (rejected: ");
        s_append (&buf, s_str (record, "reason"));
        s_append (&buf, ")");
    }
    return buf.data;
}

/* Returns the AUTHOR text of a record: "name (role)" (the caller frees). */
static char *
s_author_text (const json_t *record)
{
    s_text_t buf = {NULL, 0};
    const char *name = s_str (record, "author_name");
    char id[S_SHORT_ID + 1];
    s_append (&buf, *name ? name : s_short (id, s_str (record, "author")));
    s_append (&buf, " (");
    s_append (&buf, s_str (record, "author_role"));
    s_append (&buf, ")");
    return buf.data;
}

/* Parses PID [--json] as spec says and GETs the partnership's records at
   suffix ("/changes"); *reply_p (the caller's) holds them under key. Returns
   CLI_OK, or the verb's exit code (CLI_HELP means done, exit 0). */
static int
s_get_records (cli_args_t *args, const cli_spec_t *spec, int argc, char **argv,
               const char *dir, const char *suffix, json_t **reply_p)
{
    int rc = cli_args_parse (args, spec, argc, argv);
    if (rc != CLI_OK) {
        return rc;
    }
    char pid[GKX_ID_TEXT_BYTES];
    char url[S_URL_BYTES];
    if (cli_pid_parse (pid, spec, args->args[0]) != CLI_OK) {
        return CLI_USAGE;
    }
    s_url (url, pid, suffix);
    return cli_api (dir, "GET", url, NULL, reply_p) == CLI_OK ? CLI_OK : CLI_FAIL;
}

int
cli_changes (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    json_t *reply = NULL;
    int rc = s_get_records (&args, &s_changes_spec, argc, argv, dir, "/changes", &reply);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    const json_t *records = json_object_get (reply, "changes");
    if (args.json) {
        cli_json_print (records);
    }
    else if (json_array_size (records) == 0) {
        printf ("no changes since the offer was shared\n");
    }
    else {
        cli_table_t *table = cli_table_new (4, "TIME", "AUTHOR", "STATE", "CHANGE");
        size_t i;
        json_t *record;
        json_array_foreach (records, i, record) {
            char *author = s_author_text (record);
            char *change = s_change_text (record);
            const char *state = json_is_true (json_object_get (record, "rejected")) ? "rejected"
                                : json_object_get (record, "superseded_by")       ? "superseded"
                                : json_is_true (json_object_get (record, "final")) ? "final"
                                                                                   : "pending";
            cli_table_add (table, s_str (record, "time"), author, state, change);
            gkx_free (author);
            gkx_free (change);
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx proposals. */
static const cli_spec_t s_proposals_spec = {
    "proposals",
    "usage: gkx proposals PID [--json]\n\n"
    "The partnership's proposals: id, author, status (pending, accepted,\n"
    "declined, withdrawn) and the proposed edits. Answer one with gkx accept,\n"
    "gkx decline (the other side) or gkx withdraw (its author), giving the id or\n"
    "its first 8 or more digits.\n",
    CLI_OPT_JSON, 1, 1};

int
cli_proposals (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    json_t *reply = NULL;
    int rc = s_get_records (&args, &s_proposals_spec, argc, argv, dir, "/proposals", &reply);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    const json_t *records = json_object_get (reply, "proposals");
    if (args.json) {
        cli_json_print (records);
    }
    else if (json_array_size (records) == 0) {
        printf ("no proposals\n");
    }
    else {
        cli_table_t *table = cli_table_new (5, "PROPOSAL", "TIME", "AUTHOR", "STATUS", "EDITS");
        size_t i;
        json_t *record;
        json_array_foreach (records, i, record) {
            char id[S_SHORT_ID + 1];
            char *author = s_author_text (record);
            s_text_t ops = {NULL, 0};
            s_append (&ops, "");
            s_append_ops (&ops, json_object_get (record, "ops"));
            cli_table_add (table, s_short (id, s_str (record, "id")), s_str (record, "time"),
                           author, s_str (record, "status"), ops.data);
            gkx_free (author);
            gkx_free (ops.data);
        }
        cli_table_print (table);
        cli_table_destroy (&table);
    }
    json_decref (reply);
    return CLI_OK;
}

/* Usage of gkx accept. */
static const cli_spec_t s_accept_spec = {
    "accept",
    "usage: gkx accept PID PROPOSAL_ID [--json]\n\n"
    "Accepts the other side's proposal: its edits apply now, on both nodes.\n"
    "PROPOSAL_ID is the id gkx proposals shows, or its first 8 or more digits.\n",
    CLI_OPT_JSON, 2, 2};

/* Usage of gkx decline. */
static const cli_spec_t s_decline_spec = {
    "decline",
    "usage: gkx decline PID PROPOSAL_ID [--json]\n\n"
    "Declines the other side's proposal: the offer stays as it is.\n",
    CLI_OPT_JSON, 2, 2};

/* Usage of gkx withdraw. */
static const cli_spec_t s_withdraw_spec = {
    "withdraw",
    "usage: gkx withdraw PID PROPOSAL_ID [--json]\n\n"
    "Withdraws a proposal of this node that is still pending.\n",
    CLI_OPT_JSON, 2, 2};

/* gkx accept|decline|withdraw PID PROPOSAL_ID. */
static int
s_answer (int argc, char **argv, const char *dir, const cli_spec_t *spec, const char *action,
          const char *done)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    char pid[GKX_ID_TEXT_BYTES];
    char url[S_URL_BYTES];
    json_t *reply = NULL;
    if (cli_pid_parse (pid, spec, args.args[0]) != CLI_OK
        || s_proposal_check (spec, args.args[1]) != CLI_OK) {
        return CLI_USAGE;
    }
    char proposal[S_PROPOSAL_MAX + 1];
    char suffix[S_SUFFIX_BYTES];
    size_t len = strlen (args.args[1]);
    for (size_t i = 0; i <= len; i++) {
        proposal[i] = (char) tolower ((unsigned char) args.args[1][i]);
    }
    snprintf (suffix, sizeof suffix, "/proposals/%s/%s", proposal, action);
    s_url (url, pid, suffix);
    if (cli_api (dir, "POST", url, NULL, &reply) != CLI_OK) {
        return CLI_FAIL;
    }
    if (args.json) {
        cli_json_print (reply);
    }
    else {
        printf ("%s proposal %s; offer digest %s\n", done, s_str (reply, "proposal"),
                s_str (reply, "digest"));
    }
    json_decref (reply);
    return CLI_OK;
}

int
cli_accept (int argc, char **argv, const char *dir)
{
    return s_answer (argc, argv, dir, &s_accept_spec, "accept", "accepted");
}

int
cli_decline (int argc, char **argv, const char *dir)
{
    return s_answer (argc, argv, dir, &s_decline_spec, "decline", "declined");
}

int
cli_withdraw (int argc, char **argv, const char *dir)
{
    return s_answer (argc, argv, dir, &s_withdraw_spec, "withdraw", "withdrew");
}

/* Usage of gkx export. */
static const cli_spec_t s_export_spec = {
    "export",
    "usage: gkx export PID FILE [--json]\n\n"
    "The running node sends the partnership's log (both chains, every entry as\n"
    "signed), the format gkx-audit verifies, and gkx writes it to FILE, replacing\n"
    "it whole; FILE's directory must exist.\n"
    "(gkx log export does the same from the store when the node is down.)\n",
    CLI_OPT_JSON, 2, 2};

/* Writes file as an absolute path into out (PATH_MAX): the real path of
   its directory, then its name. */
static int
s_absolute (char out[PATH_MAX], const char *file)
{
    const char *slash = strrchr (file, '/');
    const char *name = slash ? slash + 1 : file;
    if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0) {
        fprintf (stderr, "gkx export: \"%s\" does not name a file\n", file);
        return CLI_USAGE;
    }
    char dir[PATH_MAX];
    size_t dir_len = !slash ? 0 : slash == file ? 1 : (size_t) (slash - file);
    if (dir_len >= sizeof dir) {
        return cli_fail ("%s: path too long", file);
    }
    memcpy (dir, dir_len ? file : ".", dir_len ? dir_len : 1);
    dir[dir_len ? dir_len : 1] = '\0';
    char *real = realpath (dir, NULL);
    if (!real) {
        return cli_fail ("%s: %s", dir, strerror (errno));
    }
    int len = snprintf (out, PATH_MAX, "%s/%s", strcmp (real, "/") == 0 ? "" : real, name);
    free (real);
    if (len < 0 || len >= PATH_MAX) {
        return cli_fail ("%s: path too long", file);
    }
    return CLI_OK;
}

/* Writes len bytes to path through path.tmp, synced and renamed over it,
   so that no reader sees half a file. */
static int
s_file_replace (const char *path, const uint8_t *data, size_t len)
{
    char tmp[PATH_MAX + 8];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *file = fopen (tmp, "wb");
    if (!file) {
        return cli_fail ("%s: %s", tmp, strerror (errno));
    }
    int ok = fwrite (data, 1, len, file) == len && fflush (file) == 0
        && fsync (fileno (file)) == 0;
    int saved = errno;
    ok = fclose (file) == 0 && ok;
    if (!ok || rename (tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink (tmp);
        return cli_fail ("%s: %s", path, strerror (saved));
    }
    return CLI_OK;
}

int
cli_export (int argc, char **argv, const char *dir)
{
    cli_args_t args;
    int rc = cli_args_parse (&args, &s_export_spec, argc, argv);
    if (rc != CLI_OK) {
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    char pid[GKX_ID_TEXT_BYTES];
    char url[S_URL_BYTES];
    char path[PATH_MAX];
    if (cli_pid_parse (pid, &s_export_spec, args.args[0]) != CLI_OK) {
        return CLI_USAGE;
    }
    rc = s_absolute (path, args.args[1]);
    if (rc != CLI_OK) {
        return rc;
    }
    /* The node sends the export and gkx writes it, with the rights of its
       own user: the node writes no file a client names. */
    uint8_t *data = NULL;
    size_t len = 0;
    s_url (url, pid, "/export");
    if (cli_client_fetch (dir, url, &data, &len) != CLI_OK) {
        return CLI_FAIL;
    }
    rc = s_file_replace (path, data, len);
    gkx_free (data);
    if (rc != CLI_OK) {
        return rc;
    }
    if (args.json) {
        json_t *reply = json_pack ("{s:s, s:s, s:I}", "partnership", pid, "path", path, "bytes",
                                   (json_int_t) len);
        cli_json_print (reply);
        json_decref (reply);
    }
    else {
        printf ("exported %s to %s\n", pid, path);
    }
    return CLI_OK;
}
