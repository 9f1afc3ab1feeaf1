/*
 * escalation.c - reading an ActivityDefinition's escalation steps and the arithmetic of when
 * they come due. Every problem is reported with the element it is in, so a protocol author
 * can find it.
 */
#include "care/escalation.h"

#include <stdio.h>
#include <string.h>

#include "fhir/workflow.h"

const json_t *care_extension_value(const json_t *r, const char *url, const char *value)
{
    size_t i;
    const json_t *ext;
    json_array_foreach(json_object_get(r, "extension"), i, ext)
    {
        const char *u = json_string_value(json_object_get(ext, "url"));
        if (u && strcmp(u, url) == 0)
            return json_object_get(ext, value);
    }
    return NULL;
}

/* The first coding of a CodeableConcept as a role (system may be NULL); false when none. */
static bool role_of(const json_t *concept, arena_t *arena, care_role_t *out)
{
    const json_t *coding = json_array_get(json_object_get(concept, "coding"), 0);
    const char *code = json_string_value(json_object_get(coding, "code"));
    if (!code)
        return false;
    const char *system = json_string_value(json_object_get(coding, "system"));
    out->system = system ? arena_strdup(arena, system) : NULL;
    out->code = arena_strdup(arena, code);
    return true;
}

static status_t parse_step(const json_t *ext, size_t at, arena_t *arena,
                           care_escalation_step_t *step, err_t *err)
{
    memset(step, 0, sizeof(*step));
    size_t i;
    const json_t *sub;
    bool has_after = false;
    json_array_foreach(json_object_get(ext, "extension"), i, sub)
    {
        char where[96];
        snprintf(where, sizeof(where), "ActivityDefinition.extension[%zu].extension[%zu]", at, i);
        const char *url = json_string_value(json_object_get(sub, "url"));
        url = url ? url : "";
        if (strcmp(url, "after") == 0) {
            const char *text = json_string_value(json_object_get(sub, "valueString"));
            if (!text)
                return err_set(err, ERR_RULE, where,
                               "escalation step %zu: after needs a valueString duration "
                               "(\"PT0H\", \"1 business day\")",
                               at);
            err_t bad = ERR_INIT;
            status_t rc = calendar_duration_parse(text, strlen(text), &step->after, &bad);
            err_release(&bad);
            if (rc)
                return err_set(err, ERR_RULE, where,
                               "escalation step %zu: \"%s\" is not a duration (\"PT4H\", \"2 "
                               "days\", \"1 business day\")",
                               at, text);
            step->after_text = arena_strdup(arena, text);
            has_after = true;
        } else if (strcmp(url, "priority") == 0) {
            const char *code = json_string_value(json_object_get(sub, "valueCode"));
            if (!code || task_priority_rank(code) < 0)
                return err_set(err, ERR_RULE, where,
                               "escalation step %zu: priority \"%s\" is not routine, urgent, "
                               "asap or stat",
                               at, code ? code : "");
            step->priority = arena_strdup(arena, code);
        } else if (strcmp(url, "reassign") == 0 || strcmp(url, "notify") == 0) {
            bool reassign = url[0] == 'r';
            care_role_t role;
            if (!role_of(json_object_get(sub, "valueCodeableConcept"), arena, &role))
                return err_set(err, ERR_RULE, where,
                               "escalation step %zu: %s needs a valueCodeableConcept with a "
                               "coding of a care team role",
                               at, url);
            if (reassign)
                step->reassign = role;
            else if (strcmp(role.code, "owner") == 0 && role.system &&
                     strcmp(role.system, CARE_EXT_NOTIFY_TARGET) == 0)
                step->notify_owner = true;
            else
                step->notify = role;
        } else {
            return err_set(err, ERR_RULE, where,
                           "escalation step %zu: unknown part \"%s\" (after, priority, reassign "
                           "or notify)",
                           at, url);
        }
    }
    char where[64];
    snprintf(where, sizeof(where), "ActivityDefinition.extension[%zu]", at);
    if (!has_after)
        return err_set(err, ERR_RULE, where,
                       "escalation step %zu has no after (its time after "
                       "the due time)",
                       at);
    if (!step->priority && !step->reassign.code && !step->notify.code && !step->notify_owner)
        return err_set(err, ERR_RULE, where,
                       "escalation step %zu does nothing: give it a priority, reassign or notify",
                       at);
    return ERR_OK;
}

status_t care_escalation_parse(const json_t *activity, arena_t *arena, care_escalation_t *out,
                               err_t *err)
{
    out->steps = arena_alloc(arena, CARE_ESCALATION_MAX * sizeof(care_escalation_step_t));
    out->n = 0;
    size_t i;
    const json_t *ext;
    json_array_foreach(json_object_get(activity, "extension"), i, ext)
    {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (!url || strcmp(url, CARE_EXT_ESCALATION) != 0)
            continue;
        if (out->n == CARE_ESCALATION_MAX)
            return err_set(err, ERR_RULE, "ActivityDefinition.extension",
                           "an ActivityDefinition has at most %d escalation steps",
                           CARE_ESCALATION_MAX);
        status_t rc = parse_step(ext, i, arena, &out->steps[out->n], err);
        if (rc)
            return rc;
        out->n++;
    }
    return ERR_OK;
}

int64_t care_escalation_time(const calendar_t *cal, int64_t due_us,
                             const care_escalation_step_t *step)
{
    return calendar_add(cal, due_us, &step->after);
}
