"""
`concerto user` and `concerto client`: accounts and OAuth clients from the command line, on
SQLite and (CONCERTO_TEST_DB=postgresql) on a fresh PostgreSQL database per test. Secrets come
on stdin; wrong requests exit 2, failed work 1.
"""
import json
import os
import re

import pytest

from conftest import ON_POSTGRES, fresh_database, run_cli

PASSWORD = "violet cactus under the harbour\n"
SECRET = "0123456789abcdef0123456789abcdef\n"


@pytest.fixture
def db(tmp_path):
    """A database with Practitioner/p1, PractitionerRole/r1 and Patient/pat1."""
    location = fresh_database() if ON_POSTGRES else str(tmp_path / "accounts.db")
    r = run_cli("init", "--db", location)
    assert r.returncode == 0, r.stderr
    resources = tmp_path / "people.ndjson"
    resources.write_text(
        '{"resourceType":"Practitioner","id":"p1"}\n'
        '{"resourceType":"PractitionerRole","id":"r1","practitioner":'
        '{"reference":"Practitioner/p1"}}\n'
        '{"resourceType":"Patient","id":"pat1"}\n')
    r = run_cli("import", "--db", location, str(resources))
    assert r.returncode == 0, r.stderr
    return location


def user(db, *args, password=None):
    return run_cli("user", *args, "--db", db, input=password)


def client(db, *args, secret=None):
    return run_cli("client", *args, "--db", db, input=secret)


def listing(db, kind):
    """The lines of `user list` / `client list` after the heading."""
    r = run_cli(kind, "list", "--db", db)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[1:]


def user_row(db, username):
    for line in listing(db, "user"):
        if line.split()[0] == username:
            return line.split()
    return None


def test_add_users_of_each_kind_and_list_them(db):
    r = user(db, "add", "--username", "Alice", "--role", "nurse", "--practitioner", "p1",
             "--practitioner-role", "r1", "--password-stdin", password=PASSWORD)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n",
                        r.stdout)
    r = user(db, "add", "--username", "pat", "--role", "patient", "--patient", "pat1",
             "--password-stdin", password=PASSWORD)
    assert r.returncode == 0, r.stderr
    r = user(db, "add", "--username", "root", "--role", "admin", "--password-stdin",
             password=PASSWORD)
    assert r.returncode == 0, r.stderr

    r = run_cli("user", "list", "--db", db)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "LINK", "DISABLED", "LOCKED", "MFA", "LAST",
                                "LOGIN"]
    # names are stored in lower case, listed in order
    assert [line.split()[0] for line in lines[1:]] == ["alice", "pat", "root"]
    assert user_row(db, "alice") == ["alice", "nurse", "Practitioner/p1", "PractitionerRole/r1",
                                     "no", "no", "no", "never"]
    assert user_row(db, "pat") == ["pat", "patient", "Patient/pat1", "no", "no", "no", "never"]
    assert user_row(db, "root") == ["root", "admin", "-", "no", "no", "no", "never"]
    # the password is nowhere in the output
    assert "violet" not in r.stdout


