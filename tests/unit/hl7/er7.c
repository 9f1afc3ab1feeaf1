/*
 * Tests for src/hl7/er7.c: the golden ADT messages of tests/data/hl7 (v2.3, 2.5.1, 2.8, declared
 * delimiters), escapes, repetitions, components and sub-components, explicit nulls, line
 * endings, each parse error with its exact message and position, and the writer's round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "hl7/er7.h"

#define DATA_DIR "tests/data/hl7/"

/* The file's bytes in arena (not NUL-terminated as far as the parser knows). */
static const char *load(arena_t *arena, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), DATA_DIR "%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    buf_t b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    char *s = arena_alloc(arena, b.len ? b.len : 1);
    memcpy(s, b.ptr, b.len);
    *len = b.len;
    buf_release(&b);
    return s;
}

static void parse_ok(arena_t *arena, const char *text, size_t len, hl7_message_t *m)
{
    err_t err = ERR_INIT;
    hl7_where_t where;
    status_t rc = hl7_parse(text, len, arena, m, &where, &err);
    if (rc)
        fail_msg("unexpected error: %s", err_message(&err));
    assert_int_equal(where.sequence, 0);
    err_release(&err);
}

static void parse_file(arena_t *arena, const char *name, hl7_message_t *m)
{
    size_t len;
    const char *text = load(arena, name, &len);
    parse_ok(arena, text, len, m);
}

/* Shorthand: a decoded value of the nth segment with id. */
static const char *get(const hl7_message_t *m, arena_t *arena, const char *id, size_t field,
                       size_t rep, size_t comp, size_t sub)
{
    const hl7_segment_t *seg = hl7_segment(m, id, 0);
    assert_non_null(seg);
    return hl7_get(m, arena, seg, field, rep, comp, sub);
}

