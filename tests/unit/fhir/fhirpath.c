/*
 * Unit tests for src/fhir/fhirpath*.c: parser errors and their columns, exact decimals,
 * date/time precision, quantities and units, each function family, the FHIR additions and
 * their hooks, result rendering, and evaluation from several threads.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/fhirpath.h"

static const char *patient_text =
    "{\"resourceType\":\"Patient\",\"id\":\"p1\","
    "\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"org\",\"name\":\"Acme\"}],"
    "\"extension\":[{\"url\":\"http://example.org/race\",\"valueString\":\"x\"}],"
    "\"active\":true,"
    "\"name\":[{\"use\":\"official\",\"family\":\"Chalmers\",\"given\":[\"Peter\",\"James\"]},"
    "{\"use\":\"usual\",\"given\":[\"Jim\"]}],"
    "\"telecom\":[{\"system\":\"phone\",\"value\":\"555\",\"use\":\"home\"},"
    "{\"system\":\"email\",\"value\":\"p@example.org\"}],"
    "\"gender\":\"male\",\"birthDate\":\"1974-12-25\","
    "\"_birthDate\":{\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/"
    "patient-birthTime\",\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]},"
    "\"managingOrganization\":{\"reference\":\"#org\"},"
    "\"generalPractitioner\":[{\"reference\":\"Practitioner/dr\"}]}";

static const char *observation_text =
    "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]},"
    "\"subject\":{\"reference\":\"Patient/p1\"},"
    "\"effectiveDateTime\":\"2016-03-28T09:30:00+02:00\","
    "\"valueQuantity\":{\"value\":185.50,\"unit\":\"lbs\",\"system\":"
    "\"http://unitsofmeasure.org\",\"code\":\"[lb_av]\"}}";

static json_t *parse(const char *text)
{
    err_t err = ERR_INIT;
    json_t *j = jv_parse(text, strlen(text), &err);
    assert_non_null(j);
    err_release(&err);
    return j;
}

/* Evaluates expr over resource (may be NULL) and returns the result as compact JSON text
 * (caller frees), or "error: message". */
static char *run_env(const char *expr_text, fhirpath_env_t *env)
{
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    char *out;
    fhirpath_t *expr = fhirpath_compile(expr_text, strlen(expr_text), &err);
    if (!expr) {
        out = xasprintf("error: %s", err_message(&err));
    } else {
        fhirpath_result_t *result;
        if (fhirpath_eval(expr, env, &arena, &result, &err)) {
            out = xasprintf("error: %s", err_message(&err));
        } else {
            buf_t b = BUF_INIT;
            fhirpath_result_dump(result, &b);
            out = buf_detach(&b, NULL);
        }
    }
    fhirpath_free(expr);
    arena_release(&arena);
    err_release(&err);
    return out;
}

static char *run_on(const char *expr_text, const char *resource_text)
{
    json_t *resource = resource_text ? parse(resource_text) : NULL;
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    env.now_set = true;
    env.now_ms = 1700000000000LL; /* 2023-11-14T22:13:20Z */
    char *out = run_env(expr_text, &env);
    json_decref(resource);
    return out;
}

/* Mismatches are counted and reported all at once by the teardown of each test. */
static int mismatches;

static int check_mismatches(void **state)
{
    (void)state;
    int n = mismatches;
    mismatches = 0;
    return n ? -1 : 0;
}

#define EXPECT_ON(resource, expr, want)                                                     \
    do {                                                                                    \
        char *got_ = run_on(expr, resource);                                                \
        if (strcmp(got_, want) != 0) {                                                      \
            print_error("line %d: %s\n  want %s\n  got  %s\n", __LINE__, expr, want, got_); \
            mismatches++;                                                                   \
        }                                                                                   \
        free(got_);                                                                         \
    } while (0)
#define EXPECT(expr, want)     EXPECT_ON(patient_text, expr, want)
#define EXPECT_OBS(expr, want) EXPECT_ON(observation_text, expr, want)

static void expect_prefix(const char *expr, const char *prefix)
{
    char *got = run_on(expr, patient_text);
    if (strncmp(got, prefix, strlen(prefix)) != 0) {
        print_error("%s\n  want %s...\n  got  %s\n", expr, prefix, got);
        mismatches++;
    }
    free(got);
}

/* ---- parser ---- */

static void test_parse_errors(void **state)
{
    (void)state;
    expect_prefix("Patient.name.where(given = 'x'",
                  "error: could not parse FHIRPath at column 31: expected ')' after function "
                  "arguments");
    expect_prefix("Patient.name.", "error: could not parse FHIRPath at column 14: expected an "
                                   "identifier or function after '.'");
    expect_prefix("1 +", "error: could not parse FHIRPath at column 4: expected an expression");
    expect_prefix("'abc", "error: could not parse FHIRPath at column 1: unterminated string");
    expect_prefix("name.foo()",
                  "error: could not parse FHIRPath at column 6: unknown function 'foo'");
    expect_prefix("name.substring()", "error: could not parse FHIRPath at column 6: substring() "
                                      "takes 1 to 2 arguments, not 0");
    expect_prefix("(1 + 2", "error: could not parse FHIRPath at column 7: expected ')' to close");
    expect_prefix("1 2", "error: could not parse FHIRPath at column 3: expected an operator");
    expect_prefix("@2015-13-01", "error: could not parse FHIRPath at column 1: invalid date");
    expect_prefix("@T14:34:28Z",
                  "error: could not parse FHIRPath at column 11: expected an operator");
    expect_prefix("name[0", "error: could not parse FHIRPath at column 7: expected ']'");
    expect_prefix("5 'furlong-ish'",
                  "error: could not parse FHIRPath at column 3: 'furlong-ish' is not a UCUM unit");
    expect_prefix("'a' ! 'b'", "error: could not parse FHIRPath at column 5: expected '=' or '~'");
    expect_prefix("", "error: could not parse FHIRPath at column 1: expected an expression");
    expect_prefix("/* open", "error: could not parse FHIRPath at column 1: unterminated comment");
    expect_prefix("'\\q'", "error: could not parse FHIRPath at column 2: invalid escape sequence");
    expect_prefix("name.is(1)",
                  "error: could not parse FHIRPath at column 9: expected a type name");
    expect_prefix("value.ofType(Quantiy)", "error: could not parse FHIRPath at column 14: unknown "
                                           "type 'Quantiy'");
    expect_prefix("value as FHIR.Strin", "error: could not parse FHIRPath at column 10: unknown "
                                         "type 'FHIR.Strin'");
    /* the column counts characters, not bytes */
    expect_prefix("'é' + )", "error: could not parse FHIRPath at column 7");
}