def test_add_refusals(db):
    ok = ["--username", "bob", "--role", "nurse", "--practitioner", "p1", "--password-stdin"]
    # a weak password: exit 2 with the policy's message
    r = user(db, "add", *ok, password="password1234\n")
    assert r.returncode == 2
    assert "commonly used password" in r.stderr
    r = user(db, "add", *ok, password="short\n")
    assert r.returncode == 2
    assert "12" in r.stderr
    r = user(db, "add", *ok, password="bob likes bobsleigh\n")
    assert r.returncode == 2
    assert "user name" in r.stderr
    # unknown role
    r = user(db, "add", "--username", "bob", "--role", "chef", "--password-stdin",
             password=PASSWORD)
    assert r.returncode == 2
    assert 'unknown role "chef"' in r.stderr
    # a missing link, a link to nothing, the wrong link
    r = user(db, "add", "--username", "bob", "--role", "nurse", "--password-stdin",
             password=PASSWORD)
    assert r.returncode == 2
    assert "must link to its Practitioner" in r.stderr
    r = user(db, "add", "--username", "bob", "--role", "patient", "--password-stdin",
             password=PASSWORD)
    assert r.returncode == 2
    assert "must link to its Patient" in r.stderr
    r = user(db, "add", "--username", "bob", "--role", "nurse", "--practitioner", "p9",
             "--password-stdin", password=PASSWORD)
    assert r.returncode == 1
    assert "Practitioner/p9 does not exist" in r.stderr
    r = user(db, "add", "--username", "bob", "--role", "patient", "--patient", "pat1",
             "--practitioner", "p1", "--password-stdin", password=PASSWORD)
    assert r.returncode == 2
    # a duplicate username, whatever the case
    assert user(db, "add", *ok, password=PASSWORD).returncode == 0
    r = user(db, "add", "--username", "BOB", "--role", "nurse", "--practitioner", "p1",
             "--password-stdin", password=PASSWORD)
    assert r.returncode == 1
    assert 'the user name "bob" is taken' in r.stderr
    # the password only from stdin
    r = user(db, "add", "--username", "carl", "--role", "admin", password=PASSWORD)
    assert r.returncode == 2
    assert "--password-stdin" in r.stderr
    r = user(db, "add", "--username", "carl", "--role", "admin", "--password", "x")
    assert r.returncode == 2
    assert "unknown option --password" in r.stderr
    r = user(db, "add", "--username", "carl", "--role", "admin", "--password-stdin", password="")
    assert r.returncode == 2
    assert "no password on stdin" in r.stderr
    r = user(db, "add", "--username", "bad name", "--role", "admin", "--password-stdin",
             password=PASSWORD)
    assert r.returncode == 2
    assert "invalid user name" in r.stderr
    # nothing of the refused ones was written
    assert [line.split()[0] for line in listing(db, "user")] == ["bob"]


def test_disable_enable_reset_password_and_mfa(db):
    assert user(db, "add", "--username", "alice", "--role", "nurse", "--practitioner", "p1",
                "--password-stdin", password=PASSWORD).returncode == 0
    r = user(db, "disable", "ALICE")
    assert r.returncode == 0, r.stderr
    assert user_row(db, "alice")[3] == "yes"
    r = user(db, "enable", "alice")
    assert r.returncode == 0, r.stderr
    assert user_row(db, "alice")[3] == "no"

    r = user(db, "reset-password", "alice", "--password-stdin", password="password1234\n")
    assert r.returncode == 2
    r = user(db, "reset-password", "alice", "--password-stdin",
             password="quiet orange bicycle at dawn\n")
    assert r.returncode == 0, r.stderr
    r = user(db, "reset-password", "alice", password=PASSWORD)
    assert r.returncode == 2
    r = user(db, "mfa-reset", "alice")
    assert r.returncode == 0, r.stderr
    assert user_row(db, "alice")[5] == "no"

    # unknown users
    for args in (["disable", "zed"], ["enable", "zed"], ["mfa-reset", "zed"]):
        r = user(db, *args)
        assert r.returncode == 1, args
        assert 'there is no account "zed"' in r.stderr
    r = user(db, "reset-password", "zed", "--password-stdin",
             password="quiet orange bicycle at dawn\n")
    assert r.returncode == 1
    assert 'there is no account "zed"' in r.stderr
    # usage
    assert user(db, "disable").returncode == 2
    assert user(db, "disable", "a", "b").returncode == 2
    assert run_cli("user", "frobnicate").returncode == 2
    assert run_cli("user").returncode == 2


