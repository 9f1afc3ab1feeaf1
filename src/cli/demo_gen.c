/*
 * demo_gen.c - the synthetic population of `concerto demo` (demo_gen.h).
 *
 * Each patient's stream draws their traits first (age, sex, conditions), then everything that
 * follows from them: medications that fit the conditions, vitals and laboratory results whose
 * values follow the conditions, visits, stays and emergency visits whose rates follow them,
 * the care coordination team with its primary coordinator, goals, the care plan, referrals,
 * appointments, messages and Tasks in every status with due dates around the as-of date.
 * Decimals are written as text (jv_decimal) so that the bytes do not depend on the platform's
 * formatting of doubles.
 */
#include "cli/demo_gen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/jv.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define ICD10 "http://hl7.org/fhir/sid/icd-10-cm"
#define RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define LOINC "http://loinc.org"
#define SNOMED "http://snomed.info/sct"
#define UCUM "http://unitsofmeasure.org"
#define ACT_CODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define MRN_SYSTEM "urn:oid:2.16.840.1.113883.19.5"
#define NPI_SYSTEM "http://hl7.org/fhir/sid/us-npi"
#define TASK_SYSTEM "http://concerto.dev/fhir/CodeSystem/demo-task"
#define CLINIC "Organization/riverside-clinic"
#define HOSPITAL "Organization/st-mary-hospital"

/* ---- randomness ------------------------------------------------------------------------- */

void demo_rng_seed(demo_rng_t *r, uint64_t seed, uint64_t stream)
{
    r->state = seed * 0x9E3779B97F4A7C15ULL ^ (stream + 1) * 0xD1B54A32D192ED03ULL;
    demo_rng_next(r);
}