static void test_parse_nesting_limit(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    for (int i = 0; i < 5000; i++)
        buf_addch(&b, '(');
    buf_addch(&b, '1');
    for (int i = 0; i < 5000; i++)
        buf_addch(&b, ')');
    err_t err = ERR_INIT;
    fhirpath_t *expr = fhirpath_compile(b.ptr, b.len, &err);
    assert_null(expr);
    assert_non_null(strstr(err_message(&err), "nested too deeply"));
    err_release(&err);
    buf_release(&b);
}

static void test_parse_syntax(void **state)
{
    (void)state;
    EXPECT("Patient.name.given // a comment\n", "[\"Peter\",\"James\",\"Jim\"]");
    EXPECT("/* block */ name.`given`", "[\"Peter\",\"James\",\"Jim\"]");
    EXPECT("'\\u0050\\t\\'x\\''", "[\"P\\t'x'\"]");
    EXPECT("1 + 2 * 3 - 4 / 2", "[5]");
    EXPECT("(1 + 2 * 3 - 4 / 2).is(Decimal)", "[true]");
    EXPECT("(1 | 1) is Integer", "[true]");
    EXPECT("true implies false implies true", "[true]");
    EXPECT("-(3)", "[-3]");
    EXPECT("2 > 1 is Boolean", "[true]");
    /* as keeps the grammar's place: it binds tighter than | and the comparisons */
    EXPECT("1 | 2 as Integer", "[1,2]");
    EXPECT("1 < 2 as Integer", "[true]");
    EXPECT("(1 < 2) as Integer", "[]");
    EXPECT_OBS("Observation.value as Quantity | Observation.code.coding.code",
               "[{\"value\":185.50,\"unit\":\"lbs\",\"system\":\"http://unitsofmeasure.org\","
               "\"code\":\"[lb_av]\"},\"29463-7\"]");
    EXPECT_OBS("80 'kg' < Observation.value as Quantity", "[true]");
}

/* ---- decimals ---- */

static void test_decimal(void **state)
{
    (void)state;
    EXPECT("0.1 + 0.2", "[0.3]");
    EXPECT("0.1 + 0.2 = 0.3", "[true]");
    EXPECT("(0.1 + 0.2).toString()", "[\"0.3\"]");
    EXPECT("1.50.toString()", "[\"1.50\"]");
    EXPECT("1.2 * 1.8", "[2.16]");
    EXPECT("1 / 3", "[0.33333333]");
    EXPECT("2 / 3", "[0.66666667]");
    EXPECT("10 / 4", "[2.5]");
    EXPECT("-7 / 2", "[-3.5]");
    EXPECT("7 div 2", "[3]");
    EXPECT("-7 div 2", "[-3]");
    EXPECT("7 mod 3", "[1]");
    EXPECT("5.5 mod 2", "[1.5]");
    EXPECT("1 / 0", "[]");
    EXPECT("1.0 / 0.0", "[]");
    EXPECT("12345678901234567890.123456789 + 0.000000001", "[12345678901234567890.123456790]");
    EXPECT("99999999999999999999999999999999999.0 * 10000", "[]");
    EXPECT("9223372036854775807 + 1", "[]");
    EXPECT("1.005.round(2)", "[1.01]");
    EXPECT("(-1.005).round(2)", "[-1.01]");
    EXPECT("2.5.round()", "[3]");
    EXPECT("1.10 = 1.1", "[true]");
    EXPECT("1.10 ~ 1.1", "[true]");
    EXPECT("0.67 ~ (2 / 3)", "[true]");
    EXPECT("3 = 3.0", "[true]");
    EXPECT("3 < 3.5", "[true]");
    EXPECT("0.000001 * 0.000001", "[0.000000000001]");
    EXPECT("'1e3'.toDecimal()", "[]");
    EXPECT("'-12.50'.toDecimal()", "[-12.50]");
}

/* ---- dates and times ---- */

