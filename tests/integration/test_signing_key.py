"""
The server's signing key kept in the database: servers on one PostgreSQL database without
--signing-key, each with the same --secrets-key, sign id_tokens with one key, made by the first
server that starts and sealed with the secrets key in the database (docs/security.md). An
id_token carries the signed-in Practitioner (fhirUser) and verifies against /oauth2/jwks of
every server; a restart keeps the key; the database holds the key sealed, never in the clear;
a server with another secrets key refuses to start; and without a secrets key the server says
what to pass. On SQLite the key stays in its file beside the database (test_oauth.py).
"""
import base64
import glob
import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ON_POSTGRES, fresh_database, run_cli
from test_access import sign_in
from test_login import APP_URI, PASSWORD

postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="the key kept in the database is PostgreSQL's; SQLite keeps it in "
    "a file beside the database")

PEOPLE = [{"resourceType": "Practitioner", "id": "p1", "name": [{"family": "Diaz"}]}]
STAFF_SCOPES = "openid fhirUser offline_access user/*.cruds"


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def verifies(token, jwks):
    """Whether the RS256 signature of token verifies with the key of jwks its kid names
    (RFC 7515, RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 section 8.2.2)."""
    header, payload, signature = token.split(".")
    kid = json.loads(b64url_decode(header))["kid"]
    [jwk] = [k for k in jwks if k["kid"] == kid]
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    size = (n.bit_length() + 7) // 8
    encoded = pow(int.from_bytes(b64url_decode(signature), "big"), e, n).to_bytes(size, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(
        f"{header}.{payload}".encode()).digest()
    return encoded == b"\x00\x01" + b"\xff" * (size - 3 - len(digest_info)) + b"\x00" + digest_info


def psql(uri, sql):
    exe = shutil.which("psql") or (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or [None])[-1]
    assert exe, "psql is not installed"
    out = subprocess.run([exe, "-v", "ON_ERROR_STOP=1", "-qtA", "-F", "\t", uri, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def secrets_key(path):
    path.write_text(os.urandom(32).hex() + "\n")
    path.chmod(0o600)
    return path


def prepare(db, tmp_path):
    """A Practitioner with a nurse account linked to it, and a public app that asks openid."""
    data = tmp_path / "people.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in PEOPLE))
    r = run_cli("import", "--db", db, str(data))
    assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", db, "--username", "nurse1", "--role", "nurse",
                "--practitioner", "p1", "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                STAFF_SCOPES, "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr


@postgres_only
def test_servers_on_one_database_sign_with_the_key_kept_in_it(make_server, tmp_path):
    db = fresh_database()
    assert run_cli("init", "--db", db).returncode == 0
    prepare(db, tmp_path)
    args = ["--secrets-key", str(secrets_key(tmp_path / "secrets.key"))]
    first = make_server(args=args, db=db, shared_signing_key=False)
    assert "created the signing key" in first.stderr()
    jwks = first.client.get("/oauth2/jwks", auth=None).json["keys"]
    assert len(jwks) == 1
    config = first.client.get("/fhir/.well-known/smart-configuration", auth=None).json
    assert "sso-openid-connect" in config["capabilities"]

    tokens = sign_in(first, "nurse1", STAFF_SCOPES)
    claims = claims_of(tokens["id_token"])
    assert claims["fhirUser"] == f"{first.client.origin}/fhir/Practitioner/p1"
    assert claims["aud"] == "app"
    assert verifies(tokens["id_token"], jwks)
    # a token whose signature is altered does not verify (the check can fail)
    head, payload, signature = tokens["id_token"].split(".")
    altered = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert not verifies(f"{head}.{payload}.{altered}", jwks)

    # a second server on the database serves the same key and signs with it
    second = make_server(args=args, db=db, shared_signing_key=False)
    assert "created the signing key" not in second.stderr()
    assert f"using the signing key {jwks[0]['kid']}" in second.stderr()
    assert second.client.get("/oauth2/jwks", auth=None).json["keys"] == jwks
    r = second.client.token_request({"grant_type": "refresh_token", "client_id": "app",
                                     "refresh_token": tokens["refresh_token"]}, client_id=None)
    assert r.status == 200, r
    assert claims_of(r.json["id_token"])["fhirUser"].endswith("/fhir/Practitioner/p1")
    assert verifies(r.json["id_token"], jwks)

    # a restart keeps the key
    first.restart()
    assert first.client.get("/oauth2/jwks", auth=None).json["keys"] == jwks

    # the database holds it sealed: no private key in the clear
    [row] = psql(db, "SELECT name, kid, sealed FROM server_key")
    assert row[0] == "signing" and row[1] == jwks[0]["kid"]
    assert row[2].startswith("v1.")
    assert "PRIVATE KEY" not in row[2] and "MII" not in row[2]
    assert b"PRIVATE KEY" not in b64url_decode(row[2][3:])


@postgres_only
def test_servers_started_at_once_agree_on_one_key(make_server, tmp_path):
    db = fresh_database()
    assert run_cli("init", "--db", db).returncode == 0
    args = ["--secrets-key", str(secrets_key(tmp_path / "secrets.key"))]
    servers = [make_server(args=args, db=db, shared_signing_key=False, harness_token=False,
                           start=False) for _ in range(3)]
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda srv: srv.start(), servers))
    assert sum("created the signing key" in srv.stderr() for srv in servers) == 1
    [jwk] = servers[0].client.get("/oauth2/jwks", auth=None).json["keys"]
    for srv in servers[1:]:
        assert srv.client.get("/oauth2/jwks", auth=None).json["keys"] == [jwk]
    assert psql(db, "SELECT kid FROM server_key") == [[jwk["kid"]]]


@postgres_only
def test_a_server_with_another_secrets_key_refuses_the_stored_key(make_server, tmp_path):
    db = fresh_database()
    first = make_server(args=["--secrets-key", str(secrets_key(tmp_path / "a.key"))], db=db,
                        shared_signing_key=False)
    first.stop()
    other = make_server(args=["--secrets-key", str(secrets_key(tmp_path / "b.key"))], db=db,
                        shared_signing_key=False, start=False)
    with pytest.raises(AssertionError, match="does not open with this --secrets-key"):
        other.start()
    other.proc = None  # it exited as it should


@postgres_only
def test_without_a_secrets_key_the_server_says_what_to_pass(make_server):
    srv = make_server(shared_signing_key=False)
    assert srv.client.get("/oauth2/jwks", auth=None).json["keys"] == []
    assert "no --signing-key and no --secrets-key" in srv.stderr()
    assert "--secrets-key FILE" in srv.stderr()
    assert psql(str(srv.db), "SELECT count(*) FROM server_key") == [["0"]]


def test_sqlite_keeps_the_key_in_its_file(make_server, tmp_path):
    """With a database file the key stays in the file beside it, as it always was, even with
    a secrets key: the table of the server's keys stays empty."""
    import sqlite3
    db = tmp_path / "x.db"
    srv = make_server(args=["--secrets-key", str(secrets_key(tmp_path / "secrets.key"))],
                      db=str(db), shared_signing_key=False)
    assert (tmp_path / "x.db.signing.pem").exists()
    assert len(srv.client.get("/oauth2/jwks", auth=None).json["keys"]) == 1
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM server_key").fetchone()[0] == 0


@postgres_only
def test_migrate_data_copies_the_key_kept_in_the_database(make_server, tmp_path):
    """concerto migrate-data copies the stored key as it is, sealed: servers on the copy with
    the same secrets key sign with the same key."""
    source = fresh_database()
    args = ["--secrets-key", str(secrets_key(tmp_path / "secrets.key"))]
    srv = make_server(args=args, db=source, shared_signing_key=False)
    jwks = srv.client.get("/oauth2/jwks", auth=None).json["keys"]
    assert srv.stop() == 0
    target = fresh_database()
    r = run_cli("migrate-data", "--from", source, "--to", target, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("server keys (sealed)")]
    assert line.split()[3:6] == ["1", "1", "ok"], line
    assert "SHA-256 of server keys" in r.stdout
    assert psql(target, "SELECT name, kid, created_us, sealed FROM server_key") == \
        psql(source, "SELECT name, kid, created_us, sealed FROM server_key")
    copy = make_server(args=args, db=target, shared_signing_key=False)
    assert f"using the signing key {jwks[0]['kid']}" in copy.stderr()
    assert copy.client.get("/oauth2/jwks", auth=None).json["keys"] == jwks
    assert copy.stop() == 0
    # a target that holds a key is not empty
    r = run_cli("migrate-data", "--from", source, "--to", target, timeout=300)
    assert r.returncode == 1 and "1 server keys" in r.stderr, r.stdout + r.stderr
