/*
 * libFuzzer harness for the TZif reader (src/base/tz.c): any bytes either load as a zone or
 * fail with ERR_VALUE and no zone. A zone that loads must answer every question: offsets within
 * the bounds the reader enforces, local time that goes back to the same instant when it is
 * unique, and calendar arithmetic that never runs away.
 */
#include <stdint.h>
#include <stdlib.h>

#include "base/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tz_t *tz = NULL;
    err_t err = ERR_INIT;
    status_t rc = tz_parse("fuzz", data, size, &tz, &err);
    if (rc) {
        if (tz || err.code != ERR_VALUE)
            abort();
        err_release(&err);
        return 0;
    }
    static const int64_t instants[] = {
        INT64_C(-4000000000), -1, 0, 1772953200, 1793512800, 2147483647, INT64_C(4118126400),
        INT64_C(32503680000)};
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
        int32_t offset = tz_offset_at(tz, instants[i]);
        if (offset < -26 * 3600 || offset > 26 * 3600)
            abort();
        tz_civil_t local;
        tz_to_local(tz, instants[i], &local, NULL);
        tz_local_kind_t kind;
        int64_t back = tz_from_local(tz, &local, &kind);
        if (kind == TZ_LOCAL_UNIQUE && back != instants[i])
            abort();
        if (back < instants[i] - 2 * 26 * 3600 || back > instants[i] + 2 * 26 * 3600)
            abort();
    }
    tz_free(tz);
    return 0;
}
