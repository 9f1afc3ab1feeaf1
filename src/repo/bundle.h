/*
 * bundle.h - batch and transaction Bundles (POST to the base URL).
 *
 * Like a single write, a Bundle is handled in two steps: repo_bundle_prepare parses it, checks
 * each entry, gives new resources their ids, rewrites references between entries (urn:uuid:,
 * urn:oid: and other fullUrls) in a transaction, parses the criteria of conditional requests
 * and references and the searches of GET entries, and validates and serializes every
 * resource, all on the caller's thread; repo_bundle_txn then runs the entries inside one
 * store transaction. A transaction is all or nothing: the first failing entry rolls back
 * every entry and is named in the error. A batch runs each entry in its own nested
 * savepoint, so an entry that fails leaves the others standing and gets its own
 * OperationOutcome.
 *
 * What only the transaction can know is settled when an entry runs, inside it: the target of
 * a conditional create, update or delete, the match of a conditional reference
 * ("Patient?identifier=http://x|1"), and so references to the fullUrl of a conditional entry.
 * An entry whose resource holds such references is serialized again once they are resolved.
 */
#ifndef CONCERTO_REPO_BUNDLE_H
#define CONCERTO_REPO_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "fhir/search.h"
#include "repo/conditional.h"
#include "repo/repo.h"
#include "store/store.h"

typedef enum { REPO_ENTRY_READ, REPO_ENTRY_WRITE, REPO_ENTRY_SEARCH } repo_entry_kind_t;

/* A reference settled when its entry runs (bundle.c). */
typedef struct repo_late_ref repo_late_ref_t;

typedef struct {
    size_t index;       /* position in the Bundle, from 0 */
    const char *method; /* GET, HEAD, POST, PUT, PATCH, DELETE */
    const char *url;    /* request.url as given */
    repo_entry_kind_t kind;
    const char *type, *id;
    int64_t version;    /* a vread (GET Type/id/_history/N), else 0 */
    repo_write_t write; /* REPO_ENTRY_WRITE */
    repo_cond_t *cond;  /* a conditional create, update or delete (its write is `write`) */
    store_version_t read;
    const store_visibility_t *access; /* REPO_ENTRY_READ for a caller: what they may read */
    repo_access_note_t note;          /* a read or search: emergency access used */
    /* REPO_ENTRY_SEARCH: planned by prepare, the page found by the transaction */
    fhir_search_plan_t *plan;
    store_search_t query;
    const char *search_url; /* what the searchset's links start with */
    store_search_result_t found;
    /* a transaction's references settled when the entry runs */
    json_t *resource; /* the entry's resource (borrowed from the Bundle) */
    repo_late_ref_t *late;
    size_t nlate;
    bool conditional_refs; /* some of them are conditional references */
    bool ran;
    bool prepared; /* the entry was accepted by prepare (batch: failed ones are not run) */
    status_t rc;   /* the entry's outcome */
    err_t err;
} repo_entry_t;

typedef struct {
    bool transaction; /* else a batch */
    repo_entry_t *entries;
    size_t nentries;
    arena_t *arena;
    const char *base;                /* the server's base url (searches, absolute references) */
    bool multiple_delete;            /* a conditional delete may delete several resources */
    store_conn_t *conn;              /* during repo_bundle_prepare only: reads terminology */
    size_t failed;                   /* a transaction: the entry that failed it */
    const repo_caller_t *caller;     /* who sends it (access.h); NULL: the server itself. Set
                                        before repo_bundle_prepare, which keeps it */
    const repo_caller_t *access_for; /* the caller prepare checked the entries for */
} repo_bundle_t;

/*
 * Prepares the Bundle in body (len bytes). base is the server's base url (borrowed; it must
 * outlive the bundle); multiple_delete lets a conditional DELETE entry delete every match.
 * Errors that fail the whole request (ERR_SYNTAX, ERR_STRUCTURE, ERR_INVALID: not a batch or
 * transaction Bundle, a malformed entry of a transaction, two entries for one resource) are
 * returned; in a batch, an entry's own problem is kept in that entry and prepare succeeds.
 * conn (borrowed, used during prepare only; may be NULL) reads the terminology that token
 * :in, :not-in, :above and :below in searches and conditions need.
 * With bundle->caller set (before the call), every entry is checked as the same request on
 * its own would be (access.h, docs/security.md): the scopes here (ERR_FORBIDDEN), the caller's
 * patients worked out on conn (required then) for each write, read and search, and the
 * criteria of conditional entries and conditional references restricted to what the caller
 * may see; repo_bundle_txn then checks each write in the transaction, each read against the
 * caller's visibility (403 or 404 as repo_read_as answers) and runs each search with it. A
 * denial fails a transaction whole (naming the entry) and answers a batch's entry alone.
 * Everything lives in arena.
 */
status_t repo_bundle_prepare(repo_bundle_t *bundle, const char *body, size_t len, const char *base,
                             bool multiple_delete, store_conn_t *conn, arena_t *arena, err_t *err);

/* The store transaction that runs a prepared Bundle (arg is the repo_bundle_t). */
status_t repo_bundle_txn(store_txn_t *txn, void *arg, err_t *err);

/* Releases the entries' error values (the rest belongs to the arena). */
void repo_bundle_release(repo_bundle_t *bundle);

/*
 * Appends the batch-response or transaction-response Bundle. base is the server's base URL
 * (for fullUrl); with_resources adds each written resource (Prefer: return=representation);
 * reads and searches always carry theirs (a searchset Bundle for a search).
 */
void repo_bundle_response(const repo_bundle_t *bundle, const char *base, bool with_resources,
                          buf_t *out);

/* "201 Created" and so on: the status line of an HTTP status. */
const char *repo_status_text(int status);

#endif
