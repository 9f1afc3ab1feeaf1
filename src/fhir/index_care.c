/*
 * index_care.c - the member rows of an active CareTeam (index.h, fhir_care_members_t): each
 * participant's member reference, role codings and period, with the team's Patient, read from
 * the CareTeam alone, so that every writer of index rows keeps the store's rows right.
 */
#include <string.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/workflow.h"

/* A FHIR id (the rule of a resource id: 1 to 64 of A-Z a-z 0-9 - .). */
static bool id_valid(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* "Patient/id" of the team's subject (relative, or absolute ending in one), or NULL. */
static const char *team_patient(const json_t *team, arena_t *arena)
{
    const char *ref =
        json_string_value(json_object_get(json_object_get(team, "subject"), "reference"));
    if (!ref)
        return NULL;
    const char *at = strstr(ref, "Patient/");
    if (!at || (at != ref && at[-1] != '/'))
        return NULL;
    size_t len = strcspn(at + 8, "/");
    return id_valid(at + 8, len) ? arena_strndup(arena, at, 8 + len) : NULL;
}

typedef struct {
    fhir_care_members_t *out;
    size_t cap;
} members_t;

static void add_member(members_t *m, const fhir_care_member_t *row, arena_t *arena)
{
    fhir_care_members_t *o = m->out;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i].member, row->member) == 0 && strcmp(o->v[i].role, row->role) == 0 &&
            o->v[i].from_us == row->from_us && o->v[i].until_us == row->until_us)
            return;
    if (o->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        fhir_care_member_t *grown = arena_alloc(arena, m->cap * sizeof(*grown));
        if (o->n)
            memcpy(grown, o->v, o->n * sizeof(*grown));
        o->v = grown;
    }
    o->v[o->n++] = *row;
}

/* The role codings of one CodeableConcept (or an array of them), as rows of the member. */
static void add_roles(members_t *m, fhir_care_member_t *row, const json_t *concept, arena_t *arena)
{
    size_t i;
    const json_t *one;
    if (json_is_array(concept)) {
        json_array_foreach(concept, i, one) add_roles(m, row, one, arena);
        return;
    }
    json_array_foreach(json_object_get(concept, "coding"), i, one)
    {
        const char *system = json_string_value(json_object_get(one, "system"));
        const char *code = json_string_value(json_object_get(one, "code"));
        if (!code || strpbrk(code, ",|\\$") || (system && strpbrk(system, ",|\\$")))
            continue;
        row->role = arena_printf(arena, "%s|%s", system ? system : "", code);
        add_member(m, row, arena);
    }
}

fhir_care_members_t *fhir_index_care_members(const json_t *team, arena_t *arena)
{
    const char *type = json_string_value(json_object_get(team, "resourceType"));
    const char *status = json_string_value(json_object_get(team, "status"));
    if (!type || strcmp(type, "CareTeam") != 0 || !status || strcmp(status, "active") != 0)
        return NULL;
    const char *patient = team_patient(team, arena);
    if (!patient)
        return NULL;
    members_t m = {.out = arena_zalloc(arena, sizeof(*m.out))};
    m.out->patient = patient;
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(team, "participant"), i, p)
    {
        const char *member =
            json_string_value(json_object_get(json_object_get(p, "member"), "reference"));
        if (!member)
            continue;
        fhir_care_member_t row = {.member = arena_strdup(arena, member)};
        fhir_period_bounds(json_object_get(p, "period"), &row.from_us, &row.until_us);
        add_roles(&m, &row, json_object_get(p, "role"), arena);
    }
    return m.out;
}
