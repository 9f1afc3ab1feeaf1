/*
 * index_task.c - the work row of an open Task (index.h, fhir_task_work_t): its patient,
 * owner, status, priority rank, due time and role pools, read from the Task alone, so that
 * every writer of index rows (a write, a reindex, a copy) keeps the store's row right.
 */
#include <string.h>

#include "base/jv.h"
#include "fhir/index.h"
#include "fhir/workflow.h"

/* "Type/id" of a relative reference (a version dropped), else the reference as written. */
static const char *reference_key(const char *ref, arena_t *arena)
{
    if (strstr(ref, "://") || strncmp(ref, "urn:", 4) == 0)
        return arena_strdup(arena, ref);
    const char *slash = strchr(ref, '/');
    if (!slash)
        return arena_strdup(arena, ref);
    size_t len = (size_t)(slash - ref) + 1 + strcspn(slash + 1, "/");
    return arena_strndup(arena, ref, len);
}

/* Task.for when it names a Patient. */
static const char *patient_of(const json_t *task, arena_t *arena)
{
    const char *ref = json_string_value(json_object_get(json_object_get(task, "for"), "reference"));
    if (!ref)
        return NULL;
    const char *at = strstr(ref, "Patient/");
    if (!at || (at != ref && at[-1] != '/'))
        return NULL;
    return reference_key(ref, arena);
}

static void add_pool(fhir_task_work_t *w, size_t *cap, const char *pool, arena_t *arena)
{
    for (size_t i = 0; i < w->npools; i++)
        if (strcmp(w->pools[i], pool) == 0)
            return;
    if (w->npools == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        const char **grown = arena_alloc(arena, *cap * sizeof(*grown));
        if (w->npools)
            memcpy(grown, w->pools, w->npools * sizeof(*grown));
        w->pools = grown;
    }
    w->pools[w->npools++] = pool;
}

fhir_task_work_t *fhir_index_task_work(const json_t *task, arena_t *arena)
{
    const char *type = json_string_value(json_object_get(task, "resourceType"));
    const char *status = json_string_value(json_object_get(task, "status"));
    task_status_t s;
    if (!type || strcmp(type, "Task") != 0 || !status || !task_status_parse(status, &s) ||
        task_status_final(s))
        return NULL;
    fhir_task_work_t *w = arena_zalloc(arena, sizeof(*w));
    w->status = arena_strdup(arena, status);
    w->patient = patient_of(task, arena);
    const json_t *owner = json_object_get(task, "owner");
    if (owner) {
        const char *ref = json_string_value(json_object_get(owner, "reference"));
        w->owner = ref ? reference_key(ref, arena) : "";
    }
    const char *priority = json_string_value(json_object_get(task, "priority"));
    w->priority = priority ? task_priority_rank(priority) : -1;
    if (!fhir_task_due(task, &w->due_us))
        w->due_us = INT64_MAX;
    if (owner)
        return w;
    size_t cap = 0, i, k;
    const json_t *concept, *coding;
    json_array_foreach(json_object_get(task, "performerType"), i, concept)
    {
        json_array_foreach(json_object_get(concept, "coding"), k, coding)
        {
            const char *system = json_string_value(json_object_get(coding, "system"));
            const char *code = json_string_value(json_object_get(coding, "code"));
            if (code)
                add_pool(w, &cap, arena_printf(arena, "%s|%s", system ? system : "", code), arena);
        }
    }
    return w;
}
