"""batch and transaction Bundles POSTed to the base URL."""
import base64
import json

from conftest import FHIR_JSON, assert_nothing_written, assert_outcome, create, observation, patient

UUID_P = "urn:uuid:6a8f1bde-1b55-4bd3-9a43-0e7f2f1f0a01"
UUID_O = "urn:uuid:6a8f1bde-1b55-4bd3-9a43-0e7f2f1f0a02"


def bundle(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(method, url, resource=None, full_url=None, **request):
    e = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        e["resource"] = resource
    if full_url:
        e["fullUrl"] = full_url
    return e


def test_transaction_resolves_urn_uuid_references_and_commits_everything(client):
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Observation", observation(subject={"reference": UUID_P}), UUID_O),
        entry("POST", "Patient", patient(), UUID_P),
        entry("PUT", "Patient/tx-fixed", patient(id="tx-fixed",
                                                 link=[{"other": {"reference": UUID_P},
                                                        "type": "seealso"}])),
    ))
    assert r.status == 200, r
    body = r.json
    assert body["type"] == "transaction-response"
    obs_entry, pat_entry, put_entry = body["entry"]
    assert pat_entry["response"]["status"] == "201 Created"
    pid = pat_entry["resource"]["id"]
    assert pat_entry["response"]["location"] == f"Patient/{pid}/_history/1"
    assert pat_entry["fullUrl"] == f"{client.base}/Patient/{pid}"
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert put_entry["response"]["status"] == "201 Created"
    assert put_entry["resource"]["link"][0]["other"]["reference"] == f"Patient/{pid}"
    # everything is readable and one transaction has one time
    stored = client.get(obs_entry["response"]["location"].split("/_history")[0]).json
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    times = {e["response"]["lastModified"] for e in body["entry"]}
    assert len(times) == 1


def test_a_failing_entry_rolls_back_the_whole_transaction(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", patient()),
        entry("PUT", f"Patient/{pid}", patient(id=pid, active=False), ifMatch='W/"7"'),
    ))
    assert_outcome(r, 412, "conflict", f"entry 1 (PUT Patient/{pid})")
    assert_nothing_written(client, before)
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", patient()),
        entry("POST", "Observation", observation(status="finalx")),
    ))
    assert_outcome(r, 422, "code-invalid", "entry 1 (POST Observation)")
    assert_nothing_written(client, before)
    r = client.post("/fhir", bundle(
        "transaction",
        entry("DELETE", f"Patient/{pid}"),
        entry("GET", "Patient/does-not-exist"),
    ))
    assert_outcome(r, 404, "not-found", "entry 1 (GET Patient/does-not-exist)")
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{pid}").status == 200


def test_transaction_order_is_delete_post_put_get(client):
    pid = create(client, patient())["id"]
    gone = create(client, patient())["id"]
    r = client.post("/fhir", bundle(
        "transaction",
        entry("GET", f"Patient/{pid}"),
        entry("PUT", f"Patient/{pid}", patient(id=pid, active=False)),
        entry("DELETE", f"Patient/{gone}"),
    ))
    assert r.status == 200, r
    get_entry, put_entry, delete_entry = r.json["entry"]
    # the GET ran last and sees the PUT of the same transaction
    assert get_entry["resource"]["active"] is False
    assert get_entry["resource"]["meta"]["versionId"] == "2"
    assert put_entry["response"]["status"] == "200 OK"
    assert delete_entry["response"]["status"] == "204 No Content"
    assert client.get(f"Patient/{gone}").status == 410


def test_one_resource_twice_in_a_transaction_is_refused(client):
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("PUT", "Patient/twice", patient(id="twice")),
        entry("DELETE", "Patient/twice"),
    ))
    assert_outcome(r, 400, "invalid", "also written by entry 0")
    assert_nothing_written(client, before)


def test_batch_entries_succeed_and_fail_independently(client):
    pid = create(client, patient())["id"]
    r = client.post("/fhir/", bundle(
        "batch",
        entry("GET", f"Patient/{pid}"),
        entry("GET", "Patient/nope"),
        entry("POST", "Patient", {"resourceType": "Patient", "foo": 1}),
        entry("POST", "Patient", patient()),
        entry("PUT", f"Patient/{pid}", patient(id=pid), ifMatch='W/"9"'),
        entry("DELETE", f"Patient/{pid}"),
        entry("GET", "Patient?name=x"),
    ))
    assert r.status == 200, r
    entries = r.json["entry"]
    assert r.json["type"] == "batch-response"
    assert len(entries) == 7
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["200 OK", "404 Not Found", "400 Bad Request", "201 Created",
                        "412 Precondition Failed", "204 No Content", "400 Bad Request"]
    assert entries[2]["response"]["outcome"]["issue"][0]["expression"] == ["Patient.foo"]
    assert "not supported in Bundles yet" in \
        entries[6]["response"]["outcome"]["issue"][0]["diagnostics"]
    created = entries[3]["response"]["location"].split("/_history")[0]
    assert client.get(created).status == 200
    assert client.get(f"Patient/{pid}").status == 410


