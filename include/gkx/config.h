/*  config - a node's INI configuration (DIR/gkx.conf).
    Part of gokart-exchange; MIT licence.

    Parsed with inih. Every key is documented in the file gkx init writes
    and in docs/config.md. An unknown section or key, or a bad value, is an
    error naming the line, so a typo never silently falls back to a default.
*/
#ifndef GKX_CONFIG_H_INCLUDED
#define GKX_CONFIG_H_INCLUDED

#include <gkx/error.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the configuration file inside a node directory. */
#define GKX_CONFIG_NAME "gkx.conf"
/* Name of the API token file inside a node directory. */
#define GKX_TOKEN_NAME "api.token"
/* Most verticals or countries in the configuration. */
#define GKX_CONFIG_LIST_MAX 64

/* A loaded configuration; strings are owned by it. */
typedef struct {
    int role;                   /* GKX_ROLE_* */
    char *name;                 /* display name */
    char *email;                /* contact address, "" when none */
    char *listen;               /* replication endpoint tcp://host:port */
    char *api_listen;           /* tenant API host:port */
    int accept_any;             /* publisher: 1 accepts partnerships from any
                                   advertiser, 0 (default) only from listed peers */
    char *verticals[GKX_CONFIG_LIST_MAX];
    size_t verticals_count;
    char *countries[GKX_CONFIG_LIST_MAX];
    size_t countries_count;
} gkx_config_t;

/* What gkx init puts in a new configuration. */
typedef struct {
    int role;
    const char *name;
    const char *email;          /* NULL or "" for none */
    const char *listen;         /* NULL for the default */
    const char *api_listen;     /* NULL for the default */
} gkx_config_init_t;

/* Default replication endpoint and API address. */
#define GKX_CONFIG_DEFAULT_LISTEN "tcp://127.0.0.1:7700"
#define GKX_CONFIG_DEFAULT_API "127.0.0.1:7701"

/* Loads DIR/gkx.conf into *self_p (the caller's). Returns GKX_OK, GKX_EIO
   (unreadable) or GKX_ECONFIG with errbuf naming the line and key. */
GKX_NODISCARD int gkx_config_load (gkx_config_t **self_p, const char *dir, char *errbuf);

/* Writes a new, fully commented DIR/gkx.conf. Returns GKX_OK, GKX_EEXIST or
   GKX_EIO. */
GKX_NODISCARD int gkx_config_write (const char *dir, const gkx_config_init_t *init,
                                    char *errbuf);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_config_destroy (gkx_config_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
