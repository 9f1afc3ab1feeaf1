/*
 * accounts.c - `concerto user` and `concerto client`: the administrator's commands for user
 * accounts and OAuth clients, over src/auth (accounts.h, clients.h).
 *
 * Secrets (passwords, client secrets) are read from stdin, never from the command line, where
 * other users of the machine could see them in the process list. Exit status: 0 done, 1 the
 * work failed (no such user, a name taken, a database error), 2 the request was wrong (usage,
 * a weak password, an unknown role, a missing link).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/accounts.h"
#include "auth/clients.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "cli/common.h"

#define DB_HELP                                                                                 \
    "  --db FILE        the SQLite database file (default: concerto.db; env CONCERTO_DB), or\n" \
    "                   a PostgreSQL URI postgresql://USER@HOST:PORT/DATABASE\n"                \
    "  --config FILE    read settings from FILE (lines \"name = value\"; env CONCERTO_CONFIG)\n"

static const char user_help[] =
    "usage: concerto user SUBCOMMAND [options]   (concerto user SUBCOMMAND --help for more)\n"
    "\n"
    "Manages the accounts people and services sign in with.\n"
    "\n"
    "subcommands:\n"
    "  add            create an account (the password is read from stdin)\n"
    "  list           list the accounts\n"
    "  disable USER   refuse an account's logins and revoke its tokens\n"
    "  enable USER    allow an account's logins again (and lift a lockout)\n"
    "  reset-password USER  set a new password (read from stdin) and revoke its tokens\n"
    "  mfa-reset USER remove an account's second factor: staff enrol again at their next "
    "login\n";

static const char user_add_help[] =
    "usage: concerto user add --username USER --role ROLE [--practitioner ID\n"
    "                         [--practitioner-role ID] | --patient ID] --password-stdin\n"
    "                         [--db FILE] [--config FILE]\n"
    "\n"
    "Creates an account and prints its id. The password is the first line of stdin; it must\n"
    "have 12 to 128 characters and not be a common password, a dictionary word with small\n"
    "changes, a repetition or sequence, or contain the user name.\n"
    "User names are letters, digits, '.', '_', '-' and '@' (up to 64), without case.\n"
    "\n"
    "  --username USER  the name to sign in with\n"
    "  --role ROLE      admin, coordinator, nurse, physician, pharmacist, social-worker,\n"
    "                   community-health-worker, patient or service\n"
    "  --practitioner ID       staff: their Practitioner (required but for admin)\n"
    "  --practitioner-role ID  staff: their PractitionerRole (optional)\n"
    "  --patient ID     patient: their Patient (required)\n"
    "  --password-stdin read the password from stdin (required: never on the command line)\n"
    "                   Staff accounts enrol a TOTP second factor at their first login.\n" DB_HELP;

static const char user_list_help[] =
    "usage: concerto user list [--db FILE] [--config FILE]\n"
    "\n"
    "Lists the accounts: user name, role, linked resource, whether disabled, until when\n"
    "locked after failed logins, whether a second factor is enrolled (yes, pending: started\n"
    "but not confirmed, or no) and the last login (UTC).\n"
    "\n" DB_HELP;

static const char user_disable_help[] =
    "usage: concerto user disable USER [--db FILE] [--config FILE]\n"
    "\n"
    "Disables the account USER: its logins are refused and its tokens revoked.\n"
    "\n" DB_HELP;

static const char user_enable_help[] =
    "usage: concerto user enable USER [--db FILE] [--config FILE]\n"
    "\n"
    "Enables the account USER again, and lifts a lockout after failed logins.\n"
    "\n" DB_HELP;

static const char user_reset_help[] =
    "usage: concerto user reset-password USER --password-stdin [--db FILE] [--config FILE]\n"
    "\n"
    "Sets a new password for USER, read from the first line of stdin (the rules of\n"
    "concerto user add), lifts a lockout and revokes the account's tokens.\n"
    "\n"
    "  --password-stdin read the password from stdin (required)\n" DB_HELP;

static const char user_mfa_help[] =
    "usage: concerto user mfa-reset USER [--db FILE] [--config FILE]\n"
    "\n"
    "Removes the second factor (TOTP) and the recovery codes of USER, who lost the device:\n"
    "staff enrol again at their next login.\n"
    "\n" DB_HELP;

static const char client_help[] =
    "usage: concerto client SUBCOMMAND [options]   (concerto client SUBCOMMAND --help for more)\n"
    "\n"
    "Manages the OAuth clients (SMART apps and backend services) that may ask for tokens.\n"
    "\n"
    "subcommands:\n"
    "  add          register a client\n"
    "  list         list the clients\n"
    "  remove ID    remove a client and its tokens\n";

static const char client_add_help[] =
    "usage: concerto client add --client-id ID (--secret-stdin | --jwks FILE | --public)\n"
    "                           --scopes \"SCOPES\" [--redirect-uri URI ...] [--name NAME]\n"
    "                           [--db FILE] [--config FILE]\n"
    "\n"
    "Registers an OAuth client of one of three kinds:\n"
    "  --public         an app that keeps no secret (authorization code with PKCE); needs\n"
    "                   --redirect-uri\n"
    "  --secret-stdin   a confidential client: its secret is the first line of stdin, 32\n"
    "                   characters or more (openssl rand -hex 32); stored hashed\n"
    "  --jwks FILE      a backend service that signs assertions (private_key_jwt) with a key\n"
    "                   of the JWK Set in FILE (RS256, RS384, ES256, ES384)\n"
    "\n"
    "  --client-id ID   letters, digits, '.', '_' and '-' (up to 128)\n"
    "  --scopes SCOPES  the SMART scopes it may be granted, space-separated, e.g.\n"
    "                   \"launch/patient openid fhirUser patient/*.rs offline_access\"\n"
    "  --redirect-uri URI  a redirect URI (https, or http on localhost); repeat for more\n"
    "  --name NAME      a name for people\n" DB_HELP;

static const char client_list_help[] =
    "usage: concerto client list [--db FILE] [--config FILE]\n"
    "\n"
    "Lists the clients: id, kind, name, scopes, redirect URIs and whether disabled.\n"
    "\n" DB_HELP;

static const char client_remove_help[] =
    "usage: concerto client remove ID [--db FILE] [--config FILE]\n"
    "\n"
    "Removes the client ID with its tokens.\n"
    "\n" DB_HELP;

/* The exit status of a failed request: 2 when the request itself was wrong. */
static int exit_status(status_t rc)
{
    switch (rc) {
    case ERR_VALUE:
    case ERR_RULE:
    case ERR_INVALID:
    case ERR_REQUIRED: return 2;
    default: return 1;
    }
}

