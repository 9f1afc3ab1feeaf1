/*
 * gen_population.c - writes a synthetic but realistic clinical population as NDJSON, one file
 * per resource type, fast enough for a million resources in a few seconds.
 *
 *   gen-population [--patients N] [--seed S] DIR
 *
 * Writes DIR/Practitioner.ndjson (one per 100 patients, at least 10), DIR/Patient.ndjson and,
 * for each patient: 1-5 Encounters over 2012-2024, each with 1-2 Observations (LOINC vital
 * signs and laboratory results with their UCUM units, values in realistic ranges, dated in
 * the encounter), 0-3 Conditions (SNOMED CT, onset dates, some resolved), 0-2 Tasks (statuses,
 * priorities, an owner Practitioner) and 0-1 CarePlans. About 10.5 resources per patient:
 * 100,000 patients give about 1.05 million other resources. Names and cities include
 * non-ASCII letters. Every reference resolves. Deterministic: the same N and seed give the same
 * bytes. Prints the number of resources of each type.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int pick(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const families[] = {
    "Smith",        "Johnson",    "Williams", "Brown",    "Jones",    "García",  "Miller", "Davis",
    "Martínez",     "Müller",     "Schröder", "Nguyễn",   "Kowalski", "Dvořák",  "Novák",  "Øster",
    "Ångström",     "Okafor",     "Haddad",   "Nakamura", "Chen",     "Patel",   "Kim",    "Singh",
    "Cohen",        "O'Brien",    "Rossi",    "Dubois",   "Lefèvre",  "Ivanova", "Yılmaz", "Çelik",
    "Papadopoulos", "Wiśniewski", "Jensen",   "Hansen",   "Lee",      "Walker",  "Young",  "Allen",
    "King",         "Wright",     "Scott",    "Torres",   "Hill",     "Flores",  "Green",  "Adams",
    "Nelson",       "Baker"};
static const char *const given_f[] = {
    "Olivia", "Emma",   "Amélie", "Sophia", "Isabella",   "Mia",    "Zoë",    "Chloé",
    "Ana",    "Fátima", "Mei",    "Yuki",   "Priya",      "Aisha",  "Ingrid", "Chiara",
    "Zofia",  "Noémi",  "Renée",  "Søs",    "Małgorzata", "Hélène", "Grace",  "Nora"};
static const char *const given_m[] = {"Liam",     "Noah",    "Oliver", "Élie",  "James",  "William",
                                      "Benjamin", "Lucas",   "Henry",  "Mateo", "Daniel", "José",
                                      "Jürgen",   "Søren",   "Kenji",  "Arjun", "Omar",   "Piotr",
                                      "Dmitri",   "Ľubomír", "Tomás",  "Björn", "Samuel", "Ethan"};
static const struct {
    const char *city, *state, *zip;
} cities[] = {{"Springfield", "IL", "627"}, {"Madison", "WI", "537"},   {"Portland", "OR", "972"},
              {"Austin", "TX", "787"},      {"Columbus", "OH", "432"},  {"Raleigh", "NC", "276"},
              {"Denver", "CO", "802"},      {"Boston", "MA", "021"},    {"Española", "NM", "875"},
              {"Cañon City", "CO", "812"},  {"Nashville", "TN", "372"}, {"Sacramento", "CA", "958"},
              {"Albany", "NY", "122"},      {"Tampa", "FL", "336"},     {"Omaha", "NE", "681"},
              {"Boise", "ID", "837"}};
static const char *const streets[] = {"Main St", "Oak Ave", "Maple Dr",  "Cedar Ln",
                                      "Pine St", "Elm St",  "River Rd",  "Church St",
                                      "Mill Rd", "Park Pl", "Forest Dr", "Meadow Ln"};

static const struct {
    const char *code, *display, *category, *unit;
    double low, high;
    int decimals;
} observations[] = {
    {"8867-4", "Heart rate", "vital-signs", "/min", 48, 130, 0},
    {"8480-6", "Systolic blood pressure", "vital-signs", "mm[Hg]", 90, 190, 0},
    {"8462-4", "Diastolic blood pressure", "vital-signs", "mm[Hg]", 50, 120, 0},
    {"29463-7", "Body weight", "vital-signs", "kg", 3, 150, 1},
    {"8302-2", "Body height", "vital-signs", "cm", 50, 200, 1},
    {"39156-5", "Body mass index", "vital-signs", "kg/m2", 15, 45, 1},
    {"8310-5", "Body temperature", "vital-signs", "Cel", 35.5, 40.5, 1},
    {"9279-1", "Respiratory rate", "vital-signs", "/min", 10, 30, 0},
    {"2708-6", "Oxygen saturation", "vital-signs", "%", 85, 100, 0},
    {"2339-0", "Glucose", "laboratory", "mg/dL", 60, 300, 0},
    {"4548-4", "Hemoglobin A1c", "laboratory", "%", 4, 13, 1},
    {"2093-3", "Cholesterol total", "laboratory", "mg/dL", 120, 320, 0},
    {"2160-0", "Creatinine", "laboratory", "mg/dL", 0.4, 3, 2},
    {"718-7", "Hemoglobin", "laboratory", "g/dL", 8, 18, 1},
    {"6690-2", "Leukocytes", "laboratory", "10*3/uL", 2, 20, 1},
};
static const struct {
    const char *code, *display;
} conditions[] = {
    {"44054006", "Diabetes mellitus type 2"},
    {"38341003", "Hypertensive disorder"},
    {"195967001", "Asthma"},
    {"13645005", "Chronic obstructive lung disease"},
    {"49436004", "Atrial fibrillation"},
    {"53741008", "Coronary arteriosclerosis"},
    {"35489007", "Depressive disorder"},
    {"197480006", "Anxiety disorder"},
    {"271737000", "Anemia"},
    {"40055000", "Chronic sinusitis"},
    {"444814009", "Viral sinusitis"},
    {"10509002", "Acute bronchitis"},
    {"68496003", "Polyp of colon"},
    {"55822004", "Hyperlipidemia"},
    {"239873007", "Osteoarthritis of knee"},
    {"15777000", "Prediabetes"},
};
static const struct {
    const char *code, *display, *cls;
} encounter_types[] = {
    {"185349003", "Encounter for check up", "AMB"},
    {"162673000", "General examination of patient", "AMB"},
    {"50849002", "Emergency room admission", "EMER"},
    {"32485007", "Hospital admission", "IMP"},
    {"390906007", "Follow-up encounter", "AMB"},
    {"185347001", "Encounter for problem", "AMB"},
};
static const char *const task_statuses[] = {"requested", "accepted",  "in-progress",
                                            "on-hold",   "completed", "completed",
                                            "completed", "cancelled", "failed"};
static const char *const task_codes[] = {"fulfill", "approve", "abort", "replace", "change"};
static const char *const priorities[] = {"routine", "routine", "urgent", "asap", "stat"};
static const struct {
    const char *code, *display;
} careplans[] = {
    {"698360004", "Diabetes self management plan"},
    {"734163000", "Care plan"},
    {"736285004", "Hyperlipidemia clinical management plan"},
    {"735985000", "Hypertension clinical management plan"},
    {"719091000000102", "Asthma clinical management plan"},
};

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(long z, int *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

/* "YYYY-MM-DD" of a day number. */
static void date_text(char out[16], long day)
{
    int y, m, d;
    civil(day, &y, &m, &d);
    snprintf(out, 16, "%04d-%02d-%02d", y, m, d);
}