static void test_temporal(void **state)
{
    (void)state;
    EXPECT("@2018-03 < @2018-03-01", "[]");
    EXPECT("@2018-03 < @2018-04-01", "[true]");
    EXPECT("@2018-03-01T10:30 = @2018-03-01T10:30:00", "[]");
    EXPECT("@2018-03-01T10:30:00 = @2018-03-01T10:30:00.000", "[true]");
    EXPECT("@2018-03-01T10:30:00+02:00 = @2018-03-01T08:30:00Z", "[true]");
    EXPECT("@2018-03-01T23:30:00-02:00 > @2018-03-02T00:30:00Z", "[true]");
    EXPECT("@2018-03-01 ~ @2018-03-01T00:00:00", "[false]");
    EXPECT("@T10:00 < @T10:00:01", "[]");
    EXPECT("@T10:00:00 < @T10:00:01", "[true]");
    EXPECT("birthDate = @1974-12-25", "[true]");
    EXPECT("birthDate < @1975", "[true]");
    EXPECT("birthDate < @1974", "[]");
    EXPECT("birthDate < @1973", "[false]");
    EXPECT("birthDate > @1974-12-25T10:00:00", "[]");
    EXPECT("@2019-01-31 + 1 month", "[\"2019-02-28\"]");
    EXPECT("@2020-02-29 + 1 year", "[\"2021-02-28\"]");
    EXPECT("@2014 + 24 months", "[\"2016\"]");
    EXPECT("@2019-03-01 - 1 day", "[\"2019-02-28\"]");
    EXPECT("@2019-03-01 + 2 weeks", "[\"2019-03-15\"]");
    EXPECT("@2019-12-31T23:59:59 + 1 second", "[\"2020-01-01T00:00:00\"]");
    EXPECT("@2019-03-01T10:00:00Z + 90 'min'", "[\"2019-03-01T11:30:00Z\"]");
    EXPECT("@T23:30 + 1 hour", "[\"00:30\"]");
    EXPECT("@2019-03-01 + 25 hours", "[\"2019-03-02\"]");
    EXPECT("@2019-01-01 - 99999999999 'ms'", "[\"2015-11-01\"]");
    EXPECT("@2019-01-01 + 9000000000000000000 weeks", "[]");
    EXPECT("now()", "[\"2023-11-14T22:13:20.000Z\"]");
    EXPECT("today()", "[\"2023-11-14\"]");
    EXPECT("timeOfDay()", "[\"22:13:20.000\"]");
    EXPECT("now() = now()", "[true]");
    {
        /* 22:13 UTC is already tomorrow in Auckland (+13:00) */
        fhirpath_env_t env;
        fhirpath_env_init(&env, NULL);
        env.now_set = true;
        env.now_ms = 1700000000000LL;
        env.tz_offset_minutes = 13 * 60;
        char *got = run_env("today() | now() | timeOfDay()", &env);
        assert_string_equal(got, "[\"2023-11-15\",\"2023-11-15T11:13:20.000+13:00\","
                                 "\"11:13:20.000\"]");
        free(got);
    }
    EXPECT("'2015-02-04T14:34:28+10:00'.toDateTime()", "[\"2015-02-04T14:34:28+10:00\"]");
    EXPECT("'2015-02-30'.toDate()", "[]");
    EXPECT("@2015-02-04T14:34:28.123.toDate()", "[\"2015-02-04\"]");
    EXPECT("'14:34'.toTime()", "[\"14:34\"]");
    EXPECT_OBS("effective > @2016-03-28T07:00:00Z", "[true]");
    EXPECT_OBS("effective.type().name", "[\"dateTime\"]");
}

/* ---- quantities ---- */

static void test_quantity(void **state)
{
    (void)state;
    EXPECT("1 'kg' = 1000 'g'", "[true]");
    EXPECT("1 'kg' > 999 'g'", "[true]");
    EXPECT("1 '[lb_av]' = 453.59237 'g'", "[true]");
    EXPECT("1 'm2' = 10000 'cm2'", "[true]");
    EXPECT("100 'mg/dL' = 1 'g/L'", "[true]");
    EXPECT("1 'L' = 1000 'mL'", "[true]");
    EXPECT("1 'h' = 60 'min'", "[true]");
    EXPECT("37 'Cel' = 310.15 'K'", "[true]");
    EXPECT("98.6 '[degF]' = 37 'Cel'", "[true]");
    EXPECT("1 'kg' = 1 'm'", "[]");
    EXPECT("1 'kg' < 1 'm'", "[]");
    EXPECT("1 week = 7 days", "[true]");
    EXPECT("1 day = 24 'h'", "[true]");
    EXPECT("1 year = 12 months", "[true]");
    EXPECT("1 year = 1 'a'", "[]");
    EXPECT("1 year ~ 1 'a'", "[true]");
    EXPECT("1 'kg' + 500 'g'", "[{\"value\":1.5,\"unit\":\"kg\"}]");
    EXPECT("2 'm' * 3 'm'", "[{\"value\":6,\"unit\":\"m.m\"}]");
    EXPECT("(2 'm' * 3 'm') = 6 'm2'", "[true]");
    EXPECT("6 'm2' / 2 'm' = 3 'm'", "[true]");
    EXPECT("2 'mg' * 3", "[{\"value\":6,\"unit\":\"mg\"}]");
    EXPECT("-(5 'mg')", "[{\"value\":-5,\"unit\":\"mg\"}]");
    EXPECT("1 'kg' + 1 'm'", "[]");
    EXPECT("'5.5 \\'mg\\''.toQuantity('g')", "[{\"value\":0.0055,\"unit\":\"g\"}]");
    EXPECT("'3 days'.toQuantity()", "[{\"value\":3,\"unit\":\"days\"}]");
    EXPECT("4 'mmol/L'.toString()", "[\"4 'mmol/L'\"]");
    EXPECT("1 '10*3/uL' = 1000 '/uL'", "[true]");
    EXPECT("120 'mm[Hg]' > 15 'kPa'", "[true]");
    EXPECT("1 '{beats}/min' = 60 '/h'", "[true]");
    EXPECT_OBS("value = 185.5 '[lb_av]'", "[true]");
    EXPECT_OBS("value > 80 'kg'", "[true]");
    EXPECT_OBS("value < 85 'kg'", "[true]");
    EXPECT_OBS("value.value", "[185.50]");
}

/* ---- existence, filtering, subsetting, combining ---- */

static void test_collections(void **state)
{
    (void)state;
    EXPECT("name.given.count()", "[3]");
    EXPECT("name.empty()", "[false]");
    EXPECT("link.empty()", "[true]");
    EXPECT("name.exists(use = 'usual')", "[true]");
    EXPECT("name.all(given.exists())", "[true]");
    EXPECT("(true | false).anyTrue()", "[true]");
    EXPECT("(true | false).allTrue()", "[false]");
    EXPECT("{}.allFalse()", "[true]");
    EXPECT("(false | false).anyFalse()", "[true]");
    EXPECT("(1 | 2).subsetOf(1 | 2 | 3)", "[true]");
    EXPECT("(1 | 2).supersetOf(3)", "[false]");
    EXPECT("(1 | 2 | 2 | 3).distinct()", "[1,2,3]");
    EXPECT("(1).combine(1).isDistinct()", "[false]");
    EXPECT("telecom.where(system = 'phone').value", "[\"555\"]");
    EXPECT("name.select(given.first())", "[\"Peter\",\"Jim\"]");
    EXPECT("name.given.where($index > 0)", "[\"James\",\"Jim\"]");
    EXPECT("(1 | 2 | 3).select($this * 10)", "[10,20,30]");
    EXPECT("(1|2|3|4).aggregate($total + $this, 0)", "[10]");
    EXPECT("name[1].given", "[\"Jim\"]");
    EXPECT("name[5]", "[]");
    EXPECT("name.given.first()", "[\"Peter\"]");
    EXPECT("name.given.last()", "[\"Jim\"]");
    EXPECT("name.given.tail()", "[\"James\",\"Jim\"]");
    EXPECT("name.given.skip(2)", "[\"Jim\"]");
    EXPECT("name.given.take(2)", "[\"Peter\",\"James\"]");
    EXPECT("name.given.single()", "error: could not evaluate FHIRPath at column 12: single() "
                                  "expects one item, got 3");
    EXPECT("(1 | 2 | 3).intersect(2 | 3 | 4)", "[2,3]");
    EXPECT("(1 | 2 | 3).exclude(2)", "[1,3]");
    EXPECT("(1 | 2).union(2 | 3)", "[1,2,3]");
    EXPECT("(1 | 2).combine(2 | 3)", "[1,2,2,3]");
    EXPECT("2 in (1 | 2)", "[true]");
    EXPECT("(1 | 2) contains 3", "[false]");
    EXPECT("{} in (1 | 2)", "[]");
    EXPECT("name.given = ('Peter' | 'James' | 'Jim')", "[true]");
    EXPECT("name.given ~ ('jim' | 'peter' | 'james')", "[true]");
}

