"""PATCH with JSON Patch (RFC 6902): applied to the current version, validated like an update,
all or nothing, honouring If-Match; concurrent patches without If-Match are all applied."""
import threading

from conftest import FHIR_JSON, assert_nothing_written, assert_outcome, create, patient

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
    # the media type says which patch format it is
    r = client.request("PATCH", f"Patient/{pid}", b"[]", headers={"Content-Type": FHIR_JSON})
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
