/*
 * Tests for src/base/calendar.c: business days in New York with the US federal holidays
 * (weekends, Thanksgiving, Christmas and New Year, a Saturday holiday observed on Friday),
 * calendar days and hours across daylight-saving changes, durations, and holiday files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/calendar.h"

#define S 1000000LL

static calendar_t *cal;

static int setup(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("America/New_York", "Mon-Fri", "us-federal", &cal, &err), ERR_OK);
    err_release(&err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    calendar_free(cal);
    return 0;
}

/* The instant of a local New York time. */
static int64_t ny(int y, int mo, int d, int h, int mi)
{
    tz_civil_t c = {y, mo, d, h, mi, 0};
    return tz_from_local(calendar_zone(cal), &c, NULL) * S;
}

/* Local text of an instant, with the microseconds when there are any. */
static void assert_at(int64_t us, const char *expected)
{
    tz_civil_t c;
    int32_t offset;
    int64_t seconds = us >= 0 ? us / S : -((-us + S - 1) / S);
    tz_to_local(calendar_zone(cal), seconds, &c, &offset);
    char text[64];
    int n = snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", c.year, c.month, c.day,
                     c.hour, c.minute, c.second);
    if (us - seconds * S)
        n += snprintf(text + n, sizeof(text) - (size_t)n, ".%06lld", (long long)(us - seconds * S));
    snprintf(text + n, sizeof(text) - (size_t)n, "%+03d:%02d", offset / 3600,
             (offset < 0 ? -offset : offset) / 60 % 60);
    assert_string_equal(text, expected);
}

static int64_t add(int64_t from, const char *spec)
{
    calendar_duration_t d;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_duration_parse(spec, strlen(spec), &d, &err), ERR_OK);
    err_release(&err);
    return calendar_add(cal, from, &d);
}

static void test_business_days_from_friday(void **state)
{
    (void)state;
    /* Friday 10:00 + 2 business days: the end of Tuesday (and the clocks sprang forward on
     * the Sunday between) */
    assert_at(add(ny(2026, 3, 6, 10, 0), "2 business days"), "2026-03-10T23:59:59.999999-04:00");
    /* an event on Saturday or Sunday counts Monday as the first */
    assert_at(add(ny(2026, 3, 7, 23, 0), "1 business day"), "2026-03-09T23:59:59.999999-04:00");
    assert_at(add(ny(2026, 3, 8, 12, 0), "2 business days"), "2026-03-10T23:59:59.999999-04:00");
    /* a Monday event + 0: the end of that Monday; a Sunday + 0: the end of Monday */
    assert_at(add(ny(2026, 3, 9, 8, 0), "0 business days"), "2026-03-09T23:59:59.999999-04:00");
    assert_at(add(ny(2026, 3, 8, 8, 0), "0 business days"), "2026-03-09T23:59:59.999999-04:00");
    /* late on Friday evening is still Friday in New York (Saturday in UTC) */
    assert_at(add(ny(2026, 3, 6, 22, 30), "1 business day"), "2026-03-09T23:59:59.999999-04:00");
}

static void test_business_days_around_holidays(void **state)
{
    (void)state;
    /* Wednesday before Thanksgiving (Thursday 26th): Friday, then Monday */
    assert_at(add(ny(2026, 11, 25, 9, 0), "2 business days"), "2026-11-30T23:59:59.999999-05:00");
    assert_string_equal(calendar_holiday(cal, 2026, 11, 26), "Thanksgiving Day");
    /* Christmas on Friday and New Year's Day on Friday */
    assert_at(add(ny(2026, 12, 24, 9, 0), "2 business days"), "2026-12-29T23:59:59.999999-05:00");
    assert_at(add(ny(2026, 12, 30, 16, 0), "2 business days"), "2027-01-04T23:59:59.999999-05:00");
    /* 2026-07-04 is a Saturday: observed on Friday the 3rd */
    assert_string_equal(calendar_holiday(cal, 2026, 7, 3), "Independence Day (observed)");
    assert_null(calendar_holiday(cal, 2026, 7, 4));
    assert_false(calendar_is_business_day(cal, 2026, 7, 3));
    assert_true(calendar_is_business_day(cal, 2026, 7, 2));
    assert_at(add(ny(2026, 7, 2, 9, 0), "1 business day"), "2026-07-06T23:59:59.999999-04:00");
    /* 2022-01-01 was a Saturday: observed on Friday 2021-12-31 */
    assert_false(calendar_is_business_day(cal, 2021, 12, 31));
    int first, last;
    calendar_holiday_years(cal, &first, &last);
    assert_int_equal(first, 2020);
    assert_int_equal(last, 2040);
}