static void test_logic(void **state)
{
    (void)state;
    EXPECT("true and {}", "[]");
    EXPECT("false and {}", "[false]");
    EXPECT("{} or true", "[true]");
    EXPECT("true xor true", "[false]");
    EXPECT("{} implies false", "[]");
    EXPECT("false implies {}", "[true]");
    EXPECT("active.not()", "[false]");
    EXPECT("(1 | 2).not()", "error: could not evaluate FHIRPath at column 9: expected a "
                            "single boolean, got 2 items");
    EXPECT("iif(active, 'yes', 'no')", "[\"yes\"]");
    EXPECT("iif({}, 'yes')", "[]");
    EXPECT("iif(true, 'yes', 1 / 0)", "[\"yes\"]");
    EXPECT("name.iif(exists(), 'named')", "[\"named\"]");
}

/* ---- conversions ---- */

static void test_conversion(void **state)
{
    (void)state;
    EXPECT("'yes'.toBoolean()", "[true]");
    EXPECT("'maybe'.convertsToBoolean()", "[false]");
    EXPECT("'42'.toInteger() + 1", "[43]");
    EXPECT("'4.2'.toInteger()", "[]");
    EXPECT("true.toDecimal()", "[1.0]");
    EXPECT("3.toString() + 'x'", "[\"3x\"]");
    EXPECT("@2015-02.toString()", "[\"2015-02\"]");
    EXPECT("5 'mg'.toString()", "[\"5 'mg'\"]");
    EXPECT("1.toQuantity()", "[{\"value\":1,\"unit\":\"1\"}]");
    EXPECT("'2015'.convertsToDate()", "[true]");
    EXPECT("'2015-02-04T14'.toDateTime()", "[\"2015-02-04T14\"]");
    EXPECT("'25:00'.convertsToTime()", "[false]");
    EXPECT("{}.toString()", "[]");
    EXPECT("(1 | 2).toString()", "error: could not evaluate FHIRPath at column 9: toString() "
                                 "expects a single item, got 2");
}

/* ---- strings ---- */

static void test_strings(void **state)
{
    (void)state;
    EXPECT("'abcdef'.indexOf('cd')", "[2]");
    EXPECT("'abc'.indexOf('x')", "[-1]");
    EXPECT("'abcdef'.substring(2, 3)", "[\"cde\"]");
    EXPECT("'abc'.substring(5)", "[]");
    EXPECT("'héllo'.substring(1, 2)", "[\"él\"]");
    EXPECT("'héllo'.length()", "[5]");
    EXPECT("'abc'.startsWith('ab') and 'abc'.endsWith('bc') and 'abc'.contains('b')", "[true]");
    EXPECT("'aBc'.upper() + 'aBc'.lower()", "[\"ABCabc\"]");
    EXPECT("'a.b.c'.replace('.', '/')", "[\"a/b/c\"]");
    EXPECT("'abc'.replace('', '-')", "[\"-a-b-c-\"]");
    EXPECT("'2019-01-05'.matches('^\\\\d{4}-\\\\d{2}')", "[true]");
    expect_prefix("'abc'.matches('[')", "error: could not evaluate FHIRPath at column 15: "
                                        "invalid regular expression \"[\"");
    EXPECT("'John Smith'.replaceMatches('(\\\\w+) (\\\\w+)', '$2, $1')", "[\"Smith, John\"]");
    EXPECT("'a1b22c'.replaceMatches('[0-9]+', '#')", "[\"a#b#c\"]");
    EXPECT("'ab'.toChars()", "[\"a\",\"b\"]");
    EXPECT("'  x y '.trim()", "[\"x y\"]");
    EXPECT("'a,b,,c'.split(',')", "[\"a\",\"b\",\"\",\"c\"]");
    EXPECT("name.given.join('+')", "[\"Peter+James+Jim\"]");
    EXPECT("'hi'.encode('base64').decode('base64')", "[\"hi\"]");
    EXPECT("'<a>'.escape('html')", "[\"&lt;a&gt;\"]");
    EXPECT("'a' & {} & 'b'", "[\"ab\"]");
    EXPECT("'a' + {}", "[]");
    EXPECT("'a' - 'b'", "error: could not evaluate FHIRPath at column 5: cannot apply '-' to "
                        "String and String");
    EXPECT("1.length()", "error: could not evaluate FHIRPath at column 3: length() expects a "
                         "String, not Integer");
    EXPECT("gender.upper()", "[\"MALE\"]");
}

/* ---- math ---- */

