/*  cli - shared declarations of the gkx command line.
    Part of gokart-exchange; MIT licence.

    main.c finds the node directory and the verb; each cmd_*.c implements a
    group of verbs. Verbs return the process exit code: 0 success, 1 failure
    (a message on stderr), 2 usage error.
*/
#ifndef GKX_CLI_H_INCLUDED
#define GKX_CLI_H_INCLUDED

#include <gkx/card.h>
#include <gkx/config.h>
#include <gkx/identity.h>

#include <jansson.h>
#include <stddef.h>

/* Exit codes of every verb. */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Name of the node's current signed card inside its directory. */
#define CLI_CARD_NAME "card.json"

/* A verb: argv[0] is the verb's name; dir is the node directory or NULL. */
typedef int (cli_verb_fn) (int argc, char **argv, const char *dir);

/* gkx init: creates a node directory. */
int cli_init (int argc, char **argv, const char *dir);

/* gkx card: prints the node's tenant card. */
int cli_card (int argc, char **argv, const char *dir);

/* gkx log: offline views of the local store (list, export, import). */
int cli_log (int argc, char **argv, const char *dir);

/* gkx status: the running node's id, role, partnerships and peers. */
int cli_status (int argc, char **argv, const char *dir);

/* gkx peer: add a partner's card, list the peers. */
int cli_peer (int argc, char **argv, const char *dir);

/* gkx publishers: the publishers the node's directories list (cmd_directory.c). */
int cli_publishers (int argc, char **argv, const char *dir);

/* gkx directory-address: the address of the directory this node serves. */
int cli_directory_address (int argc, char **argv, const char *dir);

/* gkx share: share an offer with a publisher, opening a partnership. */
int cli_share (int argc, char **argv, const char *dir);

/* gkx partnerships: list the partnerships. */
int cli_partnerships (int argc, char **argv, const char *dir);

/* gkx offer: show, set or propose changes to a partnership's offer. */
int cli_offer (int argc, char **argv, const char *dir);

/* gkx pause and gkx resume: the offer's status. */
int cli_pause (int argc, char **argv, const char *dir);
int cli_resume (int argc, char **argv, const char *dir);

/* gkx changes: a partnership's change log. */
int cli_changes (int argc, char **argv, const char *dir);

/* gkx proposals: a partnership's proposals and their answers. */
int cli_proposals (int argc, char **argv, const char *dir);

/* gkx accept, decline and withdraw: answer a proposal. */
int cli_accept (int argc, char **argv, const char *dir);
int cli_decline (int argc, char **argv, const char *dir);
int cli_withdraw (int argc, char **argv, const char *dir);

/* gkx export: the node writes a partnership's log to a file. */
int cli_export (int argc, char **argv, const char *dir);

/* gkx conversions: a partnership's conversions (cmd_conversion.c). */
int cli_conversions (int argc, char **argv, const char *dir);

/* gkx conversion status: changes a conversion's status. */
int cli_conversion (int argc, char **argv, const char *dir);

/* gkx report: conversion counts and payouts, with the report digest. */
int cli_report (int argc, char **argv, const char *dir);

/* gkx postback-url: the URL to paste into an MMP for a partnership. */
int cli_postback_url (int argc, char **argv, const char *dir);

/* gkx deliveries: the webhook deliveries, and replaying one. */
int cli_deliveries (int argc, char **argv, const char *dir);

/* gkx notifications: the e-mail outbox (cmd_conversion.c). */
int cli_notifications (int argc, char **argv, const char *dir);

/* Helpers of the verbs that talk to the running node (cmd_node.c). */

/* Returned by cli_args_parse when --help was printed: the verb exits 0. */
#define CLI_HELP (-1)

/* Options a verb takes, for cli_spec_t.options. */
#define CLI_OPT_JSON 0x01       /* --json */
#define CLI_OPT_DIGEST 0x02     /* --digest */
#define CLI_OPT_SHARE 0x04      /* --publisher ID, --offer FILE, --policy FILE */

