/*
 * libFuzzer harness for the search query parser: the first byte picks the type searched (0:
 * a system search), the second the handling (odd: strict), and the rest is a query split at
 * '&' and the first '=' of each pair, taken as already decoded. Any outcome is fine but a
 * crash: a plan must render, and a failed parse must leave ERR_INVALID and no plan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "fhir/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const fhir_type_t *type =
        data[0] % (fhir_resource_type_count + 1)
            ? fhir_resource_types[data[0] % (fhir_resource_type_count + 1) - 1]
            : NULL;
    bool strict = data[1] & 1;
    const char *q = (const char *)data + 2;
    size_t len = size - 2;
    arena_t arena;
    arena_init(&arena);
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += q[i] == '&';
    fhir_search_pair_t *pairs = arena_zalloc(&arena, cap * sizeof(*pairs));
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *eq = memchr(q + start, '=', i - start);
        fhir_search_pair_t *pair = &pairs[n++];
        pair->name = q + start;
        pair->name_len = eq ? (size_t)(eq - (q + start)) : i - start;
        pair->value = eq ? eq + 1 : "";
        pair->value_len = eq ? (size_t)(q + i - eq - 1) : 0;
        start = i + 1;
    }
    fhir_search_query_t query = {pairs, n, strict, 1718452800000000};
    fhir_search_plan_t *plan;
    err_t err = ERR_INIT;
    status_t rc = fhir_search_parse(NULL, type, &query, &arena, &plan, &err);
    if (rc == ERR_OK) {
        if (!plan)
            abort();
        buf_t out = BUF_INIT;
        fhir_search_plan_render(plan, &out);
        buf_release(&out);
    } else if (rc != ERR_INVALID || plan) {
        abort();
    }
    err_release(&err);
    arena_release(&arena);
    return 0;
}
