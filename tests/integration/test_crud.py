"""create, read, vread, HEAD, update and delete of single resources."""
import email.utils
import json
import re
from decimal import Decimal

from conftest import (FHIR_JSON, HTTP_DATE_RE, INSTANT_RE, assert_nothing_written,
                      assert_outcome, create, dumps, loads, member_names, observation, patient)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def http_date_matches_instant(http_date, instant):
    """Last-Modified is the lastUpdated instant to the second."""
    when = email.utils.parsedate_to_datetime(http_date)
    return when.strftime("%Y-%m-%dT%H:%M:%S") == instant[:19]


def assert_version_headers(r, base, type_, id_, version):
    assert r.header("ETag") == f'W/"{version}"'
    assert HTTP_DATE_RE.match(r.header("Last-Modified", "")), r.header("Last-Modified")
    assert r.header("Location") == f"{base}/{type_}/{id_}/_history/{version}"


# ---- create --------------------------------------------------------------------------------

def test_create_returns_201_with_location_etag_and_the_stored_resource(client):
    r = client.post("Patient", patient())
    assert r.status == 201, r
    assert r.content_type == FHIR_JSON + "; charset=utf-8"
    body = r.json
    assert body["resourceType"] == "Patient"
    assert ID_RE.match(body["id"])
    assert_version_headers(r, client.base, "Patient", body["id"], 1)
    assert body["meta"]["versionId"] == "1"
    assert INSTANT_RE.match(body["meta"]["lastUpdated"]), body["meta"]
    assert http_date_matches_instant(r.header("Last-Modified"), body["meta"]["lastUpdated"])
    for key in ("active", "name", "gender", "birthDate"):
        assert body[key] == patient()[key]
    # the stored resource is what the create returned
    read = client.get(f"Patient/{body['id']}")
    assert read.status == 200
    assert read.body == r.body


def test_create_ignores_a_client_id_and_assigns_a_new_one(client):
    first = create(client, patient(id="client-chosen"))
    second = create(client, patient(id="client-chosen"))
    assert first["id"] != "client-chosen"
    assert second["id"] != "client-chosen"
    assert first["id"] != second["id"]
    assert client.get("Patient/client-chosen").status == 404


def test_create_replaces_client_version_and_last_updated_but_keeps_other_meta(client):
    meta = {"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z",
            "source": "http://example.org/feeds/admissions#7",
            "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
            "tag": [{"system": "http://example.org/tags", "code": "vip"}],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                          "code": "R"}]}
    body = create(client, patient(meta=meta))
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
    assert INSTANT_RE.match(body["meta"]["lastUpdated"])
    for key in ("source", "profile", "tag", "security"):
        assert body["meta"][key] == meta[key]


def test_create_keeps_decimal_precision(client):
    values = ["1.50", "100.000", "0.000000000000000000001", "12345678901234567890.123456789012",
              "-0.10", "3.0"]
    text = ('{"resourceType":"Observation","status":"final",'
            '"code":{"text":"precision"},"component":['
            + ",".join('{"code":{"text":"c%d"},"valueQuantity":{"value":%s}}' % (i, v)
                       for i, v in enumerate(values))
            + "]}")
    r = client.post("Observation", text, headers={"Content-Type": FHIR_JSON})
    assert r.status == 201, r
    for raw in (r.body, client.get(f"Observation/{r.json['id']}").body):
        got = [c["valueQuantity"]["value"] for c in loads(raw)["component"]]
        assert [str(v) for v in got] == [str(Decimal(v)) for v in values]
        for v in values:
            assert (":" + v).encode() in raw, f"{v} not kept as written in {raw!r}"


def test_create_round_trips_unicode(client):
    family = "Müller-Łódź 日本語 Ελληνικά \U0001F600 \u00e9\u0301"
    r = client.post("Patient", patient(name=[{"family": family, "given": ["Zoë"]}]))
    assert r.status == 201, r
    assert r.json["name"][0]["family"] == family
    read = client.get(f"Patient/{r.json['id']}")
    assert read.json["name"][0]["family"] == family
    assert read.json["name"][0]["given"] == ["Zoë"]
    # escapes in the request mean the same characters
    escaped = dumps(patient()).replace('"Test"', '"\\u00fc\\ud83d\\ude00\\/"')
    r = client.post("Patient", escaped, headers={"Content-Type": FHIR_JSON})
    assert r.status == 201, r
    assert r.json["name"][0]["family"] == "ü\U0001F600/"


def test_stored_resource_starts_with_resource_type_id_and_meta(client):
    body = {"birthDate": "1970-01-01", "gender": "male", "meta": {"tag": [{"code": "t"}]},
            "name": [{"family": "Order"}], "resourceType": "Patient", "id": "ignored"}
    r = client.post("Patient", body)
    assert r.status == 201, r
    # server-owned members first, then the client's in the order it sent them
    assert member_names(r.body) == ["resourceType", "id", "meta", "birthDate", "gender", "name"]
    pairs = json.loads(r.body, object_pairs_hook=lambda p: p)
    meta_names = [k for k, _ in dict(pairs)["meta"]]
    assert meta_names[:2] == ["versionId", "lastUpdated"]


