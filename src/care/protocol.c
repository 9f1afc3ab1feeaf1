/*
 * protocol.c - compiles a PlanDefinition and its ActivityDefinitions into a protocol, checks
 * them when they are written, and instantiates one action for one event: pure, no I/O. Every
 * refusal names the element (PlanDefinition.action[0].condition[0].expression.expression)
 * and why, so that a protocol that cannot run is refused when it is written, not found out
 * when an event comes.
 */
#include "care/protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "base/mem.h"
#include "base/tz.h"
#include "care/escalation.h"
#include "fhir/workflow.h"

/* ---- small JSON helpers ------------------------------------------------------------------ */

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The first extension of `holder` with url, or NULL. */
static const json_t *extension(const json_t *holder, const char *url)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(holder, "extension"), i, e)
    {
        const char *u = str(e, "url");
        if (u && strcmp(u, url) == 0)
            return e;
    }
    return NULL;
}

/* The code of the coding of concept in system, or NULL. */
static const char *code_in(const json_t *concept, const char *system)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(concept, "coding"), i, c)
    {
        const char *s = str(c, "system"), *code = str(c, "code");
        if (s && code && strcmp(s, system) == 0)
            return code;
    }
    return NULL;
}

static void release_json(void *p)
{
    json_decref(p);
}

static void release_fhirpath(void *p)
{
    fhirpath_free(p);
}

/* Compiles text into the protocol's arena (freed with it); NULL with err naming where. */
static fhirpath_t *compile_expression(arena_t *arena, const char *text, const char *where,
                                      err_t *err)
{
    err_t e = ERR_INIT;
    fhirpath_t *expr = fhirpath_compile(text, strlen(text), &e);
    if (!expr) {
        err_set(err, ERR_RULE, where, "%s does not compile: %s", where, err_message(&e));
        err_release(&e);
        return NULL;
    }
    arena_cleanup_add(arena, release_fhirpath, expr);
    return expr;
}

/* ---- ActivityDefinition ------------------------------------------------------------------ */

const char *care_activity_canonical(const json_t *activity, arena_t *arena)
{
    const char *url = str(activity, "url"), *version = str(activity, "version");
    if (!url)
        return NULL;
    return version ? arena_printf(arena, "%s|%s", url, version) : arena_strdup(arena, url);
}

bool care_canonical_matches(const char *canonical, const char *url, const char *version)
{
    if (!canonical || !url)
        return false;
    const char *bar = strchr(canonical, '|');
    size_t len = bar ? (size_t)(bar - canonical) : strlen(canonical);
    if (len != strlen(url) || strncmp(canonical, url, len) != 0)
        return false;
    return !bar || (version && strcmp(bar + 1, version) == 0);
}

static status_t check_duration(const json_t *value, const char *where, err_t *err)
{
    const char *text = json_string_value(value);
    if (!text)
        return err_set(err, ERR_RULE, where, "%s must be a valueString such as \"2 business days\"",
                       where);
    calendar_duration_t d;
    err_t e = ERR_INIT;
    if (calendar_duration_parse(text, strlen(text), &d, &e)) {
        err_set(err, ERR_RULE, where, "%s: %s", where, err_message(&e));
        err_release(&e);
        return err->code;
    }
    return ERR_OK;
}