/* What a verb takes. */
typedef struct {
    const char *name;           /* the verb as typed, "offer show", for messages */
    const char *usage;          /* usage text, printed for --help and usage errors */
    int options;                /* CLI_OPT_* */
    int min_args;               /* fewest positional arguments */
    int max_args;               /* most positional arguments, -1 for any number */
} cli_spec_t;

/* A verb's arguments as cli_args_parse leaves them; strings borrowed from
   argv. */
typedef struct {
    int json;                   /* --json */
    int digest;                 /* --digest */
    const char *publisher;      /* --publisher ID */
    const char *offer;          /* --offer FILE */
    const char *policy;         /* --policy FILE */
    char **args;                /* the positional arguments */
    int count;                  /* how many */
} cli_args_t;

/* Parses argv (argv[0] is the verb) as spec says into *out. Returns CLI_OK,
   CLI_HELP after printing the usage for --help, or CLI_USAGE after printing
   the problem and the usage on stderr. */
int cli_args_parse (cli_args_t *out, const cli_spec_t *spec, int argc, char **argv);

/* Checks that text is a partnership id (64 hex digits) and writes its
   lowercase form into out; prints the problem and returns CLI_USAGE when it
   is not. */
int cli_pid_parse (char out[GKX_ID_TEXT_BYTES], const cli_spec_t *spec, const char *text);

/* Fewest hex digits of a partnership id prefix. */
#define CLI_PID_PREFIX_MIN 8

/* Writes the lowercase id of the partnership that text names into out:
   its id (64 hex digits, checked as cli_pid_parse does, no request), or a
   unique prefix of at least CLI_PID_PREFIX_MIN hex digits, looked up in
   the running node's partnerships (GET /v1/partnerships). Returns CLI_OK;
   CLI_USAGE after printing the problem when text is neither; CLI_FAIL
   after printing one line when the node cannot be asked, or no
   partnership or more than one starts with the prefix. Defined in
   cmd_conversion.c. */
int cli_pid_resolve (char out[GKX_ID_TEXT_BYTES], const cli_spec_t *spec, const char *dir,
                     const char *text);

/* Sends METHOD PATH with body (may be NULL) to the node of dir and, on a
   2xx reply, returns CLI_OK with the reply in *reply_p (the caller's; may
   be NULL). Otherwise prints one line and returns CLI_FAIL (no directory,
   node not running, or the node's error message). */
int cli_api (const char *dir, const char *method, const char *path, const json_t *body,
             json_t **reply_p);

/* Prints json on stdout, indented, keys sorted, with a final newline. */
void cli_json_print (const json_t *json);

/* Writes text for the terminal into out (size bytes): control characters
   become spaces, and the text is cut at size - 1 bytes. Returns out. */
const char *cli_printable (char *out, size_t size, const char *text);

/* A table for people: columns as wide as their widest cell. */
typedef struct cli_table cli_table_t;

/* Creates a table with columns headers (const char *, columns of them). */
cli_table_t *cli_table_new (size_t columns, ...);

/* Adds a row of columns cells (const char *; NULL prints as "-"). */
void cli_table_add (cli_table_t *self, ...);

/* Prints the table on stdout. */
void cli_table_print (const cli_table_t *self);

/* Destroys a table; accepts NULL; sets *self_p to NULL. */
void cli_table_destroy (cli_table_t **self_p);

/* Prints "gkx: " and a formatted message to stderr; returns CLI_FAIL. */
int cli_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Loads the node's config and identity; prints the problem and returns
   CLI_FAIL when either cannot be read. */
int cli_node_open (const char *dir, gkx_config_t **config_p, gkx_identity_t **identity_p);

/* Returns the node's current card: the stored one when it still matches the
   configuration, else a newly issued and saved one. */
int cli_card_current (const char *dir, const gkx_config_t *config,
                      const gkx_identity_t *identity, gkx_card_t **card_p);

/* Milliseconds since the epoch. */
unsigned long long cli_now_ms (void);

#endif