# ---- read, vread, HEAD ---------------------------------------------------------------------

def test_read_and_vread(client):
    body = create(client, patient())
    pid = body["id"]
    r = client.get(f"Patient/{pid}")
    assert r.status == 200
    assert r.content_type == FHIR_JSON + "; charset=utf-8"
    assert r.header("ETag") == 'W/"1"'
    assert HTTP_DATE_RE.match(r.header("Last-Modified"))
    assert r.json == body
    v = client.get(f"Patient/{pid}/_history/1")
    assert v.status == 200
    assert v.header("ETag") == 'W/"1"'
    assert v.json == body


def test_head_answers_headers_without_a_body(client):
    body = create(client, patient())
    r = client.head(f"Patient/{body['id']}")
    assert r.status == 200
    assert r.body == b""
    assert r.header("ETag") == 'W/"1"'
    assert r.content_type.startswith(FHIR_JSON)
    assert client.head("Patient/does-not-exist").status == 404


def test_read_of_an_unknown_id_is_404(client):
    assert_outcome(client.get("Patient/no-such-patient"), 404, "not-found",
                   "Patient/no-such-patient")


def test_read_of_an_unknown_type_is_404(client):
    assert_outcome(client.get("Foo/1"), 404, "not-found", '"Foo"')
    assert_outcome(client.get("patient/1"), 404, "not-found", '"patient"')


def test_invalid_id_syntax_is_400(client):
    assert_outcome(client.get("Patient/" + "a" * 65), 400, "invalid", "not a valid id")
    assert_outcome(client.get("Patient/a_b"), 400, "invalid", '"a_b"')
    assert_outcome(client.get("Patient/a%20b"), 400, "invalid", "not a valid id")
    # 64 characters is the longest valid id
    assert_outcome(client.get("Patient/" + "a" * 64), 404, "not-found")


def test_vread_of_a_missing_version_is_404(client):
    pid = create(client, patient())["id"]
    assert_outcome(client.get(f"Patient/{pid}/_history/2"), 404, "not-found", "version 2")
    assert_outcome(client.get("Patient/never-existed/_history/1"), 404, "not-found")


def test_vread_of_a_version_that_is_not_a_number_is_404(client):
    pid = create(client, patient())["id"]
    for bad in ("abc", "0", "-1", "1.0"):
        assert_outcome(client.get(f"Patient/{pid}/_history/{bad}"), 404, "not-found")


# ---- update --------------------------------------------------------------------------------

def test_update_creates_a_new_version(client):
    body = create(client, patient())
    pid = body["id"]
    body["active"] = False
    r = client.put(f"Patient/{pid}", body)
    assert r.status == 200, r
    assert_version_headers(r, client.base, "Patient", pid, 2)
    assert r.json["meta"]["versionId"] == "2"
    assert r.json["active"] is False
    assert r.json["meta"]["lastUpdated"] > body["meta"]["lastUpdated"]
    assert client.get(f"Patient/{pid}").json == r.json
    assert client.get(f"Patient/{pid}/_history/1").json["active"] is True


def test_update_with_a_new_client_id_creates(client):
    r = client.put("Patient/client-id-1", patient(id="client-id-1"))
    assert r.status == 201, r
    assert_version_headers(r, client.base, "Patient", "client-id-1", 1)
    assert r.json["id"] == "client-id-1"
    assert r.json["meta"]["versionId"] == "1"
    assert client.get("Patient/client-id-1").status == 200


