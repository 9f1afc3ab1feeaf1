"""
Who wrote each version (docs/api.md, "Version authors"): every version the server writes
carries the version-author extension in meta, naming a signed-in person's Practitioner, a
backend client, the engine, the HL7 feed or concerto import; reads, vreads, histories and
searches return it, and a client cannot set it. On SQLite and PostgreSQL.
"""
import json
import os

from conftest import run_cli
from test_access import sign_in
from test_hl7_feed import Mllp, msa
from test_hl7_transitions import MRN_SYSTEM, adt
from test_login import APP_URI, PASSWORD
from test_transitions import CLOCK_ARGS, COORDINATION, ROLES, drained, set_clock

URL = "http://concerto.dev/fhir/StructureDefinition/version-author"
STAFF_SCOPES = "openid fhirUser user/*.cruds"


def author(resource):
    """The version-author's valueReference of a resource, or None."""
    found = [e for e in resource.get("meta", {}).get("extension", []) if e.get("url") == URL]
    assert len(found) <= 1, resource["meta"]
    return found[0]["valueReference"] if found else None


def start(make_server, tmp_path):
    port_file = tmp_path / "mllp.port"
    srv = make_server(args=[*CLOCK_ARGS, "--mllp", "127.0.0.1:0", "--mllp-port-file",
                            str(port_file)], start=False)
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    db = str(srv.db)
    assert run_cli("init", "--db", db).returncode == 0
    people = srv.dir / "people.ndjson"
    people.write_text("".join(json.dumps(r) + "\n" for r in [
        {"resourceType": "Practitioner", "id": "pn", "name": [{"family": "Nash"}]},
        {"resourceType": "Practitioner", "id": "pd", "name": [{"family": "Dole"}]},
        {"resourceType": "Patient", "id": "pat1", "name": [{"family": "Rivera"}],
         "identifier": [{"system": MRN_SYSTEM, "value": "MRN-TG"}]},
        {"resourceType": "CareTeam", "id": "ct1", "status": "active", "category": COORDINATION,
         "subject": {"reference": "Patient/pat1"},
         "participant": [{"role": [ROLES["coordinator"]],
                          "member": {"reference": "Practitioner/pn"}},
                         {"role": [ROLES["pcp"]], "member": {"reference": "Practitioner/pd"}}]},
    ]))
    r = run_cli("import", "--db", db, str(people))
    assert r.returncode == 0, r.stderr
    for name, role, link in (("nurse1", "nurse", "pn"), ("doc1", "physician", "pd")):
        r = run_cli("user", "add", "--db", db, "--username", name, "--role", role,
                    "--practitioner", link, "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    srv.mllp_port = int(port_file.read_text())
    return srv


def test_each_writer_is_named_in_reads_histories_and_searches(make_server, tmp_path):
    srv = start(make_server, tmp_path)
    c = srv.client  # the harness's backend client
    tokens = {name: sign_in(srv, name, STAFF_SCOPES)["access_token"] for name in ("nurse1", "doc1")}

    def as_(who, method, url, body=None, headers=None):
        return c.request(method, url, body, headers=headers, auth=tokens[who])

    nurse = {"reference": "Practitioner/pn"}
    doctor = {"reference": "Practitioner/pd"}
    backend = {"display": "test-harness"}

    # what concerto import loaded
    r = c.get("Patient/pat1")
    assert r.status == 200, r
    assert author(r.json) == {"display": "import"}

    # a nurse creates a Task, a physician changes it, the backend client changes it again
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "for": {"reference": "Patient/pat1"}, "description": "Call the patient"}
    r = as_("nurse1", "POST", "Task", task)
    assert r.status == 201, r
    assert author(r.json) == nurse
    tid = r.json["id"]
    task = dict(r.json, description="Call the patient and her daughter")
    r = as_("doc1", "PUT", f"Task/{tid}", task, headers={"If-Match": 'W/"1"'})
    assert r.status == 200, r
    assert author(r.json) == doctor
    task = dict(r.json, status="received", owner=nurse)
    r = c.put(f"Task/{tid}", task, headers={"If-Match": 'W/"2"'})
    assert r.status == 200, r
    assert author(r.json) == backend

    assert author(c.get(f"Task/{tid}").json) == backend
    assert author(as_("nurse1", "GET", f"Task/{tid}").json) == backend
    for version, who in ((1, nurse), (2, doctor), (3, backend)):
        assert author(c.get(f"Task/{tid}/_history/{version}").json) == who
    for url in (f"Task/{tid}/_history", "Task/_history", "_history"):
        r = as_("nurse1", "GET", url) if url != "_history" else c.get(url)
        assert r.status == 200, r
        seen = {e["resource"]["meta"]["versionId"]: author(e["resource"])
                for e in r.json["entry"]
                if e.get("resource", {}).get("id") == tid}
        assert seen == {"1": nurse, "2": doctor, "3": backend}, url
    r = as_("doc1", "GET", "Task?patient=Patient/pat1")
    assert r.status == 200, r
    [entry] = r.json["entry"]
    assert author(entry["resource"]) == backend

    # the HL7 feed records the stay, which makes the engine plan the discharge
    set_clock(srv, "2031-11-24T10:00:00-05:00")
    c = srv.client
    peer = Mllp(srv.mllp_port)
    assert msa(peer.exchange(adt("A01", "VA-1", "20311124100000")))[1] == "AA"
    drained(srv)
    r = c.get("Encounter?subject=Patient/pat1")
    [enc] = [e["resource"] for e in r.json["entry"]]
    assert author(enc) == {"display": "hl7-feed"}
    history = c.get(f"Encounter/{enc['id']}/_history").json["entry"]
    assert {json.dumps(author(e["resource"])) for e in history} == {'{"display": "hl7-feed"}'}
    [planning] = [e["resource"] for e in c.get("Task?patient=Patient/pat1").json["entry"]
                  if e["resource"].get("identifier", [{}])[0].get("value", "")
                  .startswith("hospital-admission/discharge-planning")]
    assert author(planning) == {"display": "concerto-engine"}
    assert author(c.get(f"Task/{planning['id']}").json) == {"display": "concerto-engine"}


