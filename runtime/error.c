/*
 * error.c — names and descriptions of error codes and exit reasons.
 * Pure functions over constant tables; no state.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
} error_table[TR_ERR_COUNT_] = {
    [TR_OK] = {"TR_OK", "success"},
    [TR_EINVAL] = {"TR_EINVAL", "invalid argument"},
    [TR_ENOMEM] = {"TR_ENOMEM", "out of memory"},
    [TR_ESTOPPED] = {"TR_ESTOPPED", "runtime or actor is stopping or stopped"},
    [TR_ENOACTOR] = {"TR_ENOACTOR", "no such actor (it exited or never existed)"},
    [TR_EFULL] = {"TR_EFULL", "mailbox full"},
    [TR_ETIMEDOUT] = {"TR_ETIMEDOUT", "timed out"},
    [TR_EWOULDBLOCK] = {"TR_EWOULDBLOCK", "blocking call not allowed here (pooled actor)"},
    [TR_EWRONGKIND] = {"TR_EWRONGKIND", "operation not valid for this kind of actor"},
    [TR_EBADMSG] = {"TR_EBADMSG", "malformed msgpack payload"},
    [TR_ETYPE] = {"TR_ETYPE", "payload value has another type"},
    [TR_ENOTFOUND] = {"TR_ENOTFOUND", "not found"},
    [TR_EEXIST] = {"TR_EEXIST", "already exists"},
    [TR_ERANGE] = {"TR_ERANGE", "value out of range"},
    [TR_ENOROUTE] = {"TR_ENOROUTE", "no route to the actor's node"},
    [TR_ETOOBIG] = {"TR_ETOOBIG", "too large"},
    [TR_ESYS] = {"TR_ESYS", "operating system error"},
    [TR_EBUSY] = {"TR_EBUSY", "resource busy"},
    [TR_ECANCELED] = {"TR_ECANCELED", "cancelled"},
    [TR_EEXITED] = {"TR_EEXITED", "the callee exited before replying"},
    [TR_ENOTSUP] = {"TR_ENOTSUP", "not supported"},
    [TR_EAUTH] = {"TR_EAUTH", "authentication failed: credentials refused"},
};

const char *tr_strerror(tr_err err)
{
    if ((unsigned)err >= TR_ERR_COUNT_)
        return "unknown error";
    return error_table[err].text;
}

const char *tr_err_name(tr_err err)
{
    if ((unsigned)err >= TR_ERR_COUNT_)
        return "TR_E?";
    return error_table[err].name;
}

static const char *const exit_kind_names[] = {
    [TR_EXIT_NORMAL] = "normal", [TR_EXIT_SHUTDOWN] = "shutdown",
    [TR_EXIT_ERROR] = "error",   [TR_EXIT_KILLED] = "killed",
    [TR_EXIT_NOPROC] = "noproc", [TR_EXIT_NOCONNECTION] = "noconnection",
    [TR_EXIT_SIGNAL] = "signal", [TR_EXIT_CODE] = "exit_code",
};

const char *tr_exit_kind_name(tr_exit_kind kind)
{
    if ((unsigned)kind >= sizeof exit_kind_names / sizeof exit_kind_names[0])
        return "unknown";
    return exit_kind_names[kind];
}

tr_reason tr_reason_make(tr_exit_kind kind, int32_t code, const char *text)
{
    tr_reason r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.code = code;
    if (text != NULL)
        snprintf(r.text, sizeof r.text, "%s", text);
    return r;
}

bool tr_reason_is_normal(const tr_reason *r)
{
    return r != NULL && (r->kind == TR_EXIT_NORMAL || r->kind == TR_EXIT_SHUTDOWN);
}
