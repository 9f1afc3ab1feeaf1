/*
 * password.c - argon2id through libsodium, and the policy checks (password.h).
 *
 * The word list is held as one block of lower-case, NUL-separated words and a sorted array of
 * pointers into it, searched with bsearch: about 0.7 MB for cracklib-small, loaded once.
 */
#include "auth/password.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/random.h"
#include "base/buf.h"
#include "base/jv.h"
#include "base/mem.h"

const password_cost_t password_cost_default = {2, 64u << 20};
const password_cost_t password_cost_client_secret = {5, 7u << 20};

_Static_assert(PASSWORD_HASH_SIZE == crypto_pwhash_STRBYTES, "hash string size");

status_t password_hash(const password_cost_t *cost, const char *password, size_t len,
                       char out[PASSWORD_HASH_SIZE], err_t *err)
{
    auth__sodium_ready();
    if (crypto_pwhash_str(out, password, len, cost->opslimit, cost->memlimit) != 0)
        return err_set(err, ERR_INTERNAL, NULL, "could not hash the password: out of memory");
    return ERR_OK;
}

bool password_verify(const char *hash, const char *password, size_t len)
{
    auth__sodium_ready();
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

bool password_needs_rehash(const password_cost_t *cost, const char *hash)
{
    auth__sodium_ready();
    return crypto_pwhash_str_needs_rehash(hash, cost->opslimit, cost->memlimit) != 0;
}

struct password_dict {
    char *text;
    const char **words;
    size_t nwords;
};

static int compare_words(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

status_t password_dict_load(const char *path, password_dict_t **out, err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, ERR_INTERNAL, NULL, "could not read the password word list \"%s\": %s",
                       path, strerror(errno));
    buf_t text = BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&text, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        buf_release(&text);
        return err_set(err, ERR_INTERNAL, NULL, "could not read the password word list \"%s\"",
                       path);
    }
    password_dict_t *dict = xcalloc(1, sizeof(*dict));
    size_t cap = 0;
    char *p = text.ptr, *end = text.ptr + text.len;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        char *word_end = eol;
        if (word_end > p && word_end[-1] == '\r')
            word_end--;
        *word_end = '\0';
        if (word_end > p) {
            for (char *c = p; c < word_end; c++)
                *c = lower(*c);
            if (dict->nwords == cap) {
                cap = cap ? cap * 2 : 4096;
                dict->words = xrealloc(dict->words, cap * sizeof(*dict->words));
            }
            dict->words[dict->nwords++] = p;
        }
        p = eol + 1;
    }
    qsort(dict->words, dict->nwords, sizeof(*dict->words), compare_words);
    dict->text = buf_detach(&text, NULL);
    *out = dict;
    return ERR_OK;
}

void password_dict_free(password_dict_t *dict)
{
    if (!dict)
        return;
    free(dict->text);
    free(dict->words);
    free(dict);
}

size_t password_dict_size(const password_dict_t *dict)
{
    return dict->nwords;
}

static bool dict_has(const password_dict_t *dict, const char *lower_word)
{
    return bsearch(&lower_word, dict->words, dict->nwords, sizeof(*dict->words), compare_words) !=
           NULL;
}

bool password_dict_contains(const password_dict_t *dict, const char *word, size_t len)
{
    char *copy = xstrndup(word, len);
    for (char *c = copy; *c; c++)
        *c = lower(*c);
    bool found = strlen(copy) == len && dict_has(dict, copy);
    free(copy);
    return found;
}