uint64_t demo_rng_next(demo_rng_t *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double demo_rng_unit(demo_rng_t *r)
{
    return (double)(demo_rng_next(r) >> 11) / 9007199254740992.0;
}

int demo_rng_range(demo_rng_t *r, int low, int high)
{
    return low + (int)(demo_rng_next(r) % (uint64_t)(high - low + 1));
}

bool demo_rng_chance(demo_rng_t *r, double p)
{
    return demo_rng_unit(r) < p;
}

double demo_rng_normal(demo_rng_t *r, double mean, double sd)
{
    double u = demo_rng_unit(r), v = demo_rng_unit(r);
    if (u < 1e-12)
        u = 1e-12;
    return mean + sd * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ---- dates (H. Hinnant's civil calendar algorithms) -------------------------------------- */

int64_t demo_days_from_civil(int year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void demo_civil_from_days(int64_t days, int *out_year, int *out_month, int *out_day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *out_year = (int)(yoe + era * 400 + (m <= 2));
    *out_month = (int)m;
    *out_day = (int)d;
}

bool demo_parse_date(const char *text, int64_t *out_days)
{
    if (strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
            return false;
    int year = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + text[3] - '0';
    int month = (text[5] - '0') * 10 + text[6] - '0';
    int day = (text[8] - '0') * 10 + text[9] - '0';
    if (year < 1900 || month < 1 || month > 12 || day < 1)
        return false;
    int64_t days = demo_days_from_civil(year, month, day);
    int y, m, d;
    demo_civil_from_days(days, &y, &m, &d);
    if (y != year || m != month || d != day)
        return false;
    *out_days = days;
    return true;
}

/* "YYYY-MM-DD" of days. */
static json_t *date_value(int64_t days)
{
    int y, m, d;
    demo_civil_from_days(days, &y, &m, &d);
    char text[16];
    snprintf(text, sizeof(text), "%04d-%02d-%02d", y, m, d);
    return json_string(text);
}

/* "YYYY-MM-DDTHH:MM:00Z" of days and minutes into the day. */
static json_t *time_value(int64_t days, int minutes)
{
    int y, m, d;
    demo_civil_from_days(days + minutes / 1440, &y, &m, &d);
    minutes %= 1440;
    char text[32];
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:00Z", y, m, d, minutes / 60,
             minutes % 60);
    return json_string(text);
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

static json_t *ref(const char *format, ...) __attribute__((format(printf, 1, 2)));
static json_t *ref(const char *format, ...)
{
    char text[128];
    va_list ap;
    va_start(ap, format);
    vsnprintf(text, sizeof(text), format, ap);
    va_end(ap);
    return json_pack("{s:s}", "reference", text);
}

static json_t *coding(const char *system, const char *code, const char *display)
{
    return json_pack("{s:s, s:s, s:s}", "system", system, "code", code, "display", display);
}

static json_t *concept(const char *system, const char *code, const char *display)
{
    return json_pack("{s:[o], s:s}", "coding", coding(system, code, display), "text", display);
}

static json_t *decimal(double value, int places)
{
    char text[32];
    snprintf(text, sizeof(text), "%.*f", places, value);
    if (strcmp(text, "-0") == 0)
        snprintf(text, sizeof(text), "0");
    return jv_decimal(text, strlen(text));
}

static json_t *quantity(double value, int places, const char *unit, const char *code)
{
    return json_pack("{s:o, s:s, s:s, s:s}", "value", decimal(value, places), "unit", unit,
                     "system", UCUM, "code", code);
}

static double clamp(double v, double low, double high)
{
    return v < low ? low : v > high ? high : v;
}

/* ---- names ------------------------------------------------------------------------------- */

static const char *const families[] = {
    "Smith",   "Johnson",  "Williams", "Brown",     "Jones",     "Garcia",   "Miller",  "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez",   "Wilson",    "Anderson", "Thomas",  "Taylor",
    "Moore",   "Jackson",  "Martin",   "Lee",       "Thompson",  "White",    "Harris",  "Clark",
    "Lewis",   "Robinson", "Walker",   "Young",     "Allen",     "King",     "Wright",  "Scott",
    "Nguyen",  "Hill",     "Flores",   "Green",     "Adams",     "Nelson",   "Baker",   "Hall",
    "Rivera",  "Campbell", "Mitchell", "Carter",    "Roberts",   "Kowalski", "Novak",   "Schmidt",
    "Patel",   "Kim",      "Chen",     "Nakamura",  "Okafor",    "Haddad",   "O'Brien", "Rossi",
    "Dubois",  "Jensen",   "Müller",   "Núñez",     "Søndergaard", "Wiśniewski", "Yılmaz", "Ivanova"};
static const char *const given_female[] = {
    "Mary",   "Patricia", "Linda",  "Barbara", "Elizabeth", "Susan",   "Dorothy", "Margaret",
    "Carol",  "Ruth",     "Sharon", "Nancy",   "Betty",     "Helen",   "Sandra",  "Donna",
    "Joyce",  "Shirley",  "Ana",    "Rosa",    "Mei",       "Yuki",    "Priya",   "Fatima",
    "Ingrid", "Chloé",    "Zoë",    "Renée",   "Agnieszka", "Grace",   "Irene",   "Gloria"};
static const char *const given_male[] = {
    "James",  "Robert", "John",    "Michael", "William", "David",  "Richard", "Joseph",
    "Thomas", "Charles", "Donald", "George",  "Kenneth", "Edward", "Ronald",  "Frank",
    "Raymond", "Walter", "Jose",   "Luis",    "Wei",     "Kenji",  "Arjun",   "Omar",
    "Piotr",  "Björn",  "Jürgen",  "Tomás",   "Samuel",  "Henry",  "Harold",  "Eugene"};
static const char *const streets[] = {"Elm Street",    "Oak Avenue",    "Maple Drive",
                                      "Cedar Lane",    "Pine Street",   "Washington Avenue",
                                      "Lake Road",     "Hillcrest Drive", "Park Avenue",
                                      "Sunset Boulevard", "River Road", "Church Street"};
static const struct {
    const char *city, *zip;
} cities[] = {{"Springfield", "627"}, {"Chatham", "626"}, {"Rochester", "625"},
              {"Sherman", "626"},     {"Riverton", "625"}, {"Petersburg", "626"},
              {"Auburn", "626"},      {"Pawnee", "626"}};

#define PICK(r, a) ((a)[demo_rng_next(r) % COUNT(a)])

/* ---- staff -------------------------------------------------------------------------------- */

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

static size_t at_least(size_t n, size_t low)
{
    return n < low ? low : n;
}

void demo_gen_init(demo_gen_t *g, uint64_t seed, int64_t as_of, size_t patients)
{
    memset(g, 0, sizeof(*g));
    g->seed = seed;
    g->as_of = as_of;
    g->patients = patients;
    g->coordinators = at_least(ceil_div(patients, 125), 2);
    g->physicians = at_least(ceil_div(patients, 250), 2);
    g->nurses = at_least(ceil_div(patients, 300), 1);
    g->pharmacists = at_least(ceil_div(patients, 1000), 1);
    g->social_workers = at_least(ceil_div(patients, 800), 1);
    g->health_workers = at_least(ceil_div(patients, 1000), 1);
}

typedef enum { COORDINATOR, PHYSICIAN, NURSE, PHARMACIST, SOCIAL_WORKER, HEALTH_WORKER } kind_t;

static const struct {
    const char *prefix; /* id prefix */
    const char *title;  /* qualification */
    const char *role_code, *role_display; /* care team role (SNOMED CT), code NULL: text only */
} kinds[] = {
    [COORDINATOR] = {"coordinator", "Registered nurse, care coordinator", "768820003",
                     "Care coordinator"},
    [PHYSICIAN] = {"physician", "Physician, internal medicine", "446050000",
                   "Primary care physician"},
    [NURSE] = {"nurse", "Registered nurse", "224535009", "Registered nurse"},
    [PHARMACIST] = {"pharmacist", "Clinical pharmacist", "46255001", "Pharmacist"},
    [SOCIAL_WORKER] = {"social-worker", "Licensed clinical social worker", "106328005",
                       "Social worker"},
    [HEALTH_WORKER] = {"health-worker", "Community health worker", NULL,
                       "Community health worker"},
};

static size_t kind_count(const demo_gen_t *g, kind_t kind)
{
    switch (kind) {
    case COORDINATOR:
        return g->coordinators;
    case PHYSICIAN:
        return g->physicians;
    case NURSE:
        return g->nurses;
    case PHARMACIST:
        return g->pharmacists;
    case SOCIAL_WORKER:
        return g->social_workers;
    case HEALTH_WORKER:
        return g->health_workers;
    }
    return 0;
}

/* The id of staff member i (0-based) of a kind; the first coordinator and physician are the
 * named ones the demo's sign-ins and HL7 example speak of. */
static void staff_id(kind_t kind, size_t i, char *out, size_t size)
{
    if (kind == COORDINATOR && i == 0)
        snprintf(out, size, "rn-lindqvist");
    else if (kind == PHYSICIAN && i == 0)
        snprintf(out, size, "dr-okafor");
    else
        snprintf(out, size, "%s-%zu", kinds[kind].prefix, kind == COORDINATOR || kind == PHYSICIAN ? i : i + 1);
}

static json_t *role_concept(kind_t kind)
{
    if (!kinds[kind].role_code)
        return json_pack("{s:s}", "text", kinds[kind].role_display);
    return concept(SNOMED, kinds[kind].role_code, kinds[kind].role_display);
}

static void emit_practitioner(demo_rng_t *r, kind_t kind, size_t i, size_t serial,
                              demo_emit_fn emit, void *ctx)
{
    char id[64], npi[16];
    staff_id(kind, i, id, sizeof(id));
    bool female = demo_rng_chance(r, 0.6);
    const char *family = PICK(r, families);
    const char *given = female ? PICK(r, given_female) : PICK(r, given_male);
    if (kind == COORDINATOR && i == 0)
        family = "Lindqvist", given = "Erik", female = false;
    if (kind == PHYSICIAN && i == 0)
        family = "Okafor", given = "Grace", female = true;
    snprintf(npi, sizeof(npi), "19%08zu", 10000 + serial);
    json_t *name = json_pack("{s:s, s:s, s:[s]}", "use", "official", "family", family, "given",
                             given);
    if (kind == PHYSICIAN)
        json_object_set_new(name, "prefix", json_pack("[s]", "Dr"));
    json_t *p = json_pack("{s:s, s:s, s:[{s:s, s:s}], s:b, s:[o], s:[{s:s, s:s, s:s}], s:s, "
                          "s:[{s:{s:s}}]}",
                          "resourceType", "Practitioner", "id", id, "identifier", "system",
                          NPI_SYSTEM, "value", npi, "active", 1, "name", name, "telecom",
                          "system", "phone", "value", "555-0100", "use", "work", "gender",
                          female ? "female" : "male", "qualification", "code", "text",
                          kinds[kind].title);
    emit(ctx, DEMO_HISTORY, p);
    json_decref(p);
}

void demo_gen_staff(const demo_gen_t *g, demo_emit_fn emit, void *ctx)
{
    json_t *clinic = json_pack(
        "{s:s, s:s, s:b, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:[{s:s, s:s, s:s}], "
        "s:[{s:[s], s:s, s:s, s:s}]}",
        "resourceType", "Organization", "id", "riverside-clinic", "active", 1, "name",
        "Riverside Family Clinic", "type", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/organization-type", "code", "prov", "display",
        "Healthcare Provider", "telecom", "system", "phone", "value", "555-0100", "use", "work",
        "address", "line", "12 River Road", "city", "Springfield", "state", "IL", "postalCode",
        "62701");
    emit(ctx, DEMO_HISTORY, clinic);
    json_decref(clinic);
    json_t *hospital = json_pack(
        "{s:s, s:s, s:b, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:[s]}", "resourceType", "Organization",
        "id", "st-mary-hospital", "active", 1, "name", "St Mary's Hospital", "type", "coding",
        "system", "http://terminology.hl7.org/CodeSystem/organization-type", "code", "prov",
        "display", "Healthcare Provider", "alias", "General Hospital");
    emit(ctx, DEMO_HISTORY, hospital);
    json_decref(hospital);
    demo_rng_t r;
    demo_rng_seed(&r, g->seed, 0);
    size_t serial = 0;
    for (kind_t kind = COORDINATOR; kind <= HEALTH_WORKER; kind++)
        for (size_t i = 0; i < kind_count(g, kind); i++)
            emit_practitioner(&r, kind, i, serial++, emit, ctx);
}

static const demo_account_t accounts[] = {
    {"admin", "admin", NULL, NULL, "the administrator"},
    {"coordinator", "coordinator", "coordinator-1", NULL, "a care coordinator with a panel"},
    {"nurse", "nurse", "rn-lindqvist", NULL,
     "Erik Lindqvist, nurse and Maria Gonzalez's care coordinator"},
    {"physician", "physician", "dr-okafor", NULL, "Dr Grace Okafor, primary care physician"},
    {"pharmacist", "pharmacist", "pharmacist-1", NULL, "the clinical pharmacist"},
    {"social-worker", "social-worker", "social-worker-1", NULL, "the social worker"},
    {"community-health-worker", "community-health-worker", "health-worker-1", NULL,
     "the community health worker"},
    {"maria", "patient", NULL, "maria-gonzalez", "the patient Maria Gonzalez"},
    {"james", "patient", NULL, "james-carter", "the patient James Carter"},
};

const demo_account_t *demo_gen_accounts(size_t *out_n)
{
    *out_n = COUNT(accounts);
    return accounts;
}

/* ---- a patient ---------------------------------------------------------------------------- */

typedef struct {
    const demo_gen_t *g;
    demo_rng_t r;
    demo_emit_fn emit;
    void *ctx;
    size_t index;
    char id[32];      /* Patient id */
    char name[96];    /* "Given Family" */
    int64_t birth;    /* days */
    demo_traits_t t;
    char staff[6][32]; /* team members by kind, "" when not on the team */
    int ckd_stage;     /* 0, or 30 (3a), 31, 32 (3b) or 4 */
    size_t serial;     /* for resource ids */
    /* ids kept for references */
    char conditions[8][64];
    unsigned condition_of[8]; /* the DEMO_* flag of each */
    size_t nconditions;
    char medications[16][64];
    size_t nmedications;
    char goals[8][64];
    size_t ngoals;
    char referral[64];
    char appointments[4][64];
    size_t nappointments;
    char tasks[12][64];
    size_t ntasks;
    char last_lab[64];
    int64_t enrolled; /* days */
} patient_t;

static const char *new_id(patient_t *p, const char *what, char *out, size_t size)
{
    snprintf(out, size, "%s-%s-%zu", p->id, what, ++p->serial);
    return out;
}

static void emit(patient_t *p, demo_phase_t phase, json_t *resource)
{
    p->emit(p->ctx, phase, resource);
    json_decref(resource);
}

static json_t *patient_ref(const patient_t *p)
{
    return ref("Patient/%s", p->id);
}

static json_t *staff_ref(const patient_t *p, kind_t kind)
{
    return ref("Practitioner/%s", p->staff[kind][0] ? p->staff[kind] : p->staff[COORDINATOR]);
}

static const char *condition_id(const patient_t *p, unsigned flag)
{
    for (size_t i = 0; i < p->nconditions; i++)
        if (p->condition_of[i] == flag)
            return p->conditions[i];
    return NULL;
}

/* Age, sex and conditions: the first draws of the patient's stream. */
static void draw_traits(patient_t *p)
{
    demo_rng_t *r = &p->r;
    const demo_gen_t *g = p->g;
    double u = demo_rng_unit(r);
    int age = u < 0.04   ? demo_rng_range(r, 25, 39)
              : u < 0.12 ? demo_rng_range(r, 40, 49)
              : u < 0.42 ? demo_rng_range(r, 50, 64)
              : u < 0.72 ? demo_rng_range(r, 65, 74)
              : u < 0.92 ? demo_rng_range(r, 75, 84)
                         : demo_rng_range(r, 85, 94);
    bool female = demo_rng_chance(r, 0.55);
    int64_t birth = g->as_of - (int64_t)((double)age * 365.2425) - demo_rng_range(r, 1, 360);
    if (p->index == 0)
        birth = demo_days_from_civil(1948, 3, 12), female = true;
    else if (p->index == 1)
        birth = demo_days_from_civil(1955, 11, 2), female = false;
    int by, bm, bd, ay, am, ad;
    demo_civil_from_days(birth, &by, &bm, &bd);
    demo_civil_from_days(g->as_of, &ay, &am, &ad);
    age = ay - by - (am < bm || (am == bm && ad < bd));
    p->birth = birth;

    /* prevalence in a care management panel; CKD and heart failure follow diabetes and
     * hypertension, and age */
    double older = age > 60 ? age - 60 : 0;
    unsigned c = 0;
    if (demo_rng_chance(r, clamp(0.35 + 0.008 * (age - 45), 0.15, 0.85)))
        c |= DEMO_HYPERTENSION;
    if (demo_rng_chance(r, 0.28 + (c & DEMO_HYPERTENSION ? 0.12 : 0)))
        c |= DEMO_DIABETES;
    if (demo_rng_chance(r, 0.10 + 0.004 * older))
        c |= DEMO_COPD;
    if (demo_rng_chance(r, 0.03 + (c & DEMO_HYPERTENSION ? 0.08 : 0) +
                               (c & DEMO_DIABETES ? 0.07 : 0) + 0.004 * older))
        c |= DEMO_HEART_FAILURE;
    if (demo_rng_chance(r, 0.03 + (c & DEMO_DIABETES ? 0.22 : 0) +
                               (c & DEMO_HYPERTENSION ? 0.08 : 0) + 0.003 * older))
        c |= DEMO_CKD;
    if (demo_rng_chance(r, female ? 0.28 : 0.18))
        c |= DEMO_DEPRESSION;
    if (!c) /* everyone on the panel has at least one chronic condition */
        c = demo_rng_chance(r, 0.6) ? DEMO_HYPERTENSION : DEMO_DIABETES;
    if (p->index == 0)
        c |= DEMO_HEART_FAILURE | DEMO_DIABETES;
    p->t = (demo_traits_t){.age = age, .female = female, .conditions = c};
}

static void start_patient(patient_t *p, const demo_gen_t *g, size_t index)
{
    memset(p, 0, sizeof(*p));
    p->g = g;
    p->index = index;
    demo_rng_seed(&p->r, g->seed, index + 1);
    if (index == 0)
        snprintf(p->id, sizeof(p->id), "maria-gonzalez");
    else if (index == 1)
        snprintf(p->id, sizeof(p->id), "james-carter");
    else
        snprintf(p->id, sizeof(p->id), "patient-%06zu", index);
    draw_traits(p);
}

void demo_gen_traits(const demo_gen_t *g, size_t index, demo_traits_t *out)
{
    patient_t p;
    start_patient(&p, g, index);
    *out = p.t;
}

static void emit_patient(patient_t *p)
{
    demo_rng_t *r = &p->r;
    const char *family = PICK(r, families);
    const char *given = p->t.female ? PICK(r, given_female) : PICK(r, given_male);
    const char *middle = p->t.female ? PICK(r, given_female) : PICK(r, given_male);
    char mrn[24], line[64], zip[8], phone[16];
    snprintf(mrn, sizeof(mrn), "MRN-%06zu", 200000 + p->index);
    snprintf(line, sizeof(line), "%d %s", demo_rng_range(r, 2, 2999), PICK(r, streets));
    size_t city = demo_rng_next(r) % COUNT(cities);
    snprintf(zip, sizeof(zip), "%s%02d", cities[city].zip, demo_rng_range(r, 1, 99));
    snprintf(phone, sizeof(phone), "555-%04d", demo_rng_range(r, 200, 9999));
    if (p->index == 0) {
        family = "Gonzalez", given = "Maria", middle = "Elena";
        snprintf(mrn, sizeof(mrn), "MRN-100234");
    } else if (p->index == 1) {
        family = "Carter", given = "James", middle = "Robert";
        snprintf(mrn, sizeof(mrn), "MRN-100871");
    }
    snprintf(p->name, sizeof(p->name), "%s %s", given, family);
    json_t *patient = json_pack(
        "{s:s, s:s, s:[{s:s, s:s, s:{s:[{s:s, s:s}]}}], s:b, s:[{s:s, s:s, s:[s, s]}], "
        "s:[{s:s, s:s, s:s}], s:s, s:o, s:[{s:[s], s:s, s:s, s:s}], s:[o], s:o}",
        "resourceType", "Patient", "id", p->id, "identifier", "system", MRN_SYSTEM, "value", mrn,
        "type", "coding", "system", "http://terminology.hl7.org/CodeSystem/v2-0203", "code", "MR",
        "active", 1, "name", "use", "official", "family", family, "given", given, middle,
        "telecom", "system", "phone", "value", phone, "use", "home", "gender",
        p->t.female ? "female" : "male", "birthDate", date_value(p->birth), "address", "line",
        line, "city", cities[city].city, "state", "IL", "postalCode", zip, "generalPractitioner",
        staff_ref(p, PHYSICIAN), "managingOrganization", ref(CLINIC));
    emit(p, DEMO_HISTORY, patient);
}

/* ---- conditions --------------------------------------------------------------------------- */

typedef struct {
    const char *code, *display;
} code_t;

static void emit_condition(patient_t *p, unsigned flag, const code_t *code)
{
    char id[64];
    new_id(p, "condition", id, sizeof(id));
    int64_t onset = p->g->as_of - demo_rng_range(&p->r, 200, 15 * 365);
    json_t *c = json_pack(
        "{s:s, s:s, s:{s:[{s:s, s:s}]}, s:{s:[{s:s, s:s}]}, s:[{s:[{s:s, s:s, s:s}]}], s:o, "
        "s:o, s:o, s:o}",
        "resourceType", "Condition", "id", id, "clinicalStatus", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/condition-clinical", "code", "active",
        "verificationStatus", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code", "confirmed",
        "category", "coding", "system", "http://terminology.hl7.org/CodeSystem/condition-category",
        "code", "problem-list-item", "display", "Problem List Item", "code",
        concept(ICD10, code->code, code->display), "subject", patient_ref(p), "onsetDateTime",
        date_value(onset), "recorder", staff_ref(p, PHYSICIAN));
    if (p->nconditions < COUNT(p->conditions)) {
        snprintf(p->conditions[p->nconditions], sizeof(p->conditions[0]), "%s", id);
        p->condition_of[p->nconditions++] = flag;
    }
    emit(p, DEMO_HISTORY, c);
}

static void emit_conditions(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    if (c & DEMO_CKD) {
        static const int stages[] = {30, 31, 31, 32, 32, 4};
        p->ckd_stage = stages[demo_rng_next(r) % COUNT(stages)];
    }
    if (c & DEMO_HYPERTENSION)
        emit_condition(p, DEMO_HYPERTENSION, &(code_t){"I10", "Essential (primary) hypertension"});
    if (c & DEMO_DIABETES) {
        static const code_t dm[] = {
            {"E11.9", "Type 2 diabetes mellitus without complications"},
            {"E11.65", "Type 2 diabetes mellitus with hyperglycemia"},
            {"E11.40", "Type 2 diabetes mellitus with diabetic neuropathy, unspecified"}};
        static const code_t dm_ckd = {"E11.22",
                                      "Type 2 diabetes mellitus with diabetic chronic kidney "
                                      "disease"};
        emit_condition(p, DEMO_DIABETES,
                       c & DEMO_CKD && demo_rng_chance(r, 0.6) ? &dm_ckd : &PICK(r, dm));
    }
    if (c & DEMO_HEART_FAILURE) {
        static const code_t hf[] = {
            {"I50.22", "Chronic systolic (congestive) heart failure"},
            {"I50.32", "Chronic diastolic (congestive) heart failure"},
            {"I50.9", "Heart failure, unspecified"}};
        emit_condition(p, DEMO_HEART_FAILURE, p->index == 0 ? &hf[2] : &PICK(r, hf));
    }
    if (c & DEMO_COPD) {
        static const code_t copd[] = {
            {"J44.9", "Chronic obstructive pulmonary disease, unspecified"},
            {"J44.9", "Chronic obstructive pulmonary disease, unspecified"},
            {"J44.1", "Chronic obstructive pulmonary disease with (acute) exacerbation"}};
        emit_condition(p, DEMO_COPD, &PICK(r, copd));
    }
    if (c & DEMO_CKD) {
        static const code_t s30 = {"N18.30", "Chronic kidney disease, stage 3 unspecified"};
        static const code_t s31 = {"N18.31", "Chronic kidney disease, stage 3a"};
        static const code_t s32 = {"N18.32", "Chronic kidney disease, stage 3b"};
        static const code_t s4 = {"N18.4", "Chronic kidney disease, stage 4 (severe)"};
        emit_condition(p, DEMO_CKD,
                       p->ckd_stage == 30   ? &s30
                       : p->ckd_stage == 31 ? &s31
                       : p->ckd_stage == 32 ? &s32
                                            : &s4);
    }
    if (c & DEMO_DEPRESSION) {
        static const code_t dep[] = {
            {"F32.9", "Major depressive disorder, single episode, unspecified"},
            {"F32.1", "Major depressive disorder, single episode, moderate"},
            {"F33.0", "Major depressive disorder, recurrent, mild"},
            {"F33.1", "Major depressive disorder, recurrent, moderate"}};
        emit_condition(p, DEMO_DEPRESSION, &PICK(r, dep));
    }
}

/* ---- medications -------------------------------------------------------------------------- */

typedef struct {
    const char *rxnorm, *name, *dose;
    unsigned treats;
} drug_t;

static void emit_medication(patient_t *p, const drug_t *d)
{
    char id[64];
    new_id(p, "medication", id, sizeof(id));
    int64_t authored = p->g->as_of - demo_rng_range(&p->r, 20, 900);
    json_t *m = json_pack(
        "{s:s, s:s, s:s, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:o, s:o, s:o, s:o, s:[{s:s}]}",
        "resourceType", "MedicationRequest", "id", id, "status", "active", "intent", "order",
        "category", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code", "community",
        "display", "Community", "medicationCodeableConcept", concept(RXNORM, d->rxnorm, d->name),
        "subject", patient_ref(p), "authoredOn", date_value(authored), "requester",
        staff_ref(p, PHYSICIAN), "dosageInstruction", "text", d->dose);
    const char *reason = condition_id(p, d->treats);
    if (reason)
        json_object_set_new(m, "reasonReference", json_pack("[o]", ref("Condition/%s", reason)));
    if (p->nmedications < COUNT(p->medications))
        snprintf(p->medications[p->nmedications++], sizeof(p->medications[0]), "%s", id);
    emit(p, DEMO_HISTORY, m);
}

static void emit_medications(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    static const drug_t metformin = {"6809", "metformin", "500 mg by mouth twice daily with meals",
                                     DEMO_DIABETES};
    static const drug_t glargine = {"274783", "insulin glargine",
                                    "20 units subcutaneously at bedtime", DEMO_DIABETES};
    static const drug_t empagliflozin = {"1545653", "empagliflozin", "10 mg by mouth once daily",
                                         DEMO_DIABETES};
    static const drug_t lisinopril = {"29046", "lisinopril", "10 mg by mouth once daily",
                                      DEMO_HYPERTENSION};
    static const drug_t losartan = {"52175", "losartan", "50 mg by mouth once daily",
                                    DEMO_HYPERTENSION};
    static const drug_t amlodipine = {"17767", "amlodipine", "5 mg by mouth once daily",
                                      DEMO_HYPERTENSION};
    static const drug_t hctz = {"5487", "hydrochlorothiazide", "25 mg by mouth once daily",
                                DEMO_HYPERTENSION};
    static const drug_t furosemide = {"4603", "furosemide", "40 mg by mouth once daily",
                                      DEMO_HEART_FAILURE};
    static const drug_t carvedilol = {"20352", "carvedilol", "6.25 mg by mouth twice daily",
                                      DEMO_HEART_FAILURE};
    static const drug_t metoprolol = {"6918", "metoprolol",
                                      "25 mg by mouth once daily (succinate, extended release)",
                                      DEMO_HEART_FAILURE};
    static const drug_t spironolactone = {"9997", "spironolactone", "25 mg by mouth once daily",
                                          DEMO_HEART_FAILURE};
    static const drug_t tiotropium = {"69120", "tiotropium",
                                      "2 inhalations (2.5 mcg) once daily", DEMO_COPD};
    static const drug_t albuterol = {"435", "albuterol",
                                     "2 puffs every 4 to 6 hours as needed for wheezing",
                                     DEMO_COPD};
    static const drug_t sertraline = {"36437", "sertraline", "50 mg by mouth once daily",
                                      DEMO_DEPRESSION};
    static const drug_t escitalopram = {"321988", "escitalopram", "10 mg by mouth once daily",
                                        DEMO_DEPRESSION};
    static const drug_t atorvastatin = {"83367", "atorvastatin", "40 mg by mouth at bedtime",
                                        DEMO_DIABETES};
    if (c & DEMO_DIABETES) {
        if (p->ckd_stage != 4)
            emit_medication(p, &metformin);
        if (demo_rng_chance(r, 0.35))
            emit_medication(p, &glargine);
        if (demo_rng_chance(r, 0.3))
            emit_medication(p, &empagliflozin);
    }
    if (c & (DEMO_HYPERTENSION | DEMO_HEART_FAILURE | DEMO_CKD)) {
        emit_medication(p, demo_rng_chance(r, 0.7) ? &lisinopril : &losartan);
    }
    if (c & DEMO_HYPERTENSION) {
        if (demo_rng_chance(r, 0.4))
            emit_medication(p, &amlodipine);
        if (!(c & DEMO_HEART_FAILURE) && demo_rng_chance(r, 0.25))
            emit_medication(p, &hctz);
    }
    if (c & DEMO_HEART_FAILURE) {
        emit_medication(p, &furosemide);
        emit_medication(p, demo_rng_chance(r, 0.6) ? &carvedilol : &metoprolol);
        if (demo_rng_chance(r, 0.4))
            emit_medication(p, &spironolactone);
    }
    if (c & DEMO_COPD) {
        emit_medication(p, &tiotropium);
        emit_medication(p, &albuterol);
    }
    if (c & DEMO_DEPRESSION)
        emit_medication(p, demo_rng_chance(r, 0.6) ? &sertraline : &escitalopram);
    if ((c & (DEMO_DIABETES | DEMO_CKD | DEMO_HEART_FAILURE)) && demo_rng_chance(r, 0.65))
        emit_medication(p, &atorvastatin);
}

static void emit_allergies(patient_t *p)
{
    static const struct {
        const char *code, *display, *category, *reaction;
    } allergies[] = {
        {"91936005", "Allergy to penicillin", "medication", "Hives"},
        {"91936005", "Allergy to penicillin", "medication", "Rash"},
        {"294505008", "Allergy to sulfonamide", "medication", "Rash"},
        {"300916003", "Latex allergy", "environment", "Contact dermatitis"},
        {"91935009", "Allergy to peanut", "food", "Anaphylaxis"},
        {"293586001", "Allergy to aspirin", "medication", "Wheezing"},
    };
    demo_rng_t *r = &p->r;
    int n = demo_rng_chance(r, 0.35) ? (demo_rng_chance(r, 0.2) ? 2 : 1) : 0;
    size_t first = demo_rng_next(r) % COUNT(allergies);
    for (int i = 0; i < n; i++) {
        size_t k = (first + (size_t)i * 2) % COUNT(allergies);
        char id[64];
        new_id(p, "allergy", id, sizeof(id));
        json_t *a = json_pack(
            "{s:s, s:s, s:{s:[{s:s, s:s}]}, s:{s:[{s:s, s:s}]}, s:s, s:[s], s:s, s:o, s:o, "
            "s:o, s:[{s:[{s:s}]}]}",
            "resourceType", "AllergyIntolerance", "id", id, "clinicalStatus", "coding", "system",
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code", "active",
            "verificationStatus", "coding", "system",
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code",
            "confirmed", "type", "allergy", "category", allergies[k].category, "criticality",
            strcmp(allergies[k].reaction, "Anaphylaxis") == 0 ? "high" : "low", "code",
            concept(SNOMED, allergies[k].code, allergies[k].display), "patient", patient_ref(p),
            "recordedDate", date_value(p->g->as_of - demo_rng_range(r, 100, 4000)), "reaction",
            "manifestation", "text", allergies[k].reaction);
        emit(p, DEMO_HISTORY, a);
    }
}

/* ---- visits, vitals and results ----------------------------------------------------------- */

static json_t *observation(patient_t *p, const char *category, const char *loinc,
                           const char *display, const char *encounter, int64_t day, int minute)
{
    char id[64];
    new_id(p, "observation", id, sizeof(id));
    return json_pack("{s:s, s:s, s:s, s:[{s:[{s:s, s:s}]}], s:o, s:o, s:o, s:o}",
                     "resourceType", "Observation", "id", id, "status", "final", "category",
                     "coding", "system",
                     "http://terminology.hl7.org/CodeSystem/observation-category", "code",
                     category, "code", concept(LOINC, loinc, display), "subject", patient_ref(p),
                     "encounter", ref("Encounter/%s", encounter), "effectiveDateTime",
                     time_value(day, minute));
}

static void emit_value(patient_t *p, json_t *obs, json_t *value, double low, double high,
                       const char *unit, const char *code)
{
    json_object_set_new(obs, "valueQuantity", value);
    if (low >= 0 || high >= 0) {
        json_t *range = json_object();
        if (low >= 0)
            json_object_set_new(range, "low", quantity(low, 0, unit, code));
        if (high >= 0)
            json_object_set_new(range, "high", quantity(high, 0, unit, code));
        json_object_set_new(obs, "referenceRange", json_pack("[o]", range));
    }
    snprintf(p->last_lab, sizeof(p->last_lab), "%s",
             json_string_value(json_object_get(obs, "id")));
    emit(p, DEMO_HISTORY, obs);
}

static json_t *encounter(patient_t *p, const char *id, const char *status, const char *class_code,
                         const char *class_display, const char *type, int64_t start_day,
                         int start_minute)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:{s:o}}",
                     "resourceType", "Encounter", "id", id, "status", status, "class", "system",
                     ACT_CODE, "code", class_code, "display", class_display, "type", "text", type,
                     "subject", patient_ref(p), "period", "start",
                     time_value(start_day, start_minute));
}

typedef struct {
    double systolic, diastolic, weight, heart_rate, a1c, egfr, spo2, phq9;
} baseline_t;

static void emit_visit(patient_t *p, const baseline_t *b, int64_t day, int visit)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    char id[64];
    new_id(p, "encounter", id, sizeof(id));
    int minute = demo_rng_range(r, 16, 31) * 30;
    json_t *e = encounter(p, id, "finished", "AMB", "ambulatory",
                          visit == 0 ? "Annual wellness visit" : "Chronic care follow-up visit",
                          day, minute);
    json_object_set_new(json_object_get(e, "period"), "end", time_value(day, minute + 30));
    json_object_set_new(e, "participant",
                        json_pack("[{s:o}]", "individual", staff_ref(p, PHYSICIAN)));
    json_object_set_new(e, "serviceProvider", ref(CLINIC));
    const char *reason = p->nconditions ? p->conditions[visit % p->nconditions] : NULL;
    if (reason)
        json_object_set_new(e, "reasonReference", json_pack("[o]", ref("Condition/%s", reason)));
    emit(p, DEMO_HISTORY, e);

    minute += 5;
    double sbp = b->systolic + demo_rng_normal(r, 0, 8);
    double dbp = b->diastolic + demo_rng_normal(r, 0, 5);
    json_t *bp = observation(p, "vital-signs", "85354-9", "Blood pressure panel", id, day, minute);
    json_object_set_new(
        bp, "component",
        json_pack("[{s:o, s:o}, {s:o, s:o}]", "code",
                  concept(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity",
                  quantity(round(sbp), 0, "mmHg", "mm[Hg]"), "code",
                  concept(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity",
                  quantity(round(dbp), 0, "mmHg", "mm[Hg]")));
    emit(p, DEMO_HISTORY, bp);
    json_t *w = observation(p, "vital-signs", "29463-7", "Body weight", id, day, minute);
    double weight = b->weight + demo_rng_normal(r, 0, c & DEMO_HEART_FAILURE ? 1.8 : 1.0);
    json_object_set_new(w, "valueQuantity", quantity(weight, 1, "kg", "kg"));
    emit(p, DEMO_HISTORY, w);
    json_t *hr = observation(p, "vital-signs", "8867-4", "Heart rate", id, day, minute);
    json_object_set_new(hr, "valueQuantity",
                        quantity(round(b->heart_rate + demo_rng_normal(r, 0, 6)), 0, "beats/min",
                                 "/min"));
    emit(p, DEMO_HISTORY, hr);
    if (c & DEMO_COPD) {
        json_t *o2 = observation(p, "vital-signs", "59408-5",
                                 "Oxygen saturation in Arterial blood by Pulse oximetry", id, day,
                                 minute);
        emit_value(p, o2, quantity(clamp(round(b->spo2 + demo_rng_normal(r, 0, 1.2)), 84, 100), 0,
                                   "%", "%"),
                   92, -1, "%", "%");
    }
    if ((c & DEMO_DIABETES) && visit % 2 == 0) {
        json_t *a1c = observation(p, "laboratory", "4548-4",
                                  "Hemoglobin A1c/Hemoglobin.total in Blood", id, day, minute + 10);
        double value = clamp(b->a1c - 0.15 * visit + demo_rng_normal(r, 0, 0.35), 5.4, 13.5);
        emit_value(p, a1c, quantity(value, 1, "%", "%"), -1, 7, "%", "%");
    }
    if ((c & (DEMO_CKD | DEMO_DIABETES)) && visit % 2 == 1) {
        json_t *gfr = observation(
            p, "laboratory", "62238-1",
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma "
            "or Blood by Creatinine-based formula (CKD-EPI)",
            id, day, minute + 10);
        double value = clamp(b->egfr - 0.8 * visit + demo_rng_normal(r, 0, 3), 8, 120);
        emit_value(p, gfr, quantity(round(value), 0, "mL/min/1.73m2", "mL/min/{1.73_m2}"), 60,
                   -1, "mL/min/1.73m2", "mL/min/{1.73_m2}");
    }
    if ((c & DEMO_DEPRESSION) && visit % 3 == 0) {
        json_t *phq = observation(p, "survey", "44261-6",
                                  "Patient Health Questionnaire 9 item (PHQ-9) total score "
                                  "[Reported]",
                                  id, day, minute + 2);
        double value = clamp(round(b->phq9 - visit + demo_rng_normal(r, 0, 2)), 0, 27);
        json_object_set_new(phq, "valueQuantity", quantity(value, 0, "{score}", "{score}"));
        emit(p, DEMO_HISTORY, phq);
    }
}

static const char *const DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition";

static void emit_stay(patient_t *p, demo_phase_t phase, int64_t start_day, int length,
                      bool finished)
{
    demo_rng_t *r = &p->r;
    char id[64];
    new_id(p, "encounter", id, sizeof(id));
    int minute = demo_rng_range(r, 0, 47) * 30;
    json_t *e = encounter(p, id, finished ? "finished" : "in-progress", "IMP", "inpatient encounter",
                          "Hospital admission", start_day, minute);
    bool emergent = demo_rng_chance(r, 0.7);
    json_object_set_new(e, "priority",
                        concept("http://terminology.hl7.org/CodeSystem/v3-ActPriority",
                                emergent ? "EM" : "R", emergent ? "emergency" : "routine"));
    json_t *hospitalization = json_object();
    json_object_set_new(hospitalization, "admitSource",
                        concept("http://terminology.hl7.org/CodeSystem/admit-source",
                                emergent ? "emd" : "gp",
                                emergent ? "From accident/emergency department"
                                         : "General Practitioner referral"));
    if (finished) {
        static const struct {
            const char *code, *display;
        } dispositions[] = {{"home", "Home"},         {"home", "Home"},
                            {"home", "Home"},         {"home", "Home"},
                            {"home", "Home"},         {"home", "Home"},
                            {"alt-home", "Alternative home"},
                            {"snf", "Skilled nursing facility"},
                            {"snf", "Skilled nursing facility"},
                            {"rehab", "Rehabilitation"}};
        size_t k = phase == DEMO_RECENT ? 0 : demo_rng_next(r) % COUNT(dispositions);
        json_object_set_new(json_object_get(e, "period"), "end",
                            time_value(start_day + length, demo_rng_range(r, 20, 36) * 30));
        json_object_set_new(hospitalization, "dischargeDisposition",
                            concept(DISPOSITION, dispositions[k].code, dispositions[k].display));
    }
    json_object_set_new(e, "hospitalization", hospitalization);
    unsigned c = p->t.conditions;
    unsigned cause = c & DEMO_HEART_FAILURE ? DEMO_HEART_FAILURE
                     : c & DEMO_COPD        ? DEMO_COPD
                     : c & DEMO_DIABETES    ? DEMO_DIABETES
                                            : 0;
    const char *reason = cause ? condition_id(p, cause) : NULL;
    if (reason)
        json_object_set_new(
            e, "diagnosis",
            json_pack("[{s:o, s:i}]", "condition", ref("Condition/%s", reason), "rank", 1));
    json_object_set_new(e, "serviceProvider", ref(HOSPITAL));
    emit(p, phase, e);
}

static void emit_emergency(patient_t *p, demo_phase_t phase, int64_t day)
{
    demo_rng_t *r = &p->r;
    char id[64];
    new_id(p, "encounter", id, sizeof(id));
    int minute = demo_rng_range(r, 0, 1300);
    json_t *e = encounter(p, id, "finished", "EMER", "emergency", "Emergency department visit",
                          day, minute);
    json_object_set_new(json_object_get(e, "period"), "end",
                        time_value(day, minute + demo_rng_range(r, 120, 420)));
    json_object_set_new(e, "hospitalization",
                        json_pack("{s:o}", "dischargeDisposition",
                                  concept(DISPOSITION, "home", "Home")));
    json_object_set_new(e, "serviceProvider", ref(HOSPITAL));
    emit(p, phase, e);
}

/* Poisson-distributed count with mean lambda (small lambda). */
static int poisson(demo_rng_t *r, double lambda)
{
    double limit = exp(-lambda), product = demo_rng_unit(r);
    int n = 0;
    while (product > limit && n < 20) {
        n++;
        product *= demo_rng_unit(r);
    }
    return n;
}

static void emit_encounters(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    int64_t as_of = p->g->as_of;
    baseline_t b = {
        .systolic = c & DEMO_HYPERTENSION ? demo_rng_normal(r, 142, 12) : demo_rng_normal(r, 122, 9),
        .weight = p->t.female ? demo_rng_normal(r, 74, 15) : demo_rng_normal(r, 88, 16),
        .heart_rate = demo_rng_normal(r, c & DEMO_HEART_FAILURE ? 80 : 72, 8),
        .a1c = demo_rng_normal(r, 8.0, 1.2),
        .spo2 = demo_rng_normal(r, 93.5, 1.5),
        .phq9 = demo_rng_normal(r, 13, 4),
    };
    b.diastolic = b.systolic * 0.58 + demo_rng_normal(r, 0, 5);
    b.weight = clamp(b.weight, 42, 190);
    b.egfr = p->ckd_stage == 4    ? demo_rng_range(r, 17, 29)
             : p->ckd_stage == 32 ? demo_rng_range(r, 32, 44)
             : p->ckd_stage       ? demo_rng_range(r, 46, 59)
                                  : demo_rng_normal(r, 82, 10);
    /* office visits every four to six months over the last two years */
    int visit = 0;
    for (int64_t day = as_of - 730 + demo_rng_range(r, 0, 100); day < as_of - 2;
         day += demo_rng_range(r, 110, 190))
        emit_visit(p, &b, day, visit++);
    /* hospital stays and emergency visits, at rates that follow the conditions */
    double stays = 0.06 + (c & DEMO_HEART_FAILURE ? 0.3 : 0) + (c & DEMO_COPD ? 0.2 : 0) +
                   (c & DEMO_CKD ? 0.06 : 0) + (c & DEMO_DIABETES ? 0.04 : 0);
    double visits = 0.18 + (c & DEMO_COPD ? 0.2 : 0) + (c & DEMO_HEART_FAILURE ? 0.15 : 0) +
                    (c & DEMO_DEPRESSION ? 0.1 : 0);
    int n = poisson(r, 2 * stays);
    for (int i = 0; i < n; i++)
        emit_stay(p, DEMO_HISTORY, as_of - demo_rng_range(r, 20, 720), demo_rng_range(r, 1, 8),
                  true);
    n = poisson(r, 2 * visits);
    for (int i = 0; i < n; i++)
        emit_emergency(p, DEMO_HISTORY, as_of - demo_rng_range(r, 10, 720));
    /* the last days: the hospital stays and visits the engine acts on (not for the two
     * patients the demo's sign-ins and HL7 example use) */
    if (p->index < 2)
        return;
    double u = demo_rng_unit(r);
    double recent = stays / 15;
    if (u < recent) {
        int length = demo_rng_range(r, 1, 5);
        emit_stay(p, DEMO_RECENT, as_of - demo_rng_range(r, 1, 6) - length, length, true);
    }
    else if (u < 1.5 * recent)
        emit_stay(p, DEMO_RECENT, as_of - demo_rng_range(r, 1, 3), 0, false);
    else if (u < 1.5 * recent + visits / 40)
        emit_emergency(p, DEMO_RECENT, as_of - demo_rng_range(r, 1, 5));
}

/* ---- the team, goals, referrals, appointments, messages, tasks, the plan ------------------- */

static void assign_team(patient_t *p)
{
    const demo_gen_t *g = p->g;
    demo_rng_t *r = &p->r;
    size_t i = p->index;
    unsigned c = p->t.conditions;
    staff_id(COORDINATOR, i % g->coordinators, p->staff[COORDINATOR], sizeof(p->staff[0]));
    staff_id(PHYSICIAN, i % g->physicians, p->staff[PHYSICIAN], sizeof(p->staff[0]));
    if (c & (DEMO_HEART_FAILURE | DEMO_COPD) || demo_rng_chance(r, 0.4))
        staff_id(NURSE, i % g->nurses, p->staff[NURSE], sizeof(p->staff[0]));
    if (__builtin_popcount(c) >= 3 || demo_rng_chance(r, 0.15))
        staff_id(PHARMACIST, i % g->pharmacists, p->staff[PHARMACIST], sizeof(p->staff[0]));
    if (c & DEMO_DEPRESSION || p->t.age >= 85 || demo_rng_chance(r, 0.1))
        staff_id(SOCIAL_WORKER, i % g->social_workers, p->staff[SOCIAL_WORKER],
                 sizeof(p->staff[0]));
    if (demo_rng_chance(r, 0.2))
        staff_id(HEALTH_WORKER, i % g->health_workers, p->staff[HEALTH_WORKER],
                 sizeof(p->staff[0]));
    p->enrolled = g->as_of - demo_rng_range(r, 14, 1000);
}

static void emit_team(patient_t *p)
{
    char id[64];
    snprintf(id, sizeof(id), "%s-care-team", p->id);
    json_t *participants = json_array();
    for (kind_t kind = COORDINATOR; kind <= HEALTH_WORKER; kind++) {
        if (!p->staff[kind][0])
            continue;
        json_t *participant = json_pack("{s:[o], s:o}", "role", role_concept(kind), "member",
                                        ref("Practitioner/%s", p->staff[kind]));
        /* the primary coordinator's period is left open: it holds from the first day on */
        if (kind != COORDINATOR)
            json_object_set_new(participant, "period",
                                json_pack("{s:o}", "start", date_value(p->enrolled)));
        json_array_append_new(participants, participant);
    }
    char name[128];
    snprintf(name, sizeof(name), "%s care team", p->name);
    json_t *team = json_pack(
        "{s:s, s:s, s:s, s:[o], s:s, s:o, s:{s:o}, s:o, s:[o]}", "resourceType", "CareTeam", "id",
        id, "status", "active", "category",
        concept(LOINC, "LA28865-6", "Longitudinal care-coordination focused care team"), "name",
        name, "subject", patient_ref(p), "period", "start", date_value(p->enrolled),
        "participant", participants, "managingOrganization", ref(CLINIC));
    emit(p, DEMO_HISTORY, team);

    char episode_id[64];
    snprintf(episode_id, sizeof(episode_id), "%s-enrolment", p->id);
    json_t *episode = json_pack(
        "{s:s, s:s, s:s, s:[{s:s}], s:o, s:o, s:{s:o}, s:o, s:[o]}", "resourceType",
        "EpisodeOfCare", "id", episode_id, "status", "active", "type", "text",
        "Chronic care management program", "patient", patient_ref(p), "managingOrganization",
        ref(CLINIC), "period", "start", date_value(p->enrolled), "careManager",
        staff_ref(p, COORDINATOR), "team", ref("CareTeam/%s", id));
    emit(p, DEMO_HISTORY, episode);
}

static void emit_goal(patient_t *p, const char *text, json_t *target, const char *achievement)
{
    demo_rng_t *r = &p->r;
    char id[64];
    new_id(p, "goal", id, sizeof(id));
    bool done = strcmp(achievement, "achieved") == 0 && demo_rng_chance(r, 0.5);
    json_t *g = json_pack(
        "{s:s, s:s, s:s, s:o, s:{s:s}, s:o, s:o}", "resourceType", "Goal", "id", id,
        "lifecycleStatus", done ? "completed" : "active", "achievementStatus",
        concept("http://terminology.hl7.org/CodeSystem/goal-achievement", achievement,
                strcmp(achievement, "in-progress") == 0  ? "In Progress"
                : strcmp(achievement, "improving") == 0  ? "Improving"
                : strcmp(achievement, "worsening") == 0  ? "Worsening"
                : strcmp(achievement, "achieved") == 0   ? "Achieved"
                                                         : "Not Achieving"),
        "description", "text", text, "subject", patient_ref(p), "startDate",
        date_value(p->enrolled));
    if (target) {
        json_object_set_new(target, "dueDate",
                            date_value(p->g->as_of + demo_rng_range(r, 30, 300)));
        json_object_set_new(g, "target", json_pack("[o]", target));
    }
    json_object_set_new(g, "expressedBy", staff_ref(p, COORDINATOR));
    if (p->ngoals < COUNT(p->goals))
        snprintf(p->goals[p->ngoals++], sizeof(p->goals[0]), "%s", id);
    emit(p, DEMO_HISTORY, g);
}

static const char *achievement(demo_rng_t *r)
{
    static const char *const values[] = {"in-progress", "in-progress", "improving", "improving",
                                         "worsening",   "achieved",    "not-achieving"};
    return PICK(r, values);
}

static json_t *range_target(const char *loinc, const char *display, double low, double high,
                            const char *unit, const char *code)
{
    json_t *range = json_object();
    if (low >= 0)
        json_object_set_new(range, "low", quantity(low, 0, unit, code));
    if (high >= 0)
        json_object_set_new(range, "high", quantity(high, 0, unit, code));
    return json_pack("{s:o, s:o}", "measure", concept(LOINC, loinc, display), "detailRange",
                     range);
}

static void emit_goals(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    if (c & DEMO_DIABETES)
        emit_goal(p, "Keep hemoglobin A1c below 8%",
                  range_target("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", -1, 8, "%",
                               "%"),
                  achievement(r));
    if (c & DEMO_HYPERTENSION)
        emit_goal(p, "Blood pressure below 140/90 mmHg at home and in the office",
                  range_target("8480-6", "Systolic blood pressure", -1, 140, "mmHg", "mm[Hg]"),
                  achievement(r));
    if (c & DEMO_HEART_FAILURE)
        emit_goal(p, "Weigh every morning and call the team after a gain of 1 kg in a day or 2 kg "
                     "in a week",
                  NULL, achievement(r));
    if (c & DEMO_COPD)
        emit_goal(p, "No COPD exacerbation needing a hospital stay; use the inhaler every day",
                  NULL, achievement(r));
    if (c & DEMO_CKD)
        emit_goal(p, "Slow the loss of kidney function: eGFR checked every 6 months",
                  range_target("62238-1",
                               "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] "
                               "in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)",
                               15, -1, "mL/min/1.73m2", "mL/min/{1.73_m2}"),
                  achievement(r));
    if (c & DEMO_DEPRESSION)
        emit_goal(p, "PHQ-9 score below 10",
                  range_target("44261-6",
                               "Patient Health Questionnaire 9 item (PHQ-9) total score "
                               "[Reported]",
                               -1, 9, "{score}", "{score}"),
                  achievement(r));
}

static void emit_referral(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    const char *service = NULL;
    unsigned cause = 0;
    if (c & DEMO_HEART_FAILURE)
        service = "Cardiology consultation", cause = DEMO_HEART_FAILURE;
    else if (c & DEMO_CKD)
        service = "Nephrology consultation", cause = DEMO_CKD;
    else if (c & DEMO_COPD)
        service = "Pulmonology consultation", cause = DEMO_COPD;
    else if (c & DEMO_DEPRESSION)
        service = "Behavioral health referral", cause = DEMO_DEPRESSION;
    else if (c & DEMO_DIABETES)
        service = "Diabetes self-management education", cause = DEMO_DIABETES;
    if (!service || !demo_rng_chance(r, 0.4))
        return;
    double u = demo_rng_unit(r);
    const char *status = u < 0.6 ? "active" : u < 0.9 ? "completed" : "revoked";
    new_id(p, "referral", p->referral, sizeof(p->referral));
    json_t *sr = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[o], s:{s:s}, s:o, s:o, s:o, s:[o]}", "resourceType",
        "ServiceRequest", "id", p->referral, "status", status, "intent", "order", "priority",
        demo_rng_chance(r, 0.25) ? "urgent" : "routine", "category",
        concept(SNOMED, "3457005", "Patient referral"), "code", "text", service, "subject",
        patient_ref(p), "authoredOn", date_value(p->g->as_of - demo_rng_range(r, 3, 120)),
        "requester", staff_ref(p, PHYSICIAN), "reasonReference",
        ref("Condition/%s", condition_id(p, cause)));
    emit(p, DEMO_HISTORY, sr);
}

static void emit_appointments(patient_t *p)
{
    demo_rng_t *r = &p->r;
    int n = demo_rng_range(r, 1, 3);
    for (int i = 0; i < n; i++) {
        double u = demo_rng_unit(r);
        const char *status = u < 0.45   ? "booked"
                             : u < 0.7  ? "fulfilled"
                             : u < 0.8  ? "noshow"
                             : u < 0.9  ? "cancelled"
                             : u < 0.95 ? "proposed"
                                        : "pending";
        bool future = strcmp(status, "booked") == 0 || strcmp(status, "proposed") == 0 ||
                      strcmp(status, "pending") == 0;
        int64_t day = future ? p->g->as_of + demo_rng_range(r, 1, 45)
                             : p->g->as_of - demo_rng_range(r, 1, 120);
        int minute = demo_rng_range(r, 16, 31) * 30;
        kind_t with = demo_rng_chance(r, 0.7) ? PHYSICIAN : COORDINATOR;
        const char *participation = strcmp(status, "proposed") == 0 ||
                                            strcmp(status, "pending") == 0
                                        ? "needs-action"
                                        : "accepted";
        char id[64];
        new_id(p, "appointment", id, sizeof(id));
        json_t *a = json_pack(
            "{s:s, s:s, s:s, s:[{s:s}], s:s, s:o, s:o, s:i, s:o, s:[{s:o, s:s, s:s}, {s:o, "
            "s:s, s:s}]}",
            "resourceType", "Appointment", "id", id, "status", status, "serviceType", "text",
            with == PHYSICIAN ? "Primary care follow-up" : "Care coordination visit",
            "description",
            with == PHYSICIAN ? "Follow-up of chronic conditions" : "Care plan review in person",
            "start", time_value(day, minute), "end", time_value(day, minute + 30),
            "minutesDuration", 30, "created", date_value(day - demo_rng_range(r, 5, 40)),
            "participant", "actor", patient_ref(p), "required", "required", "status",
            participation, "actor", staff_ref(p, with), "required", "required", "status",
            participation);
        if (strcmp(status, "cancelled") == 0)
            json_object_set_new(a, "cancelationReason",
                                concept("http://terminology.hl7.org/CodeSystem/"
                                        "appointment-cancellation-reason",
                                        "pat", "Patient"));
        if (p->nappointments < COUNT(p->appointments))
            snprintf(p->appointments[p->nappointments++], sizeof(p->appointments[0]), "%s", id);
        emit(p, DEMO_HISTORY, a);
    }
}

static void emit_communications(patient_t *p)
{
    static const char *const messages[] = {
        "Called to review the care plan and upcoming appointments; questions answered.",
        "Reminder: please bring all of your medicine bottles to the next visit.",
        "Your lab results are in; the team will go over them at your next visit.",
        "Checked in by phone: no new symptoms, taking medications as prescribed.",
        "Left a voicemail asking to call back about the referral appointment.",
    };
    demo_rng_t *r = &p->r;
    int n = demo_rng_range(r, 0, 3);
    for (int i = 0; i < n; i++) {
        char id[64];
        new_id(p, "communication", id, sizeof(id));
        bool phone = demo_rng_chance(r, 0.6);
        json_t *m = json_pack(
            "{s:s, s:s, s:s, s:[o], s:[o], s:o, s:o, s:o, s:[o], s:[{s:s}]}", "resourceType",
            "Communication", "id", id, "status", "completed", "category",
            concept("http://terminology.hl7.org/CodeSystem/communication-category",
                    phone ? "instruction" : "reminder", phone ? "Instruction" : "Reminder"),
            "medium",
            concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                    phone ? "PHONE" : "WRITTEN", phone ? "telephone" : "written"),
            "subject", patient_ref(p), "sent",
            time_value(p->g->as_of - demo_rng_range(r, 1, 90), demo_rng_range(r, 16, 34) * 30),
            "sender", staff_ref(p, COORDINATOR), "recipient", patient_ref(p), "payload",
            "contentString", PICK(r, messages));
        emit(p, DEMO_HISTORY, m);
    }
}

