/*
 * fhirpath_int.h - what the files of the FHIRPath engine share: the exact decimal, the
 * date/time values, quantities and units, the compiled tree, items and collections.
 *
 * Invariants: a compiled tree is immutable after fhirpath_compile; everything an evaluation
 * makes (items, collections, strings) comes from the evaluation's arena and is never freed
 * one by one; items are small values copied freely, and FHIR nodes they point to are shared.
 */
#ifndef CONCERTO_FHIR_FHIRPATH_INT_H
#define CONCERTO_FHIR_FHIRPATH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"

/* ---- exact decimal: coef / 10^scale, |coef| < 10^38 ---- */

#define FP_DECIMAL_MAX_SCALE 30
#define FP_DIVISION_SCALE    8

typedef struct {
    __int128 coef;
    int32_t scale; /* 0..FP_DECIMAL_MAX_SCALE */
} fp_decimal_t;

/* Parses [+-]digits[.digits][e[+-]digits]; false when malformed or out of range. */
bool fhirpath__decimal_parse(const char *text, size_t len, fp_decimal_t *out);
fp_decimal_t fhirpath__decimal_from_int(int64_t value);
/* Exact text with the value's scale ("1.50" stays "1.50"). */
void fhirpath__decimal_text(fp_decimal_t value, buf_t *out);
/* false on overflow */
bool fhirpath__decimal_add(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out);
bool fhirpath__decimal_sub(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out);
bool fhirpath__decimal_mul(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out);
/* Quotient rounded half away from zero at max(scale, operands' scales) digits, trailing zeros
 * beyond the operands' scales dropped; false on overflow or division by zero. */
bool fhirpath__decimal_div(fp_decimal_t a, fp_decimal_t b, int scale, fp_decimal_t *out);
/* Integer quotient truncated toward zero, and the matching remainder. */
bool fhirpath__decimal_divint(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out_quotient);
bool fhirpath__decimal_mod(fp_decimal_t a, fp_decimal_t b, fp_decimal_t *out);
int fhirpath__decimal_cmp(fp_decimal_t a, fp_decimal_t b);
int fhirpath__decimal_sign(fp_decimal_t a);
fp_decimal_t fhirpath__decimal_neg(fp_decimal_t a);
/* Rounds half away from zero to `digits` places (digits >= 0). */
fp_decimal_t fhirpath__decimal_round(fp_decimal_t a, int digits);
fp_decimal_t fhirpath__decimal_trunc(fp_decimal_t a);
fp_decimal_t fhirpath__decimal_floor(fp_decimal_t a);
fp_decimal_t fhirpath__decimal_ceil(fp_decimal_t a);
/* Drops trailing fractional zeros down to min_scale. */
fp_decimal_t fhirpath__decimal_trim(fp_decimal_t a, int min_scale);
/* Changes the scale; false when digits would be lost or the value would overflow. */
bool fhirpath__decimal_rescale(fp_decimal_t a, int scale, fp_decimal_t *out);
bool fhirpath__decimal_to_int64(fp_decimal_t a, int64_t *out); /* only when integral */
double fhirpath__decimal_to_double(fp_decimal_t a);
/* From a double, rounded to 15 significant digits, trailing zeros dropped. */
bool fhirpath__decimal_from_double(double value, fp_decimal_t *out);

/* ---- dates, date-times and times with partial precision ---- */

typedef enum {
    FP_PREC_YEAR = 1,
    FP_PREC_MONTH,
    FP_PREC_DAY,
    FP_PREC_HOUR,
    FP_PREC_MINUTE,
    FP_PREC_SECOND,
    FP_PREC_MILLISECOND,
} fp_precision_t;

typedef struct {
    int16_t year;
    int8_t month, day, hour, minute, second;
    int16_t millisecond;
    uint8_t precision;  /* fp_precision_t; a time starts at FP_PREC_HOUR */
    bool has_tz, tz_z;  /* tz_z: written as "Z" */
    int16_t tz_minutes; /* offset east of UTC */
} fp_temporal_t;

/* "YYYY[-MM[-DD]]" */
bool fhirpath__date_parse(const char *text, size_t len, fp_temporal_t *out);
/* "YYYY[-MM[-DD]][T[hh[:mm[:ss[.fff]]]][Z|+hh:mm]]"; literal allows the bare "T" */
bool fhirpath__datetime_parse(const char *text, size_t len, fp_temporal_t *out);
/* "hh[:mm[:ss[.fff]]]" */
bool fhirpath__time_parse(const char *text, size_t len, fp_temporal_t *out);
void fhirpath__temporal_text(const fp_temporal_t *value, fhirpath_kind_t kind, buf_t *out);

