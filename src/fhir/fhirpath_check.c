/*
 * fhirpath_check.c - the strict check: the compiled tree walked with the set of FHIR types
 * each step can have, so a path naming no element (name.given1, Observation.valueQuantity)
 * is reported before any data is seen; a path rooted in another resource type (one branch of
 * Patient.name | Practitioner.name) is checked against that type.
 * Steps whose type cannot be known (System values, resolve(), children()) check nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fhir/fhirpath_int.h"

#define MAX_TYPES 64

typedef struct {
    const fhir_type_t *types[MAX_TYPES];
    size_t n;
    bool any;       /* unknown: anything goes */
    bool unordered; /* from children() or descendants() */
} tset_t;

typedef struct {
    err_t *err;
    unsigned options;
    const fhirpath_t *expr;
} checker_t;

static void set_any(tset_t *s)
{
    s->n = 0;
    s->any = true;
    s->unordered = false;
}

static void add_type(tset_t *s, const fhir_type_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->types[i] == t)
            return;
    if (s->n == MAX_TYPES) {
        s->any = true;
        return;
    }
    s->types[s->n++] = t;
}

static status_t fail(checker_t *c, const fp_ast_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static status_t fail(checker_t *c, const fp_ast_t *node, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return err_set(c->err, ERR_INVALID, NULL, "invalid FHIRPath at column %u: %s",
                   node->position + 1, what);
}

static const char *type_list(const tset_t *s, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < s->n && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", s->types[i]->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static status_t member(checker_t *c, const fp_ast_t *node, const tset_t *in, tset_t *out)
{
    memset(out, 0, sizeof(*out));
    out->unordered = in->unordered;
    if (in->any) {
        out->any = true;
        return ERR_OK;
    }
    bool found = false;
    for (size_t i = 0; i < in->n; i++) {
        const fhir_element_t *el =
            fhirpath__model_element_named(in->types[i], node->name, node->name_len);
        if (!el)
            continue;
        found = true;
        for (uint16_t t = 0; t < el->ntypes; t++)
            add_type(out, el->types[t]);
        if (el->ntypes == 0)
            out->any = true;
    }
    if (!found && in->n > 0) {
        char list[256];
        return fail(c, node, "no element '%s' in %s", node->name,
                    type_list(in, list, sizeof(list)));
    }
    if (!found)
        out->any = true;
    for (size_t i = 0; i < out->n; i++)
        if (out->types[i]->kind == FHIR_KIND_ABSTRACT)
            out->any = true; /* Resource: the concrete type is in the data */
    return ERR_OK;
}

static status_t check(checker_t *c, const fp_ast_t *node, const tset_t *this_set, tset_t *out);

static bool is_ordered_function(const char *name)
{
    static const char *names[] = {"first", "last", "tail", "skip", "take", "single"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static status_t check_call(checker_t *c, const fp_ast_t *node, const tset_t *this_set, tset_t *out)
{
    tset_t in;
    status_t rc;
    if (node->left) {
        if ((rc = check(c, node->left, this_set, &in)))
            return rc;
    } else {
        in = *this_set;
    }
    const char *name = node->name;
    if ((c->options & FHIRPATH_CHECK_ORDERED) && in.unordered && is_ordered_function(name))
        return fail(c, node,
                    "%s() needs an ordered collection, and children() and "
                    "descendants() are not ordered",
                    name);
    const tset_t *arg_this = node->function->iterates ? &in : this_set;
    tset_t last;
    set_any(&last);
    for (size_t i = 0; i < node->nargs; i++)
        if ((rc = check(c, node->args[i], arg_this, &last)))
            return rc;
    if (strcmp(name, "where") == 0 || is_ordered_function(name) || strcmp(name, "distinct") == 0 ||
        strcmp(name, "trace") == 0 || strcmp(name, "intersect") == 0 ||
        strcmp(name, "exclude") == 0) {
        *out = in;
    } else if (strcmp(name, "select") == 0) {
        *out = last;
    } else if (strcmp(name, "ofType") == 0 || strcmp(name, "as") == 0) {
        memset(out, 0, sizeof(*out));
        const fhir_type_t *t = fhirpath__model_type(node->type.name, strlen(node->type.name));
        if (t && (!node->type.namespace_ || strcmp(node->type.namespace_, "FHIR") == 0))
            add_type(out, t);
        else
            out->any = true;
    } else if (strcmp(name, "children") == 0 || strcmp(name, "descendants") == 0) {
        set_any(out);
        out->unordered = true;
    } else if (strcmp(name, "extension") == 0) {
        memset(out, 0, sizeof(*out));
        const fhir_type_t *t = fhirpath__model_type("Extension", 9);
        if (t)
            add_type(out, t);
        else
            out->any = true;
    } else {
        set_any(out);
    }
    return ERR_OK;
}

static status_t check(checker_t *c, const fp_ast_t *node, const tset_t *this_set, tset_t *out)
{
    status_t rc;
    tset_t l, r;
    switch (node->kind) {
    case FP_N_IDENT: {
        if (node->name[0] >= 'A' && node->name[0] <= 'Z' && !this_set->any) {
            const fhir_type_t *named = fhirpath__model_type(node->name, node->name_len);
            if (named && named->kind == FHIR_KIND_RESOURCE) {
                memset(out, 0, sizeof(*out));
                for (size_t i = 0; i < this_set->n; i++)
                    if (fhirpath__model_is_a(this_set->types[i], named))
                        add_type(out, this_set->types[i]);
                if (out->n)
                    return ERR_OK;
                /* another resource type is a branch that selects nothing here
                 * (Patient.name | Practitioner.name); its path is checked against it */
                add_type(out, named);
                return ERR_OK;
            }
        }
        return member(c, node, this_set, out);
    }
    case FP_N_MEMBER:
        if ((rc = check(c, node->left, this_set, &l)))
            return rc;
        return member(c, node, &l, out);
    case FP_N_CALL: return check_call(c, node, this_set, out);
    case FP_N_THIS: *out = *this_set; return ERR_OK;
    case FP_N_INDEXER:
        if ((rc = check(c, node->left, this_set, &l)) || (rc = check(c, node->right, this_set, &r)))
            return rc;
        if ((c->options & FHIRPATH_CHECK_ORDERED) && l.unordered)
            return fail(c, node, "an index needs an ordered collection");
        *out = l;
        return ERR_OK;
    case FP_N_TYPE:
        if ((rc = check(c, node->left, this_set, &l)))
            return rc;
        memset(out, 0, sizeof(*out));
        if (node->op == FP_OP_AS) {
            const fhir_type_t *t = fhirpath__model_type(node->type.name, strlen(node->type.name));
            if (t && (!node->type.namespace_ || strcmp(node->type.namespace_, "FHIR") == 0))
                add_type(out, t);
            else
                out->any = true;
        } else {
            out->any = true;
        }
        return ERR_OK;
    case FP_N_UNARY:
        if ((rc = check(c, node->left, this_set, &l)))
            return rc;
        set_any(out);
        return ERR_OK;
    case FP_N_BINARY:
        if ((rc = check(c, node->left, this_set, &l)) || (rc = check(c, node->right, this_set, &r)))
            return rc;
        set_any(out);
        return ERR_OK;
    default: set_any(out); return ERR_OK;
    }
}

status_t fhirpath_check(const fhirpath_t *expr, const char *type_name, unsigned options, err_t *err)
{
    if (!type_name)
        return ERR_OK;
    const fhir_type_t *type = fhirpath__model_type(type_name, strlen(type_name));
    if (!type)
        return err_set(err, ERR_INVALID, NULL, "cannot check FHIRPath: unknown type '%s'",
                       type_name);
    checker_t c = {err, options, expr};
    tset_t root = {0}, out;
    add_type(&root, type);
    return check(&c, expr->root, &root, &out);
}
