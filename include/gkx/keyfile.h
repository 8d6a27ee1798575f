/*  keyfile - a node's secret keys on disk.
    Part of gokart-exchange; MIT licence.

    DIR/secret.key holds both secret keys as an INI file (base64 values),
    mode 0600. Saving refuses to overwrite; loading refuses a file that group
    or others may read, because a leaked signing key lets anyone write in the
    node's name.
*/
#ifndef GKX_KEYFILE_H_INCLUDED
#define GKX_KEYFILE_H_INCLUDED

#include <gkx/error.h>
#include <gkx/identity.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the secret key file inside a node directory. */
#define GKX_KEYFILE_NAME "secret.key"

/* Writes identity's secret keys to DIR/secret.key with mode 0600. Returns
   GKX_OK, GKX_EEXIST (a key file is there already) or GKX_EIO. */
GKX_NODISCARD int gkx_keyfile_save (const gkx_identity_t *identity, const char *dir,
                                    char *errbuf);

/* Loads the identity from DIR/secret.key. Returns GKX_OK, GKX_EIO (missing
   or unreadable), GKX_EPERM (readable by group or others), GKX_EINVAL
   (damaged), with errbuf naming the file and the problem. */
GKX_NODISCARD int gkx_keyfile_load (gkx_identity_t **identity_p, const char *dir,
                                    char *errbuf);

#ifdef __cplusplus
}
#endif

#endif