/* Checks activity and, when out is not NULL, fills it (in the protocol's arena). */
static status_t activity_compile(const json_t *ad, arena_t *arena, care_activity_t *out, err_t *err)
{
    care_activity_t a = {0};
    const char *kind = str(ad, "kind");
    if (!str(ad, "url"))
        return err_set(err, ERR_REQUIRED, "ActivityDefinition.url",
                       "a protocol's ActivityDefinition needs a url, by which actions name it");
    if (kind && strcmp(kind, "Task") == 0)
        a.kind = CARE_KIND_TASK;
    else if (kind && strcmp(kind, "CommunicationRequest") == 0)
        a.kind = CARE_KIND_COMMUNICATION_REQUEST;
    else
        return err_set(err, ERR_RULE, "ActivityDefinition.kind",
                       "the engine makes a Task or a CommunicationRequest, not \"%s\"",
                       kind ? kind : "");
    const char *priority = str(ad, "priority");
    if (priority && task_priority_rank(priority) < 0)
        return err_set(err, ERR_RULE, "ActivityDefinition.priority",
                       "priority must be routine, urgent, asap or stat, not \"%s\"", priority);
    const json_t *participants = json_object_get(ad, "participant");
    if (json_array_size(participants) > 1 + CARE_ACTIVITY_MAX_ROLES)
        return err_set(err, ERR_RULE, "ActivityDefinition.participant",
                       "at most %d participants: a role and up to %d roles to fall back on",
                       1 + CARE_ACTIVITY_MAX_ROLES, CARE_ACTIVITY_MAX_ROLES);
    size_t i;
    const json_t *participant;
    json_array_foreach(participants, i, participant)
    {
        const json_t *role = json_object_get(participant, "role");
        const char *code = role ? code_in(role, CARE_SNOMED_SYSTEM) : NULL;
        if (!role && i == 0)
            continue;
        if (!code)
            return err_set(err, ERR_RULE,
                           arena_printf(arena, "ActivityDefinition.participant[%zu].role", i),
                           "the role must have a SNOMED CT coding (a care team role such as "
                           "768820003 care coordinator)");
        if (i == 0) {
            a.role = role;
            a.role_code = code;
        } else {
            a.fallback_roles[a.nfallbacks] = role;
            a.fallback_codes[a.nfallbacks++] = code;
        }
    }
    if (a.nfallbacks && !a.role)
        return err_set(err, ERR_REQUIRED, "ActivityDefinition.participant[0].role",
                       "roles to fall back on need a first role");
    const json_t *questionnaire = extension(ad, CARE_EXT_QUESTIONNAIRE);
    if (questionnaire) {
        a.questionnaire = str(questionnaire, "valueCanonical");
        if (!a.questionnaire || !*a.questionnaire)
            return err_set(err, ERR_RULE,
                           "ActivityDefinition.extension('" CARE_EXT_QUESTIONNAIRE
                           "').valueCanonical",
                           "%s needs a valueCanonical naming a Questionnaire (its url)",
                           CARE_EXT_QUESTIONNAIRE);
        if (a.kind != CARE_KIND_TASK)
            return err_set(err, ERR_RULE,
                           "ActivityDefinition.extension('" CARE_EXT_QUESTIONNAIRE "')",
                           "a questionnaire goes with a Task, not a %s", kind);
    }
    const json_t *due = extension(ad, CARE_EXT_DUE);
    if (due) {
        const char *text = str(due, "valueString");
        if (check_duration(json_object_get(due, "valueString"),
                           "ActivityDefinition.extension('" CARE_EXT_DUE "').valueString", err))
            return err->code;
        calendar_duration_parse(text, strlen(text), &a.due, err);
        a.has_due = true;
    }
    const json_t *from = extension(ad, CARE_EXT_DUE_FROM);
    if (from) {
        const char *where = "ActivityDefinition.extension('" CARE_EXT_DUE_FROM "').valueString";
        const char *text = str(from, "valueString");
        if (!text)
            return err_set(err, ERR_RULE, where, "%s must be a FHIRPath valueString", where);
        if (!due)
            return err_set(err, ERR_RULE, where, "%s needs a due offset (%s) beside it", where,
                           CARE_EXT_DUE);
        if (!(a.due_from = compile_expression(arena, text, where, err)))
            return err->code;
    }
    /* the steps run from the Task's due time (care/overdue.c), whoever set it */
    care_escalation_t escalation;
    if (care_escalation_parse(ad, arena, &escalation, err))
        return err->code;
    if (out) {
        a.id = str(ad, "id");
        a.canonical = care_activity_canonical(ad, arena);
        a.code = json_object_get(ad, "code");
        a.description = str(ad, "description");
        a.priority = priority;
        *out = a;
    }
    return ERR_OK;
}