static void test_golden_messages(void **state)
{
    (void)state;
    static const struct {
        const char *file, *event, *version;
        size_t nsegments;
    } cases[] = {
        {"adt_a01_v23.hl7", "A01", "2.3", 6},
        {"adt_a01_v251.hl7", "A01", "2.5.1", 7},
        {"adt_a01_v28_truncation.hl7", "A01", "2.8", 4},
        {"adt_a01_custom_delims.hl7", "A01", "2.5.1", 5},
        {"adt_a03_v251.hl7", "A03", "2.5.1", 8},
        {"adt_a04_v28.hl7", "A04", "2.8", 6},
        {"adt_a08_v251.hl7", "A08", "2.5.1", 4},
        {"adt_a11_v251.hl7", "A11", "2.5.1", 4},
        {"adt_a13_v251.hl7", "A13", "2.5.1", 4},
        {"adt_a28_v28.hl7", "A28", "2.8", 5},
        {"adt_a40_v251.hl7", "A40", "2.5.1", 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arena_t arena;
        arena_init(&arena);
        hl7_message_t m;
        parse_file(&arena, cases[i].file, &m);
        assert_int_equal(m.nsegments, cases[i].nsegments);
        assert_string_equal(m.segments[0].id, "MSH");
        assert_string_equal(get(&m, &arena, "MSH", 9, 0, 1, 0), "ADT");
        assert_string_equal(get(&m, &arena, "MSH", 9, 0, 2, 0), cases[i].event);
        const char *version = hl7_version(&m, &arena);
        assert_string_equal(version, cases[i].version);
        assert_true(hl7_version_supported(version));
        assert_int_equal(hl7_segment_count(&m, "PID"), 1);
        for (size_t k = 0; k < m.nsegments; k++)
            assert_int_equal(m.segments[k].number, k + 1);
        arena_release(&arena);
    }
}

static void test_a01_fields(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    parse_file(&arena, "adt_a01_v251.hl7", &m);
    assert_int_equal(m.delims.field, '|');
    assert_int_equal(m.delims.component, '^');
    assert_int_equal(m.delims.repetition, '~');
    assert_int_equal(m.delims.escape, '\\');
    assert_int_equal(m.delims.subcomponent, '&');

    const hl7_segment_t *msh = hl7_segment(&m, "MSH", 0);
    assert_int_equal(msh->offset, 0);
    assert_string_equal(hl7_get(&m, &arena, msh, 1, 0, 0, 0), "|");
    assert_string_equal(hl7_get(&m, &arena, msh, 2, 0, 0, 0), "^~\\&");
    /* MSH-2 holds the delimiters themselves: returned whole, never split or decoded */
    hl7_span_t enc = hl7_raw(&m, msh, 2, 0, 2, 1);
    assert_int_equal(enc.len, 4);
    assert_memory_equal(enc.s, "^~\\&", 4);
    assert_int_equal(hl7_repetitions(&m, msh, 2), 1);
    assert_string_equal(hl7_get(&m, &arena, msh, 3, 0, 0, 0), "ADT1");
    assert_string_equal(hl7_get(&m, &arena, msh, 10, 0, 0, 0), "MSG251-0001");
    assert_string_equal(hl7_get(&m, &arena, msh, 15, 0, 0, 0), "AL");
    assert_int_equal(msh->nfields, 17);

    const hl7_segment_t *evn = hl7_segment(&m, "EVN", 0);
    assert_int_equal(evn->number, 2);
    assert_memory_equal(m.text + evn->offset, "EVN|", 4);
    assert_int_equal(m.text[evn->offset - 1], '\r');

    const hl7_segment_t *pid = hl7_segment(&m, "PID", 0);
    assert_int_equal(hl7_repetitions(&m, pid, 3), 2);
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 0, 1, 0), "123456");
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 0, 4, 0), "GOODHEALTH");
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 0, 5, 0), "MR");
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 1, 1, 0), "987-65-4320");
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 1, 5, 0), "SS");
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 2, 1, 0), "");
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 0, 1, 0), "Chalmers");
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 0, 2, 0), "Peter");
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 0, 3, 0), "James");
    assert_string_equal(hl7_get(&m, &arena, pid, 7, 0, 0, 0), "19741225");
    assert_string_equal(hl7_get(&m, &arena, pid, 8, 0, 0, 0), "M");
    assert_string_equal(hl7_get(&m, &arena, pid, 11, 0, 3, 0), "Pleasantville");
    assert_string_equal(hl7_get(&m, &arena, pid, 13, 0, 7, 0), "5550123");
    assert_string_equal(hl7_get(&m, &arena, pid, 99, 0, 0, 0), "");
    assert_int_equal(hl7_repetitions(&m, pid, 99), 0);
    assert_int_equal(hl7_repetitions(&m, pid, 2), 0);

    const hl7_segment_t *pv1 = hl7_segment(&m, "PV1", 0);
    assert_string_equal(hl7_get(&m, &arena, pv1, 2, 0, 0, 0), "I");
    assert_string_equal(hl7_get(&m, &arena, pv1, 3, 0, 1, 0), "4WEST");
    assert_string_equal(hl7_get(&m, &arena, pv1, 3, 0, 9, 0), "4 West Medical");
    assert_string_equal(hl7_get(&m, &arena, pv1, 4, 0, 0, 0), "E");
    assert_string_equal(hl7_get(&m, &arena, pv1, 19, 0, 1, 0), "V1001");
    assert_string_equal(hl7_get(&m, &arena, pv1, 44, 0, 0, 0), "20260305141500-0500");
    assert_string_equal(hl7_get(&m, &arena, pv1, 45, 0, 0, 0), "");
    assert_int_equal(pv1->nfields, 45);

    assert_int_equal(hl7_segment_count(&m, "DG1"), 2);
    assert_string_equal(hl7_get(&m, &arena, hl7_segment(&m, "DG1", 1), 3, 0, 1, 0), "E11.9");
    assert_string_equal(hl7_get(&m, &arena, hl7_segment(&m, "DG1", 0), 3, 0, 2, 0),
                        "Heart failure, unspecified");
    assert_null(hl7_segment(&m, "DG1", 2));
    /* Z segments are kept like any other */
    const hl7_segment_t *zpv = hl7_segment(&m, "ZPV", 0);
    assert_non_null(zpv);
    assert_int_equal(zpv->number, 7);
    assert_string_equal(hl7_get(&m, &arena, zpv, 3, 0, 0, 0), "Cardiology follow-up requested");
    arena_release(&arena);
}

