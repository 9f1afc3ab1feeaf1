/*
 * search.c - tests of the search parameter registry (src/fhir/search_defs.c, the generated
 * search_gen.c) and the query parser (src/fhir/search.c, search_value.c).
 *
 * Inline cases check the registry, the value arithmetic and the API; the data-driven cases
 * of tests/data/search are queries (NAME.query: the first line is "Type?query" or "?query"
 * for a system search, percent-encoded; a second line "strict" asks for strict handling)
 * beside the plan they must give (NAME.expected, the text dump_plan writes). Every search is
 * made at 2024-06-15T12:00:00Z, which only matters for the prefix ap.
 */
#include <dirent.h>
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
#include "base/buf.h"
#include "base/err.h"
#include "base/jv.h"
#include "base/mem.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "fhir/search_int.h"

#define DATA_DIR "tests/data/search"

static const fhir_type_t *type_of(const char *name)
{
    const fhir_type_t *t = fhir_resource_type_find(name, strlen(name));
    assert_non_null(t);
    return t;
}

/* --- the dump of a plan ------------------------------------------------------------------ */

static int64_t test_now(void)
{
    return fhir__search_epoch_us(2024, 6, 15, 12, 0, 0);
}

/* Civil date of days since the epoch (Howard Hinnant's civil_from_days). */
static void civil(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static void add_instant(buf_t *out, int64_t us)
{
    int64_t day = us >= 0 ? us / 86400000000 : -((-us + 86400000000 - 1) / 86400000000);
    int64_t rest = us - day * 86400000000;
    int y, m, d;
    civil(day, &y, &m, &d);
    int64_t s = rest / 1000000, frac = rest % 1000000;
    buf_addf(out, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, (int)(s / 3600), (int)(s / 60 % 60),
             (int)(s % 60));
    if (frac)
        buf_addf(out, ".%06d", (int)frac);
    buf_addch(out, 'Z');
}

static const char *const precisions[] = {"year", "month", "day", "minute", "second", "fraction"};

static void add_opt(buf_t *out, const char *s)
{
    if (s)
        buf_addf(out, "\"%s\"", s);
    else
        buf_addch(out, '*');
}

static void add_number(buf_t *out, const fhir_search_number_t *n)
{
    buf_addf(out, "%s [%s, %s)", n->text, n->low, n->high);
}

static void add_text(buf_t *out, const fhir_search_text_t *t)
{
    if (t->kind == FHIR_SEARCH_TEXT_TERM) {
        buf_addf(out, "\"%s\"%s", t->term, t->prefix ? "*" : "");
        return;
    }
    buf_addch(out, '(');
    add_text(out, t->left);
    buf_addstr(out, t->kind == FHIR_SEARCH_TEXT_AND ? " AND " : " OR ");
    add_text(out, t->right);
    buf_addch(out, ')');
}

static void add_value(buf_t *out, const fhir_search_clause_t *c, fhir_search_type_t type,
                      const fhir_search_value_t *v)
{
    if (c && c->param &&
        (strcmp(c->param->code, "_text") == 0 || strcmp(c->param->code, "_content") == 0)) {
        buf_addstr(out, "text ");
        add_text(out, v->as.text);
        return;
    }
    if (c && c->modifier == FHIR_SEARCH_MOD_MISSING) {
        buf_addf(out, "missing=%s", v->as.missing ? "true" : "false");
        return;
    }
    fhir_search_modifier_t m = c ? c->modifier : FHIR_SEARCH_MOD_NONE;
    switch (type) {
    case FHIR_SEARCH_STRING:
        buf_addf(out, "\"%s\" ~ \"%s\"", v->as.string.value, v->as.string.normalized);
        break;
    case FHIR_SEARCH_TOKEN:
        if (m == FHIR_SEARCH_MOD_TEXT) {
            buf_addf(out, "\"%s\" ~ \"%s\"", v->as.string.value, v->as.string.normalized);
        } else if (m == FHIR_SEARCH_MOD_IN || m == FHIR_SEARCH_MOD_NOT_IN) {
            buf_addf(out, "valueset \"%s\"", v->as.uri.value);
        } else if (m == FHIR_SEARCH_MOD_OF_TYPE) {
            buf_addf(out, "type \"%s\"|\"%s\" value \"%s\"", v->as.of_type.type_system,
                     v->as.of_type.type_code, v->as.of_type.value);
        } else {
            add_opt(out, v->as.token.system);
            buf_addch(out, '|');
            add_opt(out, v->as.token.code);
        }
        break;
    case FHIR_SEARCH_DATE:
        buf_addf(out, "%s [", fhir_search_prefix_name(v->prefix));
        add_instant(out, v->as.date.low);
        buf_addstr(out, ", ");
        add_instant(out, v->as.date.high);
        buf_addf(out, ") %s%s", precisions[v->as.date.precision],
                 v->as.date.utc_assumed ? " utc-assumed" : "");
        break;
    case FHIR_SEARCH_NUMBER:
        buf_addf(out, "%s ", fhir_search_prefix_name(v->prefix));
        add_number(out, &v->as.number);
        break;
    case FHIR_SEARCH_QUANTITY:
        buf_addf(out, "%s ", fhir_search_prefix_name(v->prefix));
        add_number(out, &v->as.quantity.number);
        buf_addstr(out, " system ");
        add_opt(out, v->as.quantity.system);
        buf_addstr(out, " code ");
        add_opt(out, v->as.quantity.code);
        break;
    case FHIR_SEARCH_REFERENCE:
        if (m == FHIR_SEARCH_MOD_IDENTIFIER) {
            buf_addstr(out, "identifier ");
            add_opt(out, v->as.token.system);
            buf_addch(out, '|');
            add_opt(out, v->as.token.code);
            break;
        }
        buf_addf(out, "type %s id ", v->as.reference.type ? v->as.reference.type->name : "*");
        add_opt(out, v->as.reference.id);
        if (v->as.reference.version)
            buf_addf(out, " version \"%s\"", v->as.reference.version);
        if (v->as.reference.url)
            buf_addf(out, " url \"%s\"", v->as.reference.url);
        if (v->as.reference.canonical_version)
            buf_addf(out, " canonical-version \"%s\"", v->as.reference.canonical_version);
        break;
    case FHIR_SEARCH_URI: buf_addf(out, "\"%s\"", v->as.uri.value); break;
    case FHIR_SEARCH_COMPOSITE: break;
    case FHIR_SEARCH_SPECIAL:
        buf_addf(out, "near %.6f %.6f", v->as.near.latitude, v->as.near.longitude);
        if (v->as.near.has_distance) {
            buf_addstr(out, " within ");
            add_number(out, &v->as.near.distance);
        }
        if (v->as.near.units)
            buf_addf(out, " %s", v->as.near.units);
        break;
    }
}

static void add_clause(buf_t *out, const fhir_search_clause_t *c, int depth)
{
    for (int i = 0; i < depth; i++)
        buf_addstr(out, "  ");
    const char *tname = c->type ? c->type->name : "*";
    switch (c->kind) {
    case FHIR_SEARCH_CLAUSE_PARAM:
        buf_addf(out, "param %s.%s %s", tname, c->param->code,
                 fhir_search_type_name(c->param->type));
        if (c->modifier == FHIR_SEARCH_MOD_TYPE)
            buf_addf(out, " :%s", c->modifier_type->name);
        else if (c->modifier != FHIR_SEARCH_MOD_NONE)
            buf_addf(out, " :%s", fhir_search_modifier_name(c->modifier));
        buf_addch(out, '\n');
        for (size_t i = 0; i < c->nvalues; i++) {
            const fhir_search_value_t *v = &c->values[i];
            for (int k = 0; k <= depth; k++)
                buf_addstr(out, "  ");
            buf_addstr(out, i ? "or " : "= ");
            if (c->param->type == FHIR_SEARCH_COMPOSITE && c->modifier != FHIR_SEARCH_MOD_MISSING) {
                buf_addstr(out, "composite");
                for (size_t k = 0; k < v->as.composite.ncomponents; k++) {
                    buf_addf(out, " %s(%s: ", k ? "$ " : "", c->param->components[k].code);
                    add_value(out, NULL, c->param->components[k].type,
                              &v->as.composite.components[k]);
                    buf_addch(out, ')');
                }
            } else {
                add_value(out, c, c->param->type, v);
            }
            buf_addch(out, '\n');
        }
        return;
    case FHIR_SEARCH_CLAUSE_CHAIN:
        buf_addf(out, "chain %s.%s ->", tname, c->param->code);
        for (size_t i = 0; i < c->nnext; i++)
            buf_addf(out, " %s", c->next[i].type->name);
        buf_addch(out, '\n');
        break;
    case FHIR_SEARCH_CLAUSE_HAS:
        buf_addf(out, "has %s <- %s.%s\n", tname, c->next[0].type->name, c->param->code);
        break;
    case FHIR_SEARCH_CLAUSE_LIST:
        buf_addf(out, "list %s in", tname);
        for (size_t i = 0; i < c->nvalues; i++)
            buf_addf(out, " List/%s", c->values[i].as.reference.id);
        buf_addch(out, '\n');
        return;
    }
    for (size_t i = 0; i < c->nnext; i++)
        add_clause(out, &c->next[i], depth + 1);
}

static void dump_plan(const fhir_search_plan_t *plan, buf_t *out)
{
    static const char *const summaries[] = {"", "true", "text", "data", "count", "false"};
    static const char *const totals[] = {"", "none", "estimate", "accurate"};
    for (size_t b = 0; b < plan->nbranches; b++) {
        const fhir_search_branch_t *branch = &plan->branches[b];
        buf_addf(out, "branch %s\n", branch->type ? branch->type->name : "*");
        for (size_t i = 0; i < branch->nclauses; i++)
            add_clause(out, &branch->clauses[i], 1);
        for (size_t i = 0; i < branch->nsort; i++)
            buf_addf(out, "  sort %s%s\n", branch->sort[i].descending ? "-" : "",
                     branch->sort[i].param->code);
    }
    for (size_t i = 0; i < plan->nincludes; i++) {
        const fhir_search_include_t *inc = &plan->includes[i];
        buf_addf(out, "%s%s %s:%s:%s\n", inc->reverse ? "revinclude" : "include",
                 inc->iterate ? " iterate" : "", inc->source ? inc->source->name : "*",
                 inc->param ? inc->param->code : "*", inc->target ? inc->target->name : "*");
    }
    buf_addf(out, "count %u", plan->count);
    if (plan->offset)
        buf_addf(out, " offset %u", plan->offset);
    if (plan->summary)
        buf_addf(out, " summary %s", summaries[plan->summary]);
    if (plan->total)
        buf_addf(out, " total %s", totals[plan->total]);
    if (plan->contained)
        buf_addf(out, " contained %s",
                 plan->contained == FHIR_SEARCH_CONTAINED_TRUE ? "true" : "both");
    if (plan->contained_type)
        buf_addstr(out, " contained-type contained");
    buf_addch(out, '\n');
    if (plan->nelements) {
        buf_addstr(out, "elements");
        for (size_t i = 0; i < plan->nelements; i++)
            buf_addf(out, " %s", plan->elements[i]);
        buf_addch(out, '\n');
    }
    for (size_t i = 0; i < plan->nignored; i++)
        buf_addf(out, "ignored %s=%s: %s\n", plan->ignored[i].name, plan->ignored[i].value,
                 plan->ignored[i].reason);
    buf_addstr(out, "self ");
    fhir_search_plan_render(plan, out);
    buf_addch(out, '\n');
}

/* --- running a query --------------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Form decoding: %XX and '+' for a space. */
static char *decode(arena_t *arena, const char *s, size_t len, size_t *out_len)
{
    char *out = arena_alloc(arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out[n++] = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/*
 * Parses "Type?query" (or "?query") with the registry (NULL: built-in) and returns the status;
 * the plan (or NULL) in *out_plan, from arena.
 */
static status_t run_query(fhir_search_registry_t *registry, arena_t *arena, const char *line,
                          bool strict, fhir_search_plan_t **out_plan, err_t *err)
{
    const char *q = strchr(line, '?');
    assert_non_null(q);
    const fhir_type_t *type =
        q == line ? NULL : type_of(arena_strndup(arena, line, (size_t)(q - line)));
    q++;
    size_t npairs = 0, cap = 1;
    for (const char *s = q; *s; s++)
        cap += *s == '&';
    fhir_search_pair_t *pairs = arena_zalloc(arena, cap * sizeof(*pairs));
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t name_len = eq ? (size_t)(eq - q) : len;
        fhir_search_pair_t *pair = &pairs[npairs++];
        pair->name = decode(arena, q, name_len, &pair->name_len);
        pair->value = eq ? decode(arena, eq + 1, len - name_len - 1, &pair->value_len) : "";
        q += len + (amp ? 1 : 0);
    }
    fhir_search_query_t query = {pairs, npairs, strict, test_now()};
    return fhir_search_parse(registry, type, &query, arena, out_plan, err);
}

/* The dump of a query's plan, or "error: message" lines; a new string the caller frees. */
static char *plan_text(fhir_search_registry_t *registry, const char *line, bool strict)
{
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    fhir_search_plan_t *plan;
    buf_t out = BUF_INIT;
    status_t rc = run_query(registry, &arena, line, strict, &plan, &err);
    if (rc) {
        assert_null(plan);
        for (size_t i = 0; i < err.nissues; i++)
            buf_addf(&out, "error %s: %s\n", err_name(err.issues[i].code), err.issues[i].message);
    } else {
        assert_int_equal(err.nissues, 0);
        dump_plan(plan, &out);
    }
    err_release(&err);
    arena_release(&arena);
    return buf_detach(&out, NULL);
}

static void expect_plan(const char *line, const char *expected)
{
    char *got = plan_text(NULL, line, false);
    if (strcmp(got, expected) != 0)
        fail_msg("%s: expected\n%sgot\n%s", line, expected, got);
    free(got);
}

/* Strict handling fails with exactly these messages (one per line). */
static void expect_strict_errors(const char *line, const char *expected)
{
    char *got = plan_text(NULL, line, true);
    buf_t want = BUF_INIT;
    const char *s = expected;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        buf_addstr(&want, "error INVALID: ");
        buf_add(&want, s, len);
        buf_addch(&want, '\n');
        s += len + (nl ? 1 : 0);
    }
    if (strcmp(got, want.ptr) != 0)
        fail_msg("%s: expected\n%sgot\n%s", line, want.ptr, got);
    buf_release(&want);
    free(got);
}

/* --- the registry ------------------------------------------------------------------------ */

static void test_counts(void **state)
{
    (void)state;
    fhir_search_counts_t c;
    fhir_search_builtin_counts(&c);
    /* 1,400 SearchParameter files: 24 experimental ones left out */
    assert_int_equal(c.definitions, 1376);
    assert_int_equal(c.parameters, 1697);
    assert_int_equal(c.common, 13);
    assert_int_equal(c.composite_definitions, 46);
    assert_int_equal(c.by_type[FHIR_SEARCH_NUMBER], 6);
    assert_int_equal(c.by_type[FHIR_SEARCH_DATE], 139);
    assert_int_equal(c.by_type[FHIR_SEARCH_STRING], 199);
    assert_int_equal(c.by_type[FHIR_SEARCH_TOKEN], 668);
    assert_int_equal(c.by_type[FHIR_SEARCH_REFERENCE], 517);
    assert_int_equal(c.by_type[FHIR_SEARCH_COMPOSITE], 72);
    assert_int_equal(c.by_type[FHIR_SEARCH_QUANTITY], 40);
    assert_int_equal(c.by_type[FHIR_SEARCH_URI], 55);
    assert_int_equal(c.by_type[FHIR_SEARCH_SPECIAL], 1);
    size_t total = 0;
    for (int t = 0; t <= FHIR_SEARCH_SPECIAL; t++)
        total += c.by_type[t];
    assert_int_equal(total, c.parameters);
}

/* The tables are sorted, every target names a resource type and every component names a
 * parameter of the same base. */
static void test_tables(void **state)
{
    (void)state;
    assert_int_equal(fhir__search_type_count, fhir_resource_type_count);
    for (size_t i = 0; i < fhir__search_type_count; i++) {
        const fhir__search_type_t *t = &fhir__search_types[i];
        assert_string_equal(t->name, fhir_resource_types[i]->name);
        for (size_t k = 0; k < t->nparams; k++) {
            const fhir_search_param_t *p = &t->params[k];
            assert_string_equal(p->base, t->name);
            if (k)
                assert_true(strcmp(t->params[k - 1].code, p->code) < 0);
            assert_non_null(p->url);
            if (p->type != FHIR_SEARCH_SPECIAL)
                assert_non_null(p->expression);
            for (size_t j = 0; j < p->ntargets; j++) {
                assert_non_null(fhir_resource_type_find(p->targets[j], strlen(p->targets[j])));
                if (j)
                    assert_true(strcmp(p->targets[j - 1], p->targets[j]) < 0);
            }
            assert_int_equal(p->ncomponents > 0, p->type == FHIR_SEARCH_COMPOSITE);
            for (size_t j = 0; j < p->ncomponents; j++) {
                const fhir_search_param_t *c = fhir_search_param_find(
                    fhir_resource_types[i], p->components[j].code, strlen(p->components[j].code));
                assert_non_null(c);
                assert_int_equal(c->type, p->components[j].type);
            }
            /* a union restricted to this base (or written for it) names it */
            if (p->expression && strchr(p->expression, '|') && strchr(p->expression, '.'))
                assert_non_null(strstr(p->expression, t->name));
        }
    }
    for (size_t i = 1; i < fhir__search_common_count; i++)
        assert_true(strcmp(fhir__search_common[i - 1].code, fhir__search_common[i].code) < 0);
}

static void test_builtin_lookups(void **state)
{
    (void)state;
    const fhir_type_t *patient = type_of("Patient");
    const fhir_search_param_t *p = fhir_search_param_find(patient, "birthdate", 9);
    assert_non_null(p);
    assert_int_equal(p->type, FHIR_SEARCH_DATE);
    assert_string_equal(p->expression, "Patient.birthDate");
    assert_string_equal(p->url, "http://hl7.org/fhir/SearchParameter/individual-birthdate");
    assert_int_equal(p->comparators, 0x1FF); /* all nine prefixes listed */
    assert_null(fhir_search_param_find(patient, "birth", 5));
    assert_null(fhir_search_param_find(patient, "birthdatex", 10));

    /* a union over many bases keeps the members of the base, qualifiers intact */
    p = fhir_search_param_find(type_of("CarePlan"), "patient", 7);
    assert_string_equal(p->expression, "CarePlan.subject.where(resolve() is Patient)");
    assert_int_equal(p->ntargets, 2); /* targets are the definition's, not restricted */
    assert_string_equal(p->targets[0], "Group");
    assert_string_equal(p->targets[1], "Patient");
    p = fhir_search_param_find(type_of("DeviceRequest"), "code", 4);
    assert_string_equal(p->expression, "(DeviceRequest.code as CodeableConcept)");
    p = fhir_search_param_find(type_of("ValueSet"), "context-quantity", 16);
    assert_string_equal(p->expression,
                        "(ValueSet.useContext.value as Quantity) | (ValueSet.useContext.value as "
                        "Range)");
    p = fhir_search_param_find(type_of("Observation"), "date", 4);
    assert_string_equal(p->expression, "Observation.effective");
    /* a single base keeps its expression as written, even a relative one */
    p = fhir_search_param_find(type_of("InsurancePlan"), "name", 4);
    assert_string_equal(p->expression, "name | alias");

    p = fhir_search_param_find(type_of("Observation"), "code-value-quantity", 19);
    assert_int_equal(p->type, FHIR_SEARCH_COMPOSITE);
    assert_int_equal(p->ncomponents, 2);
    assert_string_equal(p->components[0].code, "code");
    assert_int_equal(p->components[0].type, FHIR_SEARCH_TOKEN);
    assert_string_equal(p->components[0].definition,
                        "http://hl7.org/fhir/SearchParameter/clinical-code");
    assert_string_equal(p->components[1].code, "value-quantity");
    assert_int_equal(p->components[1].type, FHIR_SEARCH_QUANTITY);
    assert_string_equal(p->components[1].expression, "value.as(Quantity)");
    assert_false(p->multiple_or);
    assert_true(p->multiple_and);

    p = fhir_search_param_find(type_of("Observation"), "subject", 7);
    assert_int_equal(p->ntargets, 4);
    assert_string_equal(p->targets[0], "Device");
    assert_string_equal(p->targets[3], "Patient");
    p = fhir_search_param_find(type_of("Location"), "near", 4);
    assert_int_equal(p->type, FHIR_SEARCH_SPECIAL);
    assert_int_equal(p->xpath_usage, FHIR_SEARCH_XPATH_NEARBY);
    p = fhir_search_param_find(patient, "phonetic", 8);
    assert_int_equal(p->xpath_usage, FHIR_SEARCH_XPATH_PHONETIC);

    /* parameters for all resources */
    p = fhir_search_param_find(patient, "_id", 3);
    assert_string_equal(p->base, "Resource");
    assert_int_equal(p->type, FHIR_SEARCH_TOKEN);
    assert_string_equal(p->expression, "Resource.id");
    assert_non_null(fhir_search_param_find(patient, "_text", 5));
    assert_null(fhir_search_param_find(type_of("Bundle"), "_text", 5)); /* not a DomainResource */
    assert_non_null(fhir_search_param_find(type_of("Bundle"), "_lastUpdated", 12));
    assert_non_null(fhir_search_param_find(NULL, "_tag", 4));
    assert_null(fhir_search_param_find(NULL, "name", 4));
    p = fhir_search_param_find(NULL, "_has", 4);
    assert_null(p->url);
    assert_int_equal(p->type, FHIR_SEARCH_SPECIAL);
    p = fhir_search_param_find(NULL, "_profile", 8);
    assert_int_equal(p->type, FHIR_SEARCH_URI);
    /* a type without parameters of its own still has the common ones */
    assert_non_null(fhir_search_param_find(type_of("Binary"), "_id", 3));
    assert_null(fhir_search_param_find(type_of("Binary"), "contenttype", 11));
}

static void test_restrict(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    const char *const bases[] = {"AllergyIntolerance", "CarePlan", "Condition"};
    const char *e = "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | "
                    "Condition.subject.where(resolve() is Patient)";
    assert_string_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3),
                        "CarePlan.subject.where(resolve() is Patient)");
    assert_string_equal(fhir__search_restrict(&arena, e, "AllergyIntolerance", bases, 3),
                        "AllergyIntolerance.patient");
    /* members in parentheses, and a '|' inside a string literal */
    e = "(CarePlan.x as Reference) | Condition.extension('http://a|b').value | "
        "(CarePlan.y as Quantity)";
    assert_string_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3),
                        "(CarePlan.x as Reference) | (CarePlan.y as Quantity)");
    assert_string_equal(fhir__search_restrict(&arena, e, "Condition", bases, 3),
                        "Condition.extension('http://a|b').value");
    /* kept whole: a member rooted elsewhere, a member naming two bases, unbalanced text, a
     * base without members */
    e = "CarePlan.x | subject";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "(CarePlan.x | Condition.y).first()";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "CarePlan.x | (Condition.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 3), e);
    e = "CarePlan.x | Condition.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "AllergyIntolerance", bases, 3), e);
    /* one base: as written */
    e = "CarePlan.x | Other.y";
    assert_ptr_equal(fhir__search_restrict(&arena, e, "CarePlan", bases, 1), e);
    arena_release(&arena);
}

