/*
 * ingest.c - what is done with each message received (ingest.h).
 *
 * 1. The message is read: UTF-8 as it is; a message in ISO 8859-1 (declared in MSH-18, or
 *    declaring nothing and not UTF-8) is converted; the header checked (type ADT, an event
 *    Concerto reads, a version from 2.3 to 2.8, a control id in MSH-10, processing id P, T or
 *    D). What fails is rejected (AR, or CR in enhanced mode).
 * 2. It is stored as it came, with its sender and control id, in a transaction that need not
 *    wait for the disk by itself: the next step's durable commit makes it durable, and no ACK
 *    is sent before that. A rejected message is stored too, with its reason and its ACK. A
 *    second delivery of a sender's control id finds the first: its ACK is sent again and
 *    nothing else happens (unless the first was never processed: then it is now).
 * 3. It is applied to the record (adt.c) in one durable transaction that also records what
 *    became of it (processed, or error and why) and the ACK; a failure of the database leaves
 *    it received, answered AR (CE) "try again", and a redelivery or a reprocess applies it.
 *
 * Acknowledgment: original mode (MSH-15 and MSH-16 empty) answers AA, AE or AR once the
 * message is applied. Enhanced mode answers on the connection the accept acknowledgment (CA,
 * CE, CR) when MSH-15 asks for it (AL always, ER on an error, SU on success, NE or empty
 * never), else the application acknowledgment (AA, AE, AR) when MSH-16 asks for it, else
 * nothing: MLLP has one answer per message.
 */
#include "hl7/ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/jv.h"
#include "base/log.h"
#include "base/mem.h"
#include "hl7/ack.h"
#include "hl7/adt.h"
#include "hl7/er7.h"
#include "repo/scope.h"

#define FEED_NAME     "hl7-feed"
#define MAX_RETRIES   5
#define MAX_LOCK_KEYS 16

struct hl7_ingest {
    store_t *store;
    const tz_t *zone;
};

static arena_t feed_arena;
static scope_set_t feed_scopes;
static repo_caller_t feed;
static pthread_once_t feed_once = PTHREAD_ONCE_INIT;

static void feed_init(void)
{
    arena_init(&feed_arena);
    static const char SCOPES[] =
        "system/Patient.cru system/Encounter.cru system/Condition.cru system/Flag.cru";
    scope_parse(&feed_arena, SCOPES, sizeof(SCOPES) - 1, &feed_scopes);
    feed = (repo_caller_t){.kind = REPO_CALLER_SERVICE,
                           .username = FEED_NAME,
                           .client_id = FEED_NAME,
                           .scopes = &feed_scopes,
                           .source = "mllp"};
}

const repo_caller_t *hl7_ingest_caller(void)
{
    pthread_once(&feed_once, feed_init);
    return &feed;
}

hl7_ingest_t *hl7_ingest_new(store_t *store, const tz_t *zone)
{
    hl7_ingest_t *ingest = xcalloc(1, sizeof(*ingest));
    ingest->store = store;
    ingest->zone = zone;
    hl7_ingest_caller();
    return ingest;
}

void hl7_ingest_free(hl7_ingest_t *ingest)
{
    free(ingest);
}

/* One message on its way. */
typedef struct {
    hl7_ingest_t *ingest;
    store_conn_t *conn;
    arena_t *arena;
    int64_t now_us;
    const char *peer;
    const char *raw; /* as received */
    size_t raw_len;
    bool too_large;
    /* read */
    hl7_message_t msg;
    bool parsed;
    const char *sender, *control_id, *type, *event;
    bool enhanced;
    const char *accept_when, *app_when; /* MSH-15, MSH-16 */
    /* refused before it is applied: reject_text set */
    const char *reject_text;
    hl7_problem_t reject;
    /* stored */
    int64_t id;
    bool reprocess;
    /* applying it */
    hl7_adt_t *adt;          /* the plan (in arena) */
    status_t plan_rc;        /* the plan's error of the message, or 0 */
    const char *plan_reason; /* its text */
    /* what became of it */
    const char *reply; /* the ACK sent (NULL: none) */
    const char *status, *reason;
} msg_t;

