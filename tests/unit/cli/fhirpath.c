/*
 * Unit tests for src/cli/fhirpath.c: `concerto fhirpath` prints the result as JSON, reads
 * standard input for "-", and answers bad usage with exit 2 and failed evaluations with 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "cli/commands.h"

static char tmpdir[] = "/tmp/concerto-cli-XXXXXX";

typedef struct {
    int status;
    char out[8192], err[8192];
} run_t;

static void slurp(const char *path, char *dst, size_t size)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(dst, 1, size - 1, f) : 0;
    dst[n] = '\0';
    if (f)
        fclose(f);
}

/* Runs cli_fhirpath with stdout and stderr captured (and stdin from `input` when set). */
static void run(run_t *r, const char *input, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "fhirpath";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    char out_path[64], err_path[64], in_path[64];
    snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
    snprintf(err_path, sizeof(err_path), "%s/err", tmpdir);
    snprintf(in_path, sizeof(in_path), "%s/in", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2), saved_in = dup(0);
    FILE *o = freopen(out_path, "w", stdout);
    FILE *e = freopen(err_path, "w", stderr);
    assert_non_null(o);
    assert_non_null(e);
    if (input) {
        FILE *f = fopen(in_path, "w");
        fputs(input, f);
        fclose(f);
        assert_non_null(freopen(in_path, "r", stdin));
    }
    r->status = cli_fhirpath(argc - 1, argv + 1); /* the arguments after the name */
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_err);
    close(saved_in);
    clearerr(stdin);
    slurp(out_path, r->out, sizeof(r->out));
    slurp(err_path, r->err, sizeof(r->err));
}

static const char *patient = "{\"resourceType\":\"Patient\",\"birthDate\":\"1974-12-25\","
                             "\"name\":[{\"use\":\"official\",\"given\":[\"Peter\",\"James\"]}]}";

static char patient_path[64];

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(patient_path, sizeof(patient_path), "%s/patient.json", tmpdir);
    FILE *f = fopen(patient_path, "w");
    fputs(patient, f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_prints_json(void **state)
{
    (void)state;
    run_t r;
    run(&r, NULL, 3, "Patient.name.given | birthDate | 2.50 | 3 'mg'", patient_path);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[\"Peter\",\"James\",\"1974-12-25\",2.50,"
                               "{\"value\":3,\"unit\":\"mg\"}]\n");
    assert_string_equal(r.err, "");
    /* after --, an expression may start with a minus */
    run(&r, NULL, 4, "--", "-1 + 2", patient_path);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[1]\n");
    run(&r, NULL, 5, "--", "-1", patient_path, "extra");
    assert_int_equal(r.status, 2);
}

static void test_stdin_and_pretty(void **state)
{
    (void)state;
    run_t r;
    run(&r, patient, 4, "--pretty", "name.use", "-");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "[\n  \"official\"\n]\n");
}

static void test_help(void **state)
{
    (void)state;
    run_t r;
    run(&r, NULL, 2, "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: concerto fhirpath"));
}

static void test_usage_errors(void **state)
{
    (void)state;
    run_t r;
    run(&r, NULL, 2, "name");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "expected an EXPRESSION and a FILE"));
    run(&r, NULL, 4, "--frobnicate", "name", patient_path);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option \"--frobnicate\""));
}

static void test_failures(void **state)
{
    (void)state;
    run_t r;
    run(&r, NULL, 3, "name.where(use = 'x'", patient_path);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "concerto fhirpath: could not parse FHIRPath at column 21: "
                               "expected ')' after function arguments, found the end of the "
                               "expression\n");
    assert_string_equal(r.out, "");
    run(&r, NULL, 3, "name", "/nonexistent/patient.json");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "could not open \"/nonexistent/patient.json\""));
    run(&r, "{\"resourceType\": ", 3, "name", "-");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "could not parse JSON"));
    run(&r, NULL, 3, "'a' - 1", patient_path);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot apply '-' to String and Integer"));
    run(&r, NULL, 4, "--check", "name.given1", patient_path);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no element 'given1' in HumanName"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prints_json), cmocka_unit_test(test_stdin_and_pretty),
        cmocka_unit_test(test_help),        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