/* The restriction of custom parameters agrees with the generator: for every definition with
 * several bases, the union of what each base kept, restricted again, gives each base's
 * expression back. */
static void test_restrict_matches_generator(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    size_t checked = 0;
    for (size_t i = 0; i < fhir__search_param_count; i++) {
        const fhir_search_param_t *p = &fhir__search_params[i];
        const char *bases[64];
        const char *expressions[64];
        size_t n = 0;
        bool first = true;
        for (size_t k = 0; k < fhir__search_param_count && n < 64; k++) {
            const fhir_search_param_t *q = &fhir__search_params[k];
            if (strcmp(q->url, p->url) != 0)
                continue;
            first = first && k >= i;
            bases[n] = q->base;
            expressions[n++] = q->expression;
        }
        if (n < 2 || !first)
            continue;
        buf_t all = BUF_INIT;
        for (size_t k = 0; k < n; k++)
            buf_addf(&all, "%s%s", k ? " | " : "", expressions[k]);
        for (size_t k = 0; k < n; k++) {
            const char *got = fhir__search_restrict(&arena, all.ptr, bases[k], bases, n);
            if (strcmp(got, expressions[k]) != 0)
                fail_msg("%s on %s: %s, generated %s", p->url, bases[k], got, expressions[k]);
        }
        buf_release(&all);
        checked++;
    }
    assert_int_equal(checked, 37); /* the R4 definitions with several bases */
    arena_release(&arena);
}