/* ---- reading ------------------------------------------------------------------------------ */

static void reject(msg_t *m, hl7_error_code_t code, const hl7_segment_t *seg, size_t field,
                   const char *text)
{
    m->reject_text = text;
    m->reject.code = code;
    memset(&m->reject.where, 0, sizeof(m->reject.where));
    if (seg) {
        memcpy(m->reject.where.segment, seg->id, sizeof(seg->id));
        m->reject.where.sequence = seg->number;
        m->reject.where.offset = seg->offset;
    }
    m->reject.where.field = field;
}

/* Latin-1 bytes as UTF-8, in arena. */
static const char *latin1_to_utf8(arena_t *arena, const char *s, size_t len, size_t *out_len)
{
    char *out = arena_alloc(arena, 2 * len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[n++] = (char)c;
        } else {
            out[n++] = (char)(0xC0 | (c >> 6));
            out[n++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static bool has_nul(const char *s, size_t len)
{
    return memchr(s, 0, len) != NULL;
}

/* The header of a parsed message, and whether Concerto reads it (else m->reject_text). */
static void read_header(msg_t *m)
{
    const hl7_message_t *msg = &m->msg;
    const hl7_segment_t *msh = hl7_segment(msg, "MSH", 0);
    arena_t *arena = m->arena;
    const char *app = hl7_get(msg, arena, msh, 3, 0, 1, 0);
    if (!*app)
        app = hl7_get(msg, arena, msh, 3, 0, 2, 0);
    const char *facility = hl7_get(msg, arena, msh, 4, 0, 1, 0);
    if (!*facility)
        facility = hl7_get(msg, arena, msh, 4, 0, 2, 0);
    m->sender = arena_printf(arena, "%s|%s", app, facility);
    m->control_id = hl7_get(msg, arena, msh, 10, 0, 0, 0);
    const char *code = hl7_get(msg, arena, msh, 9, 0, 1, 0);
    m->event = hl7_get(msg, arena, msh, 9, 0, 2, 0);
    if (!*m->event) {
        const hl7_segment_t *evn = hl7_segment(msg, "EVN", 0);
        if (evn)
            m->event = hl7_get(msg, arena, evn, 1, 0, 1, 0);
    }
    m->type = *m->event ? arena_printf(arena, "%s^%s", code, m->event) : code;
    m->accept_when = hl7_get(msg, arena, msh, 15, 0, 1, 0);
    m->app_when = hl7_get(msg, arena, msh, 16, 0, 1, 0);
    m->enhanced = *m->accept_when || *m->app_when;

    const char *version = hl7_version(msg, arena);
    const char *processing = hl7_get(msg, arena, msh, 11, 0, 1, 0);
    if (!*m->control_id)
        reject(m, HL7_ERR_REQUIRED_MISSING, msh, 10, "MSH-10 has no message control id");
    else if (!*version)
        reject(m, HL7_ERR_REQUIRED_MISSING, msh, 12, "MSH-12 has no version id");
    else if (!hl7_version_supported(version))
        reject(m, HL7_ERR_UNSUPPORTED_VERSION, msh, 12,
               arena_printf(arena, "version %s is not read here (2.3 to 2.8 are)", version));
    else if (!*code)
        reject(m, HL7_ERR_REQUIRED_MISSING, msh, 9, "MSH-9 has no message type");
    else if (strcmp(code, "ADT") != 0)
        reject(m, HL7_ERR_UNSUPPORTED_TYPE, msh, 9,
               arena_printf(arena, "message type %s is not read here (ADT is)", code));
    else if (!*m->event)
        reject(m, HL7_ERR_REQUIRED_MISSING, msh, 9, "MSH-9 has no trigger event");
    else if (!hl7_adt_event_supported(m->event))
        reject(m, HL7_ERR_UNSUPPORTED_EVENT, msh, 9,
               arena_printf(arena, "ADT^%s is not an event read here", m->event));
    else if (*processing && strcmp(processing, "P") != 0 && strcmp(processing, "T") != 0 &&
             strcmp(processing, "D") != 0)
        reject(m, HL7_ERR_UNSUPPORTED_PROCESSING_ID, msh, 11,
               arena_printf(arena, "processing id %s is not one of P, T, D", processing));
}

/* Reads the message: parsed (or rejected with why), its header checked. */
static void read_message(msg_t *m)
{
    err_t err = ERR_INIT;
    hl7_where_t where = {0};
    const char *text = m->raw;
    size_t len = m->raw_len;
    if (m->too_large) {
        /* only its head was kept: its header for the answer */
        const char *end = memchr(text, '\r', len);
        if (!end)
            end = memchr(text, '\n', len);
        len = end ? (size_t)(end - text) : len;
    }
    m->parsed = hl7_parse(text, len, m->arena, &m->msg, &where, &err) == ERR_OK;
    if (m->parsed) {
        /* the character set (MSH-18) */
        const hl7_segment_t *msh = hl7_segment(&m->msg, "MSH", 0);
        const char *charset = hl7_get(&m->msg, m->arena, msh, 18, 0, 1, 0);
        bool utf8 = jv_utf8_valid(text, len) && !has_nul(text, len);
        bool latin1 =
            strcmp(charset, "8859/1") == 0 || (!*charset && !utf8) || strcmp(charset, "ASCII") == 0;
        if (!utf8 && latin1 && !has_nul(text, len)) {
            text = latin1_to_utf8(m->arena, text, len, &len);
            err_reset(&err);
            m->parsed = hl7_parse(text, len, m->arena, &m->msg, &where, &err) == ERR_OK;
        } else if (!utf8) {
            m->parsed = false;
            err_reset(&err);
            err_set(&err, ERR_SYNTAX, NULL, "%s",
                    has_nul(text, len)
                        ? "the message holds a NUL byte"
                        : arena_printf(m->arena,
                                       "the message is not %s as MSH-18 declares (or is not "
                                       "UTF-8 or ISO 8859-1)",
                                       *charset ? charset : "UTF-8"));
            memset(&where, 0, sizeof(where));
        }
    }
    if (!m->parsed) {
        /* try its first line for an answer that names the message */
        const char *line_end = memchr(m->raw, '\r', m->raw_len);
        hl7_where_t ignored;
        err_t again = ERR_INIT;
        size_t first = line_end ? (size_t)(line_end - m->raw) : m->raw_len;
        hl7_message_t head;
        if (hl7_parse(m->raw, first, m->arena, &head, &ignored, &again) == ERR_OK) {
            m->msg = head;
            m->parsed = true;
            read_header(m);
        }
        err_release(&again);
        m->reject_text = arena_strdup(m->arena, err.nissues ? err.issues[0].message : "unreadable");
        m->reject.code = HL7_ERR_SEGMENT_SEQUENCE;
        m->reject.where = where;
        if (!m->parsed) {
            m->sender = "|";
            m->control_id = "";
            m->type = "";
        }
        err_release(&err);
        return;
    }
    err_release(&err);
    read_header(m);
    if (m->too_large && !m->reject_text)
        reject(m, HL7_ERR_INTERNAL, hl7_segment(&m->msg, "MSH", 0), 0,
               arena_printf(m->arena,
                            "the message is over the size limit (the first %zu bytes are kept)",
                            m->raw_len));
}

/* ---- answering ---------------------------------------------------------------------------- */

/* Whether MSH-15 or MSH-16 (when) asks for an answer, given how it went. */
static bool asks(const char *when, bool ok)
{
    if (strcmp(when, "AL") == 0)
        return true;
    if (strcmp(when, "ER") == 0)
        return !ok;
    if (strcmp(when, "SU") == 0)
        return ok;
    return false;
}

/* The answer to send: accept says whether it was stored, app_code the outcome (AA, AE, AR). */
static const char *answer(msg_t *m, bool stored, const char *app_code, const char *text,
                          const hl7_problem_t *problem)
{
    hl7_ack_t ack = {.text = text,
                     .problem = problem ? *problem : (hl7_problem_t){0},
                     .control_id = m->id ? arena_printf(m->arena, "C%lld", (long long)m->id)
                                         : arena_printf(m->arena, "C0-%lld", (long long)m->now_us),
                     .now_us = m->now_us,
                     .application = "CONCERTO"};
    bool app_ok = strcmp(app_code, "AA") == 0;
    if (!m->enhanced) {
        ack.code = app_code;
    } else if (asks(m->accept_when, stored && strcmp(app_code, "AR") != 0)) {
        ack.code = !stored ? "CE" : strcmp(app_code, "AR") == 0 ? "CR" : "CA";
        if (strcmp(ack.code, "CA") == 0) {
            ack.text = NULL;
            ack.problem.code = HL7_ERR_NONE;
        }
    } else if (asks(m->app_when, app_ok)) {
        ack.code = app_code;
    } else {
        return NULL;
    }
    buf_t out = BUF_INIT;
    hl7_ack_write(m->parsed ? &m->msg : NULL, &ack, m->arena, &out);
    const char *s = arena_strndup(m->arena, out.ptr, out.len);
    buf_release(&out);
    return s;
}

/* ---- storing and applying ------------------------------------------------------------------- */

typedef struct {
    msg_t *m;
    bool duplicate;
    store_hl7_message_t first; /* the first delivery's row */
} store_arg_t;

static status_t store_txn(store_txn_t *txn, void *arg, err_t *err)
{
    store_arg_t *s = arg;
    msg_t *m = s->m;
    store_hl7_message_t row = {.received_us = m->now_us,
                               .peer = m->peer,
                               .sender = m->sender,
                               .control_id = m->control_id,
                               .type = m->type,
                               .status = STORE_HL7_RECEIVED,
                               .text = m->raw,
                               .text_len = m->raw_len};
    bool fresh;
    status_t rc = store_txn_hl7_insert(txn, &row, &m->id, &fresh, err);
    if (rc)
        return rc;
    if (!fresh) {
        bool found;
        s->duplicate = true;
        rc = store_txn_hl7_by_control(txn, m->sender, m->control_id, m->arena, &s->first, &found,
                                      err);
        if (!rc && !found)
            rc =
                err_set(err, ERR_CONFLICT, NULL, "the first delivery of %s is gone", m->control_id);
        if (!rc)
            m->id = s->first.id;
        return rc;
    }
    if (!m->reject_text)
        return ERR_OK;
    /* refused: recorded with its answer */
    m->status = STORE_HL7_REJECTED;
    m->reason = m->reject_text;
    m->reply = answer(m, true, "AR", m->reject_text, &m->reject);
    store_hl7_finish_t f = {.id = m->id,
                            .status = m->status,
                            .reason = m->reason,
                            .ack = m->reply,
                            .processed_us = m->now_us};
    return store_txn_hl7_finish(txn, &f, err);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Two messages about one patient are applied one after the other (PostgreSQL: several
 * writers), whoever's identifiers they carry: a lock per identifier, taken in order. */
static status_t lock_patients(msg_t *m, store_txn_t *txn, err_t *err)
{
    const char *keys[MAX_LOCK_KEYS];
    size_t n = 0;
    static const struct {
        const char *segment;
        size_t field;
    } places[] = {{"PID", 3}, {"PID", 2}, {"MRG", 1}};
    for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
        const hl7_segment_t *seg = hl7_segment(&m->msg, places[p].segment, 0);
        size_t reps = seg ? hl7_repetitions(&m->msg, seg, places[p].field) : 0;
        for (size_t r = 0; r < reps && n < MAX_LOCK_KEYS; r++) {
            const char *value = hl7_get(&m->msg, m->arena, seg, places[p].field, r, 1, 0);
            if (*value)
                keys[n++] = arena_printf(m->arena, "hl7-patient:%s", value);
        }
    }
    qsort(keys, n, sizeof(keys[0]), compare_keys);
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(keys[i], keys[i - 1]) == 0)
            continue;
        status_t rc = store_txn_lock(txn, keys[i], err);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* The database rather than the message failed: the message stays received. */
static bool transient(status_t rc)
{
    return rc == ERR_STORAGE || rc == ERR_UNAVAILABLE || rc == ERR_VERSION_CONFLICT;
}

static status_t apply_txn(store_txn_t *txn, void *arg, err_t *err)
{
    msg_t *m = arg;
    hl7_adt_t *a = m->adt;
    store_hl7_message_t row;
    bool found;
    status_t rc = store_txn_hl7_get(txn, m->id, m->arena, &row, &found, err);
    if (rc)
        return rc;
    if (!found)
        return err_set(err, ERR_NOT_FOUND, NULL, "there is no HL7 message %lld", (long long)m->id);
    if (!m->reprocess && strcmp(row.status, STORE_HL7_RECEIVED) != 0) {
        /* another delivery of it was applied meanwhile */
        m->reply = row.ack;
        m->status = row.status;
        return ERR_OK;
    }
    if ((rc = lock_patients(m, txn, err)))
        return rc;
    status_t arc = m->plan_rc;
    const char *reason = m->plan_reason;
    if (!arc) {
        err_t why = ERR_INIT;
        arc = hl7_adt_commit(txn, a, &why);
        if (transient(arc)) {
            err_move(err, &why);
            return arc;
        }
        if (arc)
            reason = arena_strdup(m->arena, why.nissues ? why.issues[0].message : "refused");
        err_release(&why);
    }
    if (arc) {
        m->status = STORE_HL7_ERROR;
        m->reason = reason;
        m->reply = answer(m, true, "AE", m->reason, &a->problem);
    } else {
        m->status = STORE_HL7_PROCESSED;
        m->reason = NULL;
        m->reply = answer(m, true, "AA", NULL, NULL);
    }
    store_hl7_finish_t f = {.id = m->id,
                            .status = m->status,
                            .reason = m->reason,
                            .ack = m->reply,
                            .processed_us = clock_now_us(),
                            .patient = arc ? NULL : a->patient,
                            .encounter = arc ? NULL : a->encounter};
    return store_txn_hl7_finish(txn, &f, err);
}

/* "2026-11-20T16:15:00.123Z" in arena. */
static const char *instant(arena_t *arena, int64_t us)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return arena_printf(arena, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        (int)(us % 1000000 / 1000));
}

/*
 * Applies m (stored as m->id): the mapping planned on the worker's connection, off the
 * store's writer, then written with the outcome in one transaction; planned again when the
 * record changed in between (another message about the same patient).
 */
static status_t apply(msg_t *m, err_t *err)
{
    status_t rc;
    for (int attempt = 0;; attempt++) {
        hl7_adt_t *a = arena_zalloc(m->arena, sizeof(*a));
        int64_t now = clock_now_us();
        *a = (hl7_adt_t){.conn = m->conn,
                         .now_us = now,
                         .now_text = instant(m->arena, now),
                         .msg = &m->msg,
                         .event = m->event,
                         .zone = m->ingest->zone,
                         .caller = hl7_ingest_caller(),
                         .arena = m->arena};
        m->adt = a;
        err_t why = ERR_INIT;
        m->plan_rc = hl7_adt_plan(a, &why);
        m->plan_reason = NULL;
        if (transient(m->plan_rc)) {
            err_move(err, &why);
            return m->plan_rc;
        }
        if (m->plan_rc)
            m->plan_reason =
                arena_strdup(m->arena, why.nissues ? why.issues[0].message : "refused");
        err_release(&why);
        rc = store_run_on(m->conn, apply_txn, m, false, err);
        if (rc != ERR_VERSION_CONFLICT || attempt + 1 >= MAX_RETRIES)
            break;
        err_reset(err);
    }
    return rc;
}

/* The answer when the database failed: try again. */
static const char *try_again(msg_t *m, const err_t *err)
{
    log_error("hl7: message %s from %s (%s) could not be %s: %s", m->control_id, m->sender, m->peer,
              m->id ? "applied" : "stored", err->nissues ? err->issues[0].message : "failed");
    hl7_problem_t p = {.code = HL7_ERR_INTERNAL};
    return answer(m, m->id != 0, "AR", "the message could not be processed now: send it again", &p);
}

void hl7_ingest_handle(void *arg, store_conn_t *conn, const hl7_inbound_t *in, buf_t *reply)
{
    arena_t arena;
    arena_init(&arena);
    msg_t m = {.ingest = arg,
               .conn = conn,
               .arena = &arena,
               .now_us = clock_now_us(),
               .peer = in->peer,
               .raw = in->text,
               .raw_len = in->len,
               .too_large = in->too_large};
    read_message(&m);
    err_t err = ERR_INIT;
    store_arg_t s = {.m = &m};
    /* stored without waiting for the disk when it is to be applied: the apply's durable
       commit makes it durable before anything is sent; a rejected one is answered at once */
    status_t rc = store_run_on(conn, store_txn, &s, !m.reject_text, &err);
    const char *answer_text = NULL;
    if (rc) {
        m.id = 0;
        answer_text = try_again(&m, &err);
    } else if (s.duplicate && strcmp(s.first.status, STORE_HL7_RECEIVED) != 0) {
        answer_text = s.first.ack; /* a redelivery: the same answer again */
        log_debug("hl7: %s from %s again: answered as before", m.control_id, m.sender);
    } else if (m.reject_text) {
        answer_text = m.reply;
        log_warning("hl7: rejected %s %s from %s (%s): %s", m.type, m.control_id, m.sender, m.peer,
                    m.reject_text);
    } else {
        rc = apply(&m, &err);
        if (rc)
            answer_text = try_again(&m, &err);
        else {
            answer_text = m.reply;
            if (m.status && strcmp(m.status, STORE_HL7_ERROR) == 0)
                log_warning("hl7: %s %s from %s refused: %s", m.type, m.control_id, m.sender,
                            m.reason);
        }
    }
    if (answer_text)
        buf_addstr(reply, answer_text);
    err_release(&err);
    arena_release(&arena);
}

status_t hl7_ingest_reprocess(hl7_ingest_t *ingest, store_conn_t *conn, int64_t id, arena_t *arena,
                              store_hl7_message_t *out, err_t *err)
{
    store_hl7_message_t row;
    status_t rc = store_hl7_get(conn, id, arena, &row, err);
    if (rc)
        return rc;
    msg_t m = {.ingest = ingest,
               .conn = conn,
               .arena = arena,
               .now_us = clock_now_us(),
               .peer = row.peer,
               .raw = row.text,
               .raw_len = row.text_len,
               .id = id,
               .reprocess = true};
    read_message(&m);
    if (m.reject_text)
        return err_set(err, ERR_CONFLICT, NULL, "HL7 message %lld cannot be processed: %s",
                       (long long)id, m.reject_text);
    if ((rc = apply(&m, err)))
        return rc;
    log_info("hl7: message %lld (%s %s from %s) processed again: %s", (long long)id, m.type,
             m.control_id, m.sender, m.status);
    return store_hl7_get(conn, id, arena, out, err);
}
