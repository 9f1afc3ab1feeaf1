/*
 * random.h - the one source of secret randomness in Concerto: libsodium's randombytes, which
 * reads the kernel's generator (getrandom). Everything the auth layer makes up (TOTP secrets,
 * recovery codes, salts) comes from here. libsodium is initialized on first use, once per
 * process, from whichever thread comes first.
 */
#ifndef CONCERTO_AUTH_RANDOM_H
#define CONCERTO_AUTH_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills out with len unpredictable bytes. Cannot fail (an unusable generator aborts). */
void auth_random_bytes(void *out, size_t len);
/* A uniformly distributed number in [0, upper), without modulo bias; upper must be > 0. */
uint32_t auth_random_uniform(uint32_t upper);

/* Initializes libsodium if it is not yet; every auth module calls it before using libsodium.
 * Aborts when libsodium cannot start (no usable random source). */
void auth__sodium_ready(void);

#endif