static void test_iteration(void **state)
{
    (void)state;
    const fhir_type_t *patient = type_of("Patient");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, fhir_search_builtin(), patient);
    size_t n = 0;
    const char *last = "";
    bool saw_birthdate = false, saw_text = false, saw_id = false;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        assert_true(strcmp(last, p->code) < 0);
        last = p->code;
        saw_birthdate |= strcmp(p->code, "birthdate") == 0;
        saw_text |= strcmp(p->code, "_text") == 0;
        saw_id |= strcmp(p->code, "_id") == 0;
        n++;
    }
    /* Patient's 23 own parameters and the 13 for all resources */
    assert_int_equal(n, 23 + 13);
    assert_true(saw_birthdate && saw_text && saw_id);

    fhir_search_iter_init(&it, fhir_search_builtin(), type_of("Bundle"));
    n = 0;
    for (const fhir_search_param_t *p; (p = fhir_search_iter_next(&it));) {
        assert_string_not_equal(p->code, "_text");
        n++;
    }
    assert_int_equal(n, 5 + 12); /* composition, identifier, message, timestamp, type */
    fhir_search_iter_init(&it, fhir_search_builtin(), NULL);
    n = 0;
    while (fhir_search_iter_next(&it))
        n++;
    assert_int_equal(n, 13);
}