static void test_v23_and_discharge(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    parse_file(&arena, "adt_a01_v23.hl7", &m);
    assert_string_equal(get(&m, &arena, "MSH", 9, 0, 0, 0), "ADT^A01");
    assert_string_equal(get(&m, &arena, "MSH", 9, 0, 3, 0), "");
    assert_string_equal(get(&m, &arena, "EVN", 1, 0, 0, 0), "A01");
    assert_string_equal(get(&m, &arena, "NK1", 3, 0, 2, 0), "Spouse");
    assert_string_equal(get(&m, &arena, "PV1", 19, 0, 0, 0), "V1001");
    assert_string_equal(get(&m, &arena, "DG1", 3, 0, 1, 0), "I50.9");

    parse_file(&arena, "adt_a03_v251.hl7", &m);
    assert_string_equal(get(&m, &arena, "PV1", 36, 0, 1, 0), "01");
    assert_string_equal(get(&m, &arena, "PV1", 45, 0, 0, 0), "20260309100000-0500");
    assert_int_equal(hl7_segment_count(&m, "DG1"), 3);
    assert_string_equal(get(&m, &arena, "ZDS", 1, 0, 0, 0),
                        "Follow up with PCP within 7 days\nWeigh daily");

    parse_file(&arena, "adt_a40_v251.hl7", &m);
    assert_string_equal(get(&m, &arena, "MRG", 1, 0, 1, 0), "654321");
    assert_string_equal(get(&m, &arena, "PID", 3, 0, 1, 0), "123456");

    parse_file(&arena, "adt_a28_v28.hl7", &m);
    assert_string_equal(get(&m, &arena, "PID", 5, 0, 1, 0), "O'Neil");
    assert_int_equal(hl7_repetitions(&m, hl7_segment(&m, "PID", 0), 13), 2);
    assert_string_equal(get(&m, &arena, "PID", 13, 1, 4, 0), "mary@example.org");
    assert_string_equal(get(&m, &arena, "ZPI", 1, 0, 0, 0), "Prefers morning calls");
    arena_release(&arena);
}

static void test_explicit_null(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    parse_file(&arena, "adt_a08_v251.hl7", &m);
    const hl7_segment_t *pid = hl7_segment(&m, "PID", 0);
    assert_true(hl7_is_null(&m, pid, 13, 0, 0, 0));
    assert_true(hl7_is_null(&m, pid, 13, 0, 1, 0));
    assert_false(hl7_is_null(&m, pid, 11, 0, 0, 0));
    assert_false(hl7_is_null(&m, pid, 12, 0, 0, 0)); /* empty is "not sent", not null */
    assert_false(hl7_is_null(&m, pid, 40, 0, 0, 0));
    assert_int_equal(hl7_repetitions(&m, pid, 5), 2);
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 1, 2, 0), "Pete");
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 1, 7, 0), "N");

    parse_file(&arena, "adt_a13_v251.hl7", &m);
    assert_true(hl7_is_null(&m, hl7_segment(&m, "PV1", 0), 45, 0, 0, 0));

    static const char text[] = "MSH|^~\\&|A\rZZZ|\"\"^x^\"\"&y|\"\"\"|a~\"\"\r";
    parse_ok(&arena, text, sizeof(text) - 1, &m);
    const hl7_segment_t *z = hl7_segment(&m, "ZZZ", 0);
    assert_false(hl7_is_null(&m, z, 1, 0, 0, 0));
    assert_true(hl7_is_null(&m, z, 1, 0, 1, 0));
    assert_false(hl7_is_null(&m, z, 1, 0, 3, 0));
    assert_true(hl7_is_null(&m, z, 1, 0, 3, 1));
    assert_false(hl7_is_null(&m, z, 2, 0, 0, 0));
    assert_false(hl7_is_null(&m, z, 3, 0, 0, 0));
    assert_true(hl7_is_null(&m, z, 3, 1, 0, 0));
    arena_release(&arena);
}