static void emit_risk(patient_t *p)
{
    demo_rng_t *r = &p->r;
    unsigned c = p->t.conditions;
    double risk = 0.04 + (c & DEMO_HEART_FAILURE ? 0.18 : 0) + (c & DEMO_COPD ? 0.12 : 0) +
                  (c & DEMO_CKD ? 0.08 : 0) + (c & DEMO_DIABETES ? 0.04 : 0) +
                  (p->t.age >= 80 ? 0.06 : 0) + demo_rng_unit(r) * 0.08;
    char id[64];
    new_id(p, "risk", id, sizeof(id));
    json_t *a = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:{s:s}, s:[{s:{s:s}, s:o}]}", "resourceType",
        "RiskAssessment", "id", id, "status", "final", "subject", patient_ref(p),
        "occurrenceDateTime", date_value(p->g->as_of - demo_rng_range(r, 1, 60)), "method",
        "text", "Panel risk stratification (conditions, age, use of the hospital)", "prediction",
        "outcome", "text", "Hospital admission within 12 months", "probabilityDecimal",
        decimal(clamp(risk, 0.01, 0.95), 2));
    emit(p, DEMO_HISTORY, a);
}

typedef struct {
    const char *code, *display, *description;
    kind_t owner;
    unsigned needs; /* a DEMO_* condition it is about, or 0 */
} task_kind_t;

