/*
 * defs.h - the FHIR R4 (4.0.1) type model, generated from the official StructureDefinitions
 * and ValueSets (tools/gen-fhir-defs writes src/fhir/defs_gen.c, which is committed).
 *
 * Every type is here: primitive types, complex data types, resources, and each
 * BackboneElement as a type of its own named by its path ("Patient.contact"). Elements list
 * what a type may contain in JSON, including inherited ones (Resource.id, Element.extension,
 * ...), so a lookup never walks base types. Everything is static const data: pointers stay
 * valid for the life of the process and are never freed.
 *
 * Details of the model: inline elements of data types (Timing.repeat, typed Element) are
 * backbone types too; a primitive type's elements are id and extension, what its "_name"
 * object may hold; SimpleQuantity and MoneyQuantity (R4 profiles, not types) are kept as
 * complex types based on Quantity; Resource.id is an id, as the R4 specification defines it
 * (the 4.0.1 StructureDefinitions say string). docs/internals/fhir-defs.md has the rest.
 */
#ifndef CONCERTO_FHIR_DEFS_H
#define CONCERTO_FHIR_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    FHIR_KIND_PRIMITIVE, /* boolean, string, date, ... (JSON: a value plus optional _name) */
    FHIR_KIND_COMPLEX,   /* a data type: HumanName, Quantity, Extension, ... */
    FHIR_KIND_BACKBONE,  /* an inline element type: Patient.contact, Bundle.entry, ... */
    FHIR_KIND_RESOURCE,  /* a concrete resource type: Patient, Bundle, ... */
    FHIR_KIND_ABSTRACT,  /* Resource, DomainResource, Element, BackboneElement */
} fhir_kind_t;

/* How a primitive is written in JSON and which lexical rule its value follows. */
typedef enum {
    FHIR_PRIM_NONE = 0, /* not a primitive */
    FHIR_PRIM_BOOLEAN,
    FHIR_PRIM_INTEGER,
    FHIR_PRIM_UNSIGNED_INT,
    FHIR_PRIM_POSITIVE_INT,
    FHIR_PRIM_DECIMAL,
    FHIR_PRIM_STRING,
    FHIR_PRIM_MARKDOWN,
    FHIR_PRIM_CODE,
    FHIR_PRIM_ID,
    FHIR_PRIM_URI,
    FHIR_PRIM_URL,
    FHIR_PRIM_CANONICAL,
    FHIR_PRIM_OID,
    FHIR_PRIM_UUID,
    FHIR_PRIM_BASE64_BINARY,
    FHIR_PRIM_INSTANT,
    FHIR_PRIM_DATE,
    FHIR_PRIM_DATE_TIME,
    FHIR_PRIM_TIME,
    FHIR_PRIM_XHTML, /* Narrative.div */
} fhir_primitive_t;

typedef struct fhir_type fhir_type_t;
typedef struct fhir_valueset fhir_valueset_t;

/* A required value set, expanded to its codes (sorted by code for bsearch). */
struct fhir_valueset {
    const char *url;
    size_t ncodes;
    const char *const *codes;   /* sorted (strcmp) */
    const char *const *systems; /* systems[i] is the code system of codes[i] */
    const uint16_t *order;      /* order[k]: index in codes of the k-th code as the value set
                                   lists it (for messages that show the allowed codes) */
};

/*
 * One element of a type. A choice element (value[x]) appears once with its base name ("value")
 * and the list of allowed types; in JSON it is written as the base name plus the capitalised
 * type name ("valueQuantity").
 */
typedef struct {
    const char *name;              /* JSON member name ("birthDate"; "value" for value[x]) */
    const fhir_type_t *const *types; /* allowed types: one, or several for a choice */
    uint16_t ntypes;
    bool choice;
    bool summary;        /* isSummary in the definition (for _summary=true later) */
    bool xml_attribute;  /* an XML attribute (Element.id, Extension.url): in JSON a plain
                            value that cannot have a "_name" object */
    uint32_t min;        /* minimum cardinality */
    uint32_t max;        /* maximum cardinality; FHIR_MAX_MANY for "*" */
    const fhir_valueset_t *binding; /* required binding on a code, Coding or CodeableConcept;
                                       NULL also when the package cannot expand the value set
                                       (those are listed at the top of defs_gen.c) */
    const char *content_reference;  /* "#Questionnaire.item" style recursion: use `types` */
} fhir_element_t;

#define FHIR_MAX_MANY UINT32_MAX

/* Limits the generator checks, so a user of the model can keep per-element state in fixed
 * arrays: no type has more elements, or more choice elements, than these. */
#define FHIR_MAX_ELEMENTS 256
#define FHIR_MAX_CHOICES 16

struct fhir_type {
    const char *name; /* "Patient", "HumanName", "Patient.contact", "string" */
    fhir_kind_t kind;
    fhir_primitive_t primitive; /* FHIR_PRIM_NONE unless kind is PRIMITIVE */
    const fhir_type_t *base;    /* the type it specialises (DomainResource for Patient), or NULL */
    const fhir_element_t *elements; /* all elements, inherited included, sorted by name */
    size_t nelements;
};

/* Every concrete resource type, sorted by name: 146 in R4 4.0.1 (profiles such as vitalsigns
 * are not types). */
extern const fhir_type_t *const fhir_resource_types[];
extern const size_t fhir_resource_type_count;

/* Types that code treats specially (the validator). Never NULL. */
extern const fhir_type_t *const fhir_type_resource;         /* Resource (abstract) */
extern const fhir_type_t *const fhir_type_coding;           /* Coding */
extern const fhir_type_t *const fhir_type_codeable_concept; /* CodeableConcept */

/* A type by name: resource, data type, primitive, or backbone path. NULL when unknown. */
const fhir_type_t *fhir_type_find(const char *name, size_t len);
/* A concrete resource type by name, or NULL. */
const fhir_type_t *fhir_resource_type_find(const char *name, size_t len);

/*
 * Finds what a JSON member name means in a type. For a plain element returns it with
 * *out_type set to its only type. For a choice element ("valueQuantity") returns the choice
 * element with *out_type set to the chosen type; NULL when the suffix names no allowed type,
 * and for a choice's bare base name ("value"), which is not a JSON member name.
 * The name must not start with '_' (strip it first for primitive extensions).
 */
const fhir_element_t *fhir_element_find(const fhir_type_t *type, const char *name, size_t len,
                                        const fhir_type_t **out_type);

/* True when code is in the value set (optionally with that system; system may be NULL). */
bool fhir_valueset_contains(const fhir_valueset_t *valueset, const char *system,
                            const char *code);

/* True when `type` is `ancestor` or derives from it (Patient is a DomainResource). */
bool fhir_type_is_a(const fhir_type_t *type, const fhir_type_t *ancestor);

#endif