static void test_declared_delimiters(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    parse_file(&arena, "adt_a01_v28_truncation.hl7", &m);
    assert_string_equal(get(&m, &arena, "MSH", 2, 0, 0, 0), "^~\\&#");
    assert_int_equal(m.delims.subcomponent, '&');
    assert_string_equal(get(&m, &arena, "PID", 5, 0, 1, 0), "Okafor");
    assert_string_equal(get(&m, &arena, "PV1", 19, 0, 1, 0), "V3001");
    assert_string_equal(get(&m, &arena, "PV1", 44, 0, 0, 0), "20260311084500-0500");

    parse_file(&arena, "adt_a01_custom_delims.hl7", &m);
    assert_int_equal(m.delims.field, '#');
    assert_int_equal(m.delims.component, '$');
    assert_int_equal(m.delims.repetition, '*');
    assert_int_equal(m.delims.escape, '!');
    assert_int_equal(m.delims.subcomponent, '@');
    assert_string_equal(get(&m, &arena, "MSH", 1, 0, 0, 0), "#");
    assert_string_equal(get(&m, &arena, "MSH", 2, 0, 0, 0), "$*!@");
    assert_string_equal(get(&m, &arena, "MSH", 9, 0, 2, 0), "A01");
    assert_string_equal(get(&m, &arena, "MSH", 10, 0, 0, 0), "MSGX-0001");
    const hl7_segment_t *pid = hl7_segment(&m, "PID", 0);
    assert_int_equal(hl7_repetitions(&m, pid, 3), 2);
    assert_string_equal(hl7_get(&m, &arena, pid, 3, 1, 1, 0), "555-12-3456");
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 0, 1, 0), "Smith@Sons");
    hl7_span_t family = hl7_raw(&m, pid, 5, 0, 1, 1); /* one sub-component: the @ is escaped */
    assert_int_equal(family.len, 12);
    assert_memory_equal(family.s, "Smith!T!Sons", 12);
    assert_string_equal(hl7_get(&m, &arena, pid, 5, 0, 2, 0), "Anna");
    assert_string_equal(get(&m, &arena, "PV1", 19, 0, 1, 0), "V4001");
    assert_string_equal(get(&m, &arena, "PV1", 44, 0, 0, 0), "20260312091500-0500");
    /* the default delimiters are plain data here */
    assert_string_equal(get(&m, &arena, "ZPV", 1, 0, 0, 0), "a|b^c~d&e\\f");
    assert_int_equal(hl7_repetitions(&m, hl7_segment(&m, "ZPV", 0), 1), 1);
    arena_release(&arena);
}

static void test_components(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    static const char text[] = "MSH|^~\\&|A\rZAB|a&b^c~d^e&f&g~~^x||y\r";
    parse_ok(&arena, text, sizeof(text) - 1, &m);
    const hl7_segment_t *z = hl7_segment(&m, "ZAB", 0);
    assert_int_equal(z->nfields, 4);
    assert_int_equal(hl7_repetitions(&m, z, 1), 4);
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 0, 0), "a&b^c");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 1, 0), "a&b");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 1, 1), "a");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 1, 2), "b");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 1, 3), "");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 2, 0), "c");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 2, 1), "c");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 3, 0), "");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 1, 2, 3), "g");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 2, 0, 0), "");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 3, 2, 0), "x");
    assert_string_equal(hl7_get(&m, &arena, z, 1, 4, 0, 0), "");
    assert_string_equal(hl7_get(&m, &arena, z, 2, 0, 0, 0), "");
    assert_int_equal(hl7_repetitions(&m, z, 2), 0);
    assert_string_equal(hl7_get(&m, &arena, z, 3, 0, 1, 1), "y");
    hl7_span_t raw = hl7_raw(&m, z, 1, 1, 2, 0);
    assert_int_equal(raw.len, 5);
    assert_memory_equal(raw.s, "e&f&g", 5);
    assert_ptr_equal(raw.s, strstr(text, "e&f&g"));
    arena_release(&arena);
}

