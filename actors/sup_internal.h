/*
 * sup_internal.h — what the supervisor's files share: request tags, the
 * decoded form of a child spec, and the spec codec (sup_spec.c).
 *
 * Specs travel as msgpack (a supervisor's spawn arguments, a start_child
 * request), so the supervisor actor reads the same bytes whether a spec
 * came from tr_sup_start, from a parent supervisor or from a request. The
 * codec validates on both sides: a caller learns of a bad spec before
 * anything is sent, and the supervisor never trusts bytes it is handed.
 */
#ifndef TROUPE_SUP_INTERNAL_H
#define TROUPE_SUP_INTERNAL_H

#include "troupe_sup.h"

/* Requests a supervisor answers. */
#define SUP_TAG_START "tr.sup.start"
#define SUP_TAG_START_DYN "tr.sup.start_dyn"
#define SUP_TAG_TERMINATE "tr.sup.terminate"
#define SUP_TAG_TERMINATE_REF "tr.sup.terminate_ref"
#define SUP_TAG_RESTART "tr.sup.restart"
#define SUP_TAG_DELETE "tr.sup.delete"
#define SUP_TAG_WHICH "tr.sup.which"
/* Replies. */
#define SUP_TAG_REF "tr.sup.ref"
#define SUP_TAG_CHILDREN "tr.sup.children"
#define SUP_TAG_DONE "tr.sup.done"
/* The tag of a child's spawn arguments. */
#define SUP_TAG_ARGS "args"

/* First element of an encoded tr_sup_spec. */
#define SUP_SPEC_MAGIC "troupe.sup/1"

/* A child spec as a supervisor keeps it: everything copied and resolved. */
typedef struct sup_childspec {
    char id[TR_SUP_ID_MAX + 1];
    const tr_behaviour *behaviour; /* NULL for start-function and supervisor children */
    uint8_t *args;                 /* owned; for a supervisor child: its encoded spec */
    size_t args_len;
    tr_spawn_opts spawn; /* name points into name_buf (or is NULL); link unset */
    char name_buf[TR_NAME_MAX + 1];
    tr_sup_start_fn start;
    const void *start_arg;
    bool is_sup;
    tr_sup_restart restart;
    uint32_t shutdown_ms; /* resolved: never 0 */
    tr_sup_child_type type;
    tr_sup_backoff backoff;
    bool kill_on_overrun;
} sup_childspec;

/* A supervisor's flags and children as decoded from its spawn arguments. */
typedef struct sup_config {
    tr_sup_strategy strategy;
    uint32_t intensity;
    uint32_t period_ms;
    tr_ref events;
    sup_childspec *children; /* owned, nchildren entries */
    uint32_t nchildren;
} sup_config;

/* Checks spec and appends it to m as one msgpack value. depth counts the
 * supervisors around it (0 for a top one). */
tr_err tr__sup_pack_child(tr_msg *m, const tr_sup_child_spec *spec, unsigned depth);
/* Checks spec (and every nested spec) and appends it to m. */
tr_err tr__sup_pack_spec(tr_msg *m, const tr_sup_spec *spec, unsigned depth);

/* Reads one encoded child spec from c into *out (fully owned; release with
 * tr__sup_childspec_fini). TR_EBADMSG / TR_EINVAL / TR_ETOOBIG for bad bytes. */
tr_err tr__sup_unpack_child(tr_cursor *c, sup_childspec *out);
void tr__sup_childspec_fini(sup_childspec *cs);
/* Copies src into *dst (args duplicated). */
tr_err tr__sup_childspec_copy(sup_childspec *dst, const sup_childspec *src);

/* Reads a whole encoded supervisor spec. Release with tr__sup_config_fini. */
tr_err tr__sup_unpack_config(const void *bytes, size_t len, sup_config *out);
void tr__sup_config_fini(sup_config *cfg);

/* Packs / reads a reason as [kind, code, text]. */
tr_err tr__sup_pack_reason(tr_msg *m, const tr_reason *why);
tr_err tr__sup_read_reason(tr_cursor *c, tr_reason *out);
/* Reads a string into buf (cap bytes with the NUL); TR_ETOOBIG if longer. */
tr_err tr__sup_read_strbuf(tr_cursor *c, char *buf, size_t cap);

/* The supervisor actor's behaviour (sup.c). */
extern const tr_behaviour tr__sup_behaviour;

#endif /* TROUPE_SUP_INTERNAL_H */