static void test_math(void **state)
{
    (void)state;
    EXPECT("(-5).abs()", "[5]");
    EXPECT("(-5.5 'mg').abs()", "[{\"value\":5.5,\"unit\":\"mg\"}]");
    EXPECT("1.1.ceiling()", "[2]");
    EXPECT("(-1.1).floor()", "[-2]");
    EXPECT("(-1.9).truncate()", "[-1]");
    EXPECT("0.exp()", "[1]");
    EXPECT("1.ln()", "[0]");
    EXPECT("100.log(10)", "[2]");
    EXPECT("2.power(10)", "[1024]");
    EXPECT("2.5.power(2)", "[6.25]");
    EXPECT("4.power(0.5)", "[2]");
    EXPECT("(-1).power(0.5)", "[]");
    EXPECT("16.sqrt()", "[4]");
    EXPECT("(-4).sqrt()", "[]");
    EXPECT("3.14159.round(3)", "[3.142]");
    EXPECT("'a'.abs()", "error: could not evaluate FHIRPath at column 5: abs() expects a "
                        "number, not String");
}

/* ---- tree navigation, types, utility ---- */

static int traced;

static void trace_hook(void *data, const char *label, const json_t *items)
{
    (void)data;
    if (strcmp(label, "names") == 0)
        traced = (int)json_array_size(items);
}

static void test_tree_types_utility(void **state)
{
    (void)state;
    EXPECT("name.first().children().count()", "[4]");
    EXPECT("name.first().descendants().count()", "[4]");
    EXPECT("descendants().where($this is HumanName).count()", "[2]");
    EXPECT("name.first().type().name", "[\"HumanName\"]");
    EXPECT_OBS("Observation.code.type().name", "[\"CodeableConcept\"]");
    EXPECT_ON("{\"resourceType\":\"Patient\",\"contact\":[{\"gender\":\"male\"}]}",
              "contact.type().name | contact.is(BackboneElement) | contact.gender",
              "[\"BackboneElement\",true,\"male\"]");
    EXPECT("active.type().namespace + '.' + active.type().name", "[\"FHIR.boolean\"]");
    EXPECT("1.type().name", "[\"Integer\"]");
    EXPECT("birthDate is date", "[true]");
    EXPECT("birthDate is Date", "[false]");
    EXPECT("birthDate.is(System.Date)", "[false]");
    EXPECT("Patient is DomainResource", "[true]");
    EXPECT("Patient.is(FHIR.Resource)", "[true]");
    EXPECT("name.ofType(HumanName).count()", "[2]");
    EXPECT("contained.ofType(Organization).name", "[\"Acme\"]");
    EXPECT("Observation.id", "[]");
    EXPECT("(1 | 'a' | 2.0).ofType(Integer)", "[1]");
    EXPECT("name.given.is(string)", "error: could not evaluate FHIRPath at column 12: is() "
                                    "expects a single item, got 3");
    EXPECT("%ucum", "[\"http://unitsofmeasure.org\"]");
    EXPECT("%`vs-administrative-gender`",
           "[\"http://hl7.org/fhir/ValueSet/administrative-gender\"]");
    EXPECT("%resource.id", "[\"p1\"]");
    EXPECT("'12345-6789'.matches('^' + %`us-zip` + '$')", "[true]");
    EXPECT("%nope", "error: could not evaluate FHIRPath at column 1: unknown variable %nope");

    json_t *resource = parse(patient_text);
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    json_t *limit = json_integer(2);
    fhirpath_var_t vars[] = {{"limit", limit}};
    env.vars = vars;
    env.nvars = 1;
    env.trace = trace_hook;
    char *got = run_env("name.trace('names', given).given.take(%limit)", &env);
    assert_string_equal(got, "[\"Peter\",\"James\"]");
    assert_int_equal(traced, 3);
    free(got);
    /* the context can be an element inside the resource */
    env.context = json_array_get(json_object_get(resource, "name"), 1);
    got = run_env("given.first() & ' of ' & %resource.id", &env);
    assert_string_equal(got, "[\"Jim of p1\"]");
    free(got);
    /* with its model type, the context element is typed like any other node */
    got = run_env("$this.type().name | given.type().name", &env);
    assert_string_equal(got, "[\"Element\",\"string\"]");
    free(got);
    env.context_type = fhir_type_find("HumanName", 9);
    got = run_env("$this.type().name | use.type().name | %context.is(HumanName)", &env);
    assert_string_equal(got, "[\"HumanName\",\"code\",true]");
    free(got);
    json_decref(limit);
    json_decref(resource);
}

/* ---- FHIR additions ---- */

static status_t resolve_hook(void *data, const char *reference, size_t len, json_t **out,
                             err_t *err)
{
    (void)data;
    (void)err;
    *out = NULL;
    if (len == 15 && memcmp(reference, "Practitioner/dr", len) == 0)
        *out = json_pack("{s:s, s:s, s:[{s:s}]}", "resourceType", "Practitioner", "id", "dr",
                         "name", "family", "Who");
    return ERR_OK;
}

static status_t member_of_hook(void *data, const char *url, const char *system, const char *code,
                               int *out, err_t *err)
{
    (void)data;
    (void)err;
    (void)system;
    *out = strcmp(url, "http://example.org/vs") == 0 && strcmp(code, "male") == 0;
    return ERR_OK;
}