static const task_kind_t task_kinds[] = {
    {"care-plan-review", "Review the care plan",
     "Review goals and activities with the patient and update the shared care plan",
     COORDINATOR, 0},
    {"follow-up-call", "Follow-up call",
     "Call the patient: symptoms, medications, appointments, questions", COORDINATOR, 0},
    {"medication-review", "Medication review",
     "Review the medication list for adherence, duplicates and interactions", PHARMACIST, 0},
    {"a1c-review", "Review hemoglobin A1c",
     "Review the latest A1c and adjust the diabetes plan", PHYSICIAN, DEMO_DIABETES},
    {"bp-recheck", "Blood pressure recheck",
     "Recheck blood pressure and review home readings", NURSE, DEMO_HYPERTENSION},
    {"weight-monitoring", "Daily weight review",
     "Review the daily weights and fluid status; teach the warning signs", NURSE,
     DEMO_HEART_FAILURE},
    {"inhaler-technique", "Inhaler technique check",
     "Check inhaler technique and the COPD action plan", NURSE, DEMO_COPD},
    {"kidney-labs", "Order kidney function labs",
     "eGFR and urine albumin-to-creatinine ratio are due", PHYSICIAN, DEMO_CKD},
    {"phq9-rescreen", "PHQ-9 rescreen", "Repeat the PHQ-9 and review the treatment plan",
     SOCIAL_WORKER, DEMO_DEPRESSION},
    {"social-needs", "Social needs follow-up",
     "Follow up on transportation and food resources from the screening", HEALTH_WORKER, 0},
    {"referral-tracking", "Track the referral",
     "Confirm the specialist received the referral, booked it and sent the results back",
     COORDINATOR, 0},
    {"appointment-reminder", "Appointment reminder",
     "Remind the patient of the appointment and arrange transport if needed", COORDINATOR, 0},
};