typedef enum { FP_CMP_LT = -1, FP_CMP_EQ = 0, FP_CMP_GT = 1, FP_CMP_UNKNOWN = 2 } fp_cmp_t;
/* Ordering by precision: unknown when a precision is in one value only and all before agree. */
fp_cmp_t fhirpath__temporal_compare(const fp_temporal_t *a, const fp_temporal_t *b);
/* = semantics: 1 equal, 0 not equal, -1 unknown */
int fhirpath__temporal_equal(const fp_temporal_t *a, const fp_temporal_t *b);
bool fhirpath__temporal_equivalent(const fp_temporal_t *a, const fp_temporal_t *b);
/* Adds amount of a calendar unit (FP_PREC_*, weeks as 7 days); false when out of range. */
bool fhirpath__temporal_add(fp_temporal_t *value, fhirpath_kind_t kind, int unit, int64_t amount);

/* ---- quantities ---- */

typedef struct {
    fp_decimal_t value;
    const char *unit; /* UCUM code, or a calendar keyword when calendar is set */
    uint32_t unit_len;
    bool calendar; /* year(s), month(s), week(s), day(s), hour(s), ... written unquoted */
} fp_quantity_t;

/* Calendar keyword ("days" -> FP_PREC_DAY, "weeks" -> 0 with *out_week); -1 if not one. */
int fhirpath__calendar_unit(const char *word, size_t len, bool *out_week);
/* a = b: 1, 0, or -1 when the units are not comparable. */
int fhirpath__quantity_equal(const fp_quantity_t *a, const fp_quantity_t *b, bool equivalent);
/* Ordering after conversion to common units; FP_CMP_UNKNOWN when not comparable. */
fp_cmp_t fhirpath__quantity_compare(const fp_quantity_t *a, const fp_quantity_t *b);
/* + and -: b converted to a's unit. false when not comparable or on overflow. */
bool fhirpath__quantity_add(const fp_quantity_t *a, const fp_quantity_t *b, bool subtract,
                            arena_t *arena, fp_quantity_t *out);
bool fhirpath__quantity_mul(const fp_quantity_t *a, const fp_quantity_t *b, bool divide,
                            arena_t *arena, fp_quantity_t *out);
/* True when unit is a UCUM unit this engine can convert (or an annotation). */
bool fhirpath__ucum_valid(const char *unit, size_t len);
void fhirpath__quantity_text(const fp_quantity_t *q, buf_t *out);

/* ---- items and collections ---- */

/* An element of a resource (or a resource). */
typedef struct fp_node fp_node_t;
struct fp_node {
    json_t *json;            /* the value; NULL for a primitive that has only extensions */
    json_t *ext;             /* the primitive's "_name" object (id, extension), or NULL */
    const fhir_type_t *type; /* from the model, or NULL */
    const char *type_name;   /* FHIR type name ("Quantity", "date"), or NULL when unknown */
    const fp_node_t *parent; /* for paths */
    const char *name;        /* member name in the parent's JSON; root: resource type */
    int32_t index;           /* position in a JSON array, or -1 */
    bool choice;             /* reached through a choice element (value[x]) */
};

typedef struct {
    const char *namespace_; /* "System" or "FHIR" */
    const char *name;
} fp_typeinfo_t;

struct fhirpath_item {
    uint8_t kind; /* fhirpath_kind_t */
    union {
        const fp_node_t *node;
        bool boolean;
        int64_t integer;
        fp_decimal_t decimal;
        struct {
            const char *ptr;
            size_t len;
        } string;
        fp_temporal_t temporal;
        fp_quantity_t quantity;
        fp_typeinfo_t type;
    } u;
};
typedef struct fhirpath_item fp_item_t;

struct fhirpath_result {
    fp_item_t *items;
    size_t count, cap;
};
typedef struct fhirpath_result fp_coll_t;

/* ---- the compiled tree ---- */

typedef enum {
    FP_N_EMPTY,    /* {} */
    FP_N_LITERAL,  /* a System value */
    FP_N_IDENT,    /* identifier evaluated against $this (a path's first step) */
    FP_N_MEMBER,   /* left.identifier */
    FP_N_CALL,     /* left.function(args) or function(args) on $this (left NULL) */
    FP_N_THIS,     /* $this */
    FP_N_INDEX,    /* $index */
    FP_N_TOTAL,    /* $total */
    FP_N_VARIABLE, /* %name */
    FP_N_INDEXER,  /* left[right] */
    FP_N_UNARY,    /* op left */
    FP_N_BINARY,   /* left op right */
    FP_N_TYPE,     /* left is/as Type */
} fp_node_kind_t;