static void test_fhir_functions(void **state)
{
    (void)state;
    EXPECT("extension('http://example.org/race').value", "[\"x\"]");
    EXPECT("birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime')"
           ".value.type().name",
           "[\"dateTime\"]");
    EXPECT("birthDate.hasValue()", "[true]");
    EXPECT("hasExtension('http://example.org/race')", "[true]");
    EXPECT("name.hasExtension('http://example.org/race')", "[false]");
    EXPECT("name.hasValue()", "[false]");
    EXPECT("birthDate.getValue().is(System.Date)", "[true]");
    EXPECT("managingOrganization.resolve().name", "[\"Acme\"]");
    EXPECT("managingOrganization.resolve() is Organization", "[true]");
    EXPECT("generalPractitioner.resolve()", "[]");
    EXPECT("text.div.htmlChecks()", "[true]");
    EXPECT("conformsTo('http://hl7.org/fhir/StructureDefinition/Patient')", "[true]");
    EXPECT("conformsTo('http://hl7.org/fhir/StructureDefinition/Observation')", "[false]");
    expect_prefix("conformsTo('http://example.org/profile')",
                  "error: could not evaluate FHIRPath at column 12: cannot check conformance");
    expect_prefix("gender.memberOf('http://example.org/vs')",
                  "error: could not evaluate FHIRPath at column 8: memberOf() needs a terminology");

    json_t *resource = parse(patient_text);
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    env.resolve = resolve_hook;
    env.member_of = member_of_hook;
    char *got = run_env("generalPractitioner.resolve().name.family", &env);
    assert_string_equal(got, "[\"Who\"]");
    free(got);
    got = run_env("gender.memberOf('http://example.org/vs')", &env);
    assert_string_equal(got, "[true]");
    free(got);
    /* the shallow resolver: the type and id a literal reference names, nothing read */
    env.resolve = fhirpath_resolve_shallow;
    got = run_env("generalPractitioner.resolve() | generalPractitioner.where(resolve() is "
                  "Practitioner).reference",
                  &env);
    assert_string_equal(got, "[{\"resourceType\":\"Practitioner\",\"id\":\"dr\"},"
                             "\"Practitioner/dr\"]");
    free(got);
    static const struct {
        const char *reference, *want;
    } shallow_cases[] = {
        {"Patient/123", "Patient 123"},
        {"http://example.org/fhir/Observation/a.b-c/_history/2", "Observation a.b-c"},
        {"Foo/123", NULL},
        {"Patient/", NULL},
        {"123", NULL},
        {"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", NULL},
        {"Patient/12 3", NULL},
    };
    for (size_t i = 0; i < sizeof(shallow_cases) / sizeof(shallow_cases[0]); i++) {
        json_t *shallow = NULL;
        err_t err = ERR_INIT;
        assert_int_equal(fhirpath_resolve_shallow(NULL, shallow_cases[i].reference,
                                                  strlen(shallow_cases[i].reference), &shallow,
                                                  &err),
                         ERR_OK);
        if (!shallow_cases[i].want) {
            assert_null(shallow);
            continue;
        }
        assert_non_null(shallow);
        char *text = xasprintf("%s %s", json_string_value(json_object_get(shallow, "resourceType")),
                               json_string_value(json_object_get(shallow, "id")));
        assert_string_equal(text, shallow_cases[i].want);
        free(text);
        json_decref(shallow);
    }
    json_decref(resource);

    /* references inside a Bundle resolve to its entries */
    json_t *bundle = parse(
        "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
        "{\"fullUrl\":\"http://x.org/fhir/Patient/p1\",\"resource\":{\"resourceType\":"
        "\"Patient\",\"id\":\"p1\",\"active\":true}},"
        "{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o\","
        "\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
        "\"Patient/p1\"}}}]}");
    fhirpath_env_init(&env, bundle);
    got = run_env("Bundle.entry[1].resource.subject.where(resolve() is Patient).resolve().active",
                  &env);
    assert_string_equal(got, "[true]");
    free(got);
    got = run_env("entry.resource.ofType(Observation).code.text", &env);
    assert_string_equal(got, "[\"x\"]");
    free(got);

    /* a contained resource resolves its siblings through its container */
    json_t *container =
        parse("{\"resourceType\":\"MedicationRequest\",\"contained\":[{\"resourceType\":"
              "\"Medication\",\"id\":\"m\",\"ingredient\":[{\"itemReference\":{\"reference\":"
              "\"#s\"}}]},{\"resourceType\":\"Substance\",\"id\":\"s\",\"code\":{\"text\":"
              "\"salt\"}}]}");
    fhirpath_env_init(&env, json_array_get(json_object_get(container, "contained"), 0));
    env.root_resource = container;
    got = run_env("ingredient.item.resolve().code.text | %rootResource.resourceType", &env);
    assert_string_equal(got, "[\"salt\",\"MedicationRequest\"]");
    free(got);
    json_decref(container);
    json_decref(bundle);
}

/* ---- choice elements, paths, rendering ---- */

static void test_nodes_and_rendering(void **state)
{
    (void)state;
    EXPECT_OBS("Observation.value.unit", "[\"lbs\"]");
    EXPECT_OBS("Observation.value.ofType(Quantity).code", "[\"[lb_av]\"]");
    EXPECT_OBS("(Observation.value as CodeableConcept).text", "[]");
    EXPECT_OBS("Observation.valueQuantity", "[]");
    EXPECT_OBS("Observation.value", "[{\"value\":185.50,\"unit\":\"lbs\",\"system\":"
                                    "\"http://unitsofmeasure.org\",\"code\":\"[lb_av]\"}]");

    json_t *resource = parse(patient_text);
    fhirpath_env_t env;
    fhirpath_env_init(&env, resource);
    err_t err = ERR_INIT;
    arena_t arena;
    arena_init(&arena);
    fhirpath_t *expr = fhirpath_compile("name.given | birthDate | 1.5 | 2 'mg'", 37, &err);
    assert_non_null(expr);
    fhirpath_result_t *result;
    assert_int_equal(fhirpath_eval(expr, &env, &arena, &result, &err), ERR_OK);
    assert_int_equal(fhirpath_result_count(result), 6);
    const fhirpath_item_t *james = fhirpath_result_item(result, 1);
    assert_int_equal(fhirpath_item_kind(james), FHIRPATH_NODE);
    assert_string_equal(fhirpath_item_path(james, &arena), "Patient.name[0].given[1]");
    assert_string_equal(fhirpath_item_type_name(james), "string");
    const fhirpath_item_t *birth = fhirpath_result_item(result, 3);
    assert_string_equal(fhirpath_item_type_name(birth), "date");
    assert_string_equal(fhirpath_item_text(birth, &arena), "1974-12-25");
    assert_non_null(fhirpath_item_fhir_type(birth));
    const fhirpath_item_t *q = fhirpath_result_item(result, 5);
    assert_int_equal(fhirpath_item_kind(q), FHIRPATH_QUANTITY);
    assert_null(fhirpath_item_path(q, &arena));
    assert_string_equal(fhirpath_item_text(q, &arena), "2 'mg'");
    buf_t b = BUF_INIT;
    fhirpath_result_dump(result, &b);
    assert_string_equal(b.ptr, "[\"Peter\",\"James\",\"Jim\",\"1974-12-25\",1.5,"
                               "{\"value\":2,\"unit\":\"mg\"}]");
    buf_release(&b);

    int condition;
    fhirpath_t *cond = fhirpath_compile("active and gender = 'male'", 26, &err);
    assert_int_equal(fhirpath_eval_condition(cond, &env, &arena, &condition, &err), ERR_OK);
    assert_int_equal(condition, 1);
    fhirpath_free(cond);
    fhirpath_free(expr);
    arena_release(&arena);
    err_release(&err);
    json_decref(resource);
}

