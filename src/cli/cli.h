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
