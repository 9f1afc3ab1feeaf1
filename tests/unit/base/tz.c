/*
 * Tests for src/base/tz.c: the system's zone files (daylight-saving changes in New York,
 * London and Lord Howe Island, Kolkata without any), local time in gaps and overlaps, the
 * footer's rule past the table, and TZif data that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/tz.h"

static tz_t *load(const char *name)
{
    tz_t *tz = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(tz_load(name, &tz, &err), ERR_OK);
    err_release(&err);
    return tz;
}

static void assert_local(const tz_t *tz, int64_t t, const char *expected, int32_t offset)
{
    tz_civil_t c;
    int32_t got_offset;
    tz_to_local(tz, t, &c, &got_offset);
    char text[32];
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", c.year, c.month, c.day, c.hour,
             c.minute, c.second);
    assert_string_equal(text, expected);
    assert_int_equal(got_offset, offset);
}

static int64_t from_local(const tz_t *tz, int y, int mo, int d, int h, int mi,
                          tz_local_kind_t *kind)
{
    tz_civil_t c = {y, mo, d, h, mi, 0};
    return tz_from_local(tz, &c, kind);
}

static void test_new_york_spring_forward(void **state)
{
    (void)state;
    tz_t *tz = load("America/New_York");
    /* 2026-03-08 02:00 EST: the clocks go to 03:00 EDT (07:00Z) */
    assert_local(tz, 1772953199, "2026-03-08T01:59:59", -18000);
    assert_local(tz, 1772953200, "2026-03-08T03:00:00", -14400);
    assert_false(tz_is_dst_at(tz, 1772953199));
    assert_true(tz_is_dst_at(tz, 1772953200));
    tz_local_kind_t kind;
    /* 02:30 does not exist: moved forward by the hour of the gap, to 03:30 EDT */
    assert_int_equal(from_local(tz, 2026, 3, 8, 2, 30, &kind), 1772955000);
    assert_int_equal(kind, TZ_LOCAL_GAP);
    assert_int_equal(from_local(tz, 2026, 3, 8, 3, 30, &kind), 1772955000);
    assert_int_equal(kind, TZ_LOCAL_UNIQUE);
    assert_int_equal(from_local(tz, 2026, 3, 8, 1, 59, &kind), 1772953140);
    assert_int_equal(kind, TZ_LOCAL_UNIQUE);
    tz_free(tz);
}

static void test_new_york_fall_back(void **state)
{
    (void)state;
    tz_t *tz = load("America/New_York");
    /* 2026-11-01 02:00 EDT: the clocks go back to 01:00 EST (06:00Z) */
    assert_local(tz, 1793512799, "2026-11-01T01:59:59", -14400);
    assert_local(tz, 1793512800, "2026-11-01T01:00:00", -18000);
    tz_local_kind_t kind;
    /* 01:30 happens twice: the earlier, EDT, is chosen */
    assert_int_equal(from_local(tz, 2026, 11, 1, 1, 30, &kind), 1793511000);
    assert_int_equal(kind, TZ_LOCAL_OVERLAP);
    assert_int_equal(from_local(tz, 2026, 11, 1, 2, 30, &kind), 1793518200);
    assert_int_equal(kind, TZ_LOCAL_UNIQUE);
    tz_free(tz);
}

static void test_london(void **state)
{
    (void)state;
    tz_t *tz = load("Europe/London");
    assert_local(tz, 1774745999, "2026-03-29T00:59:59", 0);
    assert_local(tz, 1774746000, "2026-03-29T02:00:00", 3600);
    assert_local(tz, 1792889999, "2026-10-25T01:59:59", 3600);
    assert_local(tz, 1792890000, "2026-10-25T01:00:00", 0);
    tz_local_kind_t kind;
    assert_int_equal(from_local(tz, 2026, 3, 29, 1, 30, &kind), 1774746000 + 1800);
    assert_int_equal(kind, TZ_LOCAL_GAP);
    tz_free(tz);
}

static void test_lord_howe_half_hour_dst(void **state)
{
    (void)state;
    tz_t *tz = load("Australia/Lord_Howe");
    /* +11 back to +10:30 at 02:00 on 2026-04-05; +10:30 to +11 at 02:00 on 2026-10-04 */
    assert_local(tz, 1775314799, "2026-04-05T01:59:59", 39600);
    assert_local(tz, 1775314800, "2026-04-05T01:30:00", 37800);
    assert_local(tz, 1791041399, "2026-10-04T01:59:59", 37800);
    assert_local(tz, 1791041400, "2026-10-04T02:30:00", 39600);
    tz_local_kind_t kind;
    assert_int_equal(from_local(tz, 2026, 10, 4, 2, 15, &kind), 1791041400 + 900);
    assert_int_equal(kind, TZ_LOCAL_GAP);
    assert_int_equal(from_local(tz, 2026, 4, 5, 1, 45, &kind), 1775314800 - 900);
    assert_int_equal(kind, TZ_LOCAL_OVERLAP);
    tz_free(tz);
}

