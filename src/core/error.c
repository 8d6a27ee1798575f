/*  error - the single error space of libgkx.
    Part of gokart-exchange; MIT licence.

    Texts and names for the GKX_E* codes, and gkx_fail, which validators use
    to fill an errbuf and return a code in one statement.
*/
#include <gkx/error.h>

#include <stdarg.h>
#include <stdio.h>

/* One row per code, indexed by the code, so the two tables cannot drift. */
static const struct {
    const char *name;
    const char *text;
} s_errors[GKX_ECODE_COUNT] = {
    [GKX_OK] = {"GKX_OK", "success"},
    [GKX_EINVAL] = {"GKX_EINVAL", "invalid argument"},
    [GKX_EDECODE] = {"GKX_EDECODE", "malformed or truncated encoding"},
    [GKX_ENONCANON] = {"GKX_ENONCANON", "not the canonical encoding"},
    [GKX_EVERSION] = {"GKX_EVERSION", "unknown version"},
    [GKX_EKIND] = {"GKX_EKIND", "unknown entry kind"},
    [GKX_ETOOBIG] = {"GKX_ETOOBIG", "size limit exceeded"},
    [GKX_EUTF8] = {"GKX_EUTF8", "invalid UTF-8"},
    [GKX_EFLOAT] = {"GKX_EFLOAT", "float in signed data"},
    [GKX_EMAPKEY] = {"GKX_EMAPKEY", "map keys not unique sorted strings"},
    [GKX_ETRAILING] = {"GKX_ETRAILING", "trailing bytes after the value"},
    [GKX_ETYPE] = {"GKX_ETYPE", "field of the wrong type"},
    [GKX_ESIGNATURE] = {"GKX_ESIGNATURE", "signature does not verify"},
    [GKX_ENOTFOUND] = {"GKX_ENOTFOUND", "not found"},
    [GKX_EEXIST] = {"GKX_EEXIST", "already exists"},
    [GKX_ENOTMEMBER] = {"GKX_ENOTMEMBER", "author is not a member of the partnership"},
    [GKX_EGAP] = {"GKX_EGAP", "sequence gap"},
    [GKX_EPREV] = {"GKX_EPREV", "prev_hash does not link to the chain"},
    [GKX_ECROSSLINK] = {"GKX_ECROSSLINK", "cross-link contradicts the held chain"},
    [GKX_EAHEAD] = {"GKX_EAHEAD", "counterparty holds entries of ours that we lack"},
    [GKX_ECLOCK] = {"GKX_ECLOCK", "hybrid clock does not advance"},
    [GKX_EEQUIVOCATION] = {"GKX_EEQUIVOCATION", "equivocation: two entries at one seq"},
    [GKX_EFROZEN] = {"GKX_EFROZEN", "partnership is frozen"},
    [GKX_EBODY] = {"GKX_EBODY", "body malformed for its kind"},
    [GKX_EPOLICY] = {"GKX_EPOLICY", "not allowed by the partnership's policy"},
    [GKX_ESTORE] = {"GKX_ESTORE", "store failure"},
    [GKX_EFORMAT] = {"GKX_EFORMAT", "unsupported format version"},
    [GKX_EIO] = {"GKX_EIO", "input/output error"},
    [GKX_EPERM] = {"GKX_EPERM", "secret file has unsafe permissions"},
    [GKX_ECONFIG] = {"GKX_ECONFIG", "invalid configuration"},
};

const char *
gkx_strerror (int code)
{
    if (code < 0 || code >= GKX_ECODE_COUNT) {
        return "unknown error";
    }
    return s_errors[code].text;
}

const char *
gkx_errname (int code)
{
    if (code < 0 || code >= GKX_ECODE_COUNT) {
        return "GKX_EUNKNOWN";
    }
    return s_errors[code].name;
}

int
gkx_fail (char *errbuf, int code, const char *fmt, ...)
{
    if (errbuf) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (errbuf, GKX_ERRBUF_BYTES, fmt, args);
        va_end (args);
    }
    return code;
}
