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
        entry("GET", "Patient?_id=nope"),
        entry("GET", "Patient?identifier=x&_count=notanumber"),
        entry("GET", "Foo?name=x"),
    ))
    assert r.status == 200, r
    entries = r.json["entry"]
    assert r.json["type"] == "batch-response"
    assert len(entries) == 9
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["200 OK", "404 Not Found", "400 Bad Request", "201 Created",
                        "412 Precondition Failed", "204 No Content", "200 OK", "200 OK",
                        "404 Not Found"]
    assert entries[2]["response"]["outcome"]["issue"][0]["expression"] == ["Patient.foo"]
    # a search is lenient in a Bundle as outside: the bad _count is left out and said so
    assert entries[6]["resource"]["type"] == "searchset"
    assert "entry" not in entries[6]["resource"]  # FHIR JSON has no empty arrays
    lenient = entries[7]["resource"]["entry"]
    assert lenient[-1]["search"]["mode"] == "outcome"
    assert lenient[-1]["resource"]["issue"][0]["expression"] == ["_count"]
    assert '"Foo" is not a FHIR R4 resource type' in \
        entries[8]["response"]["outcome"]["issue"][0]["diagnostics"]
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
    assert_outcome(client.post("/fhir", bundle("transaction", entry("GET", "Patient/1/_history"))),
                   400, "invalid", "entry 0 (GET Patient/1/_history)")
    assert_outcome(client.post("/fhir", bundle("transaction", entry("PATCH", "Patient?name=x"))),
                   400, "invalid", "conditional PATCH is not supported")
    r = client.post("/fhir", bundle("batch"))
    assert r.status == 200 and "entry" not in r.json
    assert_nothing_written(client, before)


# ---- conditional requests, conditional references and searches -------------------------------

MRN = "http://example.org/bundle-mrn"
UUID_Q = "urn:uuid:6a8f1bde-1b55-4bd3-9a43-0e7f2f1f0a03"


def mrn_patient(value, **extra):
    return patient(identifier=[{"system": MRN, "value": value}], **extra)


def ids_of(client, query):
    r = client.get(query)
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


def test_conditional_create_in_a_transaction_matches_and_its_fullurl_follows(client):
    existing = create(client, mrn_patient("b-1"))
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Observation", observation(subject={"reference": UUID_P}), UUID_O),
        entry("POST", "Patient", mrn_patient("b-1", gender="male"), UUID_P,
              ifNoneExist=f"identifier={MRN}|b-1"),
    ))
    assert r.status == 200, r
    obs_entry, pat_entry = r.json["entry"]
    # the match is the answer: 200, its current version, nothing written for it
    assert pat_entry["response"]["status"] == "200 OK"
    assert pat_entry["response"]["location"] == f"Patient/{existing['id']}/_history/1"
    assert pat_entry["resource"]["gender"] == "female"
    # the reference to the fullUrl of the conditional create points at the match
    assert obs_entry["response"]["status"] == "201 Created"
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert ids_of(client, f"Observation?subject=Patient/{existing['id']}") == \
        [obs_entry["resource"]["id"]]
    assert ids_of(client, f"Patient?identifier={MRN}|b-1") == [existing["id"]]
    # the Observation is the only write
    history = client.get("_history?_count=2").json["entry"]
    assert history[0]["fullUrl"].endswith("/Observation/" + obs_entry["resource"]["id"])
    assert (history[1]["fullUrl"], history[1]["response"]["etag"],
            history[1]["response"]["lastModified"]) == before


def test_conditional_create_and_conditional_reference_in_one_transaction(client):
    """A Patient created by a conditional create is found by a conditional reference of an
    entry that comes before it in the Bundle."""
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Observation",
              observation(subject={"reference": f"Patient?identifier={MRN}|b-2"})),
        entry("POST", "Patient", mrn_patient("b-2"), UUID_P, ifNoneExist=f"identifier={MRN}|b-2"),
        entry("PUT", "Patient/b-2-link",
              patient(id="b-2-link", link=[{"other": {"reference": UUID_P}, "type": "seealso"}])),
    ))
    assert r.status == 200, r
    obs_entry, pat_entry, put_entry = r.json["entry"]
    assert pat_entry["response"]["status"] == "201 Created"
    pid = pat_entry["resource"]["id"]
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert put_entry["resource"]["link"][0]["other"]["reference"] == f"Patient/{pid}"
    # the index rows follow the resolved reference
    assert ids_of(client, f"Observation?subject=Patient/{pid}") == [obs_entry["resource"]["id"]]
    assert ids_of(client, f"Patient?link=Patient/{pid}") == ["b-2-link"]
    # the same Bundle again: the conditional create matches, no second Patient
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", mrn_patient("b-2"), UUID_P, ifNoneExist=f"identifier={MRN}|b-2"),
        entry("POST", "Observation",
              observation(subject={"reference": f"Patient?identifier={MRN}|b-2"})),
    ))
    assert r.status == 200, r
    assert r.json["entry"][0]["response"]["status"] == "200 OK"
    assert r.json["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert ids_of(client, f"Patient?identifier={MRN}|b-2") == [pid]


def test_conditional_references_to_stored_resources(client):
    pid = create(client, mrn_patient("b-3"))["id"]
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Observation", observation(
            subject={"reference": f"Patient?identifier={MRN}|b-3"},
            performer=[{"reference": f"Patient?identifier={MRN}|b-3&gender=female"}])),
    ))
    assert r.status == 200, r
    o = r.json["entry"][0]["resource"]
    assert o["subject"]["reference"] == f"Patient/{pid}"
    assert o["performer"][0]["reference"] == f"Patient/{pid}"


