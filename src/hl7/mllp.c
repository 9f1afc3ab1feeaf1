/*
 * mllp.c - the MLLP frame decoder: a three-state machine over the bytes fed to it. Inside a
 * frame it copies runs of message bytes in one go (up to the next VT or FS) and stops storing
 * at max_message, while still counting, so that an oversized frame is reported when it ends
 * and the stream stays in step.
 */
#include "hl7/mllp.h"

#include <string.h>

void hl7_mllp_init(hl7_mllp_t *d, size_t max_message)
{
    memset(d, 0, sizeof(*d));
    d->state = HL7_MLLP__OUTSIDE;
    buf_init(&d->frame, 0);
    d->max_message = max_message;
}

void hl7_mllp_release(hl7_mllp_t *d)
{
    buf_release(&d->frame);
}

static void start_frame(hl7_mllp_t *d)
{
    buf_reset(&d->frame);
    d->frame_len = 0;
    d->state = HL7_MLLP__INSIDE;
}

/* Appends the message bytes [p, q) to the frame, storing no more than max_message. */
static void add_bytes(hl7_mllp_t *d, const char *p, const char *q)
{
    size_t n = (size_t)(q - p);
    size_t room = n;
    if (d->max_message) {
        room = d->frame.len < d->max_message ? d->max_message - d->frame.len : 0;
        if (room > n)
            room = n;
    }
    if (room)
        buf_add(&d->frame, p, room);
    d->frame_len += n;
}

hl7_mllp_rc_t hl7_mllp_feed(hl7_mllp_t *d, const char **p, const char *end, const char **msg,
                            size_t *len)
{
    if (d->delivered) {
        /* a connection that once carried a large message does not keep its memory */
        if (d->frame.cap > 65536) {
            buf_release(&d->frame);
            buf_init(&d->frame, 0);
        }
        buf_reset(&d->frame);
        d->frame_len = 0;
        d->delivered = false;
    }
    const char *s = *p;
    while (s < end) {
        switch (d->state) {
        case HL7_MLLP__AFTER_FS:
            d->state = HL7_MLLP__OUTSIDE;
            if (*s == HL7_MLLP_CR)
                s++;
            continue;
        case HL7_MLLP__OUTSIDE: {
            const char *vt = memchr(s, HL7_MLLP_VT, (size_t)(end - s));
            if (!vt) {
                d->garbage += (uint64_t)(end - s);
                s = end;
                continue;
            }
            d->garbage += (uint64_t)(vt - s);
            s = vt + 1;
            start_frame(d);
            continue;
        }
        case HL7_MLLP__INSIDE: {
            const char *q = s;
            while (q < end && *q != HL7_MLLP_VT && *q != HL7_MLLP_FS)
                q++;
            add_bytes(d, s, q);
            s = q;
            if (s == end)
                continue;
            if (*s == HL7_MLLP_VT) {
                d->restarts++;
                s++;
                start_frame(d);
                continue;
            }
            /* FS: the frame is complete */
            s++;
            d->state = HL7_MLLP__AFTER_FS;
            d->delivered = true;
            *p = s;
            *msg = d->frame.ptr;
            *len = d->frame.len;
            return d->max_message && d->frame_len > d->max_message ? HL7_MLLP_TOO_LARGE
                                                                   : HL7_MLLP_FRAME;
        }
        }
    }
    *p = s;
    return HL7_MLLP_MORE;
}

bool hl7_mllp_partial(const hl7_mllp_t *d, size_t *out_bytes)
{
    bool inside = d->state == HL7_MLLP__INSIDE;
    if (out_bytes)
        *out_bytes = inside ? d->frame_len : 0;
    return inside;
}

void hl7_mllp_frame(const char *msg, size_t len, buf_t *out)
{
    buf_grow(out, len + 3);
    buf_addch(out, HL7_MLLP_VT);
    buf_add(out, msg, len);
    buf_addch(out, HL7_MLLP_FS);
    buf_addch(out, HL7_MLLP_CR);
}