static void test_calendar_days_keep_wall_time(void **state)
{
    (void)state;
    /* across spring forward: the same 09:00, one hour less elapsed */
    int64_t from = ny(2026, 3, 5, 9, 0) + 250000;
    int64_t to = add(from, "7 calendar days");
    assert_at(to, "2026-03-12T09:00:00.250000-04:00");
    assert_int_equal(to - from, (7 * 24 - 1) * 3600 * S);
    assert_int_equal(add(from, "P7D"), to);
    assert_int_equal(add(from, "P1W"), to);
    /* across fall back: one hour more */
    from = ny(2026, 10, 30, 9, 0);
    assert_at(add(from, "3 days"), "2026-11-02T09:00:00-05:00");
    assert_int_equal(add(from, "3 days") - from, (3 * 24 + 1) * 3600 * S);
    /* onto a time that does not exist: moved forward by the gap */
    assert_at(add(ny(2026, 3, 7, 2, 30), "1 day"), "2026-03-08T03:30:00-04:00");
    /* onto a time that exists twice: the earlier */
    assert_at(add(ny(2026, 10, 31, 1, 30), "1 day"), "2026-11-01T01:30:00-04:00");
}

static void test_hours_are_elapsed_time(void **state)
{
    (void)state;
    int64_t from = ny(2026, 3, 8, 0, 30);
    assert_at(from, "2026-03-08T00:30:00-05:00");
    int64_t to = add(from, "4 hours");
    assert_int_equal(to - from, 4 * 3600 * S);
    assert_at(to, "2026-03-08T05:30:00-04:00");
    assert_int_equal(add(from, "PT4H"), to);
    assert_int_equal(add(from, "PT90M") - from, 90 * 60 * S);
    assert_int_equal(add(from, "90 minutes") - from, 90 * 60 * S);
}

static void bad_duration(const char *spec)
{
    calendar_duration_t d;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_duration_parse(spec, strlen(spec), &d, &err), ERR_VALUE);
    if (!strstr(err_message(&err), spec))
        fail_msg("\"%s\" does not quote \"%s\"", err_message(&err), spec);
    err_release(&err);
}

static void test_durations(void **state)
{
    (void)state;
    calendar_duration_t d;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_duration_parse("2 Business Days", 15, &d, &err), ERR_OK);
    assert_int_equal(d.unit, CALENDAR_BUSINESS_DAYS);
    assert_int_equal(d.amount, 2);
    assert_int_equal(calendar_duration_parse("PT4H", 4, &d, &err), ERR_OK);
    assert_int_equal(d.unit, CALENDAR_HOURS);
    assert_int_equal(calendar_duration_parse("14 calendar days", 16, &d, &err), ERR_OK);
    assert_int_equal(d.unit, CALENDAR_DAYS);
    assert_int_equal(d.amount, 14);
    err_release(&err);
    bad_duration("");
    bad_duration("2");
    bad_duration("two days");
    bad_duration("-1 days");
    bad_duration("2 fortnights");
    bad_duration("2business days");
    bad_duration("P2DT4H");
    bad_duration("PT2D");
    bad_duration("P2H");
    bad_duration("P");
    bad_duration("3661 days");
    bad_duration("99999999999999999999 hours");
}

