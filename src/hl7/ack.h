/*
 * ack.h - the acknowledgment of a message: an ACK whose MSH answers the message's (sender and
 * receiver swapped, its delimiters, version and processing id), an MSA echoing MSH-10, and an
 * ERR saying what was wrong and where, in the form of the message's version.
 */
#ifndef CONCERTO_HL7_ACK_H
#define CONCERTO_HL7_ACK_H

#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "hl7/adt.h"
#include "hl7/er7.h"

typedef struct {
    const char *code;        /* MSA-1: AA, AE, AR (original mode) or CA, CE, CR (accept) */
    const char *text;        /* what was wrong (MSA-3 before 2.5, ERR-8), or NULL */
    hl7_problem_t problem;   /* the ERR segment's code and place; code 0: no ERR */
    const char *control_id;  /* the ACK's own MSH-10 */
    int64_t now_us;          /* its MSH-7 */
    const char *application; /* its MSH-3 when the message names no receiver (MSH-5) */
} hl7_ack_t;

/* Writes the ACK of in (NULL when the message could not be read at all) into out. */
void hl7_ack_write(const hl7_message_t *in, const hl7_ack_t *ack, arena_t *arena, buf_t *out);

#endif