status_t care_activity_check(const json_t *activity, err_t *err)
{
    arena_t arena;
    arena_init(&arena);
    status_t rc = activity_compile(activity, &arena, NULL, err);
    arena_release(&arena);
    return rc;
}

/* ---- PlanDefinition ---------------------------------------------------------------------- */

void care_protocol_free(care_protocol_t *p)
{
    if (!p)
        return;
    arena_release(&p->arena);
    free(p);
}

int care_protocol_action_find(const care_protocol_t *p, const char *id)
{
    for (size_t i = 0; id && i < p->nactions; i++)
        if (strcmp(p->actions[i].id, id) == 0)
            return (int)i;
    return -1;
}

static status_t compile_triggers(const json_t *action, const char *at, arena_t *arena,
                                 care_action_t *a, err_t *err)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(action, "trigger"), i, t)
    {
        const char *type = str(t, "type"), *name = str(t, "name");
        const char *where = arena_printf(arena, "%s.trigger[%zu]", at, i);
        int found = name ? care_trigger_find(name) : -1;
        if (type && strcmp(type, "named-event") == 0) {
            if (found < 0 || found == CARE_SCHEDULED)
                return err_set(err, ERR_RULE, arena_printf(arena, "%s.name", where),
                               "no named event \"%s\" (patient-enrolled, referral-created, "
                               "appointment-noshow, task-overdue, task-completed, "
                               "encounter-discharged, encounter-admitted, encounter-emergency, "
                               "observation-abnormal)",
                               name ? name : "");
        } else if (type && strcmp(type, "periodic") == 0) {
            if (found != CARE_SCHEDULED)
                return err_set(err, ERR_RULE, arena_printf(arena, "%s.name", where),
                               "a periodic trigger is named \"scheduled\", not \"%s\"",
                               name ? name : "");
            if (!json_is_object(json_object_get(t, "timingTiming")))
                return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.timingTiming", where),
                               "a periodic trigger needs a timingTiming");
            if (a->triggers & (1u << CARE_SCHEDULED))
                return err_set(err, ERR_RULE, where,
                               "an action has one periodic trigger; make another action for "
                               "another schedule");
            if (care_recurrence_parse(json_object_get(t, "timingTiming"),
                                      arena_printf(arena, "%s.timingTiming", where), arena,
                                      &a->every, err))
                return err->code;
        } else {
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.type", where),
                           "the engine runs named-event and periodic triggers, not \"%s\"",
                           type ? type : "");
        }
        a->triggers |= 1u << found;
    }
    return ERR_OK;
}

static status_t compile_conditions(const json_t *action, const char *at, arena_t *arena,
                                   care_action_t *a, err_t *err)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(action, "condition"), i, c)
    {
        const char *where = arena_printf(arena, "%s.condition[%zu]", at, i);
        const char *kind = str(c, "kind");
        if (!kind || strcmp(kind, "applicability") != 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.kind", where),
                           "the engine evaluates applicability conditions, not \"%s\"",
                           kind ? kind : "");
        const json_t *expr = json_object_get(c, "expression");
        const char *language = str(expr, "language"), *text = str(expr, "expression");
        if (!language || strcmp(language, "text/fhirpath") != 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.expression.language", where),
                           "conditions are in text/fhirpath, not \"%s\"", language ? language : "");
        if (!text)
            return err_set(err, ERR_REQUIRED,
                           arena_printf(arena, "%s.expression.expression", where),
                           "a condition needs its FHIRPath expression");
        if (a->nconditions == CARE_PROTOCOL_MAX_CONDITIONS)
            return err_set(err, ERR_RULE, where, "an action has at most %d conditions",
                           CARE_PROTOCOL_MAX_CONDITIONS);
        fhirpath_t *compiled = compile_expression(
            arena, text, arena_printf(arena, "%s.expression.expression", where), err);
        if (!compiled)
            return err->code;
        a->conditions[a->nconditions++] = compiled;
    }
    return ERR_OK;
}

