/*  keyfile - a node's secret keys on disk.
    Part of gokart-exchange; MIT licence.

    The file is written under a temporary name, synced and linked into place,
    so a crash never leaves a half-written key where a node would load it.
    Key material read from disk passes through guarded buffers and is wiped
    on every path.
*/
#include <gkx/alloc.h>
#include <gkx/keyfile.h>

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base64 text of the longest key, with NUL. */
#define S_B64_BYTES (sodium_base64_ENCODED_LEN (GKX_SIGN_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL))

/* Builds DIR/name into out. */
static int
s_path (char *out, size_t out_len, const char *dir, const char *name)
{
    int n = snprintf (out, out_len, "%s/%s", dir, name);
    return n > 0 && (size_t) n < out_len ? GKX_OK : GKX_EINVAL;
}

int
gkx_keyfile_save (const gkx_identity_t *identity, const char *dir, char *errbuf)
{
    char path[4096];
    char tmp[4096];
    if (s_path (path, sizeof path, dir, GKX_KEYFILE_NAME) != GKX_OK
        || s_path (tmp, sizeof tmp, dir, GKX_KEYFILE_NAME ".tmp") != GKX_OK) {
        return gkx_fail (errbuf, GKX_EINVAL, "key file: directory name too long");
    }
    char sign_b64[S_B64_BYTES];
    char curve_b64[S_B64_BYTES];
    sodium_bin2base64 (sign_b64, sizeof sign_b64, gkx_identity_sign_secret (identity),
                       GKX_SIGN_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64 (curve_b64, sizeof curve_b64, gkx_identity_curve_secret (identity),
                       GKX_CURVE_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    char text[512];
    int len = snprintf (text, sizeof text,
                        "# gokart-exchange node secret keys. Keep private: mode 0600.\n"
                        "# Losing this file loses the node's identity.\n"
                        "[keys]\nsign = %s\ncurve = %s\n", sign_b64, curve_b64);
    sodium_memzero (sign_b64, sizeof sign_b64);
    sodium_memzero (curve_b64, sizeof curve_b64);

    int rc = GKX_OK;
    unlink (tmp);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = gkx_fail (errbuf, GKX_EIO, "key file %s: %s", tmp, strerror (errno));
    }
    else {
        ssize_t written = write (fd, text, (size_t) len);
        if (written != len || fsync (fd) != 0) {
            rc = gkx_fail (errbuf, GKX_EIO, "key file %s: write failed: %s", tmp,
                           strerror (errno));
        }
        close (fd);
    }
    sodium_memzero (text, sizeof text);
    if (rc == GKX_OK && link (tmp, path) != 0) {
        rc = errno == EEXIST
            ? gkx_fail (errbuf, GKX_EEXIST, "key file %s exists already; not overwritten", path)
            : gkx_fail (errbuf, GKX_EIO, "key file %s: %s", path, strerror (errno));
    }
    unlink (tmp);
    return rc;
}

/* What the INI handler collects. */
typedef struct {
    uint8_t *sign;      /* guarded: GKX_SIGN_SECRET_BYTES */
    uint8_t *curve;     /* guarded: GKX_CURVE_KEY_BYTES */
    int have_sign;
    int have_curve;
    int bad_key;        /* a key other than sign and curve, or one not valid */
} s_keys_t;

/* Decodes one base64 value of exactly size bytes. */
static int
s_b64 (uint8_t *out, size_t size, const char *value)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin (out, size, value, strlen (value), NULL, &bin_len, &end,
                           sodium_base64_VARIANT_ORIGINAL) != 0
        || bin_len != size || *end != '\0') {
        return 0;
    }
    return 1;
}

/* inih handler: takes [keys] sign and curve, refuses anything else. */
static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    s_keys_t *keys = user;
    int ok = 0;
    if (strcmp (section, "keys") == 0 && strcmp (name, "sign") == 0) {
        ok = s_b64 (keys->sign, GKX_SIGN_SECRET_BYTES, value);
        keys->have_sign = ok;
    }
    else if (strcmp (section, "keys") == 0 && strcmp (name, "curve") == 0) {
        ok = s_b64 (keys->curve, GKX_CURVE_KEY_BYTES, value);
        keys->have_curve = ok;
    }
    if (!ok) {
        keys->bad_key = 1;
    }
    return 1;
}

int
gkx_keyfile_load (gkx_identity_t **identity_p, const char *dir, char *errbuf)
{
    char path[4096];
    if (s_path (path, sizeof path, dir, GKX_KEYFILE_NAME) != GKX_OK) {
        return gkx_fail (errbuf, GKX_EINVAL, "key file: directory name too long");
    }
    struct stat st;
    if (stat (path, &st) != 0) {
        return gkx_fail (errbuf, GKX_EIO, "key file %s: %s", path, strerror (errno));
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        return gkx_fail (errbuf, GKX_EPERM,
                         "key file %s: mode %03o lets others read it; chmod 600 it",
                         path, (unsigned) (st.st_mode & 0777));
    }
    FILE *file = fopen (path, "r");
    if (!file) {
        return gkx_fail (errbuf, GKX_EIO, "key file %s: %s", path, strerror (errno));
    }
    if (sodium_init () < 0) {
        fclose (file);
        return gkx_fail (errbuf, GKX_EIO, "libsodium failed to initialise");
    }
    s_keys_t keys = {0};
    keys.sign = sodium_malloc (GKX_SIGN_SECRET_BYTES);
    keys.curve = sodium_malloc (GKX_CURVE_KEY_BYTES);
    int parse = ini_parse_file (file, s_handler, &keys);
    fclose (file);
    int rc;
    if (parse != 0 || keys.bad_key || !keys.have_sign || !keys.have_curve) {
        rc = gkx_fail (errbuf, GKX_EINVAL,
                       "key file %s: damaged; [keys] must hold exactly a valid sign and curve key",
                       path);
    }
    else {
        rc = gkx_identity_open (identity_p, keys.sign, keys.curve);
        if (rc != GKX_OK) {
            gkx_fail (errbuf, rc, "key file %s: the signing key is damaged", path);
        }
    }
    sodium_free (keys.sign);
    sodium_free (keys.curve);
    return rc;
}
