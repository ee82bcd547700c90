/*
 * port_frame.c — cutting a port's output into lines or frames. Pure
 * functions over a buffer: no I/O, no threads, no allocation, so the
 * helper thread (port_io.c) and the fuzz target share exactly this code.
 * The output is hostile input: every length is checked against the bytes
 * that are really there before anything is read.
 */
#include "port.h"

#include <string.h>

port_cut tr__port_cut_line(const uint8_t *buf, size_t len, bool eof, uint32_t max, size_t *n,
                           size_t *used)
{
    /* Only the first max + 1 bytes matter: a '\n' at index max still ends
     * a line of exactly max bytes. */
    size_t look = len < (size_t)max + 1 ? len : (size_t)max + 1;
    const uint8_t *nl = look > 0 ? memchr(buf, '\n', look) : NULL;
    if (nl != NULL) {
        *n = (size_t)(nl - buf);
        *used = *n + 1;
        return PORT_CUT_LINE;
    }
    if (len > max) {
        *n = *used = max;
        return PORT_CUT_PART;
    }
    if (eof && len > 0) {
        *n = *used = len; /* the last line had no '\n' */
        return PORT_CUT_LINE;
    }
    return PORT_CUT_MORE;
}

port_cut tr__port_cut_frame(const uint8_t *buf, size_t len, bool eof, uint32_t max, size_t *n,
                            size_t *used, tr_err *err, const char **why)
{
    if (len < 4) {
        if (eof && len > 0)
            goto cut_short;
        return PORT_CUT_MORE;
    }
    uint32_t flen =
        (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (flen == 0) {
        *err = TR_EBADMSG;
        *why = "empty frame from the command";
        return PORT_CUT_BAD;
    }
    if (flen > max) {
        *err = TR_ETOOBIG;
        *why = "frame longer than max_msg";
        return PORT_CUT_BAD;
    }
    if (len - 4 < flen) {
        if (eof)
            goto cut_short;
        return PORT_CUT_MORE;
    }
    *n = flen;
    *used = 4 + (size_t)flen;
    return PORT_CUT_FRAME;
cut_short:
    *err = TR_EBADMSG;
    *why = "frame cut short at end of output";
    return PORT_CUT_BAD;
}