/* The after-end edge of action i (its relatedAction), by id: resolved once all ids are known. */
static status_t compile_related(const care_protocol_t *p, const json_t *action, const char *at,
                                arena_t *arena, care_action_t *a, err_t *err)
{
    const json_t *related = json_object_get(action, "relatedAction");
    size_t n = json_array_size(related);
    if (n == 0)
        return ERR_OK;
    if (n > 1)
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.relatedAction[1]", at),
                       "an action follows one other action (one relatedAction)");
    const json_t *r = json_array_get(related, 0);
    const char *rel = str(r, "relationship"), *target = str(r, "actionId");
    if (!rel || strcmp(rel, "after-end") != 0)
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.relatedAction[0].relationship", at),
                       "the engine runs after-end relationships, not \"%s\"", rel ? rel : "");
    a->after = care_protocol_action_find(p, target);
    if (a->after < 0)
        return err_set(err, ERR_RULE, arena_printf(arena, "%s.relatedAction[0].actionId", at),
                       "no action \"%s\" in this PlanDefinition", target ? target : "");
    return ERR_OK;
}

static status_t compile_actions(care_protocol_t *p, const json_t *plan,
                                const json_t *const *activities, size_t nactivities, unsigned flags,
                                err_t *err)
{
    arena_t *arena = &p->arena;
    const json_t *actions = json_object_get(plan, "action");
    if (json_array_size(actions) == 0)
        return err_set(err, ERR_REQUIRED, "PlanDefinition.action", "a protocol needs actions");
    if (json_array_size(actions) > CARE_PROTOCOL_MAX_ACTIONS)
        return err_set(err, ERR_RULE, "PlanDefinition.action", "a protocol has at most %d actions",
                       CARE_PROTOCOL_MAX_ACTIONS);
    size_t i;
    const json_t *action;
    json_array_foreach(actions, i, action)
    {
        const char *at = arena_printf(arena, "PlanDefinition.action[%zu]", i);
        care_action_t *a = &p->actions[i];
        a->after = -1;
        a->id = str(action, "id");
        if (!a->id || !*a->id)
            return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.id", at),
                           "each action needs an id, unique in the plan");
        if (care_protocol_action_find(p, a->id) >= 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.id", at),
                           "two actions have the id \"%s\"", a->id);
        if (json_object_get(action, "action"))
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.action", at),
                           "nested actions are not supported: list them in PlanDefinition.action");
        a->title = str(action, "title");
        p->nactions = i + 1;
    }
    json_array_foreach(actions, i, action)
    {
        const char *at = arena_printf(arena, "PlanDefinition.action[%zu]", i);
        care_action_t *a = &p->actions[i];
        if (compile_triggers(action, at, arena, a, err) ||
            compile_conditions(action, at, arena, a, err) ||
            compile_related(p, action, at, arena, a, err))
            return err->code;
        if (!a->triggers && a->after < 0)
            return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.trigger", at),
                           "action \"%s\" has neither a trigger nor a relatedAction: nothing "
                           "would run it",
                           a->id);
        if (a->triggers && a->after >= 0)
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.relatedAction", at),
                           "action \"%s\" has a trigger and a relatedAction; it runs on one or "
                           "the other",
                           a->id);
        const json_t *flag = extension(action, CARE_EXT_FLAG);
        if (flag) {
            a->flag = json_object_get(flag, "valueCodeableConcept");
            if (!json_is_object(a->flag))
                return err_set(err, ERR_RULE,
                               arena_printf(arena, "%s.extension('%s')", at, CARE_EXT_FLAG),
                               "a flag needs a valueCodeableConcept (Flag.code)");
        }
        a->definition = str(action, "definitionCanonical");
        if (!a->definition && !a->flag)
            return err_set(err, ERR_REQUIRED, arena_printf(arena, "%s.definitionCanonical", at),
                           "action \"%s\" makes nothing: give a definitionCanonical (an "
                           "ActivityDefinition) or a flag",
                           a->id);
        if (!a->definition)
            continue;
        for (size_t k = 0; k < nactivities && !a->activity; k++)
            if (care_canonical_matches(a->definition, str(activities[k], "url"),
                                       str(activities[k], "version")))
                a->activity = &p->activities[k];
        if (!a->activity && !(flags & CARE_PROTOCOL_UNRESOLVED))
            return err_set(err, ERR_RULE, arena_printf(arena, "%s.definitionCanonical", at),
                           "no active ActivityDefinition %s", a->definition);
    }
    /* after-end edges: following them from any action must end */
    for (size_t k = 0; k < p->nactions; k++) {
        int at = p->actions[k].after;
        for (size_t steps = 0; at >= 0; steps++, at = p->actions[at].after)
            if (steps > p->nactions || (size_t)at == k)
                return err_set(err, ERR_RULE,
                               arena_printf(arena, "PlanDefinition.action[%zu].relatedAction", k),
                               "the relatedActions of action \"%s\" make a cycle",
                               p->actions[k].id);
    }
    return ERR_OK;
}