/* --- custom parameters ------------------------------------------------------------------- */

static json_t *json(const char *text)
{
    err_t err = ERR_INIT;
    json_t *v = jv_parse(text, strlen(text), &err);
    if (!v)
        fail_msg("bad test JSON: %s", err_message(&err));
    err_release(&err);
    return v;
}

static status_t put(fhir_search_registry_t *r, const char *text, err_t *err)
{
    json_t *v = json(text);
    status_t rc = fhir_search_registry_put(r, v, err);
    json_decref(v);
    return rc;
}

#define EYE_COLOR                                                                          \
    "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/sp/eye-color\","   \
    "\"name\":\"eye\",\"status\":\"active\",\"code\":\"eye-color\",\"base\":[\"Patient\"," \
    "\"Practitioner\"],\"type\":\"token\",\"expression\":\"Patient.extension('http://"     \
    "example.org/eye').value | Practitioner.extension('http://example.org/eye').value\"}"

static void test_custom_parameters(void **state)
{
    (void)state;
    fhir_search_registry_t *r = fhir_search_registry_new();
    const fhir_type_t *patient = type_of("Patient"), *practitioner = type_of("Practitioner");
    const fhir_search_snapshot_t *before = fhir_search_registry_acquire(r);
    assert_ptr_equal(before, fhir_search_builtin());
    err_t err = ERR_INIT;
    assert_int_equal(put(r, EYE_COLOR, &err), ERR_OK);
    const fhir_search_snapshot_t *after = fhir_search_registry_acquire(r);
    /* the old snapshot does not see it, the new one does, restricted per base */
    assert_null(fhir_search_snapshot_find(before, patient, "eye-color", 9));
    const fhir_search_param_t *p = fhir_search_snapshot_find(after, patient, "eye-color", 9);
    assert_non_null(p);
    assert_string_equal(p->expression, "Patient.extension('http://example.org/eye').value");
    p = fhir_search_snapshot_find(after, practitioner, "eye-color", 9);
    assert_string_equal(p->expression, "Practitioner.extension('http://example.org/eye').value");
    assert_null(fhir_search_snapshot_find(after, type_of("Observation"), "eye-color", 9));
    assert_non_null(fhir_search_snapshot_find(after, patient, "birthdate", 9));
    assert_non_null(
        fhir_search_snapshot_find_url(after, "Patient", "http://example.org/sp/eye-color"));
    fhir_search_snapshot_release(before);

    /* a custom parameter hides the built-in one of the same code; iteration shows it once */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/name\",\"status\":\"draft\",\"code\":\"name\",\"base\":["
                         "\"Patient\"],\"type\":\"string\",\"expression\":\"Patient.name."
                         "family\"}",
                         &err),
                     ERR_OK);
    const fhir_search_snapshot_t *third = fhir_search_registry_acquire(r);
    assert_string_equal(fhir_search_snapshot_find(third, patient, "name", 4)->expression,
                        "Patient.name.family");
    assert_string_equal(fhir_search_snapshot_find(after, patient, "name", 4)->expression,
                        "Patient.name");
    fhir_search_iter_t it;
    fhir_search_iter_init(&it, third, patient);
    size_t n = 0, names = 0;
    for (const fhir_search_param_t *q; (q = fhir_search_iter_next(&it));) {
        n++;
        if (strcmp(q->code, "name") == 0) {
            names++;
            assert_string_equal(q->expression, "Patient.name.family");
        }
    }
    assert_int_equal(names, 1);
    assert_int_equal(n, 23 + 13 + 1); /* eye-color is new, name replaced */

    /* the parser uses the registry */
    char *text = plan_text(r, "Patient?eye-color=blue&name=Smith", false);
    assert_string_equal(text, "branch Patient\n"
                              "  param Patient.eye-color token\n"
                              "    = *|\"blue\"\n"
                              "  param Patient.name string\n"
                              "    = \"Smith\" ~ \"smith\"\n"
                              "count 50\n"
                              "self eye-color=blue&name=Smith\n");
    free(text);

    /* a custom composite resolves its components, built-in or custom */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/eye-birth\",\"status\":\"active\",\"code\":\"eye-birth\","
                         "\"base\":[\"Patient\"],\"type\":\"composite\",\"expression\":"
                         "\"Patient\",\"component\":[{\"definition\":\"http://example.org/sp/"
                         "eye-color\",\"expression\":\"extension('http://example.org/eye')."
                         "value\"},{\"definition\":\"http://hl7.org/fhir/SearchParameter/"
                         "individual-birthdate\",\"expression\":\"birthDate\"}]}",
                         &err),
                     ERR_OK);
    text = plan_text(r, "Patient?eye-birth=blue$lt2000", false);
    assert_string_equal(text, "branch Patient\n"
                              "  param Patient.eye-birth composite\n"
                              "    = composite (eye-color: *|\"blue\") $ (birthdate: lt "
                              "[2000-01-01T00:00:00Z, 2001-01-01T00:00:00Z) year utc-assumed)\n"
                              "count 50\n"
                              "self eye-birth=blue$lt2000\n");
    free(text);

    /* an untyped chain is an OR over the targets on which the rest is valid: "when" is a date
     * on Patient and a string on Device, so "2024-13" only reaches Devices */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/when\",\"status\":\"active\",\"code\":\"when\",\"base\":["
                         "\"Patient\"],\"type\":\"date\",\"expression\":\"Patient.birthDate\"}",
                         &err),
                     ERR_OK);
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/when-text\",\"status\":\"active\",\"code\":\"when\",\"base\":["
                         "\"Device\"],\"type\":\"string\",\"expression\":\"Device.note."
                         "text\"}",
                         &err),
                     ERR_OK);
    text = plan_text(r, "Observation?subject.when=2024-13", false);
    assert_string_equal(text, "branch Observation\n"
                              "  chain Observation.subject -> Device\n"
                              "    param Device.when string\n"
                              "      = \"2024-13\" ~ \"2024-13\"\n"
                              "count 50\n"
                              "self subject.when=2024-13\n");
    free(text);
    text = plan_text(r, "Observation?subject.when=2024", false);
    assert_non_null(strstr(text, "chain Observation.subject -> Device Patient\n"));
    free(text);
    text = plan_text(r, "Observation?subject:Patient.when=2024-13", false);
    assert_non_null(strstr(text, "ignored subject:Patient.when=2024-13: \"2024-13\" is not a "
                                 "valid date for when\n"));
    free(text);
    assert_true(fhir_search_registry_remove(r, "http://example.org/sp/when"));
    assert_true(fhir_search_registry_remove(r, "http://example.org/sp/when-text"));

    /* replacing a url drops what it had: now on Patient only */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/eye-color\",\"status\":\"active\",\"code\":\"eye-color\","
                         "\"base\":[\"Patient\"],\"type\":\"token\",\"expression\":"
                         "\"Patient.extension('http://example.org/eye2').value\"}",
                         &err),
                     ERR_OK);
    const fhir_search_snapshot_t *fourth = fhir_search_registry_acquire(r);
    assert_null(fhir_search_snapshot_find(fourth, practitioner, "eye-color", 9));
    assert_string_equal(fhir_search_snapshot_find(fourth, patient, "eye-color", 9)->expression,
                        "Patient.extension('http://example.org/eye2').value");

    /* retired removes; remove() too; a parameter for all resources */
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/name\",\"status\":\"retired\"}",
                         &err),
                     ERR_OK);
    assert_int_equal(put(r,
                         "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/"
                         "sp/batch\",\"status\":\"active\",\"code\":\"batch\",\"base\":["
                         "\"DomainResource\"],\"type\":\"token\",\"expression\":\""
                         "DomainResource.meta.tag.where(system='batch').code\"}",
                         &err),
                     ERR_OK);
    assert_true(fhir_search_registry_remove(r, "http://example.org/sp/eye-birth"));
    assert_false(fhir_search_registry_remove(r, "http://example.org/sp/eye-birth"));
    const fhir_search_snapshot_t *fifth = fhir_search_registry_acquire(r);
    assert_string_equal(fhir_search_snapshot_find(fifth, patient, "name", 4)->expression,
                        "Patient.name");
    assert_null(fhir_search_snapshot_find(fifth, patient, "eye-birth", 9));
    assert_non_null(fhir_search_snapshot_find(fifth, patient, "batch", 5));
    assert_non_null(fhir_search_snapshot_find(fifth, NULL, "batch", 5));
    assert_null(fhir_search_snapshot_find(fifth, type_of("Bundle"), "batch", 5));
    fhir_search_iter_init(&it, fifth, NULL);
    n = 0;
    while (fhir_search_iter_next(&it))
        n++;
    assert_int_equal(n, 14);
    assert_int_equal(err.nissues, 0);

    fhir_search_snapshot_release(after);
    fhir_search_snapshot_release(third);
    fhir_search_snapshot_release(fourth);
    fhir_search_registry_free(r); /* fifth outlives the registry */
    assert_non_null(fhir_search_snapshot_find(fifth, patient, "eye-color", 9));
    fhir_search_snapshot_release(fifth);
    err_release(&err);
}