static void test_check(void **state)
{
    (void)state;
    static const struct {
        const char *type, *expr, *error;
    } cases[] = {
        {"Patient", "name.given", NULL},
        {"Patient", "name.given1",
         "invalid FHIRPath at column 6: no element 'given1' in HumanName"},
        {"Patient", "Encounter.name",
         "invalid FHIRPath at column 11: no element 'name' in "
         "Encounter"},
        {"Patient", "Patient.name.family | Practitioner.name.family", NULL},
        {"Observation", "Observation.valueQuantity",
         "invalid FHIRPath at column 13: no element "
         "'valueQuantity' in Observation"},
        {"Observation", "(Observation.value as Quantity).unit", NULL},
        {"Observation", "(Observation.value as Period).unit",
         "invalid FHIRPath at column 31: "
         "no element 'unit' in Period"},
        {"Patient", "contact.where(relationship.exists()).name.family", NULL},
        {"Patient", "children().skip(1)",
         "invalid FHIRPath at column 12: skip() needs an "
         "ordered collection"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_t err = ERR_INIT;
        fhirpath_t *expr = fhirpath_compile(cases[i].expr, strlen(cases[i].expr), &err);
        assert_non_null(expr);
        status_t rc = fhirpath_check(expr, cases[i].type, FHIRPATH_CHECK_ORDERED, &err);
        if (!cases[i].error) {
            if (rc)
                fail_msg("%s: %s", cases[i].expr, err_message(&err));
        } else if (rc == ERR_OK ||
                   strncmp(err_message(&err), cases[i].error, strlen(cases[i].error)) != 0) {
            fail_msg("%s\n  want %s\n  got  %s", cases[i].expr, cases[i].error, err_message(&err));
        }
        fhirpath_free(expr);
        err_release(&err);
    }
}

/* ---- limits and threads ---- */

static void test_limits(void **state)
{
    (void)state;
    /* repeat over a growing set stops at the item budget instead of running away */
    expect_prefix("(1 | 2).repeat($this + 1)", "error: could not evaluate FHIRPath");
    EXPECT("name.repeat(given).count()", "[3]");
    EXPECT("'x'.repeat('x')", "[\"x\"]");
}

/* Inputs the fuzzer (tests/fuzz/fhirpath.c) and the package test (fhirpath_package.c) found,
 * kept as regressions. */
static void test_fuzz_findings(void **state)
{
    (void)state;
    /* stacked quantifiers made glibc's matcher run for minutes */
    expect_prefix("'EANYCOUTODECIMI#ES'"
                  ".replaceMatches('(\\\\w+++++++++++++++++++) (\\\\w+)', '(2 $1')",
                  "error: could not evaluate FHIRPath at column 37: invalid regular expression "
                  "\"(\\w+++++++++++++++++++) (\\w+)\": stacked quantifiers are not supported");
    EXPECT("'ab'.matches('a+?b')", "[true]");
    expect_prefix("'aa'.matches('(a)\\\\1')", "error: could not evaluate FHIRPath at column 14: "
                                              "invalid regular expression");
    /* a quotient whose scaling passed 10^38 overflowed the power of ten itself */
    EXPECT("-0.1 / -0.92233720368547758071", "[0.10842021724855044]");
    EXPECT("0.000000000000000000000000000001 / 12345678901234567890.0",
           "[0.000000000000000000000000000000]");
    EXPECT("'1e40'.toDecimal()", "[]");
    /* children() of a primitive known only by its "_name" object stepped the JSON iterator
     * from the wrong key */
    EXPECT_ON("{\"resourceType\":\"Observation\",\"_status\":{\"extension\":[{\"url\":\"u\","
              "\"valueInteger\":1}]},\"code\":{\"text\":\"x\"}}",
              "children().count() | descendants().count()", "[2,6]");
    expect_prefix("'a'.matches('a{1001}')", "error: could not evaluate FHIRPath at column 13: "
                                            "invalid regular expression");
    expect_prefix("'a'.matches('((a{1,20}){1,20}){1,20}')",
                  "error: could not evaluate FHIRPath at column 13: invalid regular expression "
                  "\"((a{1,20}){1,20}){1,20}\": nested repeat counts multiply past 1000");
    /* PCRE escapes inside brackets have no POSIX spelling: eld-16 and eld-19 use \] \[ \- */
    EXPECT("'a-b[0]@x'.matches('^[a-zA-Z0-9\\\\/\\\\-_\\\\[\\\\]\\\\@]+$')", "[true]");
    EXPECT("'a b'.matches('^[a-zA-Z0-9\\\\/\\\\-_\\\\[\\\\]\\\\@]+$')", "[false]");
    EXPECT("'Patient.name'.matches('^[^\\\\s\\\\.,:;]{1,64}(\\\\.[^\\\\s\\\\.,:;]{1,64})*$')",
           "[true]");
    EXPECT("'x^y'.replaceMatches('[\\\\^]', '-') + '2-3'.replaceMatches('[\\\\d-]', '#')",
           "[\"x-y###\"]");
    EXPECT("']'.matches('[]]') and 'a'.matches('[^]]') and '\\\\'.matches('[\\\\\\\\]')", "[true]");
    expect_prefix("'a'.matches('[\\\\W]')", "error: could not evaluate FHIRPath at column 13: "
                                            "invalid regular expression");
    /* the R4 invariants of conformance resources (adf-0, csd-0, vsd-0, ...) use {0,254} */
    EXPECT("'ValueSet_1'.matches('[A-Z]([A-Za-z0-9_]){0,254}')", "[true]");
    EXPECT("'a|b(c)'.replaceMatches('(b)\\\\(c\\\\)|a', '[$1]')", "[\"[]|[b]\"]");
}

/* distinct, union and the like go through a hash index: 20,000 items with 10,000 distinct
 * values would need 10^8 comparisons one against another */
static void test_large_collections(void **state)
{
    (void)state;
    json_t *patient = json_pack("{s:s}", "resourceType", "Patient");
    json_t *ids = json_array();
    for (int i = 0; i < 20000; i++) {
        char value[16], system[16];
        snprintf(value, sizeof(value), "v%d", i % 10000);
        snprintf(system, sizeof(system), "urn:s%d", i % 2);
        json_array_append_new(ids, json_pack("{s:s, s:s}", "system", system, "value", value));
    }
    json_object_set_new(patient, "identifier", ids);
    fhirpath_env_t env;
    fhirpath_env_init(&env, patient);
    static const struct {
        const char *expr, *want;
    } cases[] = {
        {"identifier.value.distinct().count()", "[10000]"},
        {"identifier.value.isDistinct()", "[false]"},
        {"(identifier.value | identifier.value).count()", "[10000]"},
        {"identifier.distinct().count()", "[10000]"},
        {"identifier.value.intersect(identifier.value.take(5000)).count()", "[5000]"},
        {"identifier.value.exclude(identifier.value.take(9999)).count()", "[2]"},
        {"identifier.value.take(100).subsetOf(identifier.value)", "[true]"},
        {"identifier.system.distinct()", "[\"urn:s0\",\"urn:s1\"]"},
        {"identifier.select(value.length()).distinct()", "[2,3,4,5]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = run_env(cases[i].expr, &env);
        if (strcmp(got, cases[i].want) != 0) {
            print_error("%s\n  want %s\n  got  %s\n", cases[i].expr, cases[i].want, got);
            mismatches++;
        }
        free(got);
    }
    json_decref(patient);
}

typedef struct {
    const fhirpath_t *expr;
    json_t *resource;
    int failures;
} thread_job_t;

static void *evaluate_many(void *data)
{
    thread_job_t *job = data;
    for (int i = 0; i < 2000; i++) {
        arena_t arena;
        arena_init(&arena);
        err_t err = ERR_INIT;
        fhirpath_env_t env;
        fhirpath_env_init(&env, job->resource);
        fhirpath_result_t *result;
        if (fhirpath_eval(job->expr, &env, &arena, &result, &err) ||
            fhirpath_result_count(result) != 1)
            job->failures++;
        err_release(&err);
        arena_release(&arena);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    const char *text = "telecom.where(system = 'phone' and value.matches('^[0-9]+$')).use";
    fhirpath_t *expr = fhirpath_compile(text, strlen(text), &err);
    assert_non_null(expr);
    json_t *resource = parse(patient_text);
    thread_job_t jobs[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job_t){expr, resource, 0};
        pthread_create(&threads[i], NULL, evaluate_many, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    json_decref(resource);
    fhirpath_free(expr);
    err_release(&err);
}

/* Canonical UCUM forms for quantity search. */
static void test_ucum_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *unit;
        double value, expected;
        const char *code;
    } cases[] = {
        {"mg", 5.4, 0.0054, "g"},   {"g", 0.0054, 0.0054, "g"},  {"ug", 5400, 0.0054, "g"},
        {"mg", 5, 0.005, "g"},      {"mg/dL", 5.4, 54, "m-3.g"}, /* 0.0054 g per 0.0001 m3 */
        {"mg/L", 54, 54, "m-3.g"},  {"Cel", 37, 310.15, "K"},    {"[degF]", 98.6, 310.15, "K"},
        {"K", 310.15, 310.15, "K"}, {"%", 50, 0.5, "1"},         {"min", 2, 120, "s"},
        {"/min", 60, 1, "s-1"},     {"mmol/L", 5, 5, "m-3.mol"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v;
        char code[64];
        assert_true(fhirpath_ucum_canonical(cases[i].unit, cases[i].value, &v, code, sizeof(code)));
        assert_string_equal(code, cases[i].code);
        assert_true(fabs(v - cases[i].expected) <= 1e-9 * fabs(cases[i].expected));
    }
    /* the same double whatever the unit it was written in */
    double a, b;
    char code[64];
    assert_true(fhirpath_ucum_canonical("mg", 5, &a, code, sizeof(code)));
    assert_true(fhirpath_ucum_canonical("g", 0.005, &b, code, sizeof(code)));
    assert_true(a == b);
    assert_true(fhirpath_ucum_canonical("mg", INFINITY, &a, code, sizeof(code)));
    assert_true(isinf(a) && a > 0);
    assert_false(fhirpath_ucum_canonical("milligram", 1, &a, code, sizeof(code)));
    assert_false(fhirpath_ucum_canonical("Cel/h", 1, &a, code, sizeof(code)));
    assert_false(fhirpath_ucum_canonical("mg", 1, &a, code, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ucum_canonical),
        cmocka_unit_test_teardown(test_parse_errors, check_mismatches),
        cmocka_unit_test_teardown(test_parse_nesting_limit, check_mismatches),
        cmocka_unit_test_teardown(test_parse_syntax, check_mismatches),
        cmocka_unit_test_teardown(test_decimal, check_mismatches),
        cmocka_unit_test_teardown(test_temporal, check_mismatches),
        cmocka_unit_test_teardown(test_quantity, check_mismatches),
        cmocka_unit_test_teardown(test_collections, check_mismatches),
        cmocka_unit_test_teardown(test_logic, check_mismatches),
        cmocka_unit_test_teardown(test_conversion, check_mismatches),
        cmocka_unit_test_teardown(test_strings, check_mismatches),
        cmocka_unit_test_teardown(test_math, check_mismatches),
        cmocka_unit_test_teardown(test_tree_types_utility, check_mismatches),
        cmocka_unit_test_teardown(test_fhir_functions, check_mismatches),
        cmocka_unit_test_teardown(test_nodes_and_rendering, check_mismatches),
        cmocka_unit_test_teardown(test_check, check_mismatches),
        cmocka_unit_test_teardown(test_limits, check_mismatches),
        cmocka_unit_test_teardown(test_fuzz_findings, check_mismatches),
        cmocka_unit_test_teardown(test_large_collections, check_mismatches),
        cmocka_unit_test_teardown(test_threads, check_mismatches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
