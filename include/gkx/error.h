/*  error - the single error space of libgkx.
    Part of gokart-exchange; MIT licence.

    Every fallible function of libgkx returns int: GKX_OK (0) or one of the
    positive GKX_E* codes below. Dependency codes (LMDB, errno, msgpack) are
    mapped at the edge of the module that calls the dependency. Where a person
    needs detail, functions also take `char *errbuf` of GKX_ERRBUF_BYTES, which
    is written only on failure and names the field and the rule broken.
*/
#ifndef GKX_ERROR_H_INCLUDED
#define GKX_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

/* Size of every errbuf argument in libgkx. */
#define GKX_ERRBUF_BYTES 256

/* Marks functions whose result must be checked (verify, decode, ingest, open). */
#define GKX_NODISCARD __attribute__ ((warn_unused_result))

typedef enum {
    GKX_OK = 0,
    GKX_EINVAL,         /* an argument or input value is invalid */
    GKX_EDECODE,        /* bytes are not well-formed msgpack or are truncated */
    GKX_ENONCANON,      /* well-formed but not the canonical encoding */
    GKX_EVERSION,       /* unknown format or entry version */
    GKX_EKIND,          /* unknown entry kind */
    GKX_ETOOBIG,        /* a field, frame or file exceeds its size limit */
    GKX_EUTF8,          /* a string is not valid UTF-8 */
    GKX_EFLOAT,         /* a float appears in signed data */
    GKX_EMAPKEY,        /* map keys duplicated, unsorted or not strings */
    GKX_ETRAILING,      /* bytes follow the encoded value */
    GKX_ETYPE,          /* a field has the wrong type */
    GKX_ESIGNATURE,     /* a signature does not verify */
    GKX_ENOTFOUND,      /* no such record */
    GKX_EEXIST,         /* the record or file exists already */
    GKX_ENOTMEMBER,     /* the author is not a member of the partnership */
    GKX_EGAP,           /* seq is beyond the next expected one */
    GKX_EPREV,          /* prev_hash does not link to the held predecessor */
    GKX_ECROSSLINK,     /* seen_seq/seen_hash contradict the held chain */
    GKX_EAHEAD,         /* the counterparty has seen entries of ours we lack */
    GKX_ECLOCK,         /* the hybrid clock does not advance as required */
    GKX_EEQUIVOCATION,  /* two different entries at one author and seq */
    GKX_EFROZEN,        /* the partnership is frozen */
    GKX_EBODY,          /* the body is not well formed for its kind */
    GKX_EPOLICY,        /* the partnership's policy does not allow this */
    GKX_ESTORE,         /* the store (LMDB) failed */
    GKX_EFORMAT,        /* a store or file of another format version */
    GKX_EIO,            /* a file could not be read or written */
    GKX_EPERM,          /* a secret file is readable by others */
    GKX_ECONFIG,        /* the configuration is invalid */
    GKX_ECODE_COUNT     /* number of codes; not an error */
} gkx_error_t;

/* Returns a short, static, human-readable text for an error code. Unknown
   codes get "unknown error". Never returns NULL. */
const char *gkx_strerror (int code);

/* Returns the symbolic name of an error code ("GKX_EGAP"), for logs and JSON.
   Unknown codes get "GKX_EUNKNOWN". */
const char *gkx_errname (int code);

/* Writes a formatted message into errbuf (GKX_ERRBUF_BYTES) when errbuf is not
   NULL, and returns code, so validators can `return gkx_fail (...)`. */
int gkx_fail (char *errbuf, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