status_t care_protocol_compile(const json_t *plan, const json_t *const *activities, size_t n,
                               unsigned flags, care_protocol_t **out, err_t *err)
{
    *out = NULL;
    care_protocol_t *p = xcalloc(1, sizeof(*p));
    arena_init(&p->arena);
    p->source = json_deep_copy(plan);
    arena_cleanup_add(&p->arena, release_json, p->source);
    p->id = str(p->source, "id");
    p->version_id = str(json_object_get(p->source, "meta"), "versionId");
    p->url = str(p->source, "url");
    p->title = str(p->source, "title");
    status_t rc = ERR_OK;
    if (!code_in(json_object_get(p->source, "type"), CARE_PLAN_TYPE_SYSTEM) ||
        strcmp(code_in(json_object_get(p->source, "type"), CARE_PLAN_TYPE_SYSTEM),
               CARE_PLAN_TYPE_WORKFLOW) != 0) {
        /* other PlanDefinitions (order sets, ECA rules of other systems) are not protocols */
        rc = err_set(err, ERR_RULE, "PlanDefinition.type",
                     "a protocol is a PlanDefinition of type %s (%s)", CARE_PLAN_TYPE_WORKFLOW,
                     CARE_PLAN_TYPE_SYSTEM);
        goto out;
    }
    if (!p->url) {
        rc = err_set(err, ERR_REQUIRED, "PlanDefinition.url",
                     "a protocol needs a url: what it makes carries it");
        goto out;
    }
    p->activities = arena_zalloc(&p->arena, (n + 1) * sizeof(*p->activities));
    p->activity_sources = arena_zalloc(&p->arena, (n + 1) * sizeof(json_t *));
    for (size_t i = 0; i < n; i++) {
        p->activity_sources[i] = json_deep_copy(activities[i]);
        arena_cleanup_add(&p->arena, release_json, p->activity_sources[i]);
    }
    p->nactivities = n;
    rc = compile_actions(p, p->source, (const json_t *const *)p->activity_sources, n, flags, err);
    /* the activities the actions name must be able to run too */
    for (size_t i = 0; rc == ERR_OK && i < p->nactions; i++) {
        care_action_t *a = &p->actions[i];
        if (!a->activity)
            continue;
        size_t k = (size_t)(a->activity - p->activities);
        if (p->activities[k].canonical)
            continue; /* compiled for an earlier action */
        err_t e = ERR_INIT;
        if (activity_compile(p->activity_sources[k], &p->arena, &p->activities[k], &e)) {
            rc =
                err_set(err, e.code, arena_printf(&p->arena, "PlanDefinition.action[%zu]", i),
                        "the ActivityDefinition %s of action \"%s\" cannot run: %s%s%s",
                        a->definition, a->id, err_message(&e), e.issues[0].expression ? " at " : "",
                        e.issues[0].expression ? e.issues[0].expression : "");
        }
        err_release(&e);
    }
out:
    if (rc) {
        care_protocol_free(p);
        return rc;
    }
    *out = p;
    return ERR_OK;
}

