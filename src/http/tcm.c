/*
 * tcm.c - GET (or POST) Encounter/[id]/$tcm (docs/api.md): the TCM report of a discharge as a
 * Parameters resource: the discharge, the complexity, each requirement (interactive-contact,
 * face-to-face, medication-reconciliation) with its status, deadline and what satisfied it, and
 * the code. The judging is src/care/tcm.c's; times are in the organisation's zone.
 */
#include <string.h>

#include "base/clock.h"
#include "base/jv.h"
#include "care/protocol.h"
#include "care/tcm.h"
#include "http/http_int.h"

static void add_part(json_t *parts, const char *name, const char *value_key, json_t *value)
{
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string(name));
    json_object_set_new(p, value_key, value);
    json_array_append_new(parts, p);
}

static json_t *reference_to(const char *text)
{
    json_t *ref = json_object();
    json_object_set_new(ref, "reference", json_string(text));
    return ref;
}

static json_t *local_time(arena_t *arena, int64_t us)
{
    return json_string(care_format_instant(calendar_default(), us, arena));
}

/* One requirement as a parameter "requirement" with parts. */
static json_t *requirement(arena_t *arena, const char *name, const tcm_requirement_t *r)
{
    json_t *parts = json_array();
    add_part(parts, "name", "valueCode", json_string(name));
    add_part(parts, "status", "valueCode", json_string(care_tcm_status_code(r->status)));
    add_part(parts, "deadline", "valueDateTime", local_time(arena, r->deadline_us));
    if (r->task)
        add_part(parts, "task", "valueReference", reference_to(r->task));
    for (size_t i = 0; i < r->nevidence; i++)
        add_part(parts, "satisfiedBy", "valueReference", reference_to(r->evidence[i]));
    if (r->status == TCM_MET)
        add_part(parts, "metAt", "valueDateTime", local_time(arena, r->met_us));
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string("requirement"));
    json_object_set_new(p, "part", parts);
    return p;
}

/* $tcm takes no parameters: a POST's Parameters body must be empty. */
static status_t no_parameter(void *arg, const char *name, const json_t *parameter,
                             const char *where, err_t *err)
{
    (void)arg;
    (void)parameter;
    return err_set(err, ERR_INVALID, where, "$tcm has no parameter \"%s\" (it takes none)", name);
}

status_t http__tcm(const http_search_request_t *r, const char *id, bool post, buf_t *out,
                   http_audit_patients_t *patients, err_t *err)
{
    status_t rc;
    if (post && (rc = http__parameters_body(r, "$tcm", no_parameter, NULL, err)))
        return rc;
    arena_t *arena = r->arena;
    int64_t now_us = clock_now_us();
    const calendar_t *calendar = calendar_default();
    tcm_report_t report;
    json_t *encounter;
    rc = care_tcm_report(r->thread->conn, r->caller, id, calendar, now_us, arena, &report,
                         &encounter, err);
    if (encounter) {
        buf_t text = BUF_INIT;
        jv_dump(encounter, &text);
        http__audit_patient_add(arena, patients, "Encounter", id, text.ptr, text.len);
        buf_release(&text);
    }
    if (rc)
        return rc;
    json_t *params = json_array();
    add_part(params, "encounter", "valueReference",
             reference_to(arena_printf(arena, "Encounter/%s", id)));
    const char *patient =
        json_string_value(json_object_get(json_object_get(encounter, "subject"), "reference"));
    add_part(params, "patient", "valueReference", reference_to(patient));
    add_part(params, "now", "valueDateTime", local_time(arena, now_us));
    add_part(params, "discharge", "valueDateTime", local_time(arena, report.discharge_us));
    add_part(params, "periodEnd", "valueDateTime", local_time(arena, report.period_end_us));
    add_part(params, "eligible", "valueBoolean", json_boolean(report.eligible));
    add_part(params, "complexity", "valueCode",
             json_string(report.high_complexity ? "high" : "moderate"));
    add_part(params, "complexityReason", "valueString", json_string(report.complexity_reason));

    json_t *contact = requirement(arena, "interactive-contact", &report.contact);
    add_part(json_object_get(contact, "part"), "attempts", "valueInteger",
             json_integer(report.attempts));
    add_part(json_object_get(contact, "part"), "successfulContacts", "valueInteger",
             json_integer(report.successful));
    json_array_append_new(params, contact);
    json_t *visit = requirement(arena, "face-to-face", &report.visit);
    if (report.visit_ref) {
        add_part(json_object_get(visit, "part"), "visit", "valueReference",
                 reference_to(report.visit_ref));
        add_part(json_object_get(visit, "part"), "visitDate", "valueDateTime",
                 local_time(arena, report.visit_us));
    }
    json_array_append_new(params, visit);
    json_array_append_new(params,
                          requirement(arena, "medication-reconciliation", &report.reconciliation));

    json_t *code = json_array();
    add_part(code, "code", "valueCode", json_string(care_tcm_code_text(report.code)));
    add_part(code, "status", "valueCode", json_string(report.final ? "final" : "provisional"));
    if (!report.final)
        add_part(code, "reachable", "valueCode", json_string(care_tcm_code_text(report.reachable)));
    add_part(code, "reason", "valueString", json_string(report.reason));
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string("code"));
    json_object_set_new(p, "part", code);
    json_array_append_new(params, p);

    json_t *result = json_object();
    json_object_set_new(result, "resourceType", json_string("Parameters"));
    json_object_set_new(result, "parameter", params);
    jv_dump(result, out);
    json_decref(result);
    return ERR_OK;
}