static void test_kolkata(void **state)
{
    (void)state;
    tz_t *tz = load("Asia/Kolkata");
    assert_local(tz, 1772953200, "2026-03-08T12:30:00", 19800);
    assert_local(tz, 4118126400, "2100-07-01T17:30:00", 19800);
    assert_false(tz_is_dst_at(tz, 4118126400));
    tz_free(tz);
}

static void test_beyond_the_table(void **state)
{
    (void)state;
    tz_t *tz = load("America/New_York");
    /* 2100: the footer's rule EST5EDT,M3.2.0,M11.1.0 */
    assert_local(tz, 4102488000, "2100-01-01T07:00:00", -18000);
    assert_local(tz, 4118126400, "2100-07-01T08:00:00", -14400);
    assert_local(tz, 4108690799, "2100-03-14T01:59:59", -18000);
    assert_local(tz, 4108690800, "2100-03-14T03:00:00", -14400);
    assert_local(tz, 4129250399, "2100-11-07T01:59:59", -14400);
    assert_local(tz, 4129250400, "2100-11-07T01:00:00", -18000);
    tz_local_kind_t kind;
    assert_int_equal(from_local(tz, 2100, 11, 7, 1, 0, &kind), 4129250400 - 3600);
    assert_int_equal(kind, TZ_LOCAL_OVERLAP);
    tz_free(tz);
}

/* A version 2 file of one type (EST) and no transitions: only the footer says anything. */
static size_t footer_only(unsigned char *out, const char *footer)
{
    size_t n = 0;
    for (int block = 0; block < 2; block++) {
        unsigned char header[44] = {'T', 'Z', 'i', 'f', '2'};
        header[39] = 1; /* typecnt */
        header[43] = 4; /* charcnt */
        memcpy(out + n, header, 44);
        n += 44;
        const unsigned char type[6] = {0xff, 0xff, 0xb9, 0xb0, 0, 0}; /* -18000 */
        memcpy(out + n, type, 6);
        n += 6;
        memcpy(out + n, "EST", 4);
        n += 4;
    }
    out[n++] = '\n';
    memcpy(out + n, footer, strlen(footer));
    n += strlen(footer);
    out[n++] = '\n';
    return n;
}