/* ---- one action for one event ------------------------------------------------------------ */

status_t care_action_applies(const care_protocol_t *p, const care_action_t *a,
                             const care_event_t *event, arena_t *arena, bool *out, err_t *err)
{
    *out = true;
    fhirpath_var_t vars[] = {{"patient", event->patient}};
    fhirpath_env_t env;
    fhirpath_env_init(&env, event->resource);
    env.vars = vars;
    env.nvars = event->patient ? 1 : 0;
    env.resolve = fhirpath_resolve_shallow;
    env.now_set = true;
    env.now_ms = event->time_us / 1000;
    for (size_t i = 0; i < a->nconditions; i++) {
        int value;
        err_t e = ERR_INIT;
        if (fhirpath_eval_condition(a->conditions[i], &env, arena, &value, &e)) {
            err_set(err, ERR_INVALID, NULL, "the condition %s of action \"%s\" of %s failed: %s",
                    fhirpath_text(a->conditions[i]), a->id, p->url, err_message(&e));
            err_release(&e);
            return err->code;
        }
        if (value != 1) {
            *out = false;
            return ERR_OK;
        }
    }
    return ERR_OK;
}

const char *care_action_key(const care_protocol_t *p, const care_action_t *a,
                            const care_event_t *event, arena_t *arena)
{
    if (event->occurrence)
        return arena_printf(arena, "%s/%s/%s/%s/_occurrence/%s", p->id, a->id, event->type,
                            event->id, event->occurrence);
    return arena_printf(arena, "%s/%s/%s/%s/_history/%lld", p->id, a->id, event->type, event->id,
                        (long long)event->version);
}

