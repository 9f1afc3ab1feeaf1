/*
 * libFuzzer harness for the MLLP frame decoder (src/hl7/mllp.c): any byte stream, cut into
 * reads of sizes the input's first bytes choose, gives the same frames as the stream fed in
 * one read; every frame is what lies between a VT and the FS that ends it (with no VT inside),
 * at most max_message bytes of it; every byte given is consumed; and a frame encoded with
 * hl7_mllp_frame decodes back to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "hl7/mllp.h"

#define MAX_MESSAGE 64

/* The frames of data fed in pieces of the sizes cuts gives (cycled), joined with their kind
 * into out: 'F' or 'T', the length, the bytes. */
static void decode(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, buf_t *out)
{
    hl7_mllp_t d;
    hl7_mllp_init(&d, MAX_MESSAGE);
    const char *p = (const char *)data, *end = p + size;
    size_t k = 0;
    while (p < end) {
        size_t piece = ncuts ? (size_t)cuts[k++ % ncuts] % 17 + 1 : size;
        const char *stop = (size_t)(end - p) < piece ? end : p + piece;
        while (p < stop) {
            const char *msg;
            size_t len;
            const char *before = p;
            hl7_mllp_rc_t rc = hl7_mllp_feed(&d, &p, stop, &msg, &len);
            if (p < before || p > stop)
                abort();
            if (rc == HL7_MLLP_MORE) {
                if (p != stop)
                    abort(); /* MORE consumes everything given */
                continue;
            }
            if (len > MAX_MESSAGE || memchr(msg, HL7_MLLP_VT, len))
                abort();
            buf_addch(out, rc == HL7_MLLP_FRAME ? 'F' : 'T');
            buf_add(out, &len, sizeof(len));
            buf_add(out, msg, len);
        }
    }
    hl7_mllp_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t ncuts = size ? data[0] % 8 : 0;
    if (ncuts + 1 > size)
        ncuts = 0;
    const uint8_t *cuts = data + 1;
    const uint8_t *stream = ncuts ? data + 1 + ncuts : data;
    size_t len = ncuts ? size - 1 - ncuts : size;

    buf_t whole = BUF_INIT, pieces = BUF_INIT;
    decode(stream, len, NULL, 0, &whole);
    decode(stream, len, cuts, ncuts, &pieces);
    if (whole.len != pieces.len || memcmp(whole.ptr, pieces.ptr, whole.len) != 0)
        abort();

    /* a message without VT or FS comes back from its frame */
    buf_t msg = BUF_INIT, framed = BUF_INIT, back = BUF_INIT;
    for (size_t i = 0; i < len && msg.len < MAX_MESSAGE; i++)
        if (stream[i] != HL7_MLLP_VT && stream[i] != HL7_MLLP_FS)
            buf_addch(&msg, (char)stream[i]);
    hl7_mllp_frame(msg.ptr, msg.len, &framed);
    decode((const uint8_t *)framed.ptr, framed.len, NULL, 0, &back);
    size_t n = msg.len;
    if (back.len != 1 + sizeof(n) + n || back.ptr[0] != 'F' ||
        memcmp(back.ptr + 1, &n, sizeof(n)) || memcmp(back.ptr + 1 + sizeof(n), msg.ptr, n))
        abort();
    buf_release(&whole);
    buf_release(&pieces);
    buf_release(&msg);
    buf_release(&framed);
    buf_release(&back);
    return 0;
}