static void test_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\\F\\b", "a|b"},
        {"\\S\\\\T\\\\R\\\\E\\", "^&~\\"},
        {"x\\X0D0A\\y", "x\r\ny"},
        {"\\X41\\\\x42\\", "A\\x42\\"}, /* lower-case x is not the hex escape */
        {"\\X4a4B\\", "JK"},
        {"line\\.br\\next", "line\nnext"},
        {"\\H\\bold\\N\\", "bold"},
        {"a\\.sp2\\b\\.in+4\\c\\.ti-2\\d\\.sk1\\e\\.fi\\\\.nf\\\\.ce\\f", "abcdef"},
        {"\\C2842\\abc\\M2442\\", "abc"},
        {"\\Q\\", "\\Q\\"},           /* unknown: kept */
        {"\\P\\", "\\P\\"},           /* truncation: kept */
        {"\\Zlocal\\", "\\Zlocal\\"}, /* locally defined: kept */
        {"\\X4\\", "\\X4\\"},         /* odd number of hex digits */
        {"\\XZZ\\", "\\XZZ\\"},       /* not hex */
        {"\\X\\", "\\X\\"},           /* no digits */
        {"tail\\F", "tail\\F"},       /* unterminated */
        {"\\", "\\"},                 /* a lone escape character */
        {"\\\\F\\", "\\\\F\\"},       /* empty escape, then an unterminated one */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t b = BUF_INIT;
        buf_addstr(&b, ">");
        hl7_decode(&HL7_DELIMS_DEFAULT, cases[i].in, strlen(cases[i].in), &b);
        char want[64];
        snprintf(want, sizeof(want), ">%s", cases[i].out);
        if (strcmp(b.ptr, want) != 0)
            fail_msg("decoding \"%s\": got \"%s\", want \"%s\"", cases[i].in, b.ptr + 1,
                     cases[i].out);
        buf_release(&b);
    }
    /* \X00\ is data: the decoded bytes keep it */
    buf_t b = BUF_INIT;
    hl7_decode(&HL7_DELIMS_DEFAULT, "a\\X00\\b", 7, &b);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "a\0b", 3);
    buf_release(&b);

    /* through a message: escapes are resolved per component, after splitting */
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    static const char text[] = "MSH|^~\\&|A\rNTE|1||O\\T\\Brien\\S\\Jr^\\F\\x\\R\\\r";
    parse_ok(&arena, text, sizeof(text) - 1, &m);
    const hl7_segment_t *nte = hl7_segment(&m, "NTE", 0);
    assert_int_equal(hl7_repetitions(&m, nte, 3), 1);
    assert_string_equal(hl7_get(&m, &arena, nte, 3, 0, 1, 0), "O&Brien^Jr");
    assert_string_equal(hl7_get(&m, &arena, nte, 3, 0, 1, 1), "O&Brien^Jr");
    assert_string_equal(hl7_get(&m, &arena, nte, 3, 0, 2, 0), "|x~");
    arena_release(&arena);
}

/* The same message with each kind of segment ending parses to the same segments and fields. */
static void test_line_endings(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "MSH|^~\\&|A|B\rPID|1||42^^^H^MR\rPV1|1|E\r",
        "MSH|^~\\&|A|B\nPID|1||42^^^H^MR\nPV1|1|E\n",
        "MSH|^~\\&|A|B\r\nPID|1||42^^^H^MR\r\nPV1|1|E\r\n",
        "MSH|^~\\&|A|B\rPID|1||42^^^H^MR\rPV1|1|E",
        "\r\n\rMSH|^~\\&|A|B\r\r\nPID|1||42^^^H^MR\n\n\nPV1|1|E\r\n\r\n",
        "MSH|^~\\&|A|B|||\rPID|1||42^^^H^MR||||\rPV1|1|E|\r",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        arena_t arena;
        arena_init(&arena);
        hl7_message_t m;
        parse_ok(&arena, texts[i], strlen(texts[i]), &m);
        assert_int_equal(m.nsegments, 3);
        assert_int_equal(m.segments[0].nfields, 5);
        assert_int_equal(m.segments[1].nfields, 4);
        assert_int_equal(m.segments[2].nfields, 3);
        assert_string_equal(get(&m, &arena, "MSH", 4, 0, 0, 0), "B");
        assert_string_equal(get(&m, &arena, "PID", 3, 0, 4, 0), "H");
        assert_string_equal(get(&m, &arena, "PID", 3, 0, 5, 0), "MR");
        assert_string_equal(get(&m, &arena, "PV1", 2, 0, 0, 0), "E");
        assert_int_equal(m.segments[2].number, 3);
        assert_memory_equal(texts[i] + m.segments[2].offset, "PV1|", 4);
        arena_release(&arena);
    }
}

