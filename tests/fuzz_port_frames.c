/*
 * fuzz_port_frames.c — libFuzzer target for the cutter that turns a port's
 * output into lines or frames (runtime/port_frame.c).
 *
 * The input's first two bytes pick the framing, max_msg and how many bytes
 * each simulated read returns; the rest is the command's output. The
 * target drives the cutter the way the port's helper thread does (a buffer
 * of max_msg + 1 or + 4 bytes, reads, cuts, compaction, end of file) and
 * aborts when a promise breaks: no piece longer than max_msg, no stall with
 * a full buffer, lines that put back together give exactly the output,
 * frames that re-encode to exactly the bytes consumed, and at end of file
 * either everything consumed or the stream declared broken.
 */
#include "port.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_port_frames: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool frames = data[0] & 1;
    uint32_t max = 1 + (data[0] >> 1); /* 1..128 */
    size_t chunk = 1 + (data[1] & 31); /* bytes per simulated read */
    const uint8_t *in = data + 2;
    size_t in_len = size - 2, in_pos = 0;

    size_t cap = (size_t)max + (frames ? 4 : 1);
    uint8_t *buf = malloc(cap);
    uint8_t *out = malloc(in_len + 1); /* what the cut pieces put back together */
    FUZZ_ASSERT(buf != NULL && out != NULL);
    size_t len = 0, out_len = 0;
    bool eof = false, bad = false;

    while (!bad) {
        size_t off = 0;
        for (;;) {
            size_t n = 0, used = 0;
            tr_err err = TR_OK;
            const char *why = NULL;
            port_cut cut =
                frames ? tr__port_cut_frame(buf + off, len - off, eof, max, &n, &used, &err, &why)
                       : tr__port_cut_line(buf + off, len - off, eof, max, &n, &used);
            if (cut == PORT_CUT_MORE)
                break;
            if (cut == PORT_CUT_BAD) {
                FUZZ_ASSERT(frames && why != NULL && (err == TR_EBADMSG || err == TR_ETOOBIG));
                bad = true;
                break;
            }
            FUZZ_ASSERT(used > 0 && used <= len - off && n <= max);
            if (cut == PORT_CUT_FRAME) {
                FUZZ_ASSERT(frames && n >= 1 && used == n + 4);
                (void)tr_validate(buf + off + 4, n); /* the port's next check */
                memcpy(out + out_len, buf + off, used);
                out_len += used;
            } else {
                FUZZ_ASSERT(!frames);
                FUZZ_ASSERT(cut == PORT_CUT_PART ? used == n && n == max
                                                 : used == n + 1 || (eof && used == n));
                FUZZ_ASSERT(memchr(buf + off, '\n', n) == NULL);
                memcpy(out + out_len, buf + off, used); /* the piece and its '\n', if any */
                out_len += used;
            }
            off += used;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        if (bad || eof)
            break;
        if (in_pos == in_len) {
            eof = true;
            continue;
        }
        /* A full buffer that cuts nothing would stall the port for good. */
        FUZZ_ASSERT(len < cap);
        size_t take = cap - len < chunk ? cap - len : chunk;
        if (take > in_len - in_pos)
            take = in_len - in_pos;
        memcpy(buf + len, in + in_pos, take);
        len += take;
        in_pos += take;
    }

    /* Everything cut so far is exactly the output's start; without a broken
     * frame, it is all of it. */
    FUZZ_ASSERT(out_len <= in_len && memcmp(out, in, out_len) == 0);
    if (!bad)
        FUZZ_ASSERT(len == 0 && out_len == in_len);
    free(buf);
    free(out);
    return 0;
}
