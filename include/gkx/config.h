/*  config - a node's INI configuration (DIR/gkx.conf).
    Part of gokart-exchange; MIT licence.

    Parsed with inih. Every key is documented in the file gkx init writes
    and in docs/config.md. An unknown section or key, or a bad value, is an
    error naming the line, so a typo never silently falls back to a default.
    [postback] (the MMP-facing endpoint) serves advertisers and [webhook]
    (conversion notices) publishers; each is checked on either role but
    ignored on the other; [smtp] and [notify] (e-mail about the other
    side's changes) serve both. The module also keeps the postback token file,
    DIR/postback.token.
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
/* Name of the postback token file inside a node directory. */
#define GKX_POSTBACK_TOKEN_NAME "postback.token"
/* Random bytes in a postback token, its length as base64url text without
   padding, and the room a caller gives it (text and NUL, with spare). */
#define GKX_POSTBACK_TOKEN_RANDOM_BYTES 32
#define GKX_POSTBACK_TOKEN_CHARS 43
#define GKX_POSTBACK_TOKEN_BUF_BYTES 64
/* Most verticals, countries or allow_from networks in the configuration. */
#define GKX_CONFIG_LIST_MAX 64
/* Most directories in [directory] publish_to. */
#define GKX_CONFIG_DIRECTORIES_MAX 16
/* What a webhook secret starts with (Standard Webhooks), and how many bytes
   the base64 after it must decode to. */
#define GKX_CONFIG_WEBHOOK_PREFIX "whsec_"
#define GKX_CONFIG_WEBHOOK_SECRET_MIN_BYTES 24
#define GKX_CONFIG_WEBHOOK_SECRET_MAX_BYTES 64
/* Default and largest [notify] window_seconds. */
#define GKX_CONFIG_NOTIFY_WINDOW_DEFAULT 30
#define GKX_CONFIG_NOTIFY_WINDOW_MAX 3600

/* A loaded configuration; strings are owned by it. */
typedef struct {
    int role;                   /* GKX_ROLE_* */
    char *name;                 /* display name */
    char *email;                /* contact address, "" when none */
    char *listen;               /* replication endpoint tcp://host:port */
    char *advertise;            /* the endpoint partners connect to, written into the
                                   card: [node] advertise, or listen when not given */
    char *api_listen;           /* tenant API host:port */
    int accept_any;             /* publisher: 1 accepts partnerships from any
                                   advertiser, 0 (default) only from listed peers */
    char *verticals[GKX_CONFIG_LIST_MAX];
    size_t verticals_count;
    char *countries[GKX_CONFIG_LIST_MAX];
    size_t countries_count;
    int directory_serve;        /* [directory] serve: 1 when this node is also a directory */
    char *directory_listen;     /* [directory] listen: where the directory binds,
                                   tcp://host:port; NULL when not given */
    char *directory_publish_to[GKX_CONFIG_DIRECTORIES_MAX]; /* [directory] publish_to: the
                                   directories this node's card goes to, each an address
                                   tcp://host:port@KEY (gkx_dirmsg_address_parse) */
    size_t directory_publish_to_count;  /* entries in directory_publish_to */
    char *postback_listen;      /* advertiser: postback endpoint host:port; NULL when
                                   "off", and always NULL on a publisher */
    char *postback_base_url;    /* advertiser: the endpoint's URL as MMPs reach it, without
                                   a trailing '/' (default http://LISTEN/postback); NULL
                                   when postback_listen is */
    char *allow_from[GKX_CONFIG_LIST_MAX];  /* advertiser: networks postbacks may come
                                               from, each a word gkx_netmask_add takes */
    size_t allow_from_count;    /* entries in allow_from; 0 lets every address in */
    char *webhook_url;          /* publisher: http(s) URL conversions are posted to; NULL
                                   when none, and always NULL on an advertiser */
    char *webhook_secret;       /* publisher: "whsec_" + base64 of 24 to 64 bytes,
                                   sodium_malloc'd; NULL exactly when webhook_url is */
    char *smtp_url;             /* [smtp] url: smtp:// or smtps:// server e-mail goes through;
                                   NULL when none */
    char *smtp_user;            /* [smtp] user: its login, NULL when none */
    char *smtp_password_file;   /* [smtp] password_file as written (relative to the node
                                   directory unless absolute); NULL exactly when smtp_user is */
    char *smtp_from;            /* [smtp] from: the sender address ([node] email by default);
                                   NULL when notifications are off */
    char *notify_to[GKX_CONFIG_LIST_MAX];   /* [notify] to: the addresses e-mail goes to */
    size_t notify_to_count;     /* entries in notify_to */
    int notify_window_seconds;  /* [notify] window_seconds: how long changes to one
                                   partnership gather before they go out as one message */
    int notify_on;              /* 1 when [smtp] url and [notify] to are both given: each
                                   counterparty change is queued and e-mailed */
} gkx_config_t;

