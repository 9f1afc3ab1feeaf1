/*
 * b64.h - the binary-to-text encodings of RFC 4648 that tokens and secrets travel in.
 *
 * base64url (section 5) without padding, as JOSE writes it, and base32 (section 6) without
 * padding, as authenticator apps read TOTP secrets. Decoding is strict: a character outside
 * the alphabet, padding, a length no encoder produces, or unused trailing bits that are not
 * zero (a second spelling of the same bytes) is refused, so each byte string has exactly one
 * accepted text.
 */
#ifndef CONCERTO_BASE_B64_H
#define CONCERTO_BASE_B64_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Appends the base64url text of data (len bytes), without padding. */
void b64url_encode(const void *data, size_t len, buf_t *out);
/*
 * Appends the bytes that text (len characters) encodes. Returns false, leaving out as it was,
 * when the text is not canonical unpadded base64url.
 */
bool b64url_decode(const char *text, size_t len, buf_t *out);

/* Appends the base32 text of data (upper case, without padding). */
void b32_encode(const void *data, size_t len, buf_t *out);
/*
 * Appends the bytes that text encodes; lower case letters are accepted as upper case (people
 * type secrets), spaces and padding are not. Returns false, leaving out as it was, when the
 * text is not canonical unpadded base32.
 */
bool b32_decode(const char *text, size_t len, buf_t *out);

#endif