static void test_nul_bytes_are_data(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    static const char text[] = "MSH|^~\\&|A\0B|C\rZNL|x\0y^z\rPID|1\r";
    parse_ok(&arena, text, sizeof(text) - 1, &m);
    assert_int_equal(m.nsegments, 3);
    const hl7_segment_t *msh = hl7_segment(&m, "MSH", 0);
    assert_int_equal(hl7_raw(&m, msh, 3, 0, 0, 0).len, 3);
    assert_string_equal(hl7_get(&m, &arena, msh, 4, 0, 0, 0), "C");
    const hl7_segment_t *z = hl7_segment(&m, "ZNL", 0);
    hl7_span_t raw = hl7_raw(&m, z, 1, 0, 1, 0);
    assert_int_equal(raw.len, 3);
    assert_memory_equal(raw.s, "x\0y", 3);
    assert_string_equal(hl7_get(&m, &arena, z, 1, 0, 2, 0), "z");
    assert_non_null(hl7_segment(&m, "PID", 0));
    arena_release(&arena);
}

static void expect_error(const char *text, size_t len, const char *message, const char *segment,
                         size_t sequence, size_t field, size_t offset)
{
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    hl7_message_t m;
    hl7_where_t where;
    status_t rc = hl7_parse(text, len, &arena, &m, &where, &err);
    assert_int_equal(rc, ERR_SYNTAX);
    assert_int_equal(err.code, ERR_SYNTAX);
    assert_string_equal(err_message(&err), message);
    assert_string_equal(where.segment, segment);
    assert_int_equal(where.sequence, sequence);
    assert_int_equal(where.field, field);
    assert_int_equal(where.offset, offset);
    /* where may be NULL */
    err_release(&err);
    err = (err_t)ERR_INIT;
    assert_int_equal(hl7_parse(text, len, &arena, &m, NULL, &err), ERR_SYNTAX);
    assert_string_equal(err_message(&err), message);
    err_release(&err);
    arena_release(&arena);
}

#define EXPECT_ERROR(text, ...) expect_error(text, sizeof(text) - 1, __VA_ARGS__)

