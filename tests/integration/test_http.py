"""HTTP behaviour: Prefer, content negotiation, request content types, methods, metadata."""
import json

import pytest

from conftest import (DEFAULT, FHIR_JSON, HTTP_DATE_RE, assert_nothing_written, assert_outcome, create,
                      dumps, observation, patient)

FHIR_JSON_UTF8 = FHIR_JSON + "; charset=utf-8"
PLAIN_JSON_UTF8 = "application/json; charset=utf-8"


# ---- Prefer --------------------------------------------------------------------------------

def test_prefer_return_minimal_sends_headers_and_no_body(client):
    r = client.post("Patient", patient(), headers={"Prefer": "return=minimal"})
    assert r.status == 201, r
    assert r.body == b""
    assert r.header("ETag") == 'W/"1"'
    assert HTTP_DATE_RE.match(r.header("Last-Modified", ""))
    location = r.header("Location")
    assert location.startswith(f"{client.base}/Patient/") and location.endswith("/_history/1")
    pid = location.split("/")[-3]
    r = client.put(f"Patient/{pid}", patient(id=pid), headers={"Prefer": "return=minimal"})
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("ETag") == 'W/"2"'
    assert r.header("Location") == f"{client.base}/Patient/{pid}/_history/2"


def test_prefer_return_operation_outcome(client):
    r = client.post("Patient", patient(), headers={"Prefer": "return=OperationOutcome"})
    assert r.status == 201, r
    assert r.header("ETag") == 'W/"1"'
    oo = r.json
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "information"
    assert oo["issue"][0]["code"] == "informational"
    pid = r.header("Location").split("/")[-3]
    assert pid in oo["issue"][0]["diagnostics"]
    r = client.delete(f"Patient/{pid}", headers={"Prefer": "return=OperationOutcome"})
    assert r.status in (200, 204), r
    if r.status == 200:
        assert r.json["issue"][0]["severity"] == "information"


def test_prefer_return_representation_is_the_default(client):
    a = client.post("Patient", patient(), headers={"Prefer": "return=representation"})
    b = client.post("Patient", patient())
    c = client.post("Patient", patient(), headers={"Prefer": "handling=strict"})
    for r in (a, b, c):
        assert r.status == 201, r
        assert r.json["resourceType"] == "Patient"
        assert r.json["meta"]["versionId"] == "1"


# ---- response format -----------------------------------------------------------------------

@pytest.mark.parametrize("accept,content_type", [
    (FHIR_JSON, FHIR_JSON_UTF8),
    (FHIR_JSON + "; fhirVersion=4.0", FHIR_JSON_UTF8),
    ("application/json", PLAIN_JSON_UTF8),
    ("application/json, application/fhir+json;q=0.9", FHIR_JSON_UTF8),
    ("*/*", FHIR_JSON_UTF8),
    ("application/*", FHIR_JSON_UTF8),
    ("text/html, */*;q=0.1", FHIR_JSON_UTF8),
    (None, FHIR_JSON_UTF8),
])
def test_accept(client, accept, content_type):
    pid = create(client, patient())["id"]
    headers = {"Accept": accept} if accept else {}
    r = client.get(f"Patient/{pid}", headers=headers)
    assert r.status == 200, r
    assert r.content_type == content_type
    assert r.json["id"] == pid
    r = client.get("metadata", headers=headers)
    assert r.status == 200
    assert r.content_type == content_type


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/html",
                                    "application/fhir+xml, text/xml"])
def test_accept_without_json_is_406(client, accept):
    pid = create(client, patient())["id"]
    r = client.get(f"Patient/{pid}", headers={"Accept": accept})
    assert_outcome(r, 406, "not-supported", "Accept")
    before = client.last_change()
    r = client.post("Patient", patient(), headers={"Accept": accept})
    assert_outcome(r, 406, "not-supported")
    assert_nothing_written(client, before)