const char *care_format_instant(const calendar_t *calendar, int64_t time_us, arena_t *arena)
{
    tz_civil_t c;
    int32_t offset;
    int64_t secs = time_us >= 0 ? time_us / 1000000 : -((-time_us + 999999) / 1000000);
    int ms = (int)((time_us - secs * 1000000) / 1000);
    tz_to_local(calendar_zone(calendar), secs, &c, &offset);
    char zone[16];
    if (offset == 0)
        snprintf(zone, sizeof(zone), "Z");
    else
        snprintf(zone, sizeof(zone), "%c%02d:%02d", offset < 0 ? '-' : '+', abs(offset) / 3600,
                 abs(offset) % 3600 / 60);
    return arena_printf(arena, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", c.year, c.month, c.day,
                        c.hour, c.minute, c.second, ms, zone);
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool care_datetime_parse(const calendar_t *calendar, const char *s, int64_t *out_us)
{
    tz_civil_t c = {0};
    size_t len = strlen(s);
    if (len < 10 || !digits(s, 4, &c.year) || s[4] != '-' || !digits(s + 5, 2, &c.month) ||
        s[7] != '-' || !digits(s + 8, 2, &c.day) || !tz_valid_date(c.year, c.month, c.day))
        return false;
    if (len == 10) {
        *out_us = tz_from_local(calendar_zone(calendar), &c, NULL) * 1000000;
        return true;
    }
    if (len < 19 || s[10] != 'T' || !digits(s + 11, 2, &c.hour) || s[13] != ':' ||
        !digits(s + 14, 2, &c.minute) || s[16] != ':' || !digits(s + 17, 2, &c.second))
        return false;
    const char *p = s + 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        int64_t scale = 100000;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac_us += scale > 0 ? (*p - '0') * scale : 0;
    }
    int64_t secs;
    if (*p == 'Z' && p[1] == '\0') {
        secs = (tz_days_from_civil(c.year, c.month, c.day) * 86400) + c.hour * 3600 +
               c.minute * 60 + c.second;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h, m;
        if (!digits(p + 1, 2, &h) || !digits(p + 4, 2, &m))
            return false;
        int offset = (h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
        secs = (tz_days_from_civil(c.year, c.month, c.day) * 86400) + c.hour * 3600 +
               c.minute * 60 + c.second - offset;
    } else if (*p == '\0') {
        secs = tz_from_local(calendar_zone(calendar), &c, NULL);
    } else {
        return false;
    }
    *out_us = secs * 1000000 + frac_us;
    return true;
}

/* The due time of what activity makes for the event; *out 0 when it has no due offset. */
static status_t due_of(const care_action_t *a, const care_event_t *event, arena_t *arena,
                       int64_t *out, err_t *err)
{
    const care_activity_t *act = a->activity;
    *out = 0;
    if (!act->has_due)
        return ERR_OK;
    int64_t from = event->time_us;
    if (act->due_from) {
        fhirpath_env_t env;
        fhirpath_env_init(&env, event->resource);
        fhirpath_var_t vars[] = {{"patient", event->patient}};
        env.vars = vars;
        env.nvars = event->patient ? 1 : 0;
        env.now_set = true; /* now() is the event's time, as in conditions */
        env.now_ms = event->time_us / 1000;
        fhirpath_result_t *result;
        err_t e = ERR_INIT;
        const char *where = "ActivityDefinition.extension('" CARE_EXT_DUE_FROM "')";
        if (fhirpath_eval(act->due_from, &env, arena, &result, &e)) {
            err_set(err, ERR_RULE, where, "%s of %s (%s) failed on %s/%s: %s", where,
                    act->canonical, fhirpath_text(act->due_from), event->type, event->id,
                    err_message(&e));
            err_release(&e);
            return err->code;
        }
        const char *text = fhirpath_result_count(result) == 1
                               ? fhirpath_item_text(fhirpath_result_item(result, 0), arena)
                               : NULL;
        if (!text || !care_datetime_parse(event->calendar, text, &from))
            return err_set(err, ERR_RULE, where, "%s of %s (%s) gives no single dateTime for %s/%s",
                           where, act->canonical, fhirpath_text(act->due_from), event->type,
                           event->id);
    }
    *out = calendar_add(event->calendar, from, &act->due);
    return ERR_OK;
}

static json_t *reference(const char *ref)
{
    return json_pack("{s:s}", "reference", ref);
}

static json_t *identifier(const char *key)
{
    return json_pack("[{s:s,s:s}]", "system", CARE_PROTOCOL_ACTION_SYSTEM, "value", key);
}

static json_t *protocol_extension(const care_protocol_t *p, const care_action_t *a, arena_t *arena)
{
    return json_pack("[{s:s,s:s}]", "url", CARE_EXT_PROTOCOL_ACTION, "valueString",
                     arena_printf(arena, "%s#%s", p->url, a->id));
}

status_t care_action_instantiate(const care_protocol_t *p, const care_action_t *a,
                                 const care_event_t *event, arena_t *arena, json_t **out,
                                 err_t *err)
{
    *out = NULL;
    const care_activity_t *act = a->activity;
    if (!act)
        return err_set(err, ERR_RULE, NULL,
                       "action \"%s\" of %s names %s, which is not an active ActivityDefinition",
                       a->id, p->url, a->definition ? a->definition : "nothing");
    int64_t due;
    status_t rc = due_of(a, event, arena, &due, err);
    if (rc)
        return rc;
    const char *who = fhir_care_team_member_in_role(event->team, CARE_SNOMED_SYSTEM, act->role_code,
                                                    event->time_us);
    const json_t *role = act->role; /* the role of the owner, or of the pool it waits in */
    for (size_t i = 0; !who && i < act->nfallbacks; i++)
        if ((who = fhir_care_team_member_in_role(event->team, CARE_SNOMED_SYSTEM,
                                                 act->fallback_codes[i], event->time_us)))
            role = act->fallback_roles[i];
    const char *patient = arena_printf(arena, "Patient/%s", event->patient_id);
    const char *focus = arena_printf(arena, "%s/%s", event->type, event->id);
    json_t *r = json_object();
    if (act->kind == CARE_KIND_TASK) {
        json_object_set_new(r, "resourceType", json_string("Task"));
        json_object_set_new(r, "extension", protocol_extension(p, a, arena));
        json_object_set_new(r, "identifier", identifier(care_action_key(p, a, event, arena)));
        json_object_set_new(r, "instantiatesCanonical", json_string(act->canonical));
        if (event->careplan)
            json_object_set_new(r, "basedOn", json_pack("[o]", reference(event->careplan)));
        json_object_set_new(r, "status", json_string(who ? "ready" : "requested"));
        json_object_set_new(r, "intent", json_string("order"));
        if (act->priority)
            json_object_set_new(r, "priority", json_string(act->priority));
        if (act->code)
            json_object_set_new(r, "code", json_deep_copy(act->code));
        if (act->description)
            json_object_set_new(r, "description", json_string(act->description));
        json_object_set_new(r, "focus", reference(focus));
        json_object_set_new(r, "for", reference(patient));
        json_object_set_new(
            r, "authoredOn",
            json_string(care_format_instant(event->calendar, event->time_us, arena)));
        if (role)
            json_object_set_new(r, "performerType", json_pack("[O]", role));
        if (act->questionnaire)
            json_object_set_new(r, "input",
                                json_pack("[{s:{s:s},s:s}]", "type", "text", "questionnaire",
                                          "valueCanonical", act->questionnaire));
        if (who)
            json_object_set_new(r, "owner", reference(who));
        if (due)
            json_object_set_new(r, "restriction",
                                json_pack("{s:{s:s}}", "period", "end",
                                          care_format_instant(event->calendar, due, arena)));
    } else {
        json_object_set_new(r, "resourceType", json_string("CommunicationRequest"));
        json_object_set_new(r, "extension", protocol_extension(p, a, arena));
        json_object_set_new(r, "identifier", identifier(care_action_key(p, a, event, arena)));
        if (event->careplan)
            json_object_set_new(r, "basedOn", json_pack("[o]", reference(event->careplan)));
        json_object_set_new(r, "status", json_string("active"));
        if (act->code)
            json_object_set_new(r, "category", json_pack("[O]", act->code));
        if (act->priority)
            json_object_set_new(r, "priority", json_string(act->priority));
        json_object_set_new(r, "subject", reference(patient));
        json_object_set_new(r, "about", json_pack("[o]", reference(focus)));
        if (act->description)
            json_object_set_new(r, "payload",
                                json_pack("[{s:s}]", "contentString", act->description));
        if (due)
            json_object_set_new(r, "occurrenceDateTime",
                                json_string(care_format_instant(event->calendar, due, arena)));
        json_object_set_new(
            r, "authoredOn",
            json_string(care_format_instant(event->calendar, event->time_us, arena)));
        if (who)
            json_object_set_new(r, "recipient", json_pack("[o]", reference(who)));
    }
    *out = r;
    return ERR_OK;
}

json_t *care_action_flag(const care_protocol_t *p, const care_action_t *a,
                         const care_event_t *event, arena_t *arena)
{
    if (!a->flag)
        return NULL;
    json_t *f = json_pack("{s:s}", "resourceType", "Flag");
    json_object_set_new(f, "extension", protocol_extension(p, a, arena));
    json_object_set_new(f, "identifier", identifier(care_action_key(p, a, event, arena)));
    json_object_set_new(f, "status", json_string("active"));
    json_object_set_new(f, "code", json_deep_copy(a->flag));
    json_object_set_new(f, "subject",
                        reference(arena_printf(arena, "Patient/%s", event->patient_id)));
    json_object_set_new(
        f, "period",
        json_pack("{s:s}", "start", care_format_instant(event->calendar, event->time_us, arena)));
    return f;
}