static void emit_task(patient_t *p, const task_kind_t *k)
{
    demo_rng_t *r = &p->r;
    int64_t as_of = p->g->as_of;
    double u = demo_rng_unit(r);
    const char *status = u < 0.18   ? "requested"
                         : u < 0.3  ? "accepted"
                         : u < 0.47 ? "in-progress"
                         : u < 0.55 ? "on-hold"
                         : u < 0.6  ? "ready"
                         : u < 0.9  ? "completed"
                                    : "cancelled";
    bool open = strcmp(status, "completed") != 0 && strcmp(status, "cancelled") != 0;
    int64_t due;
    if (open) {
        double v = demo_rng_unit(r);
        due = v < 0.28 ? as_of - demo_rng_range(r, 1, 21)
              : v < 0.4 ? as_of
                        : as_of + demo_rng_range(r, 1, 30);
    } else {
        due = as_of + demo_rng_range(r, -90, 10);
    }
    double w = demo_rng_unit(r);
    const char *priority = w < 0.65 ? "routine" : w < 0.87 ? "urgent" : w < 0.97 ? "asap" : "stat";
    int64_t authored = due - demo_rng_range(r, 3, 30);
    if (authored > as_of)
        authored = as_of - demo_rng_range(r, 0, 5);
    char id[64];
    new_id(p, "task", id, sizeof(id));
    json_t *t = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:{s:{s:o}}}", "resourceType",
        "Task", "id", id, "status", status, "intent", "order", "priority", priority, "code",
        concept(TASK_SYSTEM, k->code, k->display), "description", k->description, "for",
        patient_ref(p), "authoredOn", time_value(authored, demo_rng_range(r, 16, 34) * 30),
        "requester", staff_ref(p, k->owner == PHYSICIAN ? COORDINATOR : PHYSICIAN),
        "restriction", "period", "end", date_value(due));
    kind_t owner = p->staff[k->owner][0] ? k->owner : COORDINATOR;
    if (open && p->staff[k->owner][0] && kinds[k->owner].role_code && demo_rng_chance(r, 0.12))
        /* waiting unowned in the role's pool of the patient's team */
        json_object_set_new(t, "performerType", json_pack("[o]", role_concept(k->owner)));
    else
        json_object_set_new(t, "owner", staff_ref(p, owner));
    if (strcmp(k->code, "referral-tracking") == 0 && p->referral[0])
        json_object_set_new(t, "focus", ref("ServiceRequest/%s", p->referral));
    else if (strcmp(k->code, "appointment-reminder") == 0 && p->nappointments)
        json_object_set_new(t, "focus", ref("Appointment/%s", p->appointments[0]));
    else if (strcmp(k->code, "medication-review") == 0 && p->nmedications)
        json_object_set_new(t, "focus", ref("MedicationRequest/%s", p->medications[0]));
    else if (k->needs && condition_id(p, k->needs))
        json_object_set_new(t, "reasonReference",
                            ref("Condition/%s", condition_id(p, k->needs)));
    if (strcmp(status, "completed") == 0) {
        int64_t done = due - demo_rng_range(r, 0, 4);
        if (done > as_of)
            done = as_of;
        json_object_set_new(t, "executionPeriod",
                            json_pack("{s:o, s:o}", "start", time_value(done, 14 * 60), "end",
                                      time_value(done, 14 * 60 + demo_rng_range(r, 10, 45))));
        json_object_set_new(t, "lastModified", time_value(done, 15 * 60));
    } else if (strcmp(status, "in-progress") == 0) {
        json_object_set_new(t, "executionPeriod",
                            json_pack("{s:o}", "start", time_value(as_of - demo_rng_range(r, 0, 5),
                                                                   13 * 60)));
    } else if (strcmp(status, "on-hold") == 0) {
        static const char *const holds[] = {"Patient in hospital", "Waiting for lab results",
                                            "Patient asked to call back next week"};
        json_object_set_new(t, "statusReason", json_pack("{s:s}", "text", PICK(r, holds)));
    } else if (strcmp(status, "cancelled") == 0) {
        static const char *const cancels[] = {"Duplicate of another task",
                                              "No longer needed: done at the last visit",
                                              "Patient declined"};
        json_object_set_new(t, "statusReason", json_pack("{s:s}", "text", PICK(r, cancels)));
    }
    if (p->ntasks < COUNT(p->tasks))
        snprintf(p->tasks[p->ntasks++], sizeof(p->tasks[0]), "%s", id);
    emit(p, DEMO_HISTORY, t);
}

