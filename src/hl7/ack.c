/*
 * ack.c - the acknowledgment of a message (ack.h).
 */
#include "hl7/ack.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *error_text(hl7_error_code_t code)
{
    switch (code) {
    case HL7_ERR_NONE: return "";
    case HL7_ERR_SEGMENT_SEQUENCE: return "Segment sequence error";
    case HL7_ERR_REQUIRED_MISSING: return "Required field missing";
    case HL7_ERR_DATA_TYPE: return "Data type error";
    case HL7_ERR_TABLE_VALUE: return "Table value not found";
    case HL7_ERR_UNSUPPORTED_TYPE: return "Unsupported message type";
    case HL7_ERR_UNSUPPORTED_EVENT: return "Unsupported event code";
    case HL7_ERR_UNSUPPORTED_PROCESSING_ID: return "Unsupported processing id";
    case HL7_ERR_UNSUPPORTED_VERSION: return "Unsupported version id";
    case HL7_ERR_UNKNOWN_KEY: return "Unknown key identifier";
    case HL7_ERR_DUPLICATE_KEY: return "Duplicate key identifier";
    case HL7_ERR_RECORD_LOCKED: return "Application record locked";
    case HL7_ERR_INTERNAL: return "Application internal error";
    }
    return "Application internal error";
}

/* Components 1-3 of an HD field of the message (MSH-3 to MSH-6), decoded. */
static void write_hd(hl7_writer_t *w, const hl7_message_t *in, const hl7_segment_t *msh,
                     size_t field, const char *fallback, arena_t *arena)
{
    const char *c[3] = {NULL, NULL, NULL};
    if (msh)
        for (size_t i = 0; i < 3; i++)
            c[i] = hl7_get(in, arena, msh, field, 0, i + 1, 0);
    if ((!c[0] || !*c[0]) && (!c[1] || !*c[1]) && fallback)
        c[0] = fallback;
    hl7_write_components(w, c, 3);
}

/* Version 2.5 and later carry the error in ERR-2/3/4/8; earlier ones in ERR-1. */
static bool err_v25(const char *version)
{
    int major = 0, minor = 0;
    return sscanf(version, "%d.%d", &major, &minor) == 2 && (major > 2 || minor >= 5);
}

void hl7_ack_write(const hl7_message_t *in, const hl7_ack_t *ack, arena_t *arena, buf_t *out)
{
    const hl7_segment_t *msh = in ? hl7_segment(in, "MSH", 0) : NULL;
    hl7_writer_t w;
    hl7_writer_init(&w, out, in ? &in->delims : &HL7_DELIMS_DEFAULT);
    hl7_write_segment(&w, "MSH");
    write_hd(&w, in, msh, 5, ack->application, arena); /* MSH-3: who acknowledges */
    write_hd(&w, in, msh, 6, NULL, arena);
    write_hd(&w, in, msh, 3, NULL, arena); /* MSH-5: the message's sender */
    write_hd(&w, in, msh, 4, NULL, arena);
    char when[32];
    time_t secs = (time_t)(ack->now_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y%m%d%H%M%S+0000", &tm);
    hl7_write_field(&w, when);
    hl7_write_field(&w, NULL); /* MSH-8 security */
    const char *version = in ? hl7_version(in, arena) : "";
    if (!hl7_version_supported(version))
        version = "2.5.1";
    const char *event = msh ? hl7_get(in, arena, msh, 9, 0, 2, 0) : "";
    bool structure = strcmp(version, "2.3") != 0; /* MSH-9.3 since 2.3.1 */
    const char *type[3] = {"ACK", *event ? event : NULL, structure ? "ACK" : NULL};
    hl7_write_components(&w, type, 3);
    hl7_write_field(&w, ack->control_id);
    const char *processing = msh ? hl7_get(in, arena, msh, 11, 0, 1, 0) : "";
    hl7_write_field(&w, *processing ? processing : "P");
    hl7_write_field(&w, version);

    hl7_write_segment(&w, "MSA");
    hl7_write_field(&w, ack->code);
    hl7_write_field(&w, msh ? hl7_get(in, arena, msh, 10, 0, 0, 0) : "");
    bool v25 = err_v25(version);
    if (ack->text && !v25)
        hl7_write_field(&w, ack->text); /* MSA-3, withdrawn from 2.5 on in favour of ERR */

    if (ack->problem.code) {
        const hl7_where_t *at = &ack->problem.where;
        char seq[24] = "", field[24] = "", code[8];
        if (at->sequence)
            snprintf(seq, sizeof(seq), "%zu", at->sequence);
        if (at->field)
            snprintf(field, sizeof(field), "%zu", at->field);
        snprintf(code, sizeof(code), "%d", (int)ack->problem.code);
        hl7_write_segment(&w, "ERR");
        if (v25) {
            hl7_write_field(&w, NULL); /* ERR-1, withdrawn */
            const char *location[3] = {at->segment[0] ? at->segment : NULL, seq, field};
            hl7_write_components(&w, location, 3);
            const char *condition[3] = {code, error_text(ack->problem.code), "HL70357"};
            hl7_write_components(&w, condition, 3);
            hl7_write_field(&w, "E");
            for (int i = 5; i <= 7; i++)
                hl7_write_field(&w, NULL);
            hl7_write_field(&w, ack->text);
        } else {
            const char *location[4] = {at->segment[0] ? at->segment : NULL, seq, field, code};
            hl7_write_components(&w, location, 4);
        }
    }
    hl7_writer_end(&w);
}