def test_clients(db, tmp_path):
    r = client(db, "add", "--client-id", "backend", "--secret-stdin", "--scopes",
               "system/*.rs", "--name", "Nightly export", secret=SECRET)
    assert r.returncode == 0, r.stderr
    r = client(db, "add", "--client-id", "app", "--public", "--scopes",
               "launch/patient openid fhirUser patient/*.rs offline_access",
               "--redirect-uri", "https://app.example/cb",
               "--redirect-uri", "http://localhost:8080/cb")
    assert r.returncode == 0, r.stderr
    jwks = tmp_path / "jwks.json"
    # RFC 7515 Appendix A.3's P-256 public key
    jwks.write_text(json.dumps({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))
    r = client(db, "add", "--client-id", "service", "--jwks", str(jwks), "--scopes",
               "system/Patient.rs system/Observation.rs")
    assert r.returncode == 0, r.stderr

    r = run_cli("client", "list", "--db", db)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["app", "backend", "service"]
    assert lines[1].split()[1] == "public"
    assert "https://app.example/cb http://localhost:8080/cb" in lines[1]
    assert lines[2].split()[1] == "confidential"
    assert "Nightly export" in lines[2]
    assert lines[3].split()[1] == "private_key_jwt"
    assert "0123456789abcdef" not in r.stdout  # the secret is stored hashed

    # refusals
    r = client(db, "add", "--client-id", "app", "--public", "--scopes", "patient/*.rs",
               "--redirect-uri", "https://app.example/cb")
    assert r.returncode == 1
    assert 'the client id "app" is taken' in r.stderr
    r = client(db, "add", "--client-id", "x", "--secret-stdin", "--scopes", "system/*.rs",
               secret="short\n")
    assert r.returncode == 2
    assert "32 characters" in r.stderr
    r = client(db, "add", "--client-id", "x", "--public", "--scopes", "patient/*.rs")
    assert r.returncode == 2
    assert "redirect URI" in r.stderr
    r = client(db, "add", "--client-id", "x", "--public", "--scopes", "patient/*.rs",
               "--redirect-uri", "http://app.example/cb")
    assert r.returncode == 2
    assert "invalid redirect URI" in r.stderr
    r = client(db, "add", "--client-id", "x", "--public", "--scopes", "patient/Nothing.rs",
               "--redirect-uri", "https://app.example/cb")
    assert r.returncode == 2
    assert 'scope "patient/Nothing.rs" is not understood' in r.stderr
    r = client(db, "add", "--client-id", "x", "--public", "--secret-stdin", "--scopes",
               "system/*.rs", secret=SECRET)
    assert r.returncode == 2
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    r = client(db, "add", "--client-id", "x", "--jwks", str(empty), "--scopes", "system/*.rs")
    assert r.returncode == 2
    assert "no key" in r.stderr

    r = client(db, "remove", "backend")
    assert r.returncode == 0, r.stderr
    r = client(db, "remove", "backend")
    assert r.returncode == 1
    assert 'there is no client "backend"' in r.stderr
    r = run_cli("client", "list", "--db", db)
    assert [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["app", "service"]


def test_help_of_every_command():
    for args in (["user", "--help"], ["user", "add", "--help"], ["user", "list", "--help"],
                 ["user", "disable", "--help"], ["user", "enable", "--help"],
                 ["user", "reset-password", "--help"], ["user", "mfa-reset", "--help"],
                 ["client", "--help"], ["client", "add", "--help"], ["client", "list", "--help"],
                 ["client", "remove", "--help"]):
        r = run_cli(*args)
        assert r.returncode == 0, args
        assert r.stdout.startswith("usage: concerto " + args[0]), args
    r = run_cli("--help")
    assert "  user " in r.stdout and "  client " in r.stdout


@pytest.mark.skipif(ON_POSTGRES, reason="the source of migrate-data is an SQLite file")
@pytest.mark.parametrize("target_kind", ["sqlite", "postgresql"])
def test_migrate_data_copies_accounts_and_clients(db, tmp_path, target_kind):
    if target_kind == "postgresql":
        if not os.environ.get("CONCERTO_TEST_PG_CLUSTER"):
            pytest.skip("needs a PostgreSQL cluster (CONCERTO_TEST_PG_CLUSTER)")
        target = fresh_database()
    else:
        target = str(tmp_path / "target.db")
    assert user(db, "add", "--username", "alice", "--role", "nurse", "--practitioner", "p1",
                "--password-stdin", password=PASSWORD).returncode == 0
    assert user(db, "add", "--username", "pat", "--role", "patient", "--patient", "pat1",
                "--password-stdin", password=PASSWORD).returncode == 0
    assert user(db, "disable", "pat").returncode == 0
    assert client(db, "add", "--client-id", "backend", "--secret-stdin", "--scopes",
                  "system/*.rs", secret=SECRET).returncode == 0
    r = run_cli("migrate-data", "--from", db, "--to", target, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^accounts\s+2\s+2\s+ok$", r.stdout, re.M), r.stdout
    assert re.search(r"^OAuth clients\s+1\s+1\s+ok$", r.stdout, re.M), r.stdout
    assert re.search(r"^SHA-256 of accounts", r.stdout, re.M), r.stdout
    for kind in ("user", "client"):
        assert listing(target, kind) == listing(db, kind)
    # the accounts work on the target: a reset checks the new password against the user name
    r = user(target, "reset-password", "alice", "--password-stdin",
             password="alice in wonderland again\n")
    assert r.returncode == 2 and "user name" in r.stderr
    # a target with accounts is not empty
    r = run_cli("migrate-data", "--from", db, "--to", target, timeout=300)
    assert r.returncode == 1
    assert "accounts" in r.stderr
