/*
 * demo_gen.h - the synthetic population of `concerto demo`, as FHIR resources.
 *
 * Pure: no I/O, no clock, no global state. Everything comes from the seed and the as-of date:
 * the staff from a stream of their own, each patient from a stream keyed by (seed, index), so
 * patients are made one at a time (memory does not grow with the population) and patient i's
 * traits do not depend on the population's size (which staff serve them does). Dates are
 * placed relative to the as-of date. Resources are handed to an emit callback in an order
 * where every reference points to a resource emitted before it.
 */
#ifndef CONCERTO_CLI_DEMO_GEN_H
#define CONCERTO_CLI_DEMO_GEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- deterministic randomness (splitmix64) ---------------------------------------------- */

typedef struct {
    uint64_t state;
} demo_rng_t;

/* Seeds r for one stream of seed: stream 0 is the staff, stream i + 1 patient i. */
void demo_rng_seed(demo_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t demo_rng_next(demo_rng_t *r);
/* A number in [0, 1). */
double demo_rng_unit(demo_rng_t *r);
/* An integer in [low, high] (low <= high). */
int demo_rng_range(demo_rng_t *r, int low, int high);
/* Whether an event of probability p happens. */
bool demo_rng_chance(demo_rng_t *r, double p);
/* A normally distributed number (Box-Muller). */
double demo_rng_normal(demo_rng_t *r, double mean, double sd);

/* ---- dates ------------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t demo_days_from_civil(int year, int month, int day);
void demo_civil_from_days(int64_t days, int *out_year, int *out_month, int *out_day);
/* Parses "YYYY-MM-DD" (a real calendar date) into days; false when it is not one. */
bool demo_parse_date(const char *text, int64_t *out_days);

/* ---- the population --------------------------------------------------------------------- */

/* Resources of the history (imported first; the engine treats them as already worked) and the
 * recent events (imported after: hospital stays of the last days that the engine reacts to). */
typedef enum { DEMO_HISTORY, DEMO_RECENT } demo_phase_t;

/* Receives each resource (borrowed: valid during the call). */
typedef void (*demo_emit_fn)(void *ctx, demo_phase_t phase, json_t *resource);

/* The chronic conditions a patient may have (a bit mask of these). */
enum {
    DEMO_DIABETES = 1 << 0,
    DEMO_HYPERTENSION = 1 << 1,
    DEMO_HEART_FAILURE = 1 << 2,
    DEMO_COPD = 1 << 3,
    DEMO_CKD = 1 << 4,
    DEMO_DEPRESSION = 1 << 5,
};

typedef struct {
    uint64_t seed;
    int64_t as_of; /* days since 1970-01-01 */
    size_t patients;
    /* staff sizes, from the number of patients */
    size_t coordinators, nurses, physicians, pharmacists, social_workers, health_workers;
} demo_gen_t;

/* Sets up a population of patients patients. */
void demo_gen_init(demo_gen_t *g, uint64_t seed, int64_t as_of, size_t patients);
/* Emits the Organizations and Practitioners. */
void demo_gen_staff(const demo_gen_t *g, demo_emit_fn emit, void *ctx);
/* Emits patient index (0 <= index < g->patients) and everything about them. */
void demo_gen_patient(const demo_gen_t *g, size_t index, demo_emit_fn emit, void *ctx);

/* The traits of patient index that the resources follow: age in years at the as-of date,
 * female or not, and the DEMO_* conditions. */
typedef struct {
    int age;
    bool female;
    unsigned conditions;
} demo_traits_t;
void demo_gen_traits(const demo_gen_t *g, size_t index, demo_traits_t *out);

/* A sign-in made for the demo: a staff member's (linked to a Practitioner on care teams; the
 * admin to none) or a patient's (linked to their Patient). */
typedef struct {
    const char *username;
    const char *role;
    const char *practitioner_id; /* or NULL */
    const char *patient_id;      /* or NULL */
    const char *who;             /* shown to people: "Erik Lindqvist, care coordinator" */
} demo_account_t;

/* The accounts (a static table, one per role of auth_roles and two patients); *out_n gets
 * their number. */
const demo_account_t *demo_gen_accounts(size_t *out_n);

#endif