/* The first line of stdin (without its line end) into out. False when stdin is empty. */
static bool read_secret(buf_t *out)
{
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        buf_add(out, chunk, n);
        if (out->len > 4096)
            break;
    }
    char *nl = memchr(out->ptr, '\n', out->len);
    if (nl)
        buf_setlen(out, (size_t)(nl - out->ptr));
    if (out->len && out->ptr[out->len - 1] == '\r')
        buf_setlen(out, out->len - 1);
    return out->len > 0;
}

/* One command's context: its settings, the store, the accounts module. */
typedef struct {
    const char *name; /* "user add" */
    settings_t s;
    store_t *store;
    password_dict_t *dict;
    auth_accounts_t accounts;
    err_t err;
} command_t;

/* Parses settings (nargs positional arguments expected) and opens the store. Returns -1 to go
 * on, else the exit status. */
static int command_start(command_t *c, const char *name, const char *help, int argc, char **argv,
                         const char *const *known, const char *const *switches, int nargs)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    err_init(&c->err);
    int status = cli_settings(name, help, argc, argv, known, switches, &c->s);
    if (status >= 0)
        return status;
    if (c->s.nargs != nargs) {
        if (c->s.nargs > nargs)
            fprintf(stderr, "concerto %s: unexpected argument \"%s\" (see --help)\n", name,
                    c->s.args[nargs]);
        else
            fprintf(stderr, "concerto %s: missing argument (see --help)\n", name);
        return 2;
    }
    store_options_t options;
    store_options_init(&options);
    options.create = false;
    if (store_open(settings_get(&c->s, "db", CLI_DEFAULT_DB), &options, &c->store, &c->err)) {
        cli_report(name, &c->err);
        return 1;
    }
    auth_accounts_init(&c->accounts, c->store);
    return -1;
}