@pytest.mark.parametrize("fmt,content_type", [
    ("json", FHIR_JSON_UTF8),
    ("application/fhir%2Bjson", FHIR_JSON_UTF8),
    ("application/json", PLAIN_JSON_UTF8),
])
def test_format_parameter(client, fmt, content_type):
    pid = create(client, patient())["id"]
    # _format wins over Accept
    r = client.get(f"Patient/{pid}?_format={fmt}", headers={"Accept": "application/fhir+xml"})
    assert r.status == 200, r
    assert r.content_type == content_type
    assert r.json["id"] == pid


@pytest.mark.parametrize("fmt", ["xml", "application/fhir%2Bxml", "text/turtle", "ttl", "html"])
def test_format_other_than_json_is_406(client, fmt):
    pid = create(client, patient())["id"]
    assert_outcome(client.get(f"Patient/{pid}?_format={fmt}"), 406, "not-supported", "_format")


def test_pretty(client):
    body = create(client, observation())
    oid = body["id"]
    compact = client.get(f"Observation/{oid}")
    pretty = client.get(f"Observation/{oid}?_pretty=true")
    assert pretty.status == 200
    assert pretty.content_type == FHIR_JSON_UTF8
    assert b"\n" not in compact.body.strip()
    assert pretty.body.count(b"\n") > 5
    assert b'\n  "' in pretty.body, "members are indented"
    assert pretty.json == compact.json
    # decimals keep their text when pretty-printed
    assert b"72.50" in pretty.body
    assert client.get(f"Observation/{oid}?_pretty=false").body == compact.body
    # history links carry _pretty along
    h = client.get(f"Observation/{oid}/_history?_pretty=true")
    assert h.status == 200 and h.body.count(b"\n") > 5
    assert h.json["entry"][0]["resource"] == compact.json


def test_pretty_must_be_true_or_false(client):
    pid = create(client, patient())["id"]
    assert_outcome(client.get(f"Patient/{pid}?_pretty=maybe"), 400, "invalid", "_pretty")
    assert_outcome(client.get(f"Patient/{pid}?_pretty="), 400, "invalid", "_pretty")


# ---- request content type --------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    FHIR_JSON, FHIR_JSON + "; charset=utf-8", FHIR_JSON + ";charset=UTF-8",
    "application/json", "application/json; charset=utf-8", "APPLICATION/FHIR+JSON", None,
])
def test_json_content_types_are_accepted(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("Patient", dumps(patient()).encode(), headers=headers)
    assert r.status == 201, r
    pid = r.json["id"]
    r = client.put(f"Patient/{pid}", dumps(patient(id=pid)).encode(), headers=headers)
    assert r.status == 200, r


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/fhir+xml",
    "application/xml", "multipart/form-data; boundary=x", "",
])
def test_other_content_types_are_415(client, content_type):
    before = client.last_change()
    r = client.post("Patient", dumps(patient()).encode(), headers={"Content-Type": content_type})
    assert_outcome(r, 415, "not-supported", "Content-Type")
    r = client.put("Patient/ct-test", dumps(patient(id="ct-test")).encode(),
                   headers={"Content-Type": content_type})
    assert_outcome(r, 415, "not-supported", "Content-Type")
    assert_nothing_written(client, before)


# ---- methods and paths ---------------------------------------------------------------------

