/*
 * Tests for src/auth/password.c: argon2id hashes, rehash decisions and the choice policy over
 * Debian's cracklib word list (installed by tools/install-deps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/password.h"

/* the smallest work factors argon2id allows, so the tests stay fast under sanitizers */
static const password_cost_t cheap = {1, 8192};

static void test_hash_and_verify(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    char hash[PASSWORD_HASH_SIZE], other[PASSWORD_HASH_SIZE];
    const char *pw = "correct horse battery staple";
    assert_int_equal(password_hash(&cheap, pw, strlen(pw), hash, &err), 0);
    assert_int_equal(strncmp(hash, "$argon2id$v=19$m=8,t=1,p=1$", 27), 0);
    assert_true(password_verify(hash, pw, strlen(pw)));
    assert_false(password_verify(hash, "correct horse battery stapl", 27));
    assert_false(password_verify(hash, "Correct horse battery staple", 28));
    assert_false(password_verify("not a hash", pw, strlen(pw)));
    /* a fresh salt each time */
    assert_int_equal(password_hash(&cheap, pw, strlen(pw), other, &err), 0);
    assert_string_not_equal(hash, other);
    assert_true(password_verify(other, pw, strlen(pw)));
    /* the length counts, not the NUL */
    assert_int_equal(password_hash(&cheap, "ab\0cd", 5, hash, &err), 0);
    assert_true(password_verify(hash, "ab\0cd", 5));
    assert_false(password_verify(hash, "ab", 2));
    err_release(&err);
}

static void test_default_cost_and_rehash(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    char hash[PASSWORD_HASH_SIZE];
    assert_int_equal(password_cost_default.opslimit, 2);
    assert_int_equal(password_cost_default.memlimit, 64 << 20);
    assert_int_equal(password_hash(&password_cost_default, "x", 1, hash, &err), 0);
    assert_int_equal(strncmp(hash, "$argon2id$v=19$m=65536,t=2,p=1$", 31), 0);
    assert_true(password_verify(hash, "x", 1));
    assert_false(password_needs_rehash(&password_cost_default, hash));
    /* client secrets: 7 MiB, 5 passes */
    assert_int_equal(password_hash(&password_cost_client_secret, "x", 1, hash, &err), 0);
    assert_int_equal(strncmp(hash, "$argon2id$v=19$m=7168,t=5,p=1$", 30), 0);
    assert_true(password_verify(hash, "x", 1));
    /* a hash made with weaker parameters must be replaced; so must garbage */
    char weak[PASSWORD_HASH_SIZE];
    assert_int_equal(password_hash(&cheap, "x", 1, weak, &err), 0);
    assert_true(password_needs_rehash(&password_cost_default, weak));
    assert_false(password_needs_rehash(&cheap, weak));
    assert_true(password_needs_rehash(&cheap, "$argon2i$nonsense"));
    err_release(&err);
}

static password_dict_t *dict;

static int load_dict(void **state)
{
    (void)state;
    err_t err = ERR_INIT;
    if (password_dict_load(PASSWORD_DICT_PATH, &dict, &err) != 0) {
        fprintf(stderr, "%s (tools/install-deps installs cracklib-runtime)\n", err_message(&err));
        err_release(&err);
        return -1;
    }
    return 0;
}

static int free_dict(void **state)
{
    (void)state;
    password_dict_free(dict);
    return 0;
}

static void test_dict(void **state)
{
    (void)state;
    assert_true(password_dict_size(dict) > 50000);
    assert_true(password_dict_contains(dict, "password", 8));
    assert_true(password_dict_contains(dict, "TrustNo1", 8));
    assert_false(password_dict_contains(dict, "xq7vbnzkw", 9));
    err_t err = ERR_INIT;
    password_dict_t *none = NULL;
    assert_int_not_equal(password_dict_load("/nonexistent/words", &none, &err), 0);
    assert_null(none);
    assert_string_equal(err_message(&err), "could not read the password word list "
                                           "\"/nonexistent/words\": No such file or directory");
    err_release(&err);

    /* a list of our own: any case, CRLF, blank lines */
    char path[] = "/tmp/concerto-words-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "Zebra\r\n\napple\nmango";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    password_dict_t *mine = NULL;
    assert_int_equal(password_dict_load(path, &mine, &err), 0);
    unlink(path);
    assert_int_equal(password_dict_size(mine), 3);
    assert_true(password_dict_contains(mine, "zebra", 5));
    assert_true(password_dict_contains(mine, "MANGO", 5));
    assert_false(password_dict_contains(mine, "", 0));
    assert_false(password_dict_contains(mine, "apple\0x", 7));
    password_dict_free(mine);
}