static void command_end(command_t *c)
{
    if (c->store) {
        auth_accounts_release(&c->accounts);
        store_close(c->store);
    }
    password_dict_free(c->dict);
    err_release(&c->err);
    settings_release(&c->s);
}

static int fail(command_t *c, status_t rc)
{
    cli_report(c->name, &c->err);
    return exit_status(rc);
}

/* The word list of the password policy. */
static int load_policy(command_t *c)
{
    status_t rc = password_dict_load(PASSWORD_DICT_PATH, &c->dict, &c->err);
    if (rc)
        return fail(c, rc);
    c->accounts.policy.dict = c->dict;
    return -1;
}

static bool flag_set(const settings_t *s, const char *name)
{
    const char *v = settings_get(s, name, NULL);
    return v && strcmp(v, "false") != 0;
}

/* ---- user -------------------------------------------------------------------------------- */

static int user_add(int argc, char **argv)
{
    static const char *const known[] = {
        "db", "username", "role", "practitioner", "practitioner-role", "patient", NULL};
    static const char *const switches[] = {"password-stdin", NULL};
    command_t c;
    int status = command_start(&c, "user add", user_add_help, argc, argv, known, switches, 0);
    if (status >= 0)
        goto out;
    const char *username = settings_get(&c.s, "username", NULL);
    const char *role = settings_get(&c.s, "role", NULL);
    if (!username || !role || !flag_set(&c.s, "password-stdin")) {
        fprintf(stderr, "concerto user add: --username, --role and --password-stdin are "
                        "required (see --help)\n");
        status = 2;
        goto out;
    }
    if ((status = load_policy(&c)) >= 0)
        goto out;
    buf_t password = BUF_INIT;
    if (!read_secret(&password)) {
        fprintf(stderr, "concerto user add: no password on stdin\n");
        buf_release(&password);
        status = 2;
        goto out;
    }
    auth_account_new_t in = {.username = username,
                             .role = role,
                             .practitioner_id = settings_get(&c.s, "practitioner", NULL),
                             .practitioner_role_id = settings_get(&c.s, "practitioner-role", NULL),
                             .patient_id = settings_get(&c.s, "patient", NULL),
                             .password = password.ptr,
                             .password_len = password.len};
    arena_t arena;
    arena_init(&arena);
    const char *id = NULL;
    status_t rc = auth_account_create(&c.accounts, &in, clock_now_us(), &arena, &id, &c.err);
    buf_release(&password);
    if (rc) {
        status = fail(&c, rc);
    } else {
        printf("%s\n", id);
        status = 0;
    }
    arena_release(&arena);
out:
    command_end(&c);
    return status;
}

static void format_time(int64_t us, char out[32])
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int user_list(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    command_t c;
    int status = command_start(&c, "user list", user_list_help, argc, argv, known, NULL, 0);
    if (status >= 0)
        goto out;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    store_account_t *accounts = NULL;
    size_t n = 0;
    status_t rc = store_connect(c.store, &conn, &c.err);
    if (!rc)
        rc = store_account_list(conn, &arena, &accounts, &n, &c.err);
    if (conn)
        store_disconnect(conn);
    if (rc) {
        status = fail(&c, rc);
        arena_release(&arena);
        goto out;
    }
    int64_t now = clock_now_us();
    printf("%-24s %-24s %-40s %-8s %-21s %-7s %s\n", "USERNAME", "ROLE", "LINK", "DISABLED",
           "LOCKED", "MFA", "LAST LOGIN");
    for (size_t i = 0; i < n; i++) {
        const store_account_t *a = &accounts[i];
        const char *link = "-";
        if (a->practitioner_id && a->practitioner_role_id)
            link = arena_printf(&arena, "Practitioner/%s PractitionerRole/%s", a->practitioner_id,
                                a->practitioner_role_id);
        else if (a->practitioner_id)
            link = arena_printf(&arena, "Practitioner/%s", a->practitioner_id);
        else if (a->patient_id)
            link = arena_printf(&arena, "Patient/%s", a->patient_id);
        char locked[32] = "no", last[32] = "never";
        if (a->locked_until_us > now)
            format_time(a->locked_until_us, locked);
        if (a->last_login_us)
            format_time(a->last_login_us, last);
        const char *mfa = !a->totp_secret ? "no" : a->totp_confirmed ? "yes" : "pending";
        printf("%-24s %-24s %-40s %-8s %-21s %-7s %s\n", a->username, a->role, link,
               a->disabled ? "yes" : "no", locked, mfa, last);
    }
    arena_release(&arena);
    status = 0;
out:
    command_end(&c);
    return status;
}