static void test_errors(void **state)
{
    (void)state;
    EXPECT_ERROR("", "the message is empty", "", 0, 0, 0);
    EXPECT_ERROR("\r\n\r\n", "the message is empty", "", 0, 0, 0);
    EXPECT_ERROR("PID|1||42\r", "segment 1 (PID): the message must start with MSH, at byte 0",
                 "PID", 1, 0, 0);
    EXPECT_ERROR("\r\nhello|MSH\r", "segment 1: the message must start with MSH, at byte 2", "", 1,
                 0, 2);
    EXPECT_ERROR("MS", "segment 1: the message must start with MSH, at byte 0", "", 1, 0, 0);
    EXPECT_ERROR("MSH", "segment 1 (MSH): the field separator (MSH-1) is missing, at byte 3", "MSH",
                 1, 1, 3);
    EXPECT_ERROR("MSH\rPID|1\r",
                 "segment 1 (MSH): the field separator (MSH-1) is missing, at byte 3", "MSH", 1, 1,
                 3);
    EXPECT_ERROR("MSHA^~\\&A",
                 "segment 1 (MSH): the field separator (MSH-1) \"A\" must not be a letter or "
                 "digit, at byte 3",
                 "MSH", 1, 1, 3);
    EXPECT_ERROR("MSH|^~\r",
                 "segment 1 (MSH): MSH-2 must have 4 or 5 encoding characters, not 2, at byte 4",
                 "MSH", 1, 2, 4);
    EXPECT_ERROR("MSH||A|B\r",
                 "segment 1 (MSH): MSH-2 must have 4 or 5 encoding characters, not 0, at byte 4",
                 "MSH", 1, 2, 4);
    EXPECT_ERROR("MSH|^~\\&#$|A\r",
                 "segment 1 (MSH): MSH-2 must have 4 or 5 encoding characters, not 6, at byte 4",
                 "MSH", 1, 2, 4);
    EXPECT_ERROR("MSH|^~^&|A\r",
                 "segment 1 (MSH): the delimiter \"^\" is declared twice in MSH-1/MSH-2, at byte 6",
                 "MSH", 1, 2, 6);
    EXPECT_ERROR("MSH#^~\\&^#A\r",
                 "segment 1 (MSH): the delimiter \"^\" is declared twice in MSH-1/MSH-2, at byte 8",
                 "MSH", 1, 2, 8);
    EXPECT_ERROR("MSH|^~\\A|A\r",
                 "segment 1 (MSH): the encoding character \"A\" in MSH-2 must not be a letter or "
                 "digit, at byte 7",
                 "MSH", 1, 2, 7);
    EXPECT_ERROR("MSH|^~\\&|A\rPV|1\r",
                 "segment 2: id \"PV\" must be 3 upper-case letters or digits, at byte 11", "", 2,
                 0, 11);
    EXPECT_ERROR("MSH|^~\\&|A\r\nEVN|1\r\n\r\npid|1\r\n",
                 "segment 3: id \"pid\" must be 3 upper-case letters or digits, at byte 21", "", 3,
                 0, 21);
    EXPECT_ERROR("MSH|^~\\&|A\rPIDX|1\r",
                 "segment 2: id \"PIDX\" must be 3 upper-case letters or digits, at byte 11", "", 2,
                 0, 11);
    EXPECT_ERROR("MSH|^~\\&|A\r|1\r",
                 "segment 2: id \"\" must be 3 upper-case letters or digits, at byte 11", "", 2, 0,
                 11);
    EXPECT_ERROR("MSH|^~\\&|A\rP\0D|1\r",
                 "segment 2: id \"P\\x00D\" must be 3 upper-case letters or digits, at byte 11", "",
                 2, 0, 11);
    EXPECT_ERROR("MSH|^~\\&|A\rABCDEFGHIJ|1\r",
                 "segment 2: id \"ABCDEFGH...\" must be 3 upper-case letters or digits, at byte 11",
                 "", 2, 0, 11);
}

static void test_versions(void **state)
{
    (void)state;
    static const char *const yes[] = {"2.3", "2.3.1", "2.4", "2.5",   "2.5.1", "2.6",
                                      "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"};
    static const char *const no[] = {"",     "2",    "2.",   "2.2",   "2.1",  "2.9",  "3.0",
                                     "2.10", "2.5.", "2.5a", "2.5.x", "v2.5", " 2.5", "2.5 "};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!hl7_version_supported(yes[i]))
            fail_msg("\"%s\" should be supported", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (hl7_version_supported(no[i]))
            fail_msg("\"%s\" should not be supported", no[i]);

    arena_t arena;
    arena_init(&arena);
    hl7_message_t m;
    static const char text[] = "MSH|^~\\&|A\r";
    parse_ok(&arena, text, sizeof(text) - 1, &m);
    assert_string_equal(hl7_version(&m, &arena), "");
    static const char text2[] = "MSH|^~\\&|||||||ADT^A01|1|P|2.5.1^USA\r";
    parse_ok(&arena, text2, sizeof(text2) - 1, &m);
    assert_string_equal(hl7_version(&m, &arena), "2.5.1");
    arena_release(&arena);
}