/* Code points in valid UTF-8: every byte that does not continue a sequence. */
static size_t characters(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* The shortest part that s is made of, repeated: len itself when there is none. */
static size_t period(const char *s, size_t len)
{
    for (size_t p = 1; p <= len / 2; p++) {
        if (len % p != 0)
            continue;
        size_t i = p;
        while (i < len && s[i] == s[i - p])
            i++;
        if (i == len)
            return p;
    }
    return len;
}

/* One step up or down the alphabet or the digits (9 to 0 continues "...7890"). */
static int step(char a, char b)
{
    bool digits = a >= '0' && a <= '9' && b >= '0' && b <= '9';
    bool letters = a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z';
    if (!digits && !letters)
        return 0;
    if (b == a + 1 || (digits && a == '9' && b == '0'))
        return 1;
    if (b == a - 1 || (digits && a == '0' && b == '9'))
        return -1;
    return 0;
}

static bool sequential(const char *s, size_t len)
{
    if (len < 2)
        return false;
    int direction = step(s[0], s[1]);
    if (direction == 0)
        return false;
    for (size_t i = 2; i < len; i++)
        if (step(s[i - 1], s[i]) != direction)
            return false;
    return true;
}

static bool is_letter_or_other(char c)
{
    /* what stays in the core: letters, and any byte of a non-ASCII character */
    return (c >= 'a' && c <= 'z') || (unsigned char)c >= 0x80;
}

/* Look-alike digits and symbols read as the letter they stand for; 1 as one_as. */
static void read_lookalikes(char *s, char one_as)
{
    for (; *s; s++) {
        switch (*s) {
        case '0': *s = 'o'; break;
        case '1': *s = one_as; break;
        case '3': *s = 'e'; break;
        case '4': *s = 'a'; break;
        case '5': *s = 's'; break;
        case '7': *s = 't'; break;
        case '8': *s = 'b'; break;
        case '@': *s = 'a'; break;
        case '$': *s = 's'; break;
        case '!': *s = 'i'; break;
        case '|': *s = 'l'; break;
        case '+': *s = 't'; break;
        default: break;
        }
    }
}

/* The word itself, or the part it repeats. */
static bool word_listed(const password_dict_t *dict, char *word)
{
    size_t len = strlen(word);
    if (len == 0)
        return false;
    if (dict_has(dict, word))
        return true;
    size_t p = period(word, len);
    if (p == len)
        return false;
    char saved = word[p];
    word[p] = '\0';
    bool found = dict_has(dict, word);
    word[p] = saved;
    return found;
}

static bool common(const password_dict_t *dict, const char *lowered, size_t len)
{
    char *candidate = xstrndup(lowered, len);
    bool found = word_listed(dict, candidate);
    /* the core: without the digits, symbols and spaces before and after the letters */
    size_t start = 0, end = len;
    while (start < end && !is_letter_or_other(lowered[start]))
        start++;
    while (end > start && !is_letter_or_other(lowered[end - 1]))
        end--;
    char *core = xstrndup(lowered + start, end - start);
    const char ones[] = {'i', 'l'};
    for (size_t i = 0; !found && i < 2; i++) {
        memcpy(candidate, lowered, len + 1);
        read_lookalikes(candidate, ones[i]);
        found = word_listed(dict, candidate);
        memcpy(candidate, core, end - start + 1);
        found = found || word_listed(dict, candidate);
        read_lookalikes(candidate, ones[i]);
        found = found || word_listed(dict, candidate);
    }
    free(core);
    free(candidate);
    return found;
}

static const char choose_phrase[] = "choose a longer phrase of several unrelated words";

status_t password_check(const password_policy_t *policy, const char *password, size_t len,
                        const char *username, err_t *err)
{
    if (!jv_utf8_valid(password, len))
        return err_set(err, ERR_VALUE, NULL, "password is not valid UTF-8 text");
    if (memchr(password, '\0', len))
        return err_set(err, ERR_VALUE, NULL, "password must not contain the character U+0000");
    size_t count = characters(password, len);
    if (count < policy->min_length)
        return err_set(err, ERR_RULE, NULL,
                       "password is too short: use at least %zu characters (a few unrelated "
                       "words make a long password that is easy to remember)",
                       policy->min_length);
    if (count > policy->max_length)
        return err_set(err, ERR_RULE, NULL, "password is too long: use at most %zu characters",
                       policy->max_length);
    status_t rc = ERR_OK;
    char *lowered = xstrndup(password, len);
    for (char *c = lowered; c < lowered + len; c++)
        *c = lower(*c);
    if (username && characters(username, strlen(username)) >= 3) {
        char *name = xstrdup(username);
        for (char *c = name; *c; c++)
            *c = lower(*c);
        bool contains = memmem(lowered, len, name, strlen(name)) != NULL;
        free(name);
        if (contains) {
            rc = err_set(err, ERR_RULE, NULL,
                         "password contains the user name: choose one that does not");
            goto out;
        }
    }
    if (period(lowered, len) <= 4 || sequential(lowered, len)) {
        rc = err_set(err, ERR_RULE, NULL, "password is a repeated or sequential pattern: %s",
                     choose_phrase);
        goto out;
    }
    if (policy->dict && common(policy->dict, lowered, len)) {
        rc = err_set(err, ERR_RULE, NULL,
                     "password is a commonly used password or a dictionary word with small "
                     "changes: %s",
                     choose_phrase);
        goto out;
    }
out:
    free(lowered);
    return rc;
}
