"""SMART on FHIR authorization over HTTP: the discovery document, the token endpoint with
client_secret_basic, client_secret_post and private_key_jwt (assertions signed here with the
openssl command), scopes granted as the intersection of what is asked and what is registered,
the bearer token on every /fhir request (missing, malformed, unknown, expired, revoked),
introspection, the JWK Set, CORS, and the CapabilityStatement's security element."""
import base64
import hashlib
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import time
import uuid

import pytest

from conftest import (HARNESS_CLIENT, HARNESS_SECRET, ON_POSTGRES, assert_outcome, basic_auth,
                      form, patient, run_cli)

SMART_CAPABILITIES = {"launch-standalone", "client-public", "client-confidential-symmetric",
                      "client-confidential-asymmetric", "context-standalone-patient",
                      "permission-offline", "permission-patient", "permission-user",
                      "permission-v1", "permission-v2"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def openssl(*args, input=None):
    out = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


# ---- keys and assertions signed with the openssl command ------------------------------------

class Key:
    """A private key in a PEM file, its public JWK and its JWS algorithm."""

    def __init__(self, directory, kind, kid, name):
        self.path = directory / f"{name}.pem"
        self.kid = kid
        if kind == "RS384":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                    str(self.path))
            modulus = openssl("rsa", "-in", str(self.path), "-noout", "-modulus").decode()
            n = bytes.fromhex(modulus.strip().split("=", 1)[1])
            self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS384", "n": b64url(n),
                        "e": b64url((65537).to_bytes(3, "big"))}
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
                    "-out", str(self.path))
            der = openssl("pkey", "-in", str(self.path), "-pubout", "-outform", "DER")
            point = der[-97:]  # the uncompressed point ends the SubjectPublicKeyInfo
            assert point[0] == 4
            self.jwk = {"kty": "EC", "kid": kid, "crv": "P-384", "x": b64url(point[1:49]),
                        "y": b64url(point[49:])}
        self.alg = kind

    def sign(self, claims, kid=None):
        header = {"alg": self.alg, "typ": "JWT", "kid": kid or self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode()))
        signature = openssl("dgst", "-sha384", "-sign", str(self.path),
                            input=signing_input.encode())
        if self.alg == "ES384":
            signature = der_to_raw(signature, 48)
        return signing_input + "." + b64url(signature)


def der_to_raw(der, size):
    """An ECDSA-Sig-Value (SEQUENCE of INTEGER r, INTEGER s) as r||s of size bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        value = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += value.rjust(size, b"\0")
        i += 2 + n
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {"rs": Key(d, "RS384", "rs-key", "rs"), "es": Key(d, "ES384", "es-key", "es"),
            "stranger": Key(d, "ES384", "es-key", "stranger")}  # same kid, not registered


@pytest.fixture(scope="module")
def backend(_module_server, keys, tmp_path_factory):
    """A private_key_jwt client with the RS384 and ES384 keys, on the module's server."""
    srv = _module_server.current
    jwks = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [keys["rs"].jwk, keys["es"].jwk]}))
    client_id = f"backend-{uuid.uuid4().hex[:8]}"
    r = run_cli("client", "add", "--db", srv.database(), "--client-id", client_id, "--jwks",
                str(jwks), "--scopes", "system/Patient.rs system/Observation.cruds", cwd=srv.dir)
    assert r.returncode == 0, r.stderr
    return client_id


def assertion(server, client_id, key, **claims):
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": f"{server.client.origin}/oauth2/token",
            "exp": now + 240, "jti": secrets.token_hex(16)}
    body.update(claims)
    return key.sign(body)


def jwt_token(server, client_id, signed, scope="system/Patient.rs"):
    body, headers = form(grant_type="client_credentials", scope=scope,
                         client_assertion_type="urn:ietf:params:oauth:client-assertion-type:"
                                               "jwt-bearer",
                         client_assertion=signed)
    return server.client.post("/oauth2/token", body, headers=headers, auth=None)