static void test_working_days(void **state)
{
    (void)state;
    unsigned days;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_parse_working_days("Mon-Fri", &days, &err), ERR_OK);
    assert_int_equal(days, CALENDAR_MON_FRI);
    assert_int_equal(calendar_parse_working_days("sun-thu", &days, &err), ERR_OK);
    assert_int_equal(days, 0x1f);
    assert_int_equal(calendar_parse_working_days("Fri-Mon", &days, &err), ERR_OK);
    assert_int_equal(days, 0x63);
    assert_int_equal(calendar_parse_working_days("Mon, Wed,Fri", &days, &err), ERR_OK);
    assert_int_equal(days, 0x2a);
    assert_int_equal(calendar_parse_working_days("Mon-Funday", &days, &err), ERR_INVALID);
    assert_string_equal(err_message(&err),
                        "working days \"Mon-Funday\": \"Mon-Funday\" is not a day (Mon, Tue, "
                        "Wed, Thu, Fri, Sat, Sun) or a range of days (Mon-Fri)");
    err_reset(&err);
    assert_int_equal(calendar_parse_working_days("", &days, &err), ERR_INVALID);
    err_release(&err);
    assert_string_equal(calendar_describe(cal),
                        "America/New_York, Mon-Fri, holidays us-federal (2020-2040)");
}

static char *write_file(const char *text)
{
    static char path[] = "/tmp/concerto-holidays-XXXXXX";
    memcpy(path, "/tmp/concerto-holidays-XXXXXX", sizeof(path));
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_holiday_files(void **state)
{
    (void)state;
    char *path = write_file("# the organisation's days off\n\n2026-03-09\tStaff day\n"
                            "2026-03-10 Another day\r\n");
    calendar_t *other = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("Europe/London", "Sun-Thu", path, &other, &err), ERR_OK);
    unlink(path);
    assert_string_equal(calendar_holiday(other, 2026, 3, 10), "Another day");
    /* Sunday the 8th is a working day; Friday and Saturday are not */
    assert_true(calendar_is_business_day(other, 2026, 3, 8));
    assert_false(calendar_is_business_day(other, 2026, 3, 6));
    /* Thursday 5th + 2: Sunday 8th, then (9th, 10th holidays) Wednesday 11th */
    tz_civil_t c = {2026, 3, 5, 12, 0, 0};
    int64_t from = tz_from_local(calendar_zone(other), &c, NULL) * S;
    int64_t due = calendar_add_business_days(other, from, 2);
    tz_to_local(calendar_zone(other), due / S, &c, NULL);
    assert_int_equal(c.day, 11);
    assert_int_equal(c.hour * 3600 + c.minute * 60 + c.second, 86399);
    calendar_free(other);

    path = write_file("2026-02-30\tNo such day\n");
    assert_int_equal(calendar_new("UTC", "Mon-Fri", path, &other, &err), ERR_INVALID);
    unlink(path);
    assert_null(other);
    assert_string_equal(strstr(err_message(&err), "line 1"),
                        "line 1: \"2026-02-30\" is not a date (YYYY-MM-DD)");
    err_reset(&err);
    path = write_file("2026-02-03\n");
    assert_int_equal(calendar_new("UTC", "Mon-Fri", path, &other, &err), ERR_INVALID);
    unlink(path);
    assert_non_null(strstr(err_message(&err), "needs a name"));
    err_reset(&err);
    assert_int_equal(calendar_new("UTC", "Mon-Fri", "/nonexistent/holidays.tsv", &other, &err),
                     ERR_INVALID);
    err_reset(&err);
    assert_int_equal(calendar_new("Nowhere/Town", "Mon-Fri", "none", &other, &err), ERR_INVALID);
    err_release(&err);
}

static void test_default(void **state)
{
    (void)state;
    const calendar_t *d = calendar_default();
    assert_string_equal(tz_name(calendar_zone(d)), "America/New_York");
    assert_ptr_equal(calendar_default(), d);
    calendar_t *other = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(calendar_new("UTC", "Mon-Sat", "none", &other, &err), ERR_OK);
    calendar_set_default(other);
    assert_ptr_equal(calendar_default(), other);
    assert_true(calendar_is_business_day(calendar_default(), 2026, 3, 7));
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_business_days_from_friday),
        cmocka_unit_test(test_business_days_around_holidays),
        cmocka_unit_test(test_calendar_days_keep_wall_time),
        cmocka_unit_test(test_hours_are_elapsed_time),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_working_days),
        cmocka_unit_test(test_holiday_files),
        cmocka_unit_test(test_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