typedef enum { USER_DISABLE, USER_ENABLE, USER_PASSWORD, USER_MFA } user_op_t;

static int user_change(const char *name, const char *help, user_op_t op, int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    static const char *const switches[] = {"password-stdin", NULL};
    command_t c;
    int status =
        command_start(&c, name, help, argc, argv, known, op == USER_PASSWORD ? switches : NULL, 1);
    if (status >= 0)
        goto out;
    const char *username = c.s.args[0];
    status_t rc = ERR_OK;
    int64_t now = clock_now_us();
    switch (op) {
    case USER_DISABLE:
    case USER_ENABLE:
        rc = auth_account_set_disabled(&c.accounts, username, op == USER_DISABLE, now, &c.err);
        break;
    case USER_MFA: rc = auth_mfa_reset(&c.accounts, username, now, &c.err); break;
    case USER_PASSWORD: {
        if (!flag_set(&c.s, "password-stdin")) {
            fprintf(stderr, "concerto %s: --password-stdin is required (see --help)\n", name);
            status = 2;
            goto out;
        }
        if ((status = load_policy(&c)) >= 0)
            goto out;
        buf_t password = BUF_INIT;
        if (!read_secret(&password)) {
            fprintf(stderr, "concerto %s: no password on stdin\n", name);
            buf_release(&password);
            status = 2;
            goto out;
        }
        rc = auth_account_set_password(&c.accounts, username, password.ptr, password.len, now,
                                       &c.err);
        buf_release(&password);
        break;
    }
    }
    status = rc ? fail(&c, rc) : 0;
out:
    command_end(&c);
    return status;
}

static int user_disable(int argc, char **argv)
{
    return user_change("user disable", user_disable_help, USER_DISABLE, argc, argv);
}

static int user_enable(int argc, char **argv)
{
    return user_change("user enable", user_enable_help, USER_ENABLE, argc, argv);
}

static int user_reset_password(int argc, char **argv)
{
    return user_change("user reset-password", user_reset_help, USER_PASSWORD, argc, argv);
}

static int user_mfa_reset(int argc, char **argv)
{
    return user_change("user mfa-reset", user_mfa_help, USER_MFA, argc, argv);
}