typedef enum {
    FP_OP_NONE,
    FP_OP_MUL,
    FP_OP_DIV,
    FP_OP_DIVINT,
    FP_OP_MOD,
    FP_OP_ADD,
    FP_OP_SUB,
    FP_OP_CONCAT,
    FP_OP_UNION,
    FP_OP_LT,
    FP_OP_LE,
    FP_OP_GT,
    FP_OP_GE,
    FP_OP_IS,
    FP_OP_AS,
    FP_OP_EQ,
    FP_OP_EQUIV,
    FP_OP_NE,
    FP_OP_NEQUIV,
    FP_OP_IN,
    FP_OP_CONTAINS,
    FP_OP_AND,
    FP_OP_OR,
    FP_OP_XOR,
    FP_OP_IMPLIES,
    FP_OP_NEG,
    FP_OP_POS,
} fp_op_t;

/* A type named in is/as/ofType: optional namespace, resolved once at compile time. */
typedef struct {
    const char *namespace_; /* "System", "FHIR" or NULL */
    const char *name;
    int system_kind; /* fhirpath_kind_t of a System type, or -1 */
} fp_typespec_t;

typedef struct fp_ast fp_ast_t;
typedef struct fp_function fp_function_t;

struct fp_ast {
    fp_node_kind_t kind;
    fp_op_t op;
    uint32_t position;      /* 0-based offset of the node's first character */
    fp_ast_t *left, *right; /* operands, the focus of a member or call */
    const char *name;       /* identifier, variable or function name (NUL-terminated) */
    size_t name_len;
    const fp_function_t *function;
    fp_ast_t **args;
    size_t nargs;
    fp_item_t literal;
    fp_typespec_t type;
};

struct fhirpath {
    char *text;
    size_t len;
    fp_ast_t *root;
    arena_t arena; /* owns the tree */
};

/* The function table (fhirpath_func.c). */
typedef struct fp_eval fp_eval_t;
typedef struct fp_frame fp_frame_t;

typedef status_t (*fp_function_fn)(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *call,
                                   const fp_coll_t *input, fp_coll_t *out);

struct fp_function {
    const char *name;
    uint8_t min_args, max_args;
    bool type_arg; /* the argument is a type specifier (is, as, ofType) */
    bool iterates; /* the arguments are evaluated per input item with $this bound */
    fp_function_fn fn;
};

const fp_function_t *fhirpath__function_find(const char *name, size_t len);

/* ---- evaluation state ---- */

struct fp_frame {
    const fp_frame_t *outer;
    const fp_item_t *this_item; /* NULL at the top: $this is the context collection */
    const fp_coll_t *this_coll;
    int64_t index;
    const fp_coll_t *total; /* aggregate's $total, or NULL */
};

struct fp_eval {
    const fhirpath_t *expr;
    const fhirpath_env_t *env;
    arena_t *arena;
    err_t *err;
    fp_coll_t context;  /* %context as a collection */
    fp_coll_t resource; /* %resource */
    fp_coll_t root_resource;
    bool have_now;
    fp_temporal_t now; /* fixed for one evaluation */
    unsigned depth;
    size_t budget; /* items produced; evaluation stops past FHIRPATH_MAX_ITEMS */
    uint64_t work; /* item comparisons; evaluation stops past FHIRPATH_MAX_WORK */
};

#define FHIRPATH_MAX_WORK ((uint64_t)50 * 1000 * 1000)

/* A collection with a hash index over its items for = lookups (union, distinct, ...). */
typedef struct {
    fp_coll_t *coll;
    uint32_t *heads, *next; /* bucket chains of item positions + 1 */
    uint64_t *hashes;
    size_t nbuckets, cap, indexed;
} fp_set_t;

/* Indexes the items already in coll; expected sizes the table. */
void fhirpath__set_init(fp_eval_t *ev, fp_set_t *set, fp_coll_t *coll, size_t expected);
void fhirpath__set_index(fp_eval_t *ev, fp_set_t *set, size_t i);
/* An item equal (=) to item is in the set; comparisons count against the budget. */
bool fhirpath__set_has(fp_eval_t *ev, const fp_set_t *set, const fp_item_t *item);
/* Appends item to the set's collection and indexes it. */
void fhirpath__set_push(fp_eval_t *ev, fp_set_t *set, const fp_item_t *item);
/* out gets the items of a then b that are not already in out (the | operator). */
void fhirpath__union(fp_eval_t *ev, const fp_coll_t *a, const fp_coll_t *b, fp_coll_t *out);

/* An error once the evaluation has made too many items or comparisons. */
status_t fhirpath__check_budget(fp_eval_t *ev, const fp_ast_t *node);
/* An item equal (=) to item is in c; counts the comparisons against the budget. */
bool fhirpath__coll_has(fp_eval_t *ev, const fp_coll_t *c, const fp_item_t *item);

#define FP_MAX_DEPTH 200

/* Evaluates node, appending its items to out. A path's first step and a function without a
 * focus apply to the frame's $this. */
