/*
 * readmissions.c - tests of the 30-day readmission measure's counting (src/care/readmissions.c):
 * the period of two local dates and its errors, discharges on the first and the last day of the
 * period and just outside it, the stay classes and statuses counted, the exclusions (expired,
 * against medical advice), the numerator from the Flags that point to a stay (one entered in
 * error ignored, two on one stay counted once), and a zero denominator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/jv.h"
#include "care/readmissions.h"

#define EXT_READMISSION "http://concerto.dev/fhir/StructureDefinition/readmission"

static calendar_t *calendar;
static arena_t arena;

static int setup(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    if (calendar_new("America/New_York", "Mon-Fri", "us-federal", &calendar, &err))
        return -1;
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_release(&arena);
    calendar_free(calendar);
    return 0;
}

static json_t *parsef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *parsef(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("bad test JSON: %s", text);
    return j;
}

/* A stay Encounter/id of class cls and status, discharged at end, with more members. */
static json_t *stay(const char *id, const char *cls, const char *status, const char *end,
                    const char *more)
{
    return parsef("{\"resourceType\":\"Encounter\",\"id\":\"%s\",\"status\":\"%s\","
                  "\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
                  "\"code\":\"%s\"},\"subject\":{\"reference\":\"Patient/p\"},"
                  "\"period\":{\"start\":\"2026-02-20T08:00:00-05:00\",\"end\":\"%s\"}%s}",
                  id, status, cls, end, more);
}

static const char *disposition(const char *code)
{
    static char text[256];
    snprintf(text, sizeof(text),
             ",\"hospitalization\":{\"dischargeDisposition\":{\"coding\":[{\"system\":"
             "\"http://terminology.hl7.org/CodeSystem/discharge-disposition\",\"code\":\"%s\"}]}}",
             code);
    return text;
}

/* A readmission Flag/id pointing to Encounter/earlier, as transitions.c writes it. */
static json_t *flag(const char *id, const char *earlier, const char *status, const char *start)
{
    return parsef("{\"resourceType\":\"Flag\",\"id\":\"%s\",\"status\":\"%s\","
                  "\"identifier\":[{\"system\":\"urn:concerto:readmission\","
                  "\"value\":\"Encounter/r-%s\"}],\"extension\":[{\"url\":\"" EXT_READMISSION
                  "\",\"valueReference\":{\"reference\":\"Encounter/%s\"}}],"
                  "\"subject\":{\"reference\":\"Patient/p\"},\"period\":{\"start\":\"%s\"},"
                  "\"encounter\":{\"reference\":\"Encounter/r-%s\"}}",
                  id, status, id, earlier, start, id);
}

static readmissions_period_t march(void)
{
    readmissions_period_t p;
    err_t err = ERR_INIT;
    assert_int_equal(care_readmissions_period(calendar, "2026-03-01", "2026-03-31", &p, &err),
                     ERR_OK);
    return p;
}

static readmissions_counts_t count(json_t *stays, json_t *flags)
{
    readmissions_period_t p = march();
    readmissions_counts_t c;
    care_readmissions_count(stays, flags, &p, calendar, &arena, &c);
    json_decref(stays);
    json_decref(flags);
    return c;
}

