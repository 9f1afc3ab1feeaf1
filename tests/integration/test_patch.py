"""PATCH with JSON Patch (RFC 6902) or FHIRPath Patch (a Parameters resource): applied to the
current version, validated like an update, all or nothing, honouring If-Match; concurrent
patches without If-Match are all applied."""
import threading

from conftest import FHIR_JSON, assert_nothing_written, assert_outcome, create, observation, patient

JSON_PATCH = "application/json-patch+json"


def patch(client, url, operations, **headers):
    h = {"Content-Type": JSON_PATCH}
    h.update(headers)
    import json
    return client.request("PATCH", url, json.dumps(operations).encode(), headers=h)


def test_patch_applies_operations_and_makes_a_new_version(client):
    pid = create(client, patient(name=[{"family": "Old"}]))["id"]
    r = patch(client, f"Patient/{pid}", [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/name/0/given", "value": ["Ann"]},
        {"op": "remove", "path": "/birthDate"},
    ])
    assert r.status == 200, r
    assert r.header("ETag") == 'W/"2"'
    body = r.json
    assert body["active"] is False
    assert body["name"] == [{"family": "Old", "given": ["Ann"]}]
    assert "birthDate" not in body
    assert body["meta"]["versionId"] == "2"
    # replace keeps the member in its place
    assert list(body)[:4] == ["resourceType", "id", "meta", "active"]
    assert client.get(f"Patient/{pid}").json == body
    # history records the patch as an update
    entries = client.get(f"Patient/{pid}/_history").json["entry"]
    assert entries[0]["request"]["method"] == "PUT"
    assert entries[0]["response"]["status"] == "200"


def test_a_failing_operation_changes_nothing(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    r = patch(client, f"Patient/{pid}", [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "test", "path": "/gender", "value": "male"},
    ])
    assert_outcome(r, 422, "business-rule", "patch operation 1 (test)")
    r = patch(client, f"Patient/{pid}", [{"op": "remove", "path": "/nothing/here"}])
    assert_outcome(r, 422, "business-rule", 'path "/nothing/here" does not exist')
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{pid}").json["meta"]["versionId"] == "1"


