/*
 * author.h - who wrote a version: the version-author extension of meta (docs/api.md,
 * "Version authors").
 *
 * Every version the server writes carries, as the first entry of meta.extension, an extension
 * with url REPO_AUTHOR_URL whose valueReference names the writer: {"reference":
 * "Practitioner/x"} (or PractitionerRole, Patient) for an account linked to one, else
 * {"display": "<username>"} or the client id. The server's own writers are named too: the
 * engine and the HL7 feed by their service names, concerto import as "import". It is written
 * into the stored text with meta.versionId and lastUpdated, so reads return it as stored; a
 * client's own entry with that url is dropped.
 */
#ifndef CONCERTO_REPO_AUTHOR_H
#define CONCERTO_REPO_AUTHOR_H

#include <jansson.h>
#include <stdbool.h>

#include "base/arena.h"
#include "repo/access.h"

#define REPO_AUTHOR_URL "http://concerto.dev/fhir/StructureDefinition/version-author"

/*
 * The valueReference of the author as JSON text (in arena): caller's linked resource, else
 * its username, else its client id; with no caller, {"display": fallback}; NULL when there is
 * neither.
 */
const char *repo_author_value(const repo_caller_t *caller, const char *fallback, arena_t *arena);

/* Whether ext (an element of meta.extension) is a version-author extension. */
bool repo_author_is(const json_t *ext);

/* Whether two meta.extension values (either may be NULL) hold the same entries once the
 * version-author ones are left out. */
bool repo_author_extensions_equal(const json_t *a, const json_t *b);

#endif