static void test_writer_format(void **state)
{
    (void)state;
    buf_t out = BUF_INIT;
    hl7_writer_t w;
    hl7_writer_init(&w, &out, &HL7_DELIMS_DEFAULT);
    hl7_write_segment(&w, "MSH");
    hl7_write_field(&w, "CONCERTO");
    hl7_write_field(&w, NULL);
    hl7_write_field(&w, "");
    const char *type[] = {"ACK", "A01", "ACK"};
    hl7_write_components(&w, type, 3);
    hl7_write_segment(&w, "MSA");
    hl7_write_field(&w, "AE");
    hl7_write_raw(&w, "X^Y", 3);
    hl7_write_segment(&w, "ERR");
    const char *loc[] = {"PID", "1", NULL, "", NULL};
    hl7_write_components(&w, loc, 5);
    const char *none[] = {NULL, ""};
    hl7_write_components(&w, none, 2);
    hl7_write_field(&w, "bad | value ^ with ~ all \\ the & delimiters\r\n");
    hl7_writer_end(&w);
    assert_string_equal(out.ptr, "MSH|^~\\&|CONCERTO|||ACK^A01^ACK\r"
                                 "MSA|AE|X^Y\r"
                                 "ERR|PID^1||bad \\F\\ value \\S\\ with \\R\\ all \\E\\ the "
                                 "\\T\\ delimiters\\X0D\\\\X0A\\\r");
    hl7_writer_end(&w); /* a second end adds nothing */
    assert_int_equal(out.ptr[out.len - 1], '\r');
    assert_int_equal(out.ptr[out.len - 2], '\\');

    buf_reset(&out);
    hl7_delims_t d = {'#', '$', '*', '!', '@'};
    hl7_writer_init(&w, &out, &d);
    hl7_write_segment(&w, "MSH");
    hl7_write_field(&w, "a#b$c*d!e@f|g");
    hl7_writer_end(&w);
    assert_string_equal(out.ptr, "MSH#$*!@#a!F!b!S!c!R!d!E!e!T!f|g\r");
    buf_release(&out);
}

/* parse(write(x)) gives x back, whatever x holds, for default and declared delimiters. */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "plain",
        "",
        "a|b",
        "^~\\&",
        "x\\F\\y",
        "line1\r\nline2\nline3\r",
        "\"\"",
        "#$*!@",
        "trailing\\",
        "\\X41\\",
        "O'Brien & Sons ^ Co ~ Ltd | \\E\\",
    };
    static const hl7_delims_t delims[] = {
        {'|', '^', '~', '\\', '&'},
        {'#', '$', '*', '!', '@'},
        {'\t', ':', ';', '%', '/'},
    };
    size_t n = sizeof(values) / sizeof(values[0]);
    for (size_t k = 0; k < sizeof(delims) / sizeof(delims[0]); k++) {
        arena_t arena;
        arena_init(&arena);
        buf_t out = BUF_INIT;
        hl7_writer_t w;
        hl7_writer_init(&w, &out, &delims[k]);
        hl7_write_segment(&w, "MSH");
        for (size_t i = 0; i < n; i++)
            hl7_write_field(&w, values[i]);
        hl7_write_segment(&w, "ZRT");
        for (size_t i = 0; i < n; i++) {
            const char *comps[] = {values[i], "second", values[n - 1 - i]};
            hl7_write_components(&w, comps, 3);
        }
        hl7_writer_end(&w);

        hl7_message_t m;
        parse_ok(&arena, out.ptr, out.len, &m);
        assert_memory_equal(&m.delims, &delims[k], sizeof(hl7_delims_t));
        assert_int_equal(m.nsegments, 2);
        const hl7_segment_t *msh = &m.segments[0], *z = &m.segments[1];
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(hl7_get(&m, &arena, msh, 3 + i, 0, 0, 0), values[i]);
            assert_int_equal(hl7_repetitions(&m, msh, 3 + i), values[i][0] ? 1 : 0);
            assert_string_equal(hl7_get(&m, &arena, z, 1 + i, 0, 1, 0), values[i]);
            assert_string_equal(hl7_get(&m, &arena, z, 1 + i, 0, 2, 0), "second");
            assert_string_equal(hl7_get(&m, &arena, z, 1 + i, 0, 3, 0), values[n - 1 - i]);
            assert_string_equal(hl7_get(&m, &arena, z, 1 + i, 0, 1, 1), values[i]);
        }
        assert_true(hl7_is_null(&m, msh, 3 + 6, 0, 0, 0));
        buf_release(&out);
        arena_release(&arena);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_messages),
        cmocka_unit_test(test_a01_fields),
        cmocka_unit_test(test_v23_and_discharge),
        cmocka_unit_test(test_explicit_null),
        cmocka_unit_test(test_declared_delimiters),
        cmocka_unit_test(test_components),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_nul_bytes_are_data),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_writer_format),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