def assert_oauth_error(r, status, error, description=None):
    assert r.status == status, r
    assert r.content_type.startswith("application/json"), r.content_type
    assert r.json["error"] == error, r.json
    if description:
        assert description in r.json["error_description"], r.json
    assert r.header("Cache-Control") == "no-store"


def token_of(server, scope="system/*.cruds"):
    r = server.client.token_request({"grant_type": "client_credentials", "scope": scope})
    assert r.status == 200, r
    return r.json["access_token"]


# ---- discovery ------------------------------------------------------------------------------

def test_smart_configuration(client):
    r = client.get("/fhir/.well-known/smart-configuration", auth=None)
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Origin") == "*"
    c = r.json
    origin = client.origin
    assert c["issuer"] == f"{origin}/fhir"
    assert c["token_endpoint"] == f"{origin}/oauth2/token"
    assert c["authorization_endpoint"] == f"{origin}/oauth2/authorize"
    assert c["jwks_uri"] == f"{origin}/oauth2/jwks"
    assert c["introspection_endpoint"] == f"{origin}/oauth2/introspect"
    assert c["revocation_endpoint"] == f"{origin}/oauth2/revoke"
    assert c["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post", "private_key_jwt"]
    assert c["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert set(c["grant_types_supported"]) == {"authorization_code", "refresh_token",
                                               "client_credentials"}
    assert c["response_types_supported"] == ["code"]
    assert c["code_challenge_methods_supported"] == ["S256"]
    assert SMART_CAPABILITIES <= set(c["capabilities"])
    assert "sso-openid-connect" in c["capabilities"]  # the harness gives every server a key
    assert "openid" in c["scopes_supported"] and "system/*.cruds" in c["scopes_supported"]


def test_capability_statement_names_the_oauth_endpoints(client):
    r = client.get("metadata", auth=None)  # the one FHIR read without a token
    assert r.status == 200, r
    security = r.json["rest"][0]["security"]
    assert security["cors"] is True
    assert security["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR"}
    ext = security["extension"][0]
    assert ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert uris == {name: f"{client.origin}/oauth2/{name}"
                    for name in ("authorize", "token", "revoke", "introspect")}


def test_jwks_serves_the_signing_key(client):
    r = client.get("/oauth2/jwks", auth=None)
    assert r.status == 200, r
    assert r.header("Access-Control-Allow-Origin") == "*"
    [key] = r.json["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    # the kid is the RFC 7638 thumbprint
    canonical = json.dumps({"e": key["e"], "kty": "RSA", "n": key["n"]},
                           separators=(",", ":")).encode()
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=canonical,
                            capture_output=True, timeout=30).stdout
    assert key["kid"] == b64url(digest)


# ---- client_credentials -----------------------------------------------------------------------

def test_client_secret_basic(server):
    c = server.client
    r = c.token_request({"grant_type": "client_credentials", "scope": "system/Patient.rs"})
    assert r.status == 200, r
    assert r.header("Cache-Control") == "no-store"
    assert r.header("Access-Control-Allow-Origin") == "*"
    t = r.json
    assert t["token_type"] == "Bearer" and t["expires_in"] == 3600
    assert t["scope"] == "system/Patient.rs"
    assert "refresh_token" not in t and "id_token" not in t and "patient" not in t
    assert c.get("Patient", auth=t["access_token"]).status == 200

    r = c.token_request({"grant_type": "client_credentials"}, secret=HARNESS_SECRET + "x")
    assert_oauth_error(r, 401, "invalid_client")
    assert r.header("WWW-Authenticate").startswith("Basic")
    r = c.token_request({"grant_type": "client_credentials"}, client_id="nobody")
    assert_oauth_error(r, 401, "invalid_client")
    assert r.header("WWW-Authenticate").startswith("Basic")