def test_a_client_cannot_set_the_author(make_server, tmp_path):
    srv = start(make_server, tmp_path)
    token = sign_in(srv, "nurse1", STAFF_SCOPES)["access_token"]
    other = {"url": "http://example.org/source-system", "valueString": "intake"}
    forged = {"url": URL, "valueReference": {"reference": "Practitioner/pd"}}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
           "subject": {"reference": "Patient/pat1"},
           "meta": {"extension": [forged, other], "tag": [{"code": "kept"}]}}
    r = srv.client.request("POST", "Observation", obs, auth=token)
    assert r.status == 201, r
    oid = r.json["id"]
    for got in (r.json, srv.client.get(f"Observation/{oid}").json):
        assert got["meta"]["extension"] == [
            {"url": URL, "valueReference": {"reference": "Practitioner/pn"}}, other]
        assert got["meta"]["tag"] == [{"code": "kept"}]
    # a patch cannot set it either, and the author moves to who patched
    patch = [{"op": "replace", "path": "/meta/extension/0/valueReference/reference",
              "value": "Practitioner/pd"}]
    r = srv.client.request("PATCH", f"Observation/{oid}", patch,
                           headers={"Content-Type": "application/json-patch+json"})
    assert r.status == 200, r
    assert r.json["meta"]["extension"] == [
        {"url": URL, "valueReference": {"display": "test-harness"}}, other]
    # a Bundle's entries are by the Bundle's caller
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": dict(obs, meta={"extension": [forged]}),
         "request": {"method": "POST", "url": "Observation"}}]}
    r = srv.client.request("POST", "/fhir", bundle, auth=token)
    assert r.status == 200, r
    location = r.json["entry"][0]["response"]["location"].split("/_history")[0]
    assert author(srv.client.get(location).json) == {"reference": "Practitioner/pn"}
    # the backend client cannot pose as a person
    obs["meta"] = {"extension": [forged]}
    r = srv.client.post("Observation", obs)
    assert r.status == 201, r
    assert r.json["meta"]["extension"] == [{"url": URL,
                                            "valueReference": {"display": "test-harness"}}]
