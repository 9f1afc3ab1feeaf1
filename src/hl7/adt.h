/*
 * adt.h - an ADT message into the record: the Patient matched by its identifiers (created when
 * new, its demographics updated), merges, the Encounter of the visit and its diagnoses, all
 * through repo as the feed's service caller, inside the caller's transaction.
 * docs/hl7.md ("Mapping") says what each field becomes.
 */
#ifndef CONCERTO_HL7_ADT_H
#define CONCERTO_HL7_ADT_H

#include "base/arena.h"
#include "base/err.h"
#include "base/tz.h"
#include "hl7/er7.h"
#include "repo/access.h"
#include "repo/repo.h"
#include "store/store.h"

/* HL7 table 0357, the message error condition codes an ACK's ERR names. */
typedef enum {
    HL7_ERR_NONE = 0,
    HL7_ERR_SEGMENT_SEQUENCE = 100,
    HL7_ERR_REQUIRED_MISSING = 101,
    HL7_ERR_DATA_TYPE = 102,
    HL7_ERR_TABLE_VALUE = 103,
    HL7_ERR_UNSUPPORTED_TYPE = 200,
    HL7_ERR_UNSUPPORTED_EVENT = 201,
    HL7_ERR_UNSUPPORTED_PROCESSING_ID = 202,
    HL7_ERR_UNSUPPORTED_VERSION = 203,
    HL7_ERR_UNKNOWN_KEY = 204,
    HL7_ERR_DUPLICATE_KEY = 205,
    HL7_ERR_RECORD_LOCKED = 206,
    HL7_ERR_INTERNAL = 207,
} hl7_error_code_t;

/* Why a message could not be applied: the table 0357 code and where, beside the err_t. */
typedef struct {
    hl7_error_code_t code;
    hl7_where_t where;
} hl7_problem_t;

/* The trigger events Concerto applies ("A01", ...). */
bool hl7_adt_event_supported(const char *event);

/* The most writes one message makes (a Patient or two, an Encounter, its diagnoses, flags). */
#define HL7_MAX_WRITES 40

/* A search the plan ran that found nothing. */
typedef struct {
    const char *type;
    store_search_t query;
} hl7_absent_t;

typedef struct {
    /* inputs */
    store_conn_t *conn;          /* for reads and search plans (the caller's thread's) */
    int64_t now_us;              /* the time of the plan */
    const char *now_text;        /* the same as a FHIR instant */
    const hl7_message_t *msg;    /* parsed */
    const char *event;           /* the trigger event, "A03" (MSH-9.2, else EVN-1) */
    const tz_t *zone;            /* for times without an offset */
    const repo_caller_t *caller; /* the feed's service caller */
    arena_t *arena;
    /* outputs */
    const char *patient;   /* "Patient/x" written or matched, or NULL */
    const char *encounter; /* "Encounter/y", or NULL */
    hl7_problem_t problem; /* on an error */
    /* the plan */
    repo_write_t writes[HL7_MAX_WRITES]; /* prepared, in order */
    size_t nwrites;
    hl7_absent_t *absent; /* in arena */
    size_t nabsent, absent_cap;
} hl7_adt_t;

/*
 * Works out, on a->conn and off the store's writer, what the message makes of the record: the
 * writes prepared (parsed, validated, serialized, indexed) with the versions they replace, and
 * the searches that found nothing. On an error of the message (a->problem says which and
 * where) nothing is planned.
 */
status_t hl7_adt_plan(hl7_adt_t *a, err_t *err);
/*
 * Writes the plan inside txn, in a nested savepoint: all of it or nothing.
 * ERR_VERSION_CONFLICT when the record changed since the plan (a resource it replaces has a
 * newer version, or one it found absent exists): plan again. Another error of a write (a rule
 * of the record) sets a->problem.
 */
status_t hl7_adt_commit(store_txn_t *txn, hl7_adt_t *a, err_t *err);

/*
 * An HL7 DTM ("20261120143000", "202611201430-0500", "20261120") as a FHIR dateTime in arena:
 * a date alone stays a date; a time without an offset is local time in zone. *out_us the
 * instant (a date: its local midnight). False when s is not a DTM.
 */
bool hl7_dtm_to_fhir(const char *s, const tz_t *zone, arena_t *arena, const char **out,
                     int64_t *out_us);

/* The identifier system of an assigning authority (HD: namespace, universal id, its type);
 * fallback (the sending facility's namespace) when all are empty. In arena. */
const char *hl7_authority_system(const char *namespace_id, const char *universal_id,
                                 const char *universal_type, arena_t *arena);

#endif