static void test_period(void **state)
{
    (void)state;
    readmissions_period_t p = march();
    /* local midnights in New York: 1 March (EST) and 1 April (EDT, after the change of clocks) */
    assert_int_equal(p.start_us, (int64_t)1772341200 * 1000000);
    assert_int_equal(p.end_us, (int64_t)1775016000 * 1000000);
    /* 30 days after the day after the end: 1 May, midnight */
    assert_int_equal(p.closes_us, (int64_t)1777608000 * 1000000);

    err_t err = ERR_INIT;
    assert_int_equal(care_readmissions_period(calendar, "2026-03-05", "2026-03-05", &p, &err),
                     ERR_OK);
    assert_int_equal(p.end_us - p.start_us, (int64_t)86400 * 1000000);

    struct {
        const char *start, *end, *where, *text;
    } bad[] = {
        {NULL, "2026-03-31", "periodStart", "missing"},
        {"2026-03-01", NULL, "periodEnd", "missing"},
        {"", "2026-03-31", "periodStart", "missing"},
        {"2026-3-01", "2026-03-31", "periodStart", "not a date"},
        {"2026-03-01", "2026-02-30", "periodEnd", "not a date"},
        {"2026-03-01", "2026-03-31T00:00:00Z", "periodEnd", "not a date"},
        {"2026-03-02", "2026-03-01", "periodEnd", "before periodStart"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_reset(&err);
        assert_int_equal(care_readmissions_period(calendar, bad[i].start, bad[i].end, &p, &err),
                         ERR_INVALID);
        assert_string_equal(err.issues[0].expression, bad[i].where);
        assert_non_null(strstr(err.issues[0].message, bad[i].where));
        assert_non_null(strstr(err.issues[0].message, bad[i].text));
    }
    err_release(&err);
}

static void test_boundaries_of_the_period(void **state)
{
    (void)state;
    json_t *stays = json_array();
    /* in: the first minute of 1 March and the last second of 31 March, local time */
    json_array_append_new(stays, stay("first", "IMP", "finished", "2026-03-01T00:00:00-05:00", ""));
    json_array_append_new(stays, stay("last", "IMP", "finished", "2026-03-31T23:59:59-04:00", ""));
    /* the same instant written in UTC: 1 April 03:59 UTC is still 31 March in New York */
    json_array_append_new(stays, stay("utc", "IMP", "finished", "2026-04-01T03:59:59Z", ""));
    /* out: the evening of 28 February and midnight of 1 April, local time */
    json_array_append_new(stays,
                          stay("before", "IMP", "finished", "2026-02-28T23:59:59-05:00", ""));
    json_array_append_new(stays, stay("after", "IMP", "finished", "2026-04-01T00:00:00-04:00", ""));
    json_t *flags = json_array();
    json_array_append_new(flags, flag("f1", "first", "active", "2026-03-30T10:00:00-04:00"));
    json_array_append_new(flags, flag("f2", "before", "active", "2026-03-10T10:00:00-04:00"));
    readmissions_counts_t c = count(stays, flags);
    assert_int_equal(c.initial, 3);
    assert_int_equal(c.excluded, 0);
    assert_int_equal(c.denominator, 3);
    assert_int_equal(c.numerator, 1);
    assert_int_equal(c.nflags, 1);
    assert_string_equal(c.flags[0], "Flag/f1");
}

static void test_what_is_a_stay(void **state)
{
    (void)state;
    json_t *stays = json_array();
    const char *classes[] = {"IMP", "ACUTE", "NONAC", "OBSENC", "SS", "AMB", "EMER", "HH"};
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        json_array_append_new(
            stays, stay(classes[i], classes[i], "finished", "2026-03-10T12:00:00-04:00", ""));
    /* not finished: still in progress, or cancelled */
    json_array_append_new(stays,
                          stay("open", "IMP", "in-progress", "2026-03-10T12:00:00-04:00", ""));
    json_array_append_new(stays, stay("gone", "IMP", "cancelled", "2026-03-10T12:00:00-04:00", ""));
    /* the class code counts whatever its system, as transitions.c flags readmissions */
    json_array_append_new(
        stays, parsef("{\"resourceType\":\"Encounter\",\"id\":\"x\",\"status\":\"finished\","
                      "\"class\":{\"system\":\"urn:other\",\"code\":\"IMP\"},"
                      "\"period\":{\"end\":\"2026-03-10T12:00:00-04:00\"}}"));
    /* the same stay twice counts once */
    json_array_append_new(stays, stay("IMP", "IMP", "finished", "2026-03-10T12:00:00-04:00", ""));
    readmissions_counts_t c = count(stays, json_array());
    assert_int_equal(c.initial, 6);
    assert_int_equal(c.denominator, 6);
    assert_int_equal(c.numerator, 0);
    assert_int_equal(c.nflags, 0);
}

static void test_exclusions(void **state)
{
    (void)state;
    json_t *stays = json_array();
    json_array_append_new(
        stays, stay("dead", "IMP", "finished", "2026-03-10T12:00:00-04:00", disposition("exp")));
    json_array_append_new(
        stays, stay("ama", "IMP", "finished", "2026-03-11T12:00:00-04:00", disposition("aadvice")));
    json_array_append_new(
        stays, stay("home", "IMP", "finished", "2026-03-12T12:00:00-04:00", disposition("home")));
    json_array_append_new(
        stays, stay("snf", "IMP", "finished", "2026-03-13T12:00:00-04:00", disposition("snf")));
    json_t *flags = json_array();
    /* an excluded stay's readmission does not count */
    json_array_append_new(flags, flag("f1", "ama", "active", "2026-03-20T10:00:00-04:00"));
    json_array_append_new(flags, flag("f2", "snf", "active", "2026-03-25T10:00:00-04:00"));
    readmissions_counts_t c = count(stays, flags);
    assert_int_equal(c.initial, 4);
    assert_int_equal(c.excluded, 2);
    assert_int_equal(c.denominator, 2);
    assert_int_equal(c.numerator, 1);
    assert_string_equal(c.flags[0], "Flag/f2");
}

static void test_flags(void **state)
{
    (void)state;
    json_t *stays = json_array();
    json_array_append_new(stays, stay("a", "IMP", "finished", "2026-03-10T12:00:00-04:00", ""));
    json_array_append_new(stays, stay("b", "IMP", "finished", "2026-03-11T12:00:00-04:00", ""));
    json_array_append_new(stays, stay("c", "IMP", "finished", "2026-03-12T12:00:00-04:00", ""));
    json_array_append_new(stays, stay("d", "IMP", "finished", "2026-03-13T12:00:00-04:00", ""));
    json_t *flags = json_array();
    /* a: entered in error (the readmission was cancelled) */
    json_array_append_new(flags, flag("fa", "a", "entered-in-error", "2026-03-20T10:00:00-04:00"));
    /* b: two Flags (two readmissions after it): counted once, the earlier one named */
    json_array_append_new(flags, flag("fb2", "b", "active", "2026-04-05T10:00:00-04:00"));
    json_array_append_new(flags, flag("fb1", "b", "active", "2026-03-21T10:00:00-04:00"));
    /* c: a Flag whose readmission is over (inactive) still tells it happened */
    json_array_append_new(flags, flag("fc", "c", "inactive", "2026-03-22T10:00:00-04:00"));
    /* d: a Flag without the readmission identifier is not a readmission Flag; one pointing
       to an absolute url of the stay is */
    json_array_append_new(
        flags, parsef("{\"resourceType\":\"Flag\",\"id\":\"other\",\"status\":\"active\","
                      "\"extension\":[{\"url\":\"" EXT_READMISSION "\",\"valueReference\":"
                      "{\"reference\":\"Encounter/d\"}}]}"));
    readmissions_counts_t c = count(stays, flags);
    assert_int_equal(c.denominator, 4);
    assert_int_equal(c.numerator, 2);
    assert_int_equal(c.nflags, 2);
    assert_string_equal(c.flags[0], "Flag/fb1");
    assert_string_equal(c.flags[1], "Flag/fc");

    stays = json_array();
    json_array_append_new(stays, stay("d", "IMP", "finished", "2026-03-13T12:00:00-04:00", ""));
    flags = json_array();
    json_array_append_new(
        flags, parsef("{\"resourceType\":\"Flag\",\"id\":\"abs\",\"status\":\"active\","
                      "\"identifier\":[{\"system\":\"urn:concerto:readmission\",\"value\":\"x\"}],"
                      "\"extension\":[{\"url\":\"" EXT_READMISSION "\",\"valueReference\":"
                      "{\"reference\":\"https://h.example/fhir/Encounter/d\"}}]}"));
    /* not the stay "d" of another path ("Encounter/dd", "Encounter/d/_history/1") */
    json_array_append_new(flags, flag("dd", "dd", "active", "2026-03-20T10:00:00-04:00"));
    json_array_append_new(flags,
                          flag("hist", "d/_history/1", "active", "2026-03-20T10:00:00-04:00"));
    c = count(stays, flags);
    assert_int_equal(c.numerator, 1);
    assert_string_equal(c.flags[0], "Flag/abs");
}

static void test_zero_denominator(void **state)
{
    (void)state;
    readmissions_counts_t c = count(json_array(), json_array());
    assert_int_equal(c.initial, 0);
    assert_int_equal(c.denominator, 0);
    assert_int_equal(c.numerator, 0);
    json_t *stays = json_array();
    json_array_append_new(
        stays, stay("dead", "IMP", "finished", "2026-03-10T12:00:00-04:00", disposition("exp")));
    c = count(stays, json_array());
    assert_int_equal(c.initial, 1);
    assert_int_equal(c.excluded, 1);
    assert_int_equal(c.denominator, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period),         cmocka_unit_test(test_boundaries_of_the_period),
        cmocka_unit_test(test_what_is_a_stay), cmocka_unit_test(test_exclusions),
        cmocka_unit_test(test_flags),          cmocka_unit_test(test_zero_denominator),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