def test_update_without_id_in_the_body_is_400(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    assert_outcome(client.put(f"Patient/{pid}", patient()), 400, "invalid", "no id",
                   expression="Patient.id")
    assert_nothing_written(client, before)


def test_update_with_a_different_id_in_the_body_is_400(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    assert_outcome(client.put(f"Patient/{pid}", patient(id="other")), 400, "invalid",
                   "does not match", expression="Patient.id")
    assert_nothing_written(client, before)
    assert client.get("Patient/other").status == 404


def test_update_with_a_resource_type_other_than_the_url_is_400(client):
    before = client.last_change()
    assert_outcome(client.put("Patient/mismatch", observation(id="mismatch")), 400, "invalid",
                   "Observation")
    assert_outcome(client.post("Patient", observation()), 400, "invalid", "Observation")
    assert_nothing_written(client, before)


def test_update_with_if_match(client):
    body = create(client, patient())
    pid = body["id"]
    r = client.put(f"Patient/{pid}", body, headers={"If-Match": 'W/"1"'})
    assert r.status == 200, r
    assert r.header("ETag") == 'W/"2"'
    # a stale version: 412, and nothing is written
    before = client.last_change()
    stale = dict(body, active=False)
    assert_outcome(client.put(f"Patient/{pid}", stale, headers={"If-Match": 'W/"1"'}), 412,
                   "conflict", "version 1")
    assert_nothing_written(client, before)
    current = client.get(f"Patient/{pid}")
    assert current.header("ETag") == 'W/"2"'
    assert current.json["active"] is True
    # the strong form and spaces are accepted too
    r = client.put(f"Patient/{pid}", body, headers={"If-Match": ' "2" '})
    assert r.status == 200, r
    assert r.header("ETag") == 'W/"3"'


def test_update_with_a_malformed_if_match_is_400(client):
    body = create(client, patient())
    before = client.last_change()
    for bad in ('W/"abc"', "W/", '""', 'W/"0"', "*", 'W/"1", W/"2"'):
        assert_outcome(client.put(f"Patient/{body['id']}", body, headers={"If-Match": bad}),
                       400, "invalid", "If-Match")
    assert_nothing_written(client, before)


def test_update_with_if_match_on_a_missing_resource_is_412(client):
    before = client.last_change()
    r = client.put("Patient/not-there-yet", patient(id="not-there-yet"),
                   headers={"If-Match": 'W/"1"'})
    assert_outcome(r, 412, "conflict", "does not exist")
    assert_nothing_written(client, before)
    assert client.get("Patient/not-there-yet").status == 404


# ---- delete --------------------------------------------------------------------------------

def test_delete_then_read_is_410(client):
    body = create(client, patient())
    pid = body["id"]
    r = client.delete(f"Patient/{pid}")
    assert r.status == 204, r
    assert r.body == b""
    assert r.header("ETag") == 'W/"2"'
    assert HTTP_DATE_RE.match(r.header("Last-Modified", ""))
    gone = client.get(f"Patient/{pid}")
    assert_outcome(gone, 410, "deleted", f"Patient/{pid}")
    assert gone.header("ETag") == 'W/"2"'
    # the versions before the deletion stay readable; the deletion itself is 410
    assert client.get(f"Patient/{pid}/_history/1").json == body
    assert_outcome(client.get(f"Patient/{pid}/_history/2"), 410, "deleted")


def test_delete_twice_writes_no_new_version(client):
    pid = create(client, patient())["id"]
    assert client.delete(f"Patient/{pid}").status == 204
    before = client.last_change()
    r = client.delete(f"Patient/{pid}")
    assert r.status == 204, r
    assert r.body == b""
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{pid}/_history").json["total"] == 2


def test_delete_of_a_missing_resource_is_204(client):
    before = client.last_change()
    r = client.delete("Patient/never-was")
    assert r.status == 204, r
    assert_nothing_written(client, before)
    assert client.get("Patient/never-was").status == 404


def test_update_after_delete_recreates(client):
    body = create(client, patient())
    pid = body["id"]
    assert client.delete(f"Patient/{pid}").status == 204
    r = client.put(f"Patient/{pid}", body)
    assert r.status == 201, r
    assert_version_headers(r, client.base, "Patient", pid, 3)
    assert r.json["meta"]["versionId"] == "3"
    assert client.get(f"Patient/{pid}").status == 200
    assert_outcome(client.get(f"Patient/{pid}/_history/2"), 410, "deleted")


def test_delete_with_if_match(client):
    body = create(client, patient())
    pid = body["id"]
    assert client.put(f"Patient/{pid}", body).status == 200
    before = client.last_change()
    assert_outcome(client.delete(f"Patient/{pid}", headers={"If-Match": 'W/"1"'}), 412,
                   "conflict", "current version is 2")
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{pid}").status == 200
    assert_outcome(client.delete(f"Patient/{pid}", headers={"If-Match": "nonsense"}), 400,
                   "invalid", "If-Match")
    r = client.delete(f"Patient/{pid}", headers={"If-Match": 'W/"2"'})
    assert r.status == 204, r
    assert r.header("ETag") == 'W/"3"'
    # the resource is deleted now: If-Match for its last version no longer matches
    assert_outcome(client.delete(f"Patient/{pid}", headers={"If-Match": 'W/"3"'}), 412,
                   "conflict")
    assert_outcome(client.put(f"Patient/{pid}", body, headers={"If-Match": 'W/"3"'}), 412,
                   "conflict", "deleted")


def test_resources_of_many_sizes_round_trip(client):
    """Sizes from a few hundred bytes to past 64 KiB, in uneven steps, so that every internal
    buffer boundary is crossed at least once."""
    size = 300
    while size < 80000:
        text = "y" * size
        r = client.post("Patient", patient(name=[{"family": "Size", "given": [text]}]))
        assert r.status == 201, f"{size}: {r}"
        assert r.json["name"][0]["given"][0] == text
        back = client.get(f"Patient/{r.json['id']}")
        assert back.body == r.body, size
        r = client.put(f"Patient/{r.json['id']}", dict(r.json, active=False))
        assert r.status == 200, f"{size}: {r}"
        size = size * 5 // 4 + 97