static void emit_tasks(patient_t *p)
{
    demo_rng_t *r = &p->r;
    const task_kind_t *fitting[COUNT(task_kinds)];
    size_t n = 0;
    for (size_t i = 0; i < COUNT(task_kinds); i++) {
        const task_kind_t *k = &task_kinds[i];
        if (k->needs && !(p->t.conditions & k->needs))
            continue;
        if (strcmp(k->code, "referral-tracking") == 0 && !p->referral[0])
            continue;
        if (strcmp(k->code, "social-needs") == 0 && !p->staff[HEALTH_WORKER][0])
            continue;
        fitting[n++] = k;
    }
    int count = demo_rng_range(r, 3, 7);
    size_t start = demo_rng_next(r) % n;
    for (int i = 0; i < count && (size_t)i < n; i++)
        emit_task(p, fitting[(start + (size_t)i) % n]);
}

static void emit_care_plan(patient_t *p)
{
    char id[64], title[160];
    snprintf(id, sizeof(id), "%s-care-plan", p->id);
    snprintf(title, sizeof(title), "Care plan for %s", p->name);
    json_t *activities = json_array();
    for (size_t i = 0; i < p->ntasks; i++)
        json_array_append_new(activities,
                              json_pack("{s:o}", "reference", ref("Task/%s", p->tasks[i])));
    if (p->referral[0])
        json_array_append_new(activities, json_pack("{s:o}", "reference",
                                                    ref("ServiceRequest/%s", p->referral)));
    for (size_t i = 0; i < p->nappointments; i++)
        json_array_append_new(
            activities, json_pack("{s:o}", "reference", ref("Appointment/%s", p->appointments[i])));
    for (size_t i = 0; i < p->nmedications; i++)
        json_array_append_new(activities, json_pack("{s:o}", "reference",
                                                    ref("MedicationRequest/%s",
                                                        p->medications[i])));
    json_t *addresses = json_array();
    for (size_t i = 0; i < p->nconditions; i++)
        json_array_append_new(addresses, ref("Condition/%s", p->conditions[i]));
    json_t *goals = json_array();
    for (size_t i = 0; i < p->ngoals; i++)
        json_array_append_new(goals, ref("Goal/%s", p->goals[i]));
    json_t *plan = json_pack(
        "{s:s, s:s, s:s, s:s, s:[o], s:s, s:o, s:{s:o}, s:o, s:o, s:[o], s:o, s:o, s:o}",
        "resourceType", "CarePlan", "id", id, "status", "active", "intent", "plan", "category",
        concept("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan",
                "Assessment and Plan of Treatment"),
        "title", title, "subject", patient_ref(p), "period", "start", date_value(p->enrolled),
        "created", date_value(p->enrolled), "author", staff_ref(p, COORDINATOR), "careTeam",
        ref("CareTeam/%s-care-team", p->id), "addresses", addresses, "goal", goals, "activity",
        activities);
    emit(p, DEMO_HISTORY, plan);
}

void demo_gen_patient(const demo_gen_t *g, size_t index, demo_emit_fn emit_fn, void *ctx)
{
    patient_t p;
    start_patient(&p, g, index);
    p.emit = emit_fn;
    p.ctx = ctx;
    assign_team(&p);
    emit_patient(&p);
    emit_team(&p);
    emit_conditions(&p);
    emit_medications(&p);
    emit_allergies(&p);
    emit_encounters(&p);
    emit_risk(&p);
    emit_goals(&p);
    emit_referral(&p);
    emit_appointments(&p);
    emit_communications(&p);
    emit_tasks(&p);
    emit_care_plan(&p);
}