def test_failing_conditional_references_roll_back_everything(client):
    create(client, mrn_patient("b-4-twice"))
    create(client, mrn_patient("b-4-twice"))
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", mrn_patient("b-4-new")),
        entry("POST", "Observation",
              observation(subject={"reference": f"Patient?identifier={MRN}|b-4-none"})),
    ))
    assert_outcome(r, 400, "invalid",
                   f'entry 1 (POST Observation): the conditional reference '
                   f'"Patient?identifier={MRN}|b-4-none" matches no Patient resource')
    assert_nothing_written(client, before)
    r = client.post("/fhir", bundle(
        "transaction",
        entry("PUT", "Patient/b-4-put", patient(id="b-4-put")),
        entry("POST", "Observation",
              observation(subject={"reference": f"Patient?identifier={MRN}|b-4-twice"})),
    ))
    assert_outcome(r, 412, "multiple-matches",
                   f'entry 1 (POST Observation): the conditional reference '
                   f'"Patient?identifier={MRN}|b-4-twice" matches more than one Patient')
    assert_nothing_written(client, before)
    # a malformed one is refused before anything runs
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Observation", observation(subject={"reference": "Patient?foo=1"})),
    ))
    assert_outcome(r, 400, "invalid",
                   'entry 0 (POST Observation): the conditional reference "Patient?foo=1": '
                   'unknown search parameter "foo"')
    assert_nothing_written(client, before)
    assert client.get("Patient/b-4-put").status == 404


def test_conditional_references_belong_to_transactions(client):
    pid = create(client, mrn_patient("b-5"))["id"]
    r = client.post("/fhir", bundle(
        "batch",
        entry("POST", "Observation",
              observation(subject={"reference": f"Patient?identifier={MRN}|b-5"})),
        entry("POST", "Observation", observation(subject={"reference": f"Patient/{pid}"})),
    ))
    assert r.status == 200, r
    first, second = r.json["entry"]
    assert first["response"]["status"] == "400 Bad Request"
    assert "only be resolved in a transaction" in \
        first["response"]["outcome"]["issue"][0]["diagnostics"]
    assert second["response"]["status"] == "201 Created"


def test_conditional_update_and_delete_in_a_transaction(client):
    upd = create(client, mrn_patient("b-6-upd"))["id"]
    gone = create(client, mrn_patient("b-6-del"))["id"]
    r = client.post("/fhir", bundle(
        "transaction",
        entry("PUT", f"Patient?identifier={MRN}|b-6-upd", mrn_patient("b-6-upd", active=False),
              UUID_Q),
        entry("DELETE", f"Patient?identifier={MRN}|b-6-del"),
        entry("PUT", f"Patient?identifier={MRN}|b-6-new", mrn_patient("b-6-new"), UUID_P),
        entry("DELETE", f"Patient?identifier={MRN}|b-6-nothing"),
        entry("POST", "Observation", observation(subject={"reference": UUID_Q},
                                                 performer=[{"reference": UUID_P}])),
    ))
    assert r.status == 200, r
    put_entry, del_entry, new_entry, none_entry, obs_entry = r.json["entry"]
    assert put_entry["response"]["status"] == "200 OK"
    assert put_entry["response"]["location"] == f"Patient/{upd}/_history/2"
    assert del_entry["response"]["status"] == "204 No Content"
    assert new_entry["response"]["status"] == "201 Created"
    new_id = new_entry["resource"]["id"]
    assert none_entry["response"] == {"status": "204 No Content"}
    # references to the fullUrls of conditional updates point at what they settled on
    assert obs_entry["resource"]["subject"]["reference"] == f"Patient/{upd}"
    assert obs_entry["resource"]["performer"][0]["reference"] == f"Patient/{new_id}"
    assert client.get(f"Patient/{upd}").json["active"] is False
    assert client.get(f"Patient/{gone}").status == 410


def test_conditional_entries_may_not_write_what_another_entry_writes(client):
    pid = create(client, mrn_patient("b-7"))["id"]
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("PUT", f"Patient/{pid}", mrn_patient("b-7", id=pid, active=False)),
        entry("DELETE", f"Patient?identifier={MRN}|b-7"),
    ))
    assert_outcome(r, 400, "invalid",
                   f'entry 1 (DELETE Patient?identifier={MRN}|b-7): the criteria '
                   f'"identifier={MRN}|b-7" settle on Patient/{pid}, which entry 0 also writes')
    assert_nothing_written(client, before)
    r = client.post("/fhir", bundle(
        "transaction",
        entry("PUT", f"Patient?identifier={MRN}|b-7", mrn_patient("b-7")),
        entry("PUT", f"Patient?_id={pid}", mrn_patient("b-7", id=pid)),
    ))
    assert_outcome(r, 400, "invalid", "which entry 0 also writes")
    assert_nothing_written(client, before)