static void expect_put_error(const char *text, const char *message)
{
    fhir_search_registry_t *r = fhir_search_registry_new();
    err_t err = ERR_INIT;
    /* check answers as put would */
    json_t *v = json(text);
    assert_int_equal(fhir_search_registry_check(r, v, &err), ERR_RULE);
    assert_string_equal(err_message(&err), message);
    json_decref(v);
    err_reset(&err);
    assert_int_equal(put(r, text, &err), ERR_RULE);
    assert_string_equal(err_message(&err), message);
    const fhir_search_snapshot_t *s = fhir_search_registry_acquire(r);
    assert_ptr_equal(s, fhir_search_builtin()); /* nothing changed */
    fhir_search_snapshot_release(s);
    err_release(&err);
    fhir_search_registry_free(r);
}

#define SP(rest) "{\"resourceType\":\"SearchParameter\",\"url\":\"http://x/sp\"," rest "}"

static void test_custom_errors(void **state)
{
    (void)state;
    expect_put_error("{\"resourceType\":\"Patient\"}",
                     "cannot register a search parameter: not a SearchParameter");
    expect_put_error("{\"resourceType\":\"SearchParameter\",\"code\":\"x\"}",
                     "cannot register a search parameter without a url");
    expect_put_error(SP("\"code\":\"a.b\",\"base\":[\"Patient\"],\"type\":\"token\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter http://x/sp: code \"a.b\" is not a valid "
                     "parameter name");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"fuzzy\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": unknown type \"fuzzy\"");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"token\""),
                     "cannot register search parameter \"x\": it has no expression");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patients\"],\"type\":\"token\","
                        "\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": \"Patients\" is not a resource "
                     "type");
    expect_put_error(SP("\"code\":\"x\",\"type\":\"token\",\"expression\":\"Patient.x\""),
                     "cannot register search parameter \"x\": it has no base");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"reference\","
                        "\"expression\":\"Patient.x\",\"target\":[\"Nobody\"]"),
                     "cannot register search parameter \"x\": target \"Nobody\" is not a "
                     "resource type");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"composite\","
                        "\"expression\":\"Patient\",\"component\":[{\"definition\":\"http://"
                        "nowhere\",\"expression\":\"a\"},{\"definition\":\"http://hl7.org/fhir/"
                        "SearchParameter/individual-birthdate\",\"expression\":\"birthDate\"}]"),
                     "cannot register composite search parameter \"x\": component "
                     "\"http://nowhere\" is not a known search parameter");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"date\","
                        "\"expression\":\"Patient.x\",\"comparator\":[\"about\"]"),
                     "cannot register search parameter \"x\": unknown comparator \"about\"");
    expect_put_error(SP("\"code\":\"x\",\"base\":[\"Patient\"],\"type\":\"token\","
                        "\"expression\":\"Patient.name.where(\""),
                     "cannot register search parameter \"x\": its expression is not valid "
                     "FHIRPath: could not parse FHIRPath at column 20: expected an expression, "
                     "found the end of the expression");

    /* the R4 definitions by url */
    assert_string_equal(
        fhir_search_builtin_find_url("http://hl7.org/fhir/SearchParameter/Resource-id")->code,
        "_id");
    assert_string_equal(
        fhir_search_builtin_find_url("http://hl7.org/fhir/SearchParameter/individual-birthdate")
            ->code,
        "birthdate");
    assert_null(fhir_search_builtin_find_url("http://example.org/sp/eye-color"));

    /* a valid one: check leaves the registry as it was */
    fhir_search_registry_t *r = fhir_search_registry_new();
    err_t err = ERR_INIT;
    json_t *v = json(EYE_COLOR);
    assert_int_equal(fhir_search_registry_check(r, v, &err), ERR_OK);
    const fhir_search_snapshot_t *s = fhir_search_registry_acquire(r);
    assert_ptr_equal(s, fhir_search_builtin());
    fhir_search_snapshot_release(s);
    json_decref(v);
    err_release(&err);
    fhir_search_registry_free(r);
}