def test_methods_not_allowed_on_a_resource(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    for method in ("POST", "OPTIONS"):
        r = client.request(method, f"Patient/{pid}", dumps(patient()).encode(),
                           headers={"Content-Type": FHIR_JSON})
        assert_outcome(r, 405, "not-supported", method)
        assert r.header("Allow") == "GET, HEAD, PUT, PATCH, DELETE"
    assert_nothing_written(client, before)


def test_type_level_answers_search_and_create_only(client):
    r = client.put("Patient", patient())
    assert_outcome(r, 405, "not-supported")
    assert r.header("Allow") == "GET, HEAD, POST"
    r = client.delete("Patient")
    assert_outcome(r, 405, "not-supported")


def test_every_405_has_an_allow_header_without_the_refused_method(client):
    """RFC 9110: a 405 lists the methods the target supports in Allow, and the refused method
    is, by definition, not one of them."""
    cases = [("PUT", "/fhir"), ("DELETE", "/fhir"), ("PUT", "Patient"),
             ("PATCH", "Patient"), ("PUT", "metadata"), ("POST", "_history"),
             ("PUT", "Patient/_history"), ("POST", "Patient/x/_history/1")]
    for method, url in cases:
        r = client.request(method, url, b"{}", headers={"Content-Type": FHIR_JSON})
        assert_outcome(r, 405, "not-supported")
        allow = r.header("Allow")
        assert allow is not None, f"{method} {url}: 405 without Allow"
        allowed = {m.strip() for m in allow.split(",") if m.strip()}
        assert method not in allowed, f"{method} {url}: 405 but Allow: {allow}"


def test_metadata_answers_get_only(client):
    r = client.post("metadata", patient())
    assert_outcome(r, 405, "not-supported")
    assert r.header("Allow") == "GET"
    r = client.delete("metadata")
    assert_outcome(r, 405, "not-supported")


def test_unknown_paths_are_404(client):
    # "/" and the app's other routes are the web app's (test_web.py)
    for path in ("/foo", "/fhirx", "/fhir/Patient/1/_history/1/extra", "/fhir/Patient/1/foo",
                 "/healthz/x"):
        assert_outcome(client.get(path), 404, "not-found", "no such endpoint")


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status == 200
    assert r.body == b"ok\n"
    assert r.content_type.startswith("text/plain")


# ---- CapabilityStatement -------------------------------------------------------------------

INTERACTIONS = {"read", "vread", "update", "delete", "history-instance", "history-type", "create"}


def test_metadata(client):
    r = client.get("metadata")
    assert r.status == 200, r
    assert r.content_type == FHIR_JSON_UTF8
    cs = r.json
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["status"] == "active"
    assert cs["kind"] == "instance"
    assert "json" in cs["format"] or FHIR_JSON in cs["format"]
    rest = cs["rest"][0]
    assert rest["mode"] == "server"
    assert {"code": "history-system"} in rest["interaction"]
    types = {res["type"]: res for res in rest["resource"]}
    assert len(types) == len(rest["resource"]), "a type is listed twice"
    assert {"Patient", "Observation"} <= set(types)
    for name, res in types.items():
        if name == "AuditEvent":  # the audit trail: read-only (test_audit.py)
            continue
        assert {i["code"] for i in res["interaction"]} >= INTERACTIONS, name
    # the same document with _pretty and through HEAD
    assert client.get("metadata?_pretty=true").json == cs
    assert client.head("metadata").status == 200


def test_metadata_lists_only_types_the_server_accepts(server, client):
    cs = client.get("metadata").json
    for res in cs["rest"][0]["resource"]:
        # the audit trail is read with a token granted system/AuditEvent.rs (test_audit.py)
        auth = server.auditor_token() if res["type"] == "AuditEvent" else DEFAULT
        r = client.get(f"{res['type']}/capability-probe", auth=auth)
        assert_outcome(r, 404, "not-found", "is not known")


def test_base_url_in_links_follows_the_host_header(client):
    r = client.post("Patient", patient(), headers={"Host": "fhir.example.org:8443"})
    assert r.status == 201, r
    assert r.header("Location").startswith("http://fhir.example.org:8443/fhir/Patient/")
    h = client.get(f"Patient/{r.json['id']}/_history", headers={"Host": "other.example"})
    assert h.json["entry"][0]["fullUrl"] == f"http://other.example/fhir/Patient/{r.json['id']}"


def test_keep_alive_connection_serves_many_requests(client):
    s = client.session()
    try:
        for _ in range(50):
            r = s.request("POST", "/fhir/Patient", patient())
            assert r.status == 201
            assert s.request("GET", f"/fhir/Patient/{r.json['id']}").status == 200
            assert s.request("GET", "/fhir/Patient/nope").status == 404
    finally:
        s.close()


def test_outcome_diagnostics_do_not_leak_internals(client):
    r = client.get("Patient/" + "x" * 65)
    text = json.dumps(r.json)
    for word in ("sqlite", "SELECT", "src/", ".c:"):
        assert word not in text