def test_the_result_is_validated(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    r = patch(client, f"Patient/{pid}", [{"op": "add", "path": "/foo", "value": 1}])
    assert_outcome(r, 400, "structure", 'unknown element "foo"', "Patient.foo")
    r = patch(client, f"Patient/{pid}", [{"op": "replace", "path": "/birthDate",
                                          "value": "1980-02-30"}])
    assert_outcome(r, 400, "value", "1980-02-30", "Patient.birthDate")
    r = patch(client, f"Patient/{pid}", [{"op": "replace", "path": "/id", "value": "other"}])
    assert_outcome(r, 400, "invalid", "must not change the resourceType or the id")
    assert_nothing_written(client, before)


def test_malformed_patches(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    r = patch(client, f"Patient/{pid}", {"op": "remove", "path": "/active"})
    assert_outcome(r, 400, "invalid", "must be an array")
    r = patch(client, f"Patient/{pid}", [{"op": "frobnicate", "path": "/active"}])
    assert_outcome(r, 400, "invalid", 'unknown operation "frobnicate"')
    r = client.request("PATCH", f"Patient/{pid}", b"[{", headers={"Content-Type": JSON_PATCH})
    assert_outcome(r, 400, "structure", "could not parse JSON")
    r = client.request("PATCH", f"Patient/{pid}", b"", headers={"Content-Type": JSON_PATCH})
    assert_outcome(r, 400, "structure", "no body")
    # the media type says which patch format it is: FHIR JSON is a FHIRPath Patch
    r = client.request("PATCH", f"Patient/{pid}", b"[]", headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "invalid", "a FHIRPath Patch must be a Parameters resource")
    r = client.request("PATCH", f"Patient/{pid}", b"[]", headers={"Content-Type": "text/plain"})
    assert_outcome(r, 415, "not-supported", "application/json-patch+json")
    r = client.request("PATCH", f"Patient/{pid}", b"[]")
    assert_outcome(r, 415, "not-supported", "application/json-patch+json")
    assert_nothing_written(client, before)


def test_patch_of_missing_and_deleted_resources(client):
    r = patch(client, "Patient/never-there", [])
    assert_outcome(r, 404, "not-found")
    pid = create(client, patient())["id"]
    assert client.delete(f"Patient/{pid}").status == 204
    r = patch(client, f"Patient/{pid}", [])
    assert_outcome(r, 410, "deleted")


def test_if_match(client):
    pid = create(client, patient())["id"]
    r = patch(client, f"Patient/{pid}", [{"op": "replace", "path": "/active", "value": False}],
              **{"If-Match": 'W/"1"'})
    assert r.status == 200, r
    before = client.last_change()
    r = patch(client, f"Patient/{pid}", [{"op": "replace", "path": "/active", "value": True}],
              **{"If-Match": 'W/"1"'})
    assert_outcome(r, 412, "conflict", "current version is 2")
    assert_nothing_written(client, before)


def test_concurrent_patches_without_if_match_all_apply(client):
    """Each adds its own given name; a patch overtaken by another is applied again to the
    newer version, so none is lost."""
    pid = create(client, patient(name=[{"family": "Many", "given": ["first"]}]))["id"]
    results = []
    lock = threading.Lock()

    def worker(i):
        r = patch(client, f"Patient/{pid}", [{"op": "add", "path": "/name/0/given/-",
                                              "value": f"g{i}"}])
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 8, results
    body = client.get(f"Patient/{pid}").json
    assert sorted(body["name"][0]["given"]) == sorted(["first"] + [f"g{i}" for i in range(8)])
    assert body["meta"]["versionId"] == "9"


# ---- FHIRPath Patch -------------------------------------------------------------------------

def operation(kind, path, **parts):
    """One operation parameter: parts given as (name, {value[x]: ...}) or a list of parts."""
    p = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if isinstance(value, list):
            p.append({"name": name, "part": value})
        else:
            p.append({"name": name, **value})
    return {"name": "operation", "part": p}


def fhirpath_patch(client, url, operations, content_type=FHIR_JSON, **headers):
    h = {"Content-Type": content_type}
    h.update(headers)
    return client.request("PATCH", url, {"resourceType": "Parameters", "parameter": operations},
                          headers=h)


def test_fhirpath_patch_applies_operations(client):
    pid = create(client, patient(
        name=[{"family": "Old", "given": ["First"]}],
        identifier=[{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}]))["id"]
    r = fhirpath_patch(client, f"Patient/{pid}", [
        operation("replace", "Patient.active", value={"valueBoolean": False}),
        operation("add", "Patient.name[0]", name={"valueString": "given"},
                  value={"valueString": "Ann"}),
        operation("delete", "Patient.birthDate"),
        operation("delete", "Patient.deceased"),  # matches nothing: nothing to do
        operation("insert", "Patient.identifier", index={"valueInteger": 0},
                  value={"valueIdentifier": {"system": "urn:c", "value": "0"}}),
        operation("move", "Patient.identifier", source={"valueInteger": 2},
                  destination={"valueInteger": 1}),
        operation("replace", "Patient.identifier.where(system='urn:a').value",
                  value={"valueString": "one"}),
        operation("add", "Patient", name={"valueString": "telecom"},
                  value=[{"name": "system", "valueCode": "phone"},
                         {"name": "value", "valueString": "555"}]),
    ])
    assert r.status == 200, r
    assert r.header("ETag") == 'W/"2"'
    body = r.json
    assert body["active"] is False
    assert body["name"] == [{"family": "Old", "given": ["First", "Ann"]}]
    assert "birthDate" not in body
    assert body["identifier"] == [{"system": "urn:c", "value": "0"},
                                  {"system": "urn:b", "value": "2"},
                                  {"system": "urn:a", "value": "one"}]
    assert body["telecom"] == [{"system": "phone", "value": "555"}]
    assert client.get(f"Patient/{pid}").json == body
    # application/json is FHIR JSON too
    r = fhirpath_patch(client, f"Patient/{pid}",
                       [operation("add", "Patient", name={"valueString": "birthDate"},
                                  value={"valueDate": "1930-01-01"})],
                       content_type="application/json")
    assert r.status == 200, r
    assert r.json["birthDate"] == "1930-01-01"
    assert r.json["meta"]["versionId"] == "3"


def test_fhirpath_patch_choice_types_and_primitive_extensions(client):
    oid = create(client, observation())["id"]
    r = fhirpath_patch(client, f"Observation/{oid}", [
        operation("replace", "Observation.value", value={"valueString": "heavy"}),
        operation("add", "Observation", name={"valueString": "effective"},
                  value={"valueDateTime": "2024-05-01"}),
    ])
    assert r.status == 200, r
    body = r.json
    assert "valueQuantity" not in body
    assert body["valueString"] == "heavy"
    assert body["effectiveDateTime"] == "2024-05-01"
    pid = create(client, patient(name=[{"given": ["A", "B"],
                                        "_given": [None, {"id": "b"}]}]))["id"]
    r = fhirpath_patch(client, f"Patient/{pid}", [operation("delete", "Patient.name.given[0]")])
    assert r.status == 200, r
    assert r.json["name"] == [{"given": ["B"], "_given": [{"id": "b"}]}]


def test_fhirpath_patch_errors_write_nothing(client):
    pid = create(client, patient(name=[{"family": "A"}, {"family": "B"}]))["id"]
    before = client.last_change()
    url = f"Patient/{pid}"
    r = fhirpath_patch(client, url, [
        operation("replace", "Patient.active", value={"valueBoolean": False}),
        operation("replace", "Patient.deceased", value={"valueBoolean": True}),
    ])
    assert_outcome(r, 422, "business-rule",
                   "patch operation 1 (replace Patient.deceased): the path matches nothing",
                   "Patient.deceased")
    r = fhirpath_patch(client, url, [operation("delete", "Patient.name")])
    assert_outcome(r, 422, "business-rule",
                   "patch operation 0 (delete Patient.name): the path matches 2 elements where "
                   "one is needed", "Patient.name")
    r = fhirpath_patch(client, url, [operation("insert", "Patient.name", index={"valueInteger": 5},
                                               value={"valueHumanName": {"family": "C"}})])
    assert_outcome(r, 422, "business-rule", "index 5 is out of range: the list has 2 items")
    r = fhirpath_patch(client, url, [operation("add", "Patient", name={"valueString": "gender"},
                                               value={"valueCode": "male"})])
    assert_outcome(r, 422, "business-rule", "gender already has a value")
    # malformed patches
    r = fhirpath_patch(client, url, [operation("copy", "Patient.name")])
    assert_outcome(r, 400, "invalid", 'patch operation 0: unknown operation type "copy"',
                   "Parameters.parameter[0]")
    r = fhirpath_patch(client, url, [operation("add", "Patient", value={"valueCode": "x"})])
    assert_outcome(r, 400, "invalid", "patch operation 0 (add): no name part")
    r = fhirpath_patch(client, url, [operation("delete", "Patient.name.where(")])
    assert_outcome(r, 400, "invalid", "could not parse FHIRPath")
    r = client.request("PATCH", url, patient(), headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "invalid", "must be a Parameters resource")
    r = client.request("PATCH", url, b"{", headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "structure", "could not parse JSON")
    # the result is validated like an update; id and resourceType stay
    r = fhirpath_patch(client, url, [operation("replace", "Patient.birthDate",
                                               value={"valueString": "1980-02-30"})])
    assert_outcome(r, 400, "value", "1980-02-30", "Patient.birthDate")
    r = fhirpath_patch(client, url, [operation("replace", "Patient.id",
                                               value={"valueId": "other"})])
    assert_outcome(r, 400, "invalid", "must not change the resourceType or the id")
    r = fhirpath_patch(client, url, [operation("add", "Patient", name={"valueString": "foo"},
                                               value={"valueString": "x"})])
    assert_outcome(r, 400, "structure", 'unknown element "foo"', "Patient.foo")
    r = fhirpath_patch(client, "Patient/never-there", [operation("delete", "Patient.name")])
    assert_outcome(r, 404, "not-found")
    assert_nothing_written(client, before)
    assert client.get(url).json["meta"]["versionId"] == "1"


def test_fhirpath_patch_if_match(client):
    pid = create(client, patient())["id"]
    ops = [operation("replace", "Patient.active", value={"valueBoolean": False})]
    r = fhirpath_patch(client, f"Patient/{pid}", ops, **{"If-Match": 'W/"1"'})
    assert r.status == 200, r
    before = client.last_change()
    r = fhirpath_patch(client, f"Patient/{pid}", ops, **{"If-Match": 'W/"1"'})
    assert_outcome(r, 412, "conflict", "current version is 2")
    assert_nothing_written(client, before)
    assert client.delete(f"Patient/{pid}").status == 204
    assert_outcome(fhirpath_patch(client, f"Patient/{pid}", ops), 410, "deleted")


def test_concurrent_fhirpath_patches_all_apply(client):
    pid = create(client, patient(name=[{"family": "Many", "given": ["first"]}]))["id"]
    results = []
    lock = threading.Lock()

    def worker(i):
        r = fhirpath_patch(client, f"Patient/{pid}", [
            operation("add", "Patient.name[0]", name={"valueString": "given"},
                      value={"valueString": f"g{i}"})])
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 8, results
    body = client.get(f"Patient/{pid}").json
    assert sorted(body["name"][0]["given"]) == sorted(["first"] + [f"g{i}" for i in range(8)])
    assert body["meta"]["versionId"] == "9"