def test_conditional_failures_in_a_transaction_name_the_entry(client):
    create(client, mrn_patient("b-8"))
    create(client, mrn_patient("b-8"))
    before = client.last_change()
    for e, status, code, text in (
            (entry("POST", "Patient", mrn_patient("b-8"), ifNoneExist=f"identifier={MRN}|b-8"),
             412, "multiple-matches", "a conditional create needs at most one match"),
            (entry("PUT", f"Patient?identifier={MRN}|b-8", mrn_patient("b-8")),
             412, "multiple-matches", "a conditional update needs at most one match"),
            (entry("DELETE", f"Patient?identifier={MRN}|b-8"),
             412, "multiple-matches", "a conditional delete needs at most one match"),
            (entry("POST", "Patient", mrn_patient("b-8"), ifNoneExist="_count=1"),
             400, "invalid", '"_count" is not a search criterion'),
            (entry("PUT", "Patient?bogus=1", mrn_patient("b-8")),
             400, "invalid", 'unknown search parameter "bogus"'),
            (entry("PUT", "Patient/x?name=y", mrn_patient("b-8", id="x")),
             400, "invalid", "has both an id and search criteria"),
            (entry("GET", "Patient/x", ifNoneExist="name=y"),
             400, "invalid", "request.ifNoneExist belongs to a POST")):
        r = client.post("/fhir", bundle("transaction", entry("POST", "Patient", patient()), e))
        assert_outcome(r, status, code, f"entry 1 ({e['request']['method']} ")
        assert text in r.json["issue"][0]["diagnostics"], r.json
        assert_nothing_written(client, before)


def test_get_entries_read_and_search_in_a_batch(client):
    pid = create(client, mrn_patient("b-9"))["id"]
    obs = create(client, observation(subject={"reference": f"Patient/{pid}"}))["id"]
    r = client.post("/fhir", bundle(
        "batch",
        entry("GET", f"Observation?subject=Patient/{pid}&_include=Observation:subject"),
        entry("GET", f"Patient/{pid}/_history/1"),
        entry("GET", f"Patient/{pid}/Observation?_total=accurate"),
        entry("GET", f"?_type=Patient&identifier={MRN}|b-9"),
        entry("GET", f"Patient/{pid}/_history/7"),
        entry("GET", f"Patient/{pid}?_elements=name"),
    ))
    assert r.status == 200, r
    search, vread, compartment, system, missing, read_params = r.json["entry"]
    assert search["response"]["status"] == "200 OK"
    ss = search["resource"]
    assert ss["resourceType"] == "Bundle" and ss["type"] == "searchset"
    assert [(e["resource"]["id"], e["search"]["mode"]) for e in ss["entry"]] == \
        [(obs, "match"), (pid, "include")]
    assert ss["link"][0] == {"relation": "self",
                             "url": f"{client.base}/Observation?_include=Observation:subject"
                                    f"&subject=Patient/{pid}"}
    assert ss["entry"][0]["fullUrl"] == f"{client.base}/Observation/{obs}"
    assert vread["resource"]["meta"]["versionId"] == "1"
    assert compartment["resource"]["total"] == 1
    assert compartment["resource"]["link"][0]["url"].startswith(
        f"{client.base}/Patient/{pid}/Observation?")
    assert [e["resource"]["id"] for e in system["resource"]["entry"]] == [pid]
    assert missing["response"]["status"] == "404 Not Found"
    assert read_params["response"]["status"] == "400 Bad Request"


def test_get_entries_of_a_transaction_see_its_writes(client):
    r = client.post("/fhir", bundle(
        "transaction",
        entry("GET", f"Patient?identifier={MRN}|b-10"),
        entry("GET", f"Observation?subject.identifier={MRN}|b-10"),
        entry("POST", "Observation", observation(subject={"reference": UUID_P})),
        entry("POST", "Patient", mrn_patient("b-10"), UUID_P),
    ))
    assert r.status == 200, r
    pats, obs, obs_entry, pat_entry = r.json["entry"]
    pid = pat_entry["resource"]["id"]
    assert [e["resource"]["id"] for e in pats["resource"]["entry"]] == [pid]
    assert [e["resource"]["id"] for e in obs["resource"]["entry"]] == \
        [obs_entry["resource"]["id"]]
    # a failing search fails the transaction, which writes nothing
    before = client.last_change()
    r = client.post("/fhir", bundle(
        "transaction",
        entry("POST", "Patient", patient()),
        entry("GET", "Patient?_page=garbage"),
    ))
    assert_outcome(r, 400, "invalid", "entry 1 (GET Patient?_page=garbage)")
    assert_nothing_written(client, before)