/* Readers acquire, look up and release while a writer registers and removes parameters. */
typedef struct {
    fhir_search_registry_t *registry;
    size_t seen;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *reader = arg;
    const fhir_type_t *patient = fhir_resource_type_find("Patient", 7);
    for (int i = 0; i < 20000; i++) {
        const fhir_search_snapshot_t *s = fhir_search_registry_acquire(reader->registry);
        const fhir_search_param_t *p = fhir_search_snapshot_find(s, patient, "eye-color", 9);
        if (p) {
            if (strncmp(p->expression, "Patient.extension", 17) != 0)
                abort();
            reader->seen++;
        }
        if (!fhir_search_snapshot_find(s, patient, "birthdate", 9))
            abort();
        fhir_search_snapshot_release(s);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    fhir_search_registry_t *r = fhir_search_registry_new();
    reader_t readers[3] = {{r, 0}, {r, 0}, {r, 0}};
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reader_main, &readers[i]), 0);
    err_t err = ERR_INIT;
    for (int i = 0; i < 300; i++) {
        assert_int_equal(put(r, EYE_COLOR, &err), ERR_OK);
        if (i % 3 == 2)
            fhir_search_registry_remove(r, "http://example.org/sp/eye-color");
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    err_release(&err);
    fhir_search_registry_free(r);
}

/* --- values ------------------------------------------------------------------------------ */

static void test_epoch(void **state)
{
    (void)state;
    assert_int_equal(fhir__search_epoch_us(1970, 1, 1, 0, 0, 0), 0);
    assert_int_equal(fhir__search_epoch_us(2000, 3, 1, 0, 0, 0), INT64_C(951868800000000));
    assert_int_equal(fhir__search_epoch_us(1969, 12, 31, 23, 59, 59), -1000000);
    assert_int_equal(fhir__search_epoch_us(2024, 2, 29, 12, 0, 0), INT64_C(1709208000) * 1000000);
    assert_int_equal(fhir__search_epoch_us(1, 1, 1, 0, 0, 0), INT64_C(-62135596800) * 1000000);
}

static void expect_number(const char *text, bool approximate, const char *low, const char *high)
{
    arena_t arena;
    arena_init(&arena);
    fhir_search_number_t n;
    const char *why = fhir__search_parse_number(&arena, text, strlen(text), approximate, &n);
    if (why)
        fail_msg("%s: %s", text, why);
    if (strcmp(n.low, low) != 0 || strcmp(n.high, high) != 0)
        fail_msg("%s: expected [%s, %s) got [%s, %s)", text, low, high, n.low, n.high);
    arena_release(&arena);
}

static void expect_bad_number(const char *text, const char *reason)
{
    arena_t arena;
    arena_init(&arena);
    fhir_search_number_t n;
    const char *why = fhir__search_parse_number(&arena, text, strlen(text), false, &n);
    assert_non_null(why);
    assert_string_equal(why, reason);
    arena_release(&arena);
}

static void test_numbers(void **state)
{
    (void)state;
    expect_number("100", false, "99.5", "100.5");
    expect_number("100.00", false, "99.995", "100.005");
    expect_number("1e2", false, "50", "150");
    expect_number("1.0e2", false, "95", "105");
    expect_number("1.00E+2", false, "99.5", "100.5");
    expect_number("0", false, "-0.5", "0.5");
    expect_number("-0", false, "-0.5", "0.5");
    expect_number("-3", false, "-3.5", "-2.5");
    expect_number("-100.5", false, "-100.55", "-100.45");
    expect_number("0.001", false, "0.0005", "0.0015");
    expect_number("5e-3", false, "0.0045", "0.0055");
    expect_number("007", false, "6.5", "7.5");
    expect_number("99999999999999999999", false, "99999999999999999998.5",
                  "99999999999999999999.5");
    /* ap: 10% of the value each side of the implicit range */
    expect_number("100", true, "89.5", "110.5");
    expect_number("-20", true, "-22.5", "-17.5");
    expect_number("0", true, "-0.5", "0.5");
    expect_number("2.5", true, "2.2", "2.8");
    arena_t arena;
    arena_init(&arena);
    fhir_search_number_t n;
    assert_null(fhir__search_parse_number(&arena, "100.00", 6, false, &n));
    assert_true(n.value == 100.0 && n.low_value == 99.995 && n.high_value == 100.005);
    arena_release(&arena);
    expect_bad_number("", "is not a valid number");
    expect_bad_number("1.", "is not a valid number");
    expect_bad_number(".5", "is not a valid number");
    expect_bad_number("+5", "is not a valid number");
    expect_bad_number("1e", "is not a valid number");
    expect_bad_number("0x10", "is not a valid number");
    expect_bad_number("1,5", "is not a valid number");
    expect_bad_number("NaN", "is not a valid number");
    expect_bad_number("1e400", "is out of range");
    expect_bad_number("2e308", "is out of range"); /* beyond the largest double */
    expect_bad_number("1e-999", "is out of range");
}

static void expect_date(const char *text, const char *low, const char *high,
                        fhir_search_precision_t precision, bool utc_assumed)
{
    fhir_search_value_t v;
    memset(&v, 0, sizeof(v));
    const char *why = fhir__search_parse_date(text, strlen(text), &v);
    if (why)
        fail_msg("%s: %s", text, why);
    buf_t got = BUF_INIT;
    add_instant(&got, v.as.date.low);
    buf_addch(&got, ' ');
    add_instant(&got, v.as.date.high);
    buf_t want = BUF_INIT;
    buf_addf(&want, "%s %s", low, high);
    if (strcmp(got.ptr, want.ptr) != 0)
        fail_msg("%s: expected %s got %s", text, want.ptr, got.ptr);
    assert_int_equal(v.as.date.precision, precision);
    assert_int_equal(v.as.date.utc_assumed, utc_assumed);
    buf_release(&got);
    buf_release(&want);
}

static void expect_bad_date(const char *text)
{
    fhir_search_value_t v;
    if (!fhir__search_parse_date(text, strlen(text), &v))
        fail_msg("%s: expected not a valid date", text);
}

