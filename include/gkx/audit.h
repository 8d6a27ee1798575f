/*  audit - offline verification of exported logs.
    Part of gokart-exchange; MIT licence.

    verify checks everything an export claims: each entry's encoding and
    signature, membership, seq continuity and hash links of both chains,
    clocks, cross-links between the chains, the genesis, and equivocation
    (two entries at one author and seq). It collects every defect instead of
    stopping at the first. compare tells, per chain, whether two exports of
    one partnership agree (one a prefix of the other) or where they fork.
    Pure: it works on parsed exports and needs no store or network.
*/
#ifndef GKX_AUDIT_H_INCLUDED
#define GKX_AUDIT_H_INCLUDED

#include <gkx/error.h>
#include <gkx/logfile.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Index value of a defect that belongs to no single entry. */
#define GKX_AUDIT_NO_ENTRY ((size_t) -1)

/* One thing wrong with an export. */
typedef struct {
    size_t index;                       /* entry index in the export, or GKX_AUDIT_NO_ENTRY */
    size_t other_index;                 /* second entry (equivocation), or GKX_AUDIT_NO_ENTRY */
    int role;                           /* chain (GKX_ROLE_*), or 0 when unknown */
    uint64_t seq;                       /* seq in that chain, or 0 */
    int code;                           /* GKX_E* */
    char message[GKX_ERRBUF_BYTES];
} gkx_audit_defect_t;

/* What one chain of a sound export holds. */
typedef struct {
    uint64_t entries;                   /* valid entries */
    uint64_t head_seq;
    uint8_t head_hash[32];
    uint64_t first_hlc;
    uint64_t last_hlc;
    uint64_t acknowledged_seq;          /* highest seq the other member has seen */
} gkx_audit_chain_t;

typedef struct gkx_audit_report gkx_audit_report_t;

/* Verifies an export; the report is the caller's. Never fails. */
gkx_audit_report_t *gkx_audit_verify (const gkx_logfile_t *log);

/* Frees; accepts NULL; sets *self_p to NULL. */
void gkx_audit_report_destroy (gkx_audit_report_t **self_p);

/* 1 when no defect was found. */
int gkx_audit_is_sound (const gkx_audit_report_t *self);

/* Number of defects, and defect i (borrowed for the report's life). */
size_t gkx_audit_defect_count (const gkx_audit_report_t *self);
const gkx_audit_defect_t *gkx_audit_defect (const gkx_audit_report_t *self, size_t i);

/* Summary of one chain (role GKX_ROLE_*), borrowed for the report's life. */
const gkx_audit_chain_t *gkx_audit_chain (const gkx_audit_report_t *self, int role);

/* How two exports' copies of one chain relate. */
typedef enum {
    GKX_AUDIT_EQUAL = 1,        /* same entries */
    GKX_AUDIT_A_PREFIX = 2,     /* A holds a prefix of B */
    GKX_AUDIT_B_PREFIX = 3,     /* B holds a prefix of A */
    GKX_AUDIT_FORK = 4,         /* they differ at fork_seq */
} gkx_audit_relation_t;

/* The comparison of one chain. */
typedef struct {
    int role;
    int relation;               /* gkx_audit_relation_t */
    uint64_t a_length;          /* contiguous entries from seq 1 in A */
    uint64_t b_length;
    uint64_t fork_seq;          /* first differing seq, when FORK */
} gkx_audit_comparison_t;

/* Compares two exports chain by chain into out[0] (advertiser) and out[1]
   (publisher). Returns GKX_OK or GKX_EINVAL when they are exports of
   different partnerships. */
GKX_NODISCARD int gkx_audit_compare (const gkx_logfile_t *a, const gkx_logfile_t *b,
                                     gkx_audit_comparison_t out[2], char *errbuf);

/* "equal", "a-prefix", "b-prefix" or "fork". */
const char *gkx_audit_relation_name (int relation);

#ifdef __cplusplus
}
#endif

#endif