def test_patch_in_a_bundle_is_a_binary(client):
    pid = create(client, patient())["id"]
    ops = [{"op": "replace", "path": "/active", "value": False}]
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": base64.b64encode(json.dumps(ops).encode()).decode()}
    r = client.post("/fhir", bundle("transaction", entry("PATCH", f"Patient/{pid}", binary)))
    assert r.status == 200, r
    assert r.json["entry"][0]["resource"]["active"] is False
    assert client.get(f"Patient/{pid}").json["meta"]["versionId"] == "2"


def test_patch_in_a_bundle_can_be_a_fhirpath_patch(client):
    pid = create(client, patient())["id"]
    oid = create(client, observation())["id"]

    def params(*operations):
        return {"resourceType": "Parameters", "parameter": list(operations)}

    def op(kind, path, *parts):
        return {"name": "operation", "part": [{"name": "type", "valueCode": kind},
                                              {"name": "path", "valueString": path}, *parts]}

    r = client.post("/fhir", bundle(
        "transaction",
        entry("PATCH", f"Patient/{pid}",
              params(op("replace", "Patient.active", {"name": "value", "valueBoolean": False}))),
        entry("PATCH", f"Observation/{oid}",
              params(op("add", "Observation", {"name": "name", "valueString": "subject"},
                        {"name": "value", "valueReference": {"reference": UUID_P}}))),
        entry("POST", "Patient", patient(gender="male"), UUID_P),
    ))
    assert r.status == 200, r
    patched_patient, patched_obs, created = r.json["entry"]
    assert patched_patient["response"]["status"] == "200 OK"
    assert patched_patient["resource"]["active"] is False
    new_pid = created["resource"]["id"]
    # the urn:uuid in the patch's value is resolved like any reference of the transaction
    assert patched_obs["resource"]["subject"] == {"reference": f"Patient/{new_pid}"}
    assert client.get(f"Observation/{oid}").json["meta"]["versionId"] == "2"
    # a failing FHIRPath Patch fails the transaction: nothing is written
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", patient()),
        entry("PATCH", f"Patient/{pid}",
              params(op("replace", "Patient.deceased", {"name": "value", "valueBoolean": True}))),
    ))
    assert_outcome(r, 422, "business-rule",
                   "patch operation 0 (replace Patient.deceased): the path matches nothing")
    assert_nothing_written(client, before)
    # in a batch it fails its entry only
    r = client.post("/fhir", bundle(
        "batch",
        entry("PATCH", f"Patient/{pid}", params(op("move", "Patient.name",
                                                    {"name": "source", "valueInteger": 0}))),
        entry("PATCH", f"Patient/{pid}", params(op("delete", "Patient.gender"))),
    ))
    assert r.status == 200, r
    first, second = r.json["entry"]
    assert first["response"]["status"] == "400 Bad Request"
    assert "no destination part" in first["response"]["outcome"]["issue"][0]["diagnostics"]
    assert second["response"]["status"] == "200 OK"
    assert "gender" not in client.get(f"Patient/{pid}").json


def test_prefer_minimal_leaves_out_the_resources(client):
    r = client.post("/fhir", bundle("transaction", entry("POST", "Patient", patient())),
                    headers={"Prefer": "return=minimal"})
    assert r.status == 200, r
    e = r.json["entry"][0]
    assert "resource" not in e
    assert e["response"]["status"] == "201 Created"


def test_what_is_not_a_batch_or_transaction(client):
    before = client.last_change()
    assert_outcome(client.post("/fhir", patient()), 400, "invalid", "not a Patient")
    assert_outcome(client.post("/fhir", bundle("collection")), 400, "invalid",
                   'not "collection"')
    assert_outcome(client.post("/fhir", b"{", headers={"Content-Type": FHIR_JSON}), 400,
                   "structure")
    assert_outcome(client.post("/fhir", bundle("transaction", {"resource": patient()})), 400,
                   "invalid", "entry 0")
    assert_outcome(client.post("/fhir", bundle("transaction", entry("GET", "Patient?name=x"))),
                   400, "invalid", "not supported in Bundles yet")
    r = client.post("/fhir", bundle("batch"))
    assert r.status == 200 and r.json["entry"] == []
    assert_nothing_written(client, before)