static void test_footer_rule(void **state)
{
    (void)state;
    unsigned char data[256];
    size_t len = footer_only(data, "EST5EDT,M3.2.0,M11.1.0");
    tz_t *tz = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(tz_parse("test", data, len, &tz, &err), ERR_OK);
    assert_string_equal(tz_name(tz), "test");
    assert_local(tz, 1772953199, "2026-03-08T01:59:59", -18000);
    assert_local(tz, 1772953200, "2026-03-08T03:00:00", -14400);
    assert_local(tz, 1793512800, "2026-11-01T01:00:00", -18000);
    tz_free(tz);
    /* southern hemisphere, half an hour, explicit times and offsets */
    len = footer_only(data, "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    assert_int_equal(tz_parse("test", data, len, &tz, &err), ERR_OK);
    assert_local(tz, 1775314800, "2026-04-05T01:30:00", 37800);
    assert_local(tz, 1791041400, "2026-10-04T02:30:00", 39600);
    assert_local(tz, 1767225600, "2026-01-01T11:00:00", 39600);
    tz_free(tz);
    /* Julian days and a time past midnight */
    len = footer_only(data, "XXX3YYY,J60/1:30,J300/25");
    assert_int_equal(tz_parse("test", data, len, &tz, &err), ERR_OK);
    /* 2026-03-01 (J60) 01:30 at -3: 04:30Z */
    assert_local(tz, 1772339400 - 1, "2026-03-01T01:29:59", -10800);
    assert_local(tz, 1772339400, "2026-03-01T02:30:00", -7200);
    tz_free(tz);
    err_release(&err);
}

static void refused(const unsigned char *data, size_t len, const char *message_part)
{
    tz_t *tz = (tz_t *)1;
    err_t err = ERR_INIT;
    assert_int_equal(tz_parse("bad", data, len, &tz, &err), ERR_VALUE);
    assert_null(tz);
    if (!strstr(err_message(&err), message_part))
        fail_msg("\"%s\" does not say \"%s\"", err_message(&err), message_part);
    err_release(&err);
}

static void test_bad_data(void **state)
{
    (void)state;
    unsigned char data[256];
    size_t len = footer_only(data, "EST5EDT,M3.2.0,M11.1.0");
    refused(data, 10, "header");
    unsigned char copy[256];
    memcpy(copy, data, len);
    copy[0] = 'X';
    refused(copy, len, "TZif header");
    refused(data, 50, "second header");
    refused(data, len - 1, "footer");
    size_t bad_len = footer_only(copy, "EST5EDT,M13.2.0,M11.1.0");
    refused(copy, bad_len, "EST5EDT,M13.2.0,M11.1.0");
    bad_len = footer_only(copy, "EST5EDT");
    refused(copy, bad_len, "cannot be read");
    /* a type index out of range */
    memcpy(copy, data, len);
    copy[54 + 39] = 0;
    refused(copy, len, "local time types");
    /* two transitions out of order (a version 1 file) */
    unsigned char v1[64] = {'T', 'Z', 'i', 'f', 0};
    v1[35] = 2; /* timecnt */
    v1[39] = 1;
    const unsigned char body[] = {0, 0, 0, 10, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(v1 + 44, body, sizeof(body));
    refused(v1, 44 + sizeof(body), "increasing");
}

static void test_load_names(void **state)
{
    (void)state;
    tz_t *tz = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(tz_load("../etc/passwd", &tz, &err), ERR_INVALID);
    assert_null(tz);
    err_reset(&err);
    assert_int_equal(tz_load("/etc/localtime", &tz, &err), ERR_INVALID);
    err_reset(&err);
    assert_int_equal(tz_load("Mars/Olympus_Mons", &tz, &err), ERR_INVALID);
    assert_string_equal(err_message(&err), "unknown time zone \"Mars/Olympus_Mons\"");
    err_reset(&err);
    assert_int_equal(tz_load("America", &tz, &err), ERR_INVALID); /* a directory */
    err_release(&err);
    tz = load("UTC");
    assert_local(tz, 0, "1970-01-01T00:00:00", 0);
    tz_free(tz);
    tz = tz_new_utc();
    assert_local(tz, -1, "1969-12-31T23:59:59", 0);
    tz_civil_t c = {2026, 2, 29, 24, 0, 0}; /* normalized: 2026-03-02T00:00 */
    assert_int_equal(tz_from_local(tz, &c, NULL), 1772409600);
    tz_free(tz);
}

static void test_civil_days(void **state)
{
    (void)state;
    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(tz_weekday(tz_days_from_civil(2026, 3, 6)), 5); /* a Friday */
    for (int64_t d = -800000; d < 800000; d += 997) {
        int y, m, day;
        tz_civil_from_days(d, &y, &m, &day);
        assert_true(tz_valid_date(y, m, day));
        assert_int_equal(tz_days_from_civil(y, m, day), d);
    }
    assert_true(tz_valid_date(2000, 2, 29));
    assert_false(tz_valid_date(2100, 2, 29));
    assert_false(tz_valid_date(2026, 4, 31));
}

/* Found by fuzzing (tests/fuzz/tzif.c): two transitions a few months apart, an offset of
 * -18:09 and a footer rule of its own; local time from each instant must lead back to it. */
static void test_fuzz_far_offsets(void **state)
{
    (void)state;
    static const unsigned char data[] = {
        84,  90,  105, 102, 50,  0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
        0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   2,
        0,   0,   0,   2,   0,   0,   0,   8,   105, 173, 30,  112, 106, 230, 213, 96,  1,   0,
        255, 255, 185, 176, 0,   0,   255, 255, 199, 192, 1,   4,   69,  83,  84,  0,   69,  68,
        84,  0,   84,  90,  105, 102, 50,  0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
        0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
        0,   2,   0,   0,   0,   2,   0,   0,   0,   8,   0,   0,   0,   0,   105, 173, 30,  112,
        0,   0,   0,   0,   106, 230, 213, 96,  1,   0,   255, 255, 185, 176, 0,   0,   255, 255,
        0,   192, 1,   4,   69,  83,  84,  0,   69,  68,  84,  0,   10,  69,  83,  84,  54,  69,
        68,  84,  44,  77,  56,  46,  51,  46,  53,  44,  77,  49,  49,  46,  49,  46,  48,  10};
    tz_t *tz = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(tz_parse("fuzz", data, sizeof(data), &tz, &err), ERR_OK);
    static const int64_t instants[] = {0, 1772953200, 1793512800, 2147483647, 4118126400};
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
        tz_civil_t c;
        tz_to_local(tz, instants[i], &c, NULL);
        tz_local_kind_t kind;
        int64_t back = tz_from_local(tz, &c, &kind);
        if (kind == TZ_LOCAL_UNIQUE)
            assert_int_equal(back, instants[i]);
        else
            assert_true(kind == TZ_LOCAL_OVERLAP && back <= instants[i]);
    }
    tz_free(tz);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_york_spring_forward),
        cmocka_unit_test(test_new_york_fall_back),
        cmocka_unit_test(test_london),
        cmocka_unit_test(test_lord_howe_half_hour_dst),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_beyond_the_table),
        cmocka_unit_test(test_footer_rule),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_load_names),
        cmocka_unit_test(test_civil_days),
        cmocka_unit_test(test_fuzz_far_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
