/*
 * fhirpath.c - evaluations per second of typical R4 search-parameter expressions over the
 * specification's own examples (build/fhir/hl7.fhir.r4.examples/package, from
 * tools/install-deps). Each expression is compiled once and evaluated many times, one arena
 * per evaluation released after it, and resolve() answered by fhirpath_resolve_shallow, as
 * the indexer will do. The baseline, measured in the same run, is parsing the resource's
 * JSON once (what every write already pays).
 *
 *   make bench-fhirpath && build/bench/fhirpath [package-dir]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    return buf_detach(&b, out_len);
}

typedef struct {
    const char *file;
    const char *text;
    size_t len;
    json_t *json;
} resource_t;

static resource_t resources[] = {
    {"Patient-example.json", NULL, 0, NULL},
    {"Observation-example.json", NULL, 0, NULL},
    {"Encounter-example.json", NULL, 0, NULL},
    {"Bundle-bundle-example.json", NULL, 0, NULL},
    {"Observation-example-genetics-1.json", NULL, 0, NULL},
};

static const struct {
    int resource; /* index in resources */
    const char *expression;
} cases[] = {
    {0, "Patient.name"},
    {0, "Patient.birthDate"},
    {0, "Patient.telecom.where(system='phone')"},
    {0, "Patient.name.family | Patient.name.given"},
    {0, "Patient.address.city"},
    {0, "Patient.extension('http://hl7.org/fhir/StructureDefinition/us-core-race')"},
    {0, "Patient.deceased.exists() and Patient.deceased != false"},
    {0, "Patient.identifier.where(type.coding.code = 'MR').value"},
    {1, "Observation.code"},
    {1, "Observation.value as Quantity"},
    {1, "(Observation.value as CodeableConcept)"},
    {1, "Observation.effective"},
    {1, "Observation.subject.where(resolve() is Patient)"},
    {1, "(Observation.value as Quantity) > 80 'kg'"},
    {2, "Encounter.period"},
    {2, "Encounter.class"},
    {3, "Bundle.entry[0].resource"},
    {3, "Bundle.entry.resource.ofType(MedicationRequest).medication.resolve()"},
    {4, "Observation.extension('http://hl7.org/fhir/StructureDefinition/"
        "observation-geneticsGene').value.coding.code"},
};

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/fhir/hl7.fhir.r4.examples/package";
    const char *seconds = getenv("BENCH_SECONDS");
    double min_seconds = seconds ? strtod(seconds, NULL) : 0.5;
    if (!(min_seconds > 0))
        min_seconds = 0.5;
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, resources[i].file);
        char *text = read_file(path, &resources[i].len);
        if (!text) {
            fprintf(stderr, "bench: cannot read %s (run tools/install-deps)\n", path);
            return 1;
        }
        err_t err = ERR_INIT;
        resources[i].json = jv_parse(text, resources[i].len, &err);
        if (!resources[i].json) {
            fprintf(stderr, "bench: %s: %s\n", path, err_message(&err));
            return 1;
        }
        resources[i].text = text;
        err_release(&err);
    }

    /* baseline: parsing the Observation example's JSON */
    double start = now_seconds(), elapsed;
    long parses = 0;
    do {
        for (int k = 0; k < 1000; k++) {
            err_t err = ERR_INIT;
            json_t *j = jv_parse(resources[1].text, resources[1].len, &err);
            json_decref(j);
            err_release(&err);
        }
        parses += 1000;
        elapsed = now_seconds() - start;
    } while (elapsed < min_seconds);
    double baseline = (double)parses / elapsed;
    printf("%-80s %10.0f /s  (baseline)\n", "parse Observation-example.json (jv_parse)", baseline);

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        err_t err = ERR_INIT;
        fhirpath_t *expr = fhirpath_compile(cases[c].expression, strlen(cases[c].expression), &err);
        if (!expr) {
            fprintf(stderr, "bench: %s: %s\n", cases[c].expression, err_message(&err));
            return 1;
        }
        fhirpath_env_t env;
        fhirpath_env_init(&env, resources[cases[c].resource].json);
        env.resolve = fhirpath_resolve_shallow;
        size_t items = 0;
        long evaluations = 0;
        start = now_seconds();
        do {
            for (int k = 0; k < 1000; k++) {
                arena_t arena;
                arena_init(&arena);
                fhirpath_result_t *result;
                if (fhirpath_eval(expr, &env, &arena, &result, &err)) {
                    fprintf(stderr, "bench: %s: %s\n", cases[c].expression, err_message(&err));
                    return 1;
                }
                items = fhirpath_result_count(result);
                arena_release(&arena);
            }
            evaluations += 1000;
            elapsed = now_seconds() - start;
        } while (elapsed < min_seconds);
        double rate = (double)evaluations / elapsed;
        char label[128];
        snprintf(label, sizeof(label), "%s (%zu item%s)", cases[c].expression, items,
                 items == 1 ? "" : "s");
        printf("%-80s %10.0f /s  %6.1fx baseline\n", label, rate, rate / baseline);
        fhirpath_free(expr);
        err_release(&err);
    }
    for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
        json_decref(resources[i].json);
        free((char *)resources[i].text);
    }
    return 0;
}