status_t fhirpath__eval_node(fp_eval_t *ev, const fp_frame_t *frame, const fp_ast_t *node,
                             fp_coll_t *out);
status_t fhirpath__fail(fp_eval_t *ev, const fp_ast_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void fhirpath__coll_init(fp_coll_t *c);
void fhirpath__coll_push(fp_eval_t *ev, fp_coll_t *c, const fp_item_t *item);
void fhirpath__coll_append(fp_eval_t *ev, fp_coll_t *c, const fp_coll_t *more);
void fhirpath__push_boolean(fp_eval_t *ev, fp_coll_t *c, bool value);
void fhirpath__push_integer(fp_eval_t *ev, fp_coll_t *c, int64_t value);
void fhirpath__push_decimal(fp_eval_t *ev, fp_coll_t *c, fp_decimal_t value);
void fhirpath__push_string(fp_eval_t *ev, fp_coll_t *c, const char *s, size_t len);

/* A node item turned into its System value when it is a primitive (or a Quantity);
 * other items are copied. Returns false when the primitive's text is not valid. */
bool fhirpath__system_value(const fp_item_t *item, fp_item_t *out);
/* The item's string value when it is (or holds) a String; NULL otherwise. */
const char *fhirpath__string_of(const fp_item_t *item, size_t *out_len);
/* = between two items: 1, 0, -1 (unknown) */
int fhirpath__items_equal(const fp_item_t *a, const fp_item_t *b);
bool fhirpath__items_equivalent(const fp_item_t *a, const fp_item_t *b);
/* toString() semantics; false when the item has no string form. */
bool fhirpath__item_to_string(fp_eval_t *ev, const fp_item_t *item, const char **out,
                              size_t *out_len);
/* 'true', 't', 'yes', 'y', '1', '1.0' (any case) are 1, their opposites 0, others -1. */
int fhirpath__string_to_boolean(const char *s, size_t n);
/* Singleton boolean: 1, 0, -1 (empty or not convertible); error when several items. */
status_t fhirpath__singleton_boolean(fp_eval_t *ev, const fp_ast_t *node, const fp_coll_t *c,
                                     int *out);
/* Single item of c (after conversion to its System value); error when several. */
status_t fhirpath__singleton(fp_eval_t *ev, const fp_ast_t *node, const char *what,
                             const fp_coll_t *c, const fp_item_t **out);
bool fhirpath__is_type(const fp_item_t *item, const fp_typespec_t *type);
void fhirpath__type_of(const fp_item_t *item, fp_typeinfo_t *out);
/* Children of a node (members and array elements) in document order. */
void fhirpath__children(fp_eval_t *ev, const fp_node_t *node, fp_coll_t *out);
/* Member lookup: the items of `name` under each node of focus. */
void fhirpath__member(fp_eval_t *ev, const fp_item_t *item, const char *name, size_t len,
                      fp_coll_t *out);
/* A node for a JSON value at the root (a resource, a variable's value). */
const fp_node_t *fhirpath__root_node(fp_eval_t *ev, json_t *json, const char *name);
status_t fhirpath__now(fp_eval_t *ev, fp_temporal_t *out);

/* ---- the model (fhirpath_model.c): defs.h, and JSON shapes where it says nothing ---- */

const fhir_type_t *fhirpath__model_type(const char *name, size_t len);
const fhir_type_t *fhirpath__model_resource_type(const char *name, size_t len);
const fhir_element_t *fhirpath__model_element(const fhir_type_t *type, const char *name, size_t len,
                                              const fhir_type_t **out_type);
bool fhirpath__model_is_a(const fhir_type_t *type, const fhir_type_t *ancestor);
/* The element named `name` (no choice suffix) in type, or NULL. */
const fhir_element_t *fhirpath__model_element_named(const fhir_type_t *type, const char *name,
                                                    size_t len);
/* System kind of a FHIR primitive, or -1. */
int fhirpath__primitive_kind(fhir_primitive_t primitive);
/* System kind for a FHIR primitive type name ("dateTime" -> DATETIME), or -1. */
int fhirpath__primitive_name_kind(const char *name);
/* True for Quantity and its specialisations (Age, Duration, ...). */
bool fhirpath__is_quantity_type(const char *name);

/* Regular expressions (fhirpath_regex.c): PCRE-style escapes translated to POSIX ERE. */
typedef struct fp_regex fp_regex_t;
fp_regex_t *fhirpath__regex_compile(const char *pattern, size_t len, arena_t *arena,
                                    const char **out_error);
/* First match at or after offset; returns false when none. groups[0] is the whole match. */
bool fhirpath__regex_search(fp_regex_t *re, const char *subject, size_t offset,
                            size_t group_start[10], size_t group_end[10], bool *group_set);
void fhirpath__regex_free(fp_regex_t *re);

#endif
