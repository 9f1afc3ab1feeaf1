/*
 * mllp.h - the MLLP frame decoder and encoder (pure, no I/O).
 *
 * A frame is <VT 0x0B> message <FS 0x1C><CR 0x0D>. The decoder is fed whatever bytes a socket
 * gave, split anywhere, and hands out one complete message at a time. It is forgiving the way
 * receivers must be: bytes outside a frame are skipped (and counted), a VT inside a frame
 * starts the frame again, and FS alone ends a frame. It never holds more than max_message
 * bytes of a frame, whatever the peer sends.
 */
#ifndef CONCERTO_HL7_MLLP_H
#define CONCERTO_HL7_MLLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define HL7_MLLP_VT 0x0B /* start block */
#define HL7_MLLP_FS 0x1C /* end block */
#define HL7_MLLP_CR 0x0D /* carriage return after the end block */

typedef enum {
    HL7_MLLP__OUTSIDE, /* between frames: waiting for VT */
    HL7_MLLP__INSIDE,  /* after VT: collecting the message */
    HL7_MLLP__AFTER_FS /* a frame just ended: a CR here belongs to it */
} hl7_mllp_state_t;

typedef struct {
    hl7_mllp_state_t state;
    buf_t frame;        /* the frame so far, at most max_message bytes */
    size_t frame_len;   /* bytes of the frame so far, counting those past max_message */
    size_t max_message; /* 0: no limit */
    bool delivered;     /* frame holds a message handed out by the last call */
    uint64_t garbage;   /* bytes skipped outside frames, in total */
    uint64_t restarts;  /* partial frames dropped because a VT came inside them */
} hl7_mllp_t;

/* max_message 0 means no limit. */
void hl7_mllp_init(hl7_mllp_t *d, size_t max_message);
void hl7_mllp_release(hl7_mllp_t *d);

typedef enum {
    HL7_MLLP_MORE,      /* everything given was consumed; no complete frame yet */
    HL7_MLLP_FRAME,     /* a frame is complete: *msg, *len (valid until the next call) */
    HL7_MLLP_TOO_LARGE, /* a frame over max_message ended: *msg, *len are its first max_message
                           bytes */
} hl7_mllp_rc_t;

/*
 * Consumes bytes from *p (advanced) up to end; stops after a frame completes so the caller
 * handles it before feeding the rest. Bytes outside a frame (before VT) are skipped and counted
 * in d->garbage; a VT inside a frame restarts the frame (the partial one is dropped and
 * counted in d->restarts); FS not followed by CR is accepted (FS ends the frame; a CR right
 * after is skipped). *msg points into d and stays valid until the next call on d.
 */
hl7_mllp_rc_t hl7_mllp_feed(hl7_mllp_t *d, const char **p, const char *end, const char **msg,
                            size_t *len);

/* True while a frame has begun (VT seen) and not ended; *out_bytes (may be NULL) is how many
 * bytes of it arrived so far. What a peer that closes now leaves behind. */
bool hl7_mllp_partial(const hl7_mllp_t *d, size_t *out_bytes);

/* Appends msg framed to out. */
void hl7_mllp_frame(const char *msg, size_t len, buf_t *out);

#endif