int cli_user(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {{"add", user_add},
                                            {"list", user_list},
                                            {"disable", user_disable},
                                            {"enable", user_enable},
                                            {"reset-password", user_reset_password},
                                            {"mfa-reset", user_mfa_reset}};
    return cli_dispatch("user", user_help, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

/* ---- client ------------------------------------------------------------------------------ */

static bool read_file(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(out, chunk, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

static int client_add(int argc, char **argv)
{
    static const char *const known[] = {"db",           "client-id", "scopes", "jwks",
                                        "redirect-uri", "name",      NULL};
    static const char *const switches[] = {"secret-stdin", "public", NULL};
    command_t c;
    int status = command_start(&c, "client add", client_add_help, argc, argv, known, switches, 0);
    if (status >= 0)
        goto out;
    const char *client_id = settings_get(&c.s, "client-id", NULL);
    const char *jwks_path = settings_get(&c.s, "jwks", NULL);
    bool secret = flag_set(&c.s, "secret-stdin"), public = flag_set(&c.s, "public");
    if (!client_id || !settings_get(&c.s, "scopes", NULL)) {
        fprintf(stderr, "concerto client add: --client-id and --scopes are required (see "
                        "--help)\n");
        status = 2;
        goto out;
    }
    if ((int)secret + (int)public + (jwks_path != NULL) != 1) {
        fprintf(stderr, "concerto client add: give one of --secret-stdin, --jwks FILE and "
                        "--public\n");
        status = 2;
        goto out;
    }
    const char *uris[32];
    size_t nuris = 0;
    for (int i = 0; i < c.s.nflags && nuris < 32; i++)
        if (strcmp(c.s.flags[i].name, "redirect-uri") == 0)
            uris[nuris++] = c.s.flags[i].value;
    buf_t secret_text = BUF_INIT, jwks = BUF_INIT;
    auth_client_new_t in = {.client_id = client_id,
                            .name = settings_get(&c.s, "name", NULL),
                            .scopes = settings_get(&c.s, "scopes", NULL),
                            .redirect_uris = uris,
                            .nredirect_uris = nuris};
    if (public) {
        in.kind = STORE_CLIENT_PUBLIC;
    } else if (secret) {
        in.kind = STORE_CLIENT_CONFIDENTIAL;
        if (!read_secret(&secret_text)) {
            fprintf(stderr, "concerto client add: no secret on stdin\n");
            status = 2;
            goto done;
        }
        in.secret = secret_text.ptr;
        in.secret_len = secret_text.len;
    } else {
        in.kind = STORE_CLIENT_JWT;
        if (!read_file(jwks_path, &jwks)) {
            fprintf(stderr, "concerto client add: could not read the JWK Set \"%s\"\n", jwks_path);
            status = 1;
            goto done;
        }
        in.jwks = jwks.ptr;
    }
    status_t rc = auth_client_register(&c.accounts, &in, clock_now_us(), &c.err);
    if (rc)
        status = fail(&c, rc);
    else {
        cli_report(c.name, &c.err); /* warnings about keys left out of the JWK Set */
        printf("%s\n", client_id);
        status = 0;
    }
done:
    buf_release(&secret_text);
    buf_release(&jwks);
out:
    command_end(&c);
    return status;
}

static int client_list(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    command_t c;
    int status = command_start(&c, "client list", client_list_help, argc, argv, known, NULL, 0);
    if (status >= 0)
        goto out;
    arena_t arena;
    arena_init(&arena);
    store_conn_t *conn = NULL;
    store_client_t *clients = NULL;
    size_t n = 0;
    status_t rc = store_connect(c.store, &conn, &c.err);
    if (!rc)
        rc = store_client_list(conn, &arena, &clients, &n, &c.err);
    if (conn)
        store_disconnect(conn);
    if (rc) {
        status = fail(&c, rc);
    } else {
        printf("%-24s %-16s %-24s %-8s %-40s %s\n", "CLIENT ID", "KIND", "NAME", "DISABLED",
               "SCOPES", "REDIRECT URIS");
        for (size_t i = 0; i < n; i++) {
            const store_client_t *cl = &clients[i];
            printf("%-24s %-16s %-24s %-8s %-40s %s\n", cl->client_id,
                   store_client_kind_name(cl->kind), cl->name ? cl->name : "-",
                   cl->disabled ? "yes" : "no", cl->scopes,
                   cl->redirect_uris && *cl->redirect_uris ? cl->redirect_uris : "-");
        }
        status = 0;
    }
    arena_release(&arena);
out:
    command_end(&c);
    return status;
}

static int client_remove(int argc, char **argv)
{
    static const char *const known[] = {"db", NULL};
    command_t c;
    int status = command_start(&c, "client remove", client_remove_help, argc, argv, known, NULL, 1);
    if (status >= 0)
        goto out;
    status_t rc = auth_client_remove(&c.accounts, c.s.args[0], &c.err);
    status = rc ? fail(&c, rc) : 0;
out:
    command_end(&c);
    return status;
}

int cli_client(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {
        {"add", client_add}, {"list", client_list}, {"remove", client_remove}};
    return cli_dispatch("client", client_help, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