static void test_dates(void **state)
{
    (void)state;
    expect_date("2024", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", FHIR_SEARCH_PRECISION_YEAR,
                true);
    expect_date("2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_MONTH, true);
    expect_date("2023-12", "2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_MONTH, true);
    expect_date("2024-02-29", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_DAY, true);
    expect_date("2000-02-29", "2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_DAY, true);
    expect_date("2024-03-10T14:30", "2024-03-10T14:30:00Z", "2024-03-10T14:31:00Z",
                FHIR_SEARCH_PRECISION_MINUTE, true);
    expect_date("2024-03-10T14:30Z", "2024-03-10T14:30:00Z", "2024-03-10T14:31:00Z",
                FHIR_SEARCH_PRECISION_MINUTE, false);
    expect_date("2024-03-10T14:30:15+02:00", "2024-03-10T12:30:15Z", "2024-03-10T12:30:16Z",
                FHIR_SEARCH_PRECISION_SECOND, false);
    expect_date("2024-03-10T14:30:15 02:00", "2024-03-10T12:30:15Z", "2024-03-10T12:30:16Z",
                FHIR_SEARCH_PRECISION_SECOND, false); /* '+' decoded to a space */
    expect_date("2024-01-01T01:00:00-05:30", "2024-01-01T06:30:00Z", "2024-01-01T06:30:01Z",
                FHIR_SEARCH_PRECISION_SECOND, false);
    expect_date("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00Z", "2025-01-01T00:30:01Z",
                FHIR_SEARCH_PRECISION_SECOND, false);
    expect_date("2024-03-10T14:30:15.5Z", "2024-03-10T14:30:15.500000Z",
                "2024-03-10T14:30:15.600000Z", FHIR_SEARCH_PRECISION_FRACTION, false);
    expect_date("2024-03-10T14:30:15.123Z", "2024-03-10T14:30:15.123000Z",
                "2024-03-10T14:30:15.124000Z", FHIR_SEARCH_PRECISION_FRACTION, false);
    expect_date("2024-03-10T14:30:15.123456Z", "2024-03-10T14:30:15.123456Z",
                "2024-03-10T14:30:15.123457Z", FHIR_SEARCH_PRECISION_FRACTION, false);
    /* beyond microseconds: truncated, one microsecond wide */
    expect_date("2024-03-10T14:30:15.1234569Z", "2024-03-10T14:30:15.123456Z",
                "2024-03-10T14:30:15.123457Z", FHIR_SEARCH_PRECISION_FRACTION, false);
    expect_date("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999000Z", "1970-01-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_FRACTION, false);
    /* a leap second (the R4 dateTime pattern allows :60) is the last second of its minute */
    expect_date("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z", "2017-01-01T00:00:00Z",
                FHIR_SEARCH_PRECISION_SECOND, false);
    expect_date("2016-12-31T23:59:60.5Z", "2016-12-31T23:59:59.500000Z",
                "2016-12-31T23:59:59.600000Z", FHIR_SEARCH_PRECISION_FRACTION, false);
    expect_date("0001", "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z", FHIR_SEARCH_PRECISION_YEAR,
                true);
    expect_date("9999-12-31T23:59:59+14:00", "9999-12-31T09:59:59Z", "9999-12-31T10:00:00Z",
                FHIR_SEARCH_PRECISION_SECOND, false);
    /* the public form: a range, its precision and whether a time had a zone */
    int64_t lo, hi;
    fhir_search_precision_t precision;
    bool zoned = true;
    assert_true(fhir_date_range("2024-03", 7, &lo, &hi, &precision, &zoned));
    assert_int_equal(lo, fhir__search_epoch_us(2024, 3, 1, 0, 0, 0));
    assert_int_equal(hi, fhir__search_epoch_us(2024, 4, 1, 0, 0, 0));
    assert_int_equal(precision, FHIR_SEARCH_PRECISION_MONTH);
    assert_false(zoned);
    assert_true(fhir_date_range("2024-03-10T14:30:15Z", 20, &lo, &hi, NULL, &zoned));
    assert_true(zoned);
    assert_true(fhir_date_range("2024-03-10T14:30:15", 19, &lo, &hi, NULL, &zoned));
    assert_false(zoned);
    assert_false(fhir_date_range("yesterday", 9, &lo, &hi, NULL, NULL));
    expect_bad_date("");
    expect_bad_date("24");
    expect_bad_date("0000");
    expect_bad_date("2024-13");
    expect_bad_date("2024-00");
    expect_bad_date("2023-02-29"); /* not a leap year */
    expect_bad_date("1900-02-29"); /* divisible by 100, not by 400 */
    expect_bad_date("2024-04-31");
    expect_bad_date("2024-1-01");
    expect_bad_date("2024-01-01T");
    expect_bad_date("2024-01-01T10");
    expect_bad_date("2024-01-01T24:00");
    expect_bad_date("2024-01-01T10:60");
    expect_bad_date("2024-01-01T10:00:61");
    expect_bad_date("2024-01-01T10:00:00.");
    expect_bad_date("2024-01-01T10:00+15:00");
    expect_bad_date("2024-01-01T10:00+14:30");
    expect_bad_date("2024-01-01T10:00+0100");
    expect_bad_date("2024-01-01Z"); /* a zone needs a time */
    expect_bad_date("2024-01T10:00");
    expect_bad_date("2024-01-01 10:00");
    expect_bad_date("2024-01-01T10:00Zjunk");
}

static void expect_normalized(const char *in, const char *out)
{
    buf_t b = BUF_INIT;
    fhir_search_normalize(in, strlen(in), &b);
    assert_string_equal(b.ptr, out);
    buf_release(&b);
}

static void test_normalize(void **state)
{
    (void)state;
    expect_normalized("Smith", "smith");
    expect_normalized("Müller-Lüdenscheidt", "muller-ludenscheidt");
    expect_normalized("ÉLODIE Façade", "elodie facade");
    expect_normalized("Straße", "strasse");
    expect_normalized("Łódź", "lodz");
    expect_normalized("Æsir Œuvre Øre", "aesir oeuvre ore");
    expect_normalized("Dvořák", "dvorak");
    expect_normalized("José", "jose");         /* decomposed: e + combining acute */
    expect_normalized("ΣΩΚΡΆΤΗΣ", "σωκρατησ"); /* Greek, final sigma folded */
    expect_normalized("Пётр ЁЛКИН", "петр елкин");
    expect_normalized("李小龍 ☃ 🎵", "李小龍 ☃ 🎵");
    expect_normalized("", "");
}

/* --- the parser: API and modes ----------------------------------------------------------- */

static void test_lenient_and_strict(void **state)
{
    (void)state;
    expect_plan("Patient?foo=bar&gender=female&birthdate=2024-13",
                "branch Patient\n"
                "  param Patient.gender token\n"
                "    = *|\"female\"\n"
                "count 50\n"
                "ignored foo=bar: unknown search parameter \"foo\" for Patient\n"
                "ignored birthdate=2024-13: \"2024-13\" is not a valid date for birthdate\n"
                "self gender=female\n");
    expect_strict_errors("Patient?foo=bar&gender=female&birthdate=2024-13",
                         "unknown search parameter \"foo\" for Patient\n"
                         "\"2024-13\" is not a valid date for birthdate");
    expect_strict_errors("Patient?gender:exact=male",
                         "modifier \":exact\" does not apply to token parameter \"gender\"");
    /* a clean query is the same in both modes */
    char *lenient = plan_text(NULL, "Patient?gender=male&_count=10", false);
    char *strict = plan_text(NULL, "Patient?gender=male&_count=10", true);
    assert_string_equal(lenient, strict);
    free(lenient);
    free(strict);
}

static void test_limits(void **state)
{
    (void)state;
    arena_t arena;
    arena_init(&arena);
    err_t err = ERR_INIT;
    fhir_search_pair_t pairs[FHIR_SEARCH_MAX_PAIRS + 1];
    for (size_t i = 0; i <= FHIR_SEARCH_MAX_PAIRS; i++)
        pairs[i] = (fhir_search_pair_t){"gender", 6, "male", 4};
    fhir_search_query_t q = {pairs, FHIR_SEARCH_MAX_PAIRS + 1, false, 0};
    fhir_search_plan_t *plan;
    assert_int_equal(fhir_search_parse(NULL, type_of("Patient"), &q, &arena, &plan, &err),
                     ERR_INVALID);
    assert_null(plan);
    assert_string_equal(err_message(&err), "too many search parameters (257, at most 256)");
    err_reset(&err);
    q.npairs = FHIR_SEARCH_MAX_PAIRS;
    assert_int_equal(fhir_search_parse(NULL, type_of("Patient"), &q, &arena, &plan, &err), ERR_OK);
    assert_int_equal(plan->branches[0].nclauses, FHIR_SEARCH_MAX_PAIRS);
    /* bytes that are not UTF-8, and NUL, fail in either mode */
    pairs[0] = (fhir_search_pair_t){"name", 4, "\xC3\x28", 2};
    q.npairs = 1;
    assert_int_equal(fhir_search_parse(NULL, type_of("Patient"), &q, &arena, &plan, &err),
                     ERR_INVALID);
    assert_string_equal(err_message(&err), "search parameter 1 is not valid UTF-8 text");
    err_reset(&err);
    pairs[0] = (fhir_search_pair_t){"name", 4, "a\0b", 3};
    assert_int_equal(fhir_search_parse(NULL, type_of("Patient"), &q, &arena, &plan, &err),
                     ERR_INVALID);
    err_release(&err);
    arena_release(&arena);
}

/* The plan holds its snapshot: a registry change after parsing does not touch it. */
static void test_plan_keeps_snapshot(void **state)
{
    (void)state;
    fhir_search_registry_t *r = fhir_search_registry_new();
    err_t err = ERR_INIT;
    assert_int_equal(put(r, EYE_COLOR, &err), ERR_OK);
    arena_t arena;
    arena_init(&arena);
    fhir_search_plan_t *plan;
    assert_int_equal(run_query(r, &arena, "Patient?eye-color=green", true, &plan, &err), ERR_OK);
    assert_true(fhir_search_registry_remove(r, "http://example.org/sp/eye-color"));
    fhir_search_registry_free(r);
    const fhir_search_param_t *p = plan->branches[0].clauses[0].param;
    assert_string_equal(p->code, "eye-color");
    assert_string_equal(p->expression, "Patient.extension('http://example.org/eye').value");
    arena_release(&arena); /* releases the last reference */
    err_release(&err);
}

/* --- data-driven cases ------------------------------------------------------------------- */

static bool read_file(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    fclose(f);
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_data(void **state)
{
    (void)state;
    DIR *dir = opendir(DATA_DIR);
    assert_non_null(dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len > 6 && strcmp(entry->d_name + len - 6, ".query") == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrndup(entry->d_name, len - 6);
        }
    }
    closedir(dir);
    assert_true(n >= 40);
    qsort(names, n, sizeof(*names), compare_names);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        buf_t path = BUF_INIT, query = BUF_INIT, expected = BUF_INIT;
        buf_addf(&path, DATA_DIR "/%s.query", names[i]);
        assert_true(read_file(path.ptr, &query));
        buf_reset(&path);
        buf_addf(&path, DATA_DIR "/%s.expected", names[i]);
        if (!read_file(path.ptr, &expected))
            fail_msg("%s is missing", path.ptr);
        char *nl = strchr(query.ptr, '\n');
        bool strict = nl && strncmp(nl + 1, "strict", 6) == 0;
        if (nl)
            *nl = '\0';
        char *got = plan_text(NULL, query.ptr, strict);
        if (strcmp(got, expected.ptr) != 0) {
            print_message("%s: %s\nexpected\n%sgot\n%s\n", names[i], query.ptr, expected.ptr, got);
            failures++;
        }
        free(got);
        buf_release(&path);
        buf_release(&query);
        buf_release(&expected);
        free(names[i]);
    }
    free(names);
    if (failures)
        fail_msg("%zu data-driven search cases failed", failures);
}

/* How many values a parameter gives a resource, proven from the type model or not. */
static void test_param_values(void **state)
{
    (void)state;
    static const struct {
        const char *type, *code;
        fhir_search_values_t expected;
    } cases[] = {
        {"Patient", "birthdate", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"Patient", "death-date", FHIR_SEARCH_VALUES_ONE_SHORT}, /* (deceased as dateTime) */
        {"Patient", "name", FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient", "given", FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient", "_lastUpdated", FHIR_SEARCH_VALUES_ONE_SHORT},
        /* effective[x] may be a Timing, one value per event */
        {"Observation", "date", FHIR_SEARCH_VALUES_SEVERAL},
        {"Observation", "value-date", FHIR_SEARCH_VALUES_ONE}, /* dateTime | Period */
        {"Encounter", "date", FHIR_SEARCH_VALUES_ONE},         /* a Period */
        {"Encounter", "location-period", FHIR_SEARCH_VALUES_SEVERAL},
        {"Condition", "onset-date", FHIR_SEARCH_VALUES_ONE},
        {"Condition", "recorded-date", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"MedicationRequest", "authoredon", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"MedicationRequest", "date", FHIR_SEARCH_VALUES_SEVERAL}, /* Timing events */
        {"MedicationAdministration", "effective-time", FHIR_SEARCH_VALUES_ONE},
        {"CarePlan", "date", FHIR_SEARCH_VALUES_ONE},
        {"CarePlan", "activity-date", FHIR_SEARCH_VALUES_SEVERAL},
        {"Immunization", "date", FHIR_SEARCH_VALUES_ONE}, /* dateTime | string */
        {"DeviceRequest", "event-date", FHIR_SEARCH_VALUES_ONE},
        {"Goal", "target-date", FHIR_SEARCH_VALUES_SEVERAL}, /* target repeats */
        {"Procedure", "date", FHIR_SEARCH_VALUES_ONE},
        {"Observation", "code", FHIR_SEARCH_VALUES_ONE}, /* one CodeableConcept */
        {"Observation", "subject", FHIR_SEARCH_VALUES_ONE},
        {"Observation", "performer", FHIR_SEARCH_VALUES_SEVERAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fhir_search_param_t *p =
            fhir_search_param_find(type_of(cases[i].type), cases[i].code, strlen(cases[i].code));
        assert_non_null(p);
        fhir_search_values_t got = fhir_search_param_values(p);
        if (got != cases[i].expected)
            fail_msg("%s.%s (%s): %d, expected %d", cases[i].type, cases[i].code, p->expression,
                     (int)got, (int)cases[i].expected);
        assert_int_equal(fhir_search_param_values(p), got); /* remembered */
    }

    /* custom parameters are answered too */
    static const struct {
        const char *expression;
        fhir_search_values_t expected;
    } custom[] = {
        {"Patient.birthDate", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"Patient.birthDate.where($this > @1900)", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"Patient.extension('http://example.org/x').value", FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient.birthDate | Patient.deceased.as(dateTime)", FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient.deceased.as(dateTime) | Patient.deceased.as(dateTime)",
         FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient.deceased.ofType(dateTime)", FHIR_SEARCH_VALUES_ONE_SHORT},
        {"Patient.deceased", FHIR_SEARCH_VALUES_ONE}, /* boolean | dateTime */
        {"Patient.contact.period", FHIR_SEARCH_VALUES_SEVERAL},
        {"Patient.birthDate.first()", FHIR_SEARCH_VALUES_SEVERAL}, /* not understood */
    };
    fhir_search_registry_t *r = fhir_search_registry_new();
    for (size_t i = 0; i < sizeof(custom) / sizeof(custom[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "{\"resourceType\":\"SearchParameter\",\"url\":\"http://example.org/sp/"
                 "when\",\"status\":\"active\",\"code\":\"when\",\"base\":[\"Patient\"],"
                 "\"type\":\"date\",\"expression\":\"%s\"}",
                 custom[i].expression);
        err_t err = ERR_INIT;
        assert_int_equal(put(r, text, &err), ERR_OK);
        const fhir_search_snapshot_t *snapshot = fhir_search_registry_acquire(r);
        const fhir_search_param_t *p =
            fhir_search_snapshot_find(snapshot, type_of("Patient"), "when", 4);
        assert_non_null(p);
        if (fhir_search_param_values(p) != custom[i].expected)
            fail_msg("%s: %d, expected %d", custom[i].expression, (int)fhir_search_param_values(p),
                     (int)custom[i].expected);
        fhir_search_snapshot_release(snapshot);
    }
    fhir_search_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_builtin_lookups),
        cmocka_unit_test(test_restrict),
        cmocka_unit_test(test_restrict_matches_generator),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_custom_parameters),
        cmocka_unit_test(test_custom_errors),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_lenient_and_strict),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_plan_keeps_snapshot),
        cmocka_unit_test(test_data),
        cmocka_unit_test(test_param_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