/* What gkx init puts in a new configuration. */
typedef struct {
    int role;
    const char *name;
    const char *email;          /* NULL or "" for none */
    const char *listen;         /* NULL for the default */
    const char *api_listen;     /* NULL for the default */
    const char *postback_listen; /* advertiser: host:port or "off"; NULL for the default */
    const char *advertise;      /* NULL: partners use listen (the key stays commented) */
} gkx_config_init_t;

/* Default replication endpoint and API address. */
#define GKX_CONFIG_DEFAULT_LISTEN "tcp://127.0.0.1:7700"
#define GKX_CONFIG_DEFAULT_API "127.0.0.1:7701"
/* Default postback endpoint of an advertiser, and the path its default
   base_url ends with. */
#define GKX_CONFIG_DEFAULT_POSTBACK "127.0.0.1:7702"
#define GKX_CONFIG_POSTBACK_PATH "/postback"

/* Returns NULL when value may be [node] advertise: tcp://host:port naming a
   host partners can reach (not a wildcard such as 0.0.0.0 or *); else what is
   wrong, as a phrase for "advertise: ...". */
const char *gkx_config_advertise_problem (const char *value);

/* Loads DIR/gkx.conf into *self_p (the caller's). Returns GKX_OK, GKX_EIO
   (unreadable) or GKX_ECONFIG with errbuf naming the line and key. */
GKX_NODISCARD int gkx_config_load (gkx_config_t **self_p, const char *dir, char *errbuf);

/* Parses the text of a gkx.conf (len bytes, not NUL-terminated) into
   *self_p (the caller's), exactly as gkx_config_load reads the file; name
   stands for the file in messages. Returns GKX_OK, GKX_EIO or GKX_ECONFIG
   with errbuf naming the line and key. */
GKX_NODISCARD int gkx_config_parse (gkx_config_t **self_p, const char *text, size_t len,
                                    const char *name, char *errbuf);

/* Writes a new, fully commented DIR/gkx.conf. Returns GKX_OK, GKX_EEXIST or
   GKX_EIO. */
GKX_NODISCARD int gkx_config_write (const char *dir, const gkx_config_init_t *init,
                                    char *errbuf);

/* Frees (the webhook secret is wiped); accepts NULL; sets *self_p to NULL. */
void gkx_config_destroy (gkx_config_t **self_p);

/* Reads the postback token of the node in dir (DIR/postback.token: 43
   characters, the base64url without padding of 32 random bytes, and a
   newline) into token, NUL-terminated. When the file is missing and create
   is not 0, makes a new token first: written to a temporary file of mode
   0600, synced, then linked into place, so a reader never sees half a file
   and two creators racing agree on the first one's token. Refuses a file
   that group or others may read. Returns GKX_OK, GKX_ENOTFOUND (missing, and
   create is 0), GKX_EPERM (readable by others), GKX_EINVAL (the file does
   not hold a token) or GKX_EIO, with errbuf naming the file and never the
   token. The caller wipes token (sodium_memzero) when done. */
GKX_NODISCARD int gkx_config_postback_token (const char *dir,
                                             char token[GKX_POSTBACK_TOKEN_BUF_BYTES],
                                             int create, char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
