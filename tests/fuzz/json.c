/*
 * libFuzzer harness for the JSON parser and the resource validator: any input must either be
 * rejected with an error or parse to a value whose serialization parses back to the same
 * serialization; a parsed object is then validated (any outcome is fine, a crash is not).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/jv.h"
#include "fhir/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    err_t err = ERR_INIT;
    json_t *value = jv_parse((const char *)data, size, &err);
    if (!value) {
        if (err.code != ERR_SYNTAX)
            abort();
        err_release(&err);
        return 0;
    }
    buf_t first = BUF_INIT, second = BUF_INIT;
    jv_dump(value, &first);
    json_t *again = jv_parse(first.ptr, first.len, &err);
    if (!again)
        abort();
    jv_dump(again, &second);
    if (first.len != second.len || memcmp(first.ptr, second.ptr, first.len) != 0)
        abort();
    buf_t pretty = BUF_INIT;
    jv_pretty(first.ptr, first.len, &pretty);
    json_t *from_pretty = jv_parse(pretty.ptr, pretty.len, &err);
    if (!from_pretty)
        abort();
    if (json_is_object(value))
        fhir_validate(value, &err);
    json_decref(from_pretty);
    json_decref(again);
    json_decref(value);
    buf_release(&pretty);
    buf_release(&first);
    buf_release(&second);
    err_release(&err);
    return 0;
}