def test_client_secret_post(client):
    body, headers = form(grant_type="client_credentials", scope="system/*.rs",
                         client_id=HARNESS_CLIENT, client_secret=HARNESS_SECRET)
    r = client.post("/oauth2/token", body, headers=headers, auth=None)
    assert r.status == 200, r
    assert r.json["scope"] == "system/*.rs"
    body, headers = form(grant_type="client_credentials", client_id=HARNESS_CLIENT,
                         client_secret="wrong-wrong-wrong-wrong-wrong-wrong")
    r = client.post("/oauth2/token", body, headers=headers, auth=None)
    assert_oauth_error(r, 401, "invalid_client")
    assert r.header("WWW-Authenticate") is None


def test_bad_token_requests(client):
    r = client.post("/oauth2/token", {"grant_type": "client_credentials"}, auth=None)
    assert_oauth_error(r, 400, "invalid_request", "x-www-form-urlencoded")
    r = client.token_request({"grant_type": "password"})
    assert_oauth_error(r, 400, "unsupported_grant_type")
    r = client.token_request({})
    assert_oauth_error(r, 400, "invalid_request", "grant_type")
    r = client.post("/oauth2/token?x", "grant_type=client_credentials&grant_type=x",
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Authorization": basic_auth(HARNESS_CLIENT, HARNESS_SECRET)})
    assert_oauth_error(r, 400, "invalid_request", "more than once")
    r = client.token_request({"grant_type": "client_credentials"}, client_id=None)
    assert_oauth_error(r, 401, "invalid_client")
    r = client.token_request({"grant_type": "authorization_code", "code": "x",
                              "redirect_uri": "https://app.example/cb"})
    assert_oauth_error(r, 400, "invalid_request", "code_verifier")
    r = client.token_request({"grant_type": "authorization_code", "code": "x" * 43,
                              "redirect_uri": "https://app.example/cb",
                              "code_verifier": "v" * 43})
    assert_oauth_error(r, 400, "invalid_grant", "unknown authorization code")
    r = client.token_request({"grant_type": "refresh_token", "refresh_token": "x" * 43})
    assert_oauth_error(r, 400, "invalid_grant", "unknown refresh token")
    r = client.get("/oauth2/token", auth=None)
    assert r.status == 405 and r.header("Allow") == "POST"


def test_scopes_granted_are_the_intersection(client):
    # registered for system/*.cruds: a narrower ask gets what it asks, user/ and openid nothing
    r = client.token_request({"grant_type": "client_credentials",
                              "scope": "system/Observation.rs user/*.rs openid fhirUser"})
    assert r.status == 200, r
    assert r.json["scope"] == "system/Observation.rs"
    r = client.token_request({"grant_type": "client_credentials", "scope": "patient/*.rs launch"})
    assert_oauth_error(r, 400, "invalid_scope")


def test_scopes_with_a_query_are_refused_at_issue(client):
    r = client.token_request({"grant_type": "client_credentials",
                              "scope": "system/Patient.rs system/Observation.rs?category=laboratory"})
    assert_oauth_error(r, 400, "invalid_scope", "system/Observation.rs?category=laboratory")
    assert "not supported" in r.json["error_description"]


def test_private_key_jwt(server, backend, keys):
    for key in (keys["rs"], keys["es"]):
        r = jwt_token(server, backend, assertion(server, backend, key))
        assert r.status == 200, r
        assert r.json["scope"] == "system/Patient.rs"
        assert server.client.get("Patient", auth=r.json["access_token"]).status == 200

    # more than registered: the overlap; nothing grantable: invalid_scope
    r = jwt_token(server, backend, assertion(server, backend, keys["es"]),
                  scope="system/*.cruds user/*.rs")
    assert r.status == 200, r
    assert r.json["scope"].split() == ["system/Patient.rs", "system/Observation.cruds"]
    r = jwt_token(server, backend, assertion(server, backend, keys["es"]), scope="user/*.rs")
    assert_oauth_error(r, 400, "invalid_scope")

    signed = assertion(server, backend, keys["rs"])
    assert jwt_token(server, backend, signed).status == 200
    assert_oauth_error(jwt_token(server, backend, signed), 401, "invalid_client")  # replayed jti
    wrong_aud = assertion(server, backend, keys["es"], aud="https://elsewhere.example/token")
    assert_oauth_error(jwt_token(server, backend, wrong_aud), 401, "invalid_client", "aud")
    expired = assertion(server, backend, keys["es"], exp=int(time.time()) - 3600)
    assert_oauth_error(jwt_token(server, backend, expired), 401, "invalid_client", "exp")
    stranger = assertion(server, backend, keys["stranger"])
    assert_oauth_error(jwt_token(server, backend, stranger), 401, "invalid_client")
    # the assertion type must be the JWT bearer one
    body, headers = form(grant_type="client_credentials", client_assertion_type="x",
                         client_assertion=assertion(server, backend, keys["es"]))
    r = server.client.post("/oauth2/token", body, headers=headers, auth=None)
    assert_oauth_error(r, 400, "invalid_request", "client_assertion_type")


# ---- the bearer token on /fhir ----------------------------------------------------------------

def test_a_request_without_a_token_is_refused(client):
    r = client.get("Patient", auth=None)
    assert_outcome(r, 401, "login", "Authorization: Bearer")
    assert r.header("WWW-Authenticate") == 'Bearer realm="concerto"'
    assert r.header("Access-Control-Allow-Origin") == "*"
    r = client.post("Patient", patient(), auth=None)
    assert_outcome(r, 401, "login")
    assert_outcome(client.get("_history", auth=None), 401, "login")
    assert_outcome(client.get("Patient/$everything", auth=None), 401, "login")
    assert_outcome(client.post("", {"resourceType": "Bundle", "type": "batch"}, auth=None), 401,
                   "login")


@pytest.mark.parametrize("authorization", [
    "Basic dGVzdDp0ZXN0", "Bearer", "Bearer short", "Bearer " + "A" * 43, "Token " + "A" * 43])
def test_a_malformed_or_unknown_token_is_refused(client, authorization):
    r = client.get("Patient", headers={"Authorization": authorization})
    assert_outcome(r, 401, "login")
    challenge = r.header("WWW-Authenticate")
    assert challenge.startswith('Bearer realm="concerto", error="invalid_token", '
                                'error_description="'), challenge


def test_emergency_access_header(client):
    assert client.get("Patient", headers={"X-Emergency-Access": " unconscious, no ID "}).status \
        == 200
    assert_outcome(client.get("Patient", headers={"X-Emergency-Access": "   "}), 400, "invalid",
                   "X-Emergency-Access")
    assert_outcome(client.get("Patient", headers={"X-Emergency-Access": "x" * 501}), 400,
                   "invalid", "at most 500")


def test_revocation_takes_effect_at_once(server):
    c = server.client
    token = token_of(server)
    assert c.get("Patient", auth=token).status == 200  # now in the cache
    r = c.token_request({"token": token}, path="/oauth2/revoke")
    assert r.status == 200, r
    r = c.get("Patient", auth=token)
    assert_outcome(r, 401, "login", "revoked")
    assert 'error="invalid_token"' in r.header("WWW-Authenticate")
    # an unknown token is not an error; a request without client authentication is
    assert c.token_request({"token": "x" * 43}, path="/oauth2/revoke").status == 200
    r = c.token_request({"token": token_of(server)}, path="/oauth2/revoke", client_id=None)
    assert_oauth_error(r, 401, "invalid_client")


def test_introspection(server):
    c = server.client
    token = token_of(server, "system/Patient.rs")
    before = int(time.time())
    r = c.token_request({"token": token}, path="/oauth2/introspect")
    assert r.status == 200, r
    info = r.json
    assert info["active"] is True
    assert info["scope"] == "system/Patient.rs"
    assert info["client_id"] == HARNESS_CLIENT and info["sub"] == HARNESS_CLIENT
    assert info["token_type"] == "Bearer"
    assert before - 5 <= info["iat"] <= before + 5 and info["exp"] == info["iat"] + 3600
    assert c.token_request({"token": token}, path="/oauth2/revoke").status == 200
    r = c.token_request({"token": token}, path="/oauth2/introspect")
    assert r.status == 200 and r.json == {"active": False}
    r = c.token_request({"token": "x" * 43}, path="/oauth2/introspect")
    assert r.status == 200 and r.json == {"active": False}
    r = c.token_request({"token": token}, path="/oauth2/introspect", client_id=None)
    assert_oauth_error(r, 401, "invalid_client")


def test_cors_preflight(client):
    for path in ("/fhir/Patient", "/oauth2/token"):
        r = client.request("OPTIONS", path, auth=None,
                           headers={"Origin": "https://app.example",
                                    "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": "authorization"})
        assert r.status == 204, r
        assert r.header("Access-Control-Allow-Origin") == "*"
        allowed = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
        assert {"authorization", "content-type", "if-match", "if-none-match", "if-none-exist",
                "prefer", "x-emergency-access"} <= allowed
        exposed = {h.strip().lower()
                   for h in r.header("Access-Control-Expose-Headers").split(",")}
        assert {"location", "etag", "content-location", "last-modified"} <= exposed
        assert "POST" in r.header("Access-Control-Allow-Methods")
    r = client.get("Patient")
    assert r.header("Access-Control-Allow-Origin") == "*"


def test_tokens_expire(make_server):
    srv = make_server(args=["--token-ttl", "2"])
    token = srv.token
    assert srv.client.get("Patient", auth=token).status == 200
    time.sleep(2.2)
    r = srv.client.get("Patient", auth=token)
    assert_outcome(r, 401, "login", "expired")
    assert "expired" in r.header("WWW-Authenticate")


@pytest.mark.skipif(ON_POSTGRES, reason="reads the SQLite file; tests/unit/auth/purge.c "
                    "covers both drivers")
def test_expired_tokens_are_purged_by_the_worker(make_server):
    # the purge job runs at each start, then hourly: an expired token's row goes
    srv = make_server(args=["--token-ttl", "1"])
    digest = hashlib.sha256(srv.token.encode()).hexdigest()

    def rows():
        with sqlite3.connect(str(srv.db), timeout=10) as db:
            return db.execute("SELECT count(*) FROM token WHERE token_hash = ?",
                              (digest,)).fetchone()[0]

    assert rows() == 1
    time.sleep(1.2)
    srv.restart()
    deadline = time.monotonic() + 20
    while rows() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rows() == 0
    with sqlite3.connect(str(srv.db), timeout=10) as db:
        jobs = db.execute("SELECT count(*), min(run_at_us) FROM job WHERE kind = 'auth-purge'"
                          ).fetchone()
    assert jobs[0] == 1 and jobs[1] > time.time() * 1e6 + 3000e6  # next run in about an hour


def test_the_default_signing_key(make_server):
    srv = make_server(shared_signing_key=False)
    jwks = srv.client.get("/oauth2/jwks", auth=None).json["keys"]
    config = srv.client.get("/fhir/.well-known/smart-configuration", auth=None).json
    if ON_POSTGRES:
        # no key file beside a PostgreSQL database: no id_tokens, no openid
        assert jwks == [] and "sso-openid-connect" not in config["capabilities"]
        assert "openid" not in config["scopes_supported"]
        assert "no --signing-key" in srv.stderr()
        return
    key_file = srv.dir / "x.db.signing.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert "sso-openid-connect" in config["capabilities"]
    [jwk] = jwks
    # the same key after a restart
    srv.restart()
    assert srv.client.get("/oauth2/jwks", auth=None).json["keys"] == [jwk]
    # a key file others can read is refused
    srv.stop()
    os.chmod(key_file, 0o644)
    srv.stopped_by_test = False
    with pytest.raises(AssertionError, match="chmod 600"):
        srv.start()
    srv.proc = None  # it exited as it should