/* The first message of a policy check, or NULL when the password is accepted. */
static char message[512];
static const char *check(const char *password, const char *username)
{
    password_policy_t policy = {PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH, dict};
    err_t err = ERR_INIT;
    status_t rc = password_check(&policy, password, strlen(password), username, &err);
    const char *result = NULL;
    if (rc != 0) {
        snprintf(message, sizeof(message), "%s", err_message(&err));
        result = message;
    }
    err_release(&err);
    return result;
}

static const char common_message[] = "password is a commonly used password or a dictionary word "
                                     "with small changes: choose a longer phrase of several "
                                     "unrelated words";

static void test_policy_length(void **state)
{
    (void)state;
    assert_null(check("short phrase", NULL)); /* 12 characters */
    assert_string_equal(check("tiny phrase", NULL),
                        "password is too short: use at least 12 characters (a few unrelated "
                        "words make a long password that is easy to remember)");
    /* characters, not bytes: 11 characters in 22 bytes is too short */
    assert_non_null(check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
                          "\xa9\xc3\xa9\xc3\xa9",
                          NULL));
    char longest[200];
    memset(longest, 0, sizeof(longest));
    for (int i = 0; i < 128; i++)
        longest[i] = "the quick brown fox jumps over a lazy dog "[i % 42];
    assert_null(check(longest, NULL));
    longest[128] = 's';
    assert_string_equal(check(longest, NULL), "password is too long: use at most 128 characters");
    /* a configured minimum */
    password_policy_t policy = {16, 128, NULL};
    err_t err = ERR_INIT;
    assert_int_equal(password_check(&policy, "fifteen letters", 15, NULL, &err), ERR_RULE);
    assert_string_equal(err_message(&err), "password is too short: use at least 16 characters "
                                           "(a few unrelated words make a long password that "
                                           "is easy to remember)");
    err_reset(&err);
    assert_int_equal(password_check(&policy, "bad \xff utf-8 bytes", 17, NULL, &err), ERR_VALUE);
    err_reset(&err);
    assert_int_equal(password_check(&policy, "nul inside \0 the password", 25, NULL, &err),
                     ERR_VALUE);
    err_release(&err);
}

static void test_policy_common_passwords(void **state)
{
    (void)state;
    /* a word from the list, with the changes people make to it */
    static const char *const refused[] = {"passwordpassword", /* repeated */
                                          "Password2024!",    /* capital, year, symbol */
                                          "P@ssw0rd123456",   /* look-alikes */
                                          "123456password",   /* digits before */
                                          "iloveyou12345",    "Sunshine!!!!",     "Football1234",
                                          "trustno1trustno1", "M0nkeyM0nkey",     "!!!Dragon!!!",
                                          "welcome12345",     "1qaz2wsx1qaz2wsx", "Qwertyui12345",
                                          "l1ghth0use1234",   "Bas3ball2023!"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *m = check(refused[i], NULL);
        if (!m)
            fail_msg("\"%s\" was accepted", refused[i]);
        assert_string_equal(m, common_message);
    }
    /* long and not a listed word, with or without composition */
    static const char *const accepted[] = {
        "correct horse battery staple", "purple-otter-cinema-42",
        "mY cat sings in the rain",     "xk9#mQ2$vL7!pw",
        "vertigo lantern oak",          "Zo\xc3\xab likes kale chips",
        "tulip window biscuit",         "123987456321"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        const char *m = check(accepted[i], NULL);
        if (m)
            fail_msg("\"%s\" was refused: %s", accepted[i], m);
    }
}

static void test_policy_patterns_and_username(void **state)
{
    (void)state;
    static const char *const patterns[] = {"aaaaaaaaaaaa",   "abababababab",  "123123123123",
                                           "abcdefghijklm",  "123456789012",  "ZYXWVUTSRQPO",
                                           "98765432109876", "!!!!!!!!!!!!!!"};
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        const char *m = check(patterns[i], NULL);
        if (!m)
            fail_msg("\"%s\" was accepted", patterns[i]);
        assert_string_equal(m, "password is a repeated or sequential pattern: choose a longer "
                               "phrase of several unrelated words");
    }
    const char *m = check("my JaneDoe secret key", "janedoe");
    assert_string_equal(m, "password contains the user name: choose one that does not");
    assert_null(check("my JaneDoe secret key", "bob.smith"));
    /* names under 3 characters are not looked for */
    assert_null(check("my jo secret key", "jo"));
    /* without a word list, only the other checks run */
    password_policy_t policy = {PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH, NULL};
    err_t err = ERR_INIT;
    assert_int_equal(password_check(&policy, "Password2024!", 13, NULL, &err), 0);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_default_cost_and_rehash),
        cmocka_unit_test(test_dict),
        cmocka_unit_test(test_policy_length),
        cmocka_unit_test(test_policy_common_passwords),
        cmocka_unit_test(test_policy_patterns_and_username),
    };
    return cmocka_run_group_tests(tests, load_dict, free_dict);
}
