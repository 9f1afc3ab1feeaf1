/*
 * random.c - libsodium's initialization, once, and its generator (random.h).
 */
#include "auth/random.h"

#include <pthread.h>
#include <sodium.h>

#include "base/mem.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_start(void)
{
    if (sodium_init() < 0)
        die("could not initialize libsodium");
}

void auth__sodium_ready(void)
{
    pthread_once(&sodium_once, sodium_start);
}

void auth_random_bytes(void *out, size_t len)
{
    auth__sodium_ready();
    randombytes_buf(out, len);
}

uint32_t auth_random_uniform(uint32_t upper)
{
    if (upper == 0)
        die("auth_random_uniform: upper bound 0");
    auth__sodium_ready();
    return randombytes_uniform(upper);
}