/* "YYYY-MM-DDThh:mm:ss+00:00" of a minute number. */
static void instant_text(char out[32], long minute)
{
    int y, m, d;
    civil(minute / 1440, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT%02ld:%02ld:00+00:00", y, m, d, minute % 1440 / 60,
             minute % 60);
}

#define DAY_2012 15340L /* 2012-01-01 */
#define DAYS_13Y 4749L  /* to 2024-12-31 */

static FILE *open_out(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.ndjson", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    static char *buffers[16];
    static int nbuffers;
    buffers[nbuffers] = malloc(1 << 20);
    setvbuf(f, buffers[nbuffers++], _IOFBF, 1 << 20);
    return f;
}

int main(int argc, char **argv)
{
    long npatients = 100000;
    uint64_t seed = 20240611;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--patients") == 0 && i + 1 < argc)
            npatients = atol(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "usage: gen-population [--patients N] [--seed S] DIR\n");
            return 2;
        }
    }
    if (!dir || npatients < 1) {
        fprintf(stderr, "usage: gen-population [--patients N] [--seed S] DIR\n");
        return 2;
    }
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    long npract = npatients / 100 < 10 ? 10 : npatients / 100;
    long counts[7] = {0};
    enum { PRACT, PAT, ENC, OBS, COND, TASK, PLAN };
    static const char *const names[] = {"Practitioner", "Patient", "Encounter", "Observation",
                                        "Condition",    "Task",    "CarePlan"};
    FILE *out[7];
    for (int k = 0; k < 7; k++)
        out[k] = open_out(dir, names[k]);

    for (long i = 0; i < npract; i++) {
        bool female = pick(2);
        fprintf(out[PRACT],
                "{\"resourceType\":\"Practitioner\",\"id\":\"pr%ld\",\"active\":true,"
                "\"identifier\":[{\"system\":\"http://hl7.org/fhir/sid/us-npi\",\"value\":"
                "\"%010ld\"}],\"name\":[{\"family\":\"%s\",\"given\":[\"%s\"],\"prefix\":"
                "[\"Dr.\"]}],\"gender\":\"%s\"}\n",
                i, 1000000000L + i * 7, families[pick(COUNT(families))],
                female ? given_f[pick(COUNT(given_f))] : given_m[pick(COUNT(given_m))],
                female ? "female" : "male");
        counts[PRACT]++;
    }

    for (long i = 0; i < npatients; i++) {
        bool female = pick(2);
        long birth = -14600 + pick(32000); /* 1930 to 2017 */
        char birth_text[16], day_text[16], t1[32], t2[32];
        date_text(birth_text, birth);
        const char *family = families[pick(COUNT(families))];
        int c = pick(COUNT(cities));
        fprintf(out[PAT],
                "{\"resourceType\":\"Patient\",\"id\":\"pt%ld\",\"active\":%s,"
                "\"identifier\":[{\"use\":\"usual\",\"type\":{\"coding\":[{\"system\":"
                "\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\"}]},"
                "\"system\":\"urn:oid:2.16.840.1.113883.19.5\",\"value\":\"MRN%08ld\"}],"
                "\"name\":[{\"use\":\"official\",\"family\":\"%s\",\"given\":[\"%s\",\"%s\"]}],"
                "\"telecom\":[{\"system\":\"phone\",\"value\":\"+1 (%03d) %03d-%04d\","
                "\"use\":\"home\"}],\"gender\":\"%s\",\"birthDate\":\"%s\","
                "\"address\":[{\"use\":\"home\",\"line\":[\"%d %s\"],\"city\":\"%s\","
                "\"state\":\"%s\",\"postalCode\":\"%s%02d\",\"country\":\"US\"}],"
                "\"generalPractitioner\":[{\"reference\":\"Practitioner/pr%ld\"}]}\n",
                i, pick(20) ? "true" : "false", i, family,
                female ? given_f[pick(COUNT(given_f))] : given_m[pick(COUNT(given_m))],
                female ? given_f[pick(COUNT(given_f))] : given_m[pick(COUNT(given_m))],
                201 + pick(780), 200 + pick(800), pick(10000), female ? "female" : "male",
                birth_text, 1 + pick(9999), streets[pick(COUNT(streets))], cities[c].city,
                cities[c].state, cities[c].zip, pick(100), (long)pick((int)npract));
        counts[PAT]++;

        int nenc = 1 + pick(5);
        long first_enc = 0;
        for (int e = 0; e < nenc; e++) {
            long start = (DAY_2012 + pick((int)DAYS_13Y)) * 1440L + 7 * 60 + pick(11 * 60);
            if (e == 0)
                first_enc = start;
            int t = pick(COUNT(encounter_types));
            long length = encounter_types[t].cls[0] == 'I' ? 1440L * (1 + pick(6)) : 15 + pick(60);
            instant_text(t1, start);
            instant_text(t2, start + length);
            long pr = pick((int)npract);
            fprintf(out[ENC],
                    "{\"resourceType\":\"Encounter\",\"id\":\"en%ld-%d\",\"status\":\"finished\","
                    "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
                    "\"code\":\"%s\"},\"type\":[{\"coding\":[{\"system\":\"http://snomed.info/"
                    "sct\",\"code\":\"%s\",\"display\":\"%s\"}],\"text\":\"%s\"}],"
                    "\"subject\":{\"reference\":\"Patient/pt%ld\"},\"participant\":[{"
                    "\"individual\":{\"reference\":\"Practitioner/pr%ld\"}}],"
                    "\"period\":{\"start\":\"%s\",\"end\":\"%s\"}}\n",
                    i, e, encounter_types[t].cls, encounter_types[t].code,
                    encounter_types[t].display, encounter_types[t].display, i, pr, t1, t2);
            counts[ENC]++;

            int nobs = 1 + pick(2);
            for (int o = 0; o < nobs; o++) {
                int k = pick(COUNT(observations));
                double v = observations[k].low + (observations[k].high - observations[k].low) *
                                                     (double)pick(10001) / 10000.0;
                instant_text(t1, start + 5 + o);
                fprintf(out[OBS],
                        "{\"resourceType\":\"Observation\",\"id\":\"ob%ld-%d-%d\",\"status\":"
                        "\"final\",\"category\":[{\"coding\":[{\"system\":\"http://"
                        "terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"%s\"}"
                        "]}],\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":"
                        "\"%s\",\"display\":\"%s\"}],\"text\":\"%s\"},\"subject\":{"
                        "\"reference\":\"Patient/pt%ld\"},\"encounter\":{\"reference\":"
                        "\"Encounter/en%ld-%d\"},\"effectiveDateTime\":\"%s\",\"issued\":"
                        "\"%s\",\"valueQuantity\":{\"value\":%.*f,\"unit\":\"%s\",\"system\":"
                        "\"http://unitsofmeasure.org\",\"code\":\"%s\"}}\n",
                        i, e, o, observations[k].category, observations[k].code,
                        observations[k].display, observations[k].display, i, i, e, t1, t1,
                        observations[k].decimals, v, observations[k].unit, observations[k].unit);
                counts[OBS]++;
            }
        }

        int ncond = pick(4);
        for (int k = 0; k < ncond; k++) {
            int cc = pick(COUNT(conditions));
            long onset = DAY_2012 - 3650 + pick((int)(DAYS_13Y + 3650));
            bool resolved = pick(3) == 0;
            date_text(day_text, onset);
            date_text(t2, onset + 10 + pick(300));
            fprintf(out[COND],
                    "{\"resourceType\":\"Condition\",\"id\":\"co%ld-%d\",\"clinicalStatus\":{"
                    "\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
                    "condition-clinical\",\"code\":\"%s\"}]},\"verificationStatus\":{\"coding\":"
                    "[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
                    "condition-ver-status\",\"code\":\"confirmed\"}]},\"category\":[{\"coding\":"
                    "[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-category\","
                    "\"code\":\"encounter-diagnosis\"}]}],\"code\":{\"coding\":[{\"system\":"
                    "\"http://snomed.info/sct\",\"code\":\"%s\",\"display\":\"%s\"}],\"text\":"
                    "\"%s\"},\"subject\":{\"reference\":\"Patient/pt%ld\"},\"encounter\":{"
                    "\"reference\":\"Encounter/en%ld-0\"},\"onsetDateTime\":\"%s\"%s%s%s,"
                    "\"recordedDate\":\"%s\"}\n",
                    i, k, resolved ? "resolved" : "active", conditions[cc].code,
                    conditions[cc].display, conditions[cc].display, i, i, day_text,
                    resolved ? ",\"abatementDateTime\":\"" : "", resolved ? t2 : "",
                    resolved ? "\"" : "", day_text);
            counts[COND]++;
        }

        int ntask = pick(3);
        for (int k = 0; k < ntask; k++) {
            long authored = first_enc + pick(400) * 1440L;
            instant_text(t1, authored);
            instant_text(t2, authored + pick(30 * 1440));
            fprintf(out[TASK],
                    "{\"resourceType\":\"Task\",\"id\":\"ta%ld-%d\",\"status\":\"%s\","
                    "\"intent\":\"order\",\"priority\":\"%s\",\"code\":{\"coding\":[{"
                    "\"system\":\"http://hl7.org/fhir/CodeSystem/task-code\",\"code\":\"%s\"}]},"
                    "\"description\":\"Follow-up for patient %ld\",\"for\":{\"reference\":"
                    "\"Patient/pt%ld\"},\"owner\":{\"reference\":\"Practitioner/pr%ld\"},"
                    "\"authoredOn\":\"%s\",\"lastModified\":\"%s\"}\n",
                    i, k, task_statuses[pick(COUNT(task_statuses))],
                    priorities[pick(COUNT(priorities))], task_codes[pick(COUNT(task_codes))], i, i,
                    (long)pick((int)npract), t1, t2);
            counts[TASK]++;
        }

        if (pick(2)) {
            int p = pick(COUNT(careplans));
            long start = first_enc / 1440;
            date_text(day_text, start);
            date_text(t2, start + 90 + pick(700));
            fprintf(out[PLAN],
                    "{\"resourceType\":\"CarePlan\",\"id\":\"cp%ld\",\"status\":\"%s\","
                    "\"intent\":\"plan\",\"category\":[{\"coding\":[{\"system\":\"http://"
                    "snomed.info/sct\",\"code\":\"%s\",\"display\":\"%s\"}]}],\"title\":\"%s\","
                    "\"subject\":{\"reference\":\"Patient/pt%ld\"},\"encounter\":{\"reference\":"
                    "\"Encounter/en%ld-0\"},\"period\":{\"start\":\"%s\",\"end\":\"%s\"},"
                    "\"author\":{\"reference\":\"Practitioner/pr%ld\"}}\n",
                    i, pick(3) ? "active" : "completed", careplans[p].code, careplans[p].display,
                    careplans[p].display, i, i, day_text, t2, (long)pick((int)npract));
            counts[PLAN]++;
        }
    }
    long total = 0;
    for (int k = 0; k < 7; k++) {
        if (fclose(out[k]) != 0) {
            perror("write");
            return 1;
        }
        printf("%-14s %ld\n", names[k], counts[k]);
        total += counts[k];
    }
    printf("%-14s %ld (other than Patient: %ld)\n", "total", total, total - counts[PAT]);
    return 0;
}
