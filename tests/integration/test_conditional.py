"""Conditional create (If-None-Exist), conditional update (PUT [type]?criteria) and
conditional delete (DELETE [type]?criteria): every outcome for none, one and several matches,
strict criteria, If-Match, the multiple-delete setting and concurrent conditional creates."""
import threading

import pytest

from conftest import (assert_nothing_written, assert_outcome, create, patient, run_cli,
                      run_threads)

SYSTEM = "http://example.org/mrn"


def with_mrn(value, **extra):
    return patient(identifier=[{"system": SYSTEM, "value": value}], **extra)


def mrn_query(value):
    return f"identifier={SYSTEM}|{value}"


def search_ids(client, query):
    r = client.get(f"Patient?{query}&_count=100")
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


# ---- conditional create ----------------------------------------------------------------------

def test_conditional_create_without_a_match_creates(client):
    r = client.post("Patient", with_mrn("c-none"), headers={"If-None-Exist": mrn_query("c-none")})
    assert r.status == 201, r
    assert r.json["meta"]["versionId"] == "1"
    assert r.header("Location").endswith(f"/Patient/{r.json['id']}/_history/1")
    assert search_ids(client, mrn_query("c-none")) == [r.json["id"]]


def test_conditional_create_with_one_match_answers_the_match_and_writes_nothing(client):
    existing = create(client, with_mrn("c-one"))
    # a second version, so that the answer is the current version, not the first
    r = client.put(f"Patient/{existing['id']}", with_mrn("c-one", id=existing["id"], active=False))
    assert r.status == 200, r
    before = client.last_change()
    r = client.post("Patient", with_mrn("c-one", gender="male"),
                    headers={"If-None-Exist": mrn_query("c-one")})
    assert r.status == 200, r
    assert r.json["id"] == existing["id"]
    assert r.json["meta"]["versionId"] == "2"
    assert r.json["active"] is False and r.json["gender"] == "female"
    assert r.header("ETag") == 'W/"2"'
    assert r.header("Location").endswith(f"/Patient/{existing['id']}/_history/2")
    assert_nothing_written(client, before)
    # the same with the type before the criteria, as some clients send it
    r = client.post("Patient", with_mrn("c-one"),
                    headers={"If-None-Exist": "Patient?" + mrn_query("c-one")})
    assert r.status == 200 and r.json["id"] == existing["id"], r
    assert_nothing_written(client, before)


def test_conditional_create_with_several_matches_is_412(client):
    create(client, with_mrn("c-many"))
    create(client, with_mrn("c-many"))
    before = client.last_change()
    r = client.post("Patient", with_mrn("c-many"), headers={"If-None-Exist": mrn_query("c-many")})
    assert_outcome(r, 412, "multiple-matches",
                   f'the criteria "identifier={SYSTEM}|c-many" match more than one Patient')
    assert_nothing_written(client, before)


def test_conditional_create_with_several_criteria_ands_them(client):
    create(client, with_mrn("c-and", gender="male"))
    r = client.post("Patient", with_mrn("c-and"),
                    headers={"If-None-Exist": mrn_query("c-and") + "&gender=female"})
    assert r.status == 201, r
    r = client.post("Patient", with_mrn("c-and"),
                    headers={"If-None-Exist": mrn_query("c-and") + "&gender=female"})
    assert r.status == 200, r


def test_deleted_resources_do_not_match(client):
    gone = create(client, with_mrn("c-deleted"))
    assert client.delete(f"Patient/{gone['id']}").status == 204
    r = client.post("Patient", with_mrn("c-deleted"),
                    headers={"If-None-Exist": mrn_query("c-deleted")})
    assert r.status == 201 and r.json["id"] != gone["id"], r


# ---- strict criteria ---------------------------------------------------------------------------

@pytest.mark.parametrize("criteria, diagnostics", [
    ("identifierx=1", 'unknown search parameter "identifierx"'),
    ("birthdate=notadate", "birthdate"),
    ("gender:in=http://hl7.org/fhir/ValueSet/administrative-gender", "is not on this server"),
    ("identifier=x&_count=1", '"_count" is not a search criterion'),
    ("_sort=birthdate", '"_sort" is not a search criterion'),
    ("", "at least one search criterion"),
    ("_format=json", "at least one search criterion"),
    ("Observation?code=1", "are for Observation, but the request is for Patient"),
])
def test_criteria_are_strict(client, criteria, diagnostics):
    before = client.last_change()
    r = client.post("Patient", with_mrn("strict"), headers={"If-None-Exist": criteria})
    assert_outcome(r, 400, "invalid", diagnostics)
    path = "Patient?" + criteria if "?" not in criteria else criteria
    if criteria and not criteria.startswith("Observation"):
        assert_outcome(client.put(path, with_mrn("strict")), 400, "invalid", diagnostics)
        assert_outcome(client.delete(path), 400, "invalid", diagnostics)
    assert_nothing_written(client, before)


def test_every_bad_criterion_is_named(client):
    r = client.post("Patient", with_mrn("x"),
                    headers={"If-None-Exist": "foo=1&_count=2&bar=3"})
    assert_outcome(r, 400, "invalid")
    texts = [i["diagnostics"] for i in r.json["issue"]]
    assert len(texts) == 3, texts
    assert '"_count"' in texts[0] and '"foo"' in texts[1] and '"bar"' in texts[2], texts


# ---- conditional update -------------------------------------------------------------------------

def test_conditional_update_without_a_match_or_id_creates(client):
    r = client.put("Patient?" + mrn_query("u-new"), with_mrn("u-new"))
    assert r.status == 201, r
    assert r.json["meta"]["versionId"] == "1"
    assert search_ids(client, mrn_query("u-new")) == [r.json["id"]]
    assert len(r.json["id"]) == 36  # a server-assigned id


def test_conditional_update_without_a_match_keeps_the_body_id(client):
    r = client.put("Patient?" + mrn_query("u-id"), with_mrn("u-id", id="u-chosen"))
    assert r.status == 201, r
    assert r.json["id"] == "u-chosen"
    assert client.get("Patient/u-chosen").status == 200


def test_conditional_update_without_a_match_whose_id_is_taken_is_409(client):
    create_put = client.put("Patient/u-taken", patient(id="u-taken"))
    assert create_put.status == 201, create_put
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-taken"), with_mrn("u-taken", id="u-taken"))
    assert_outcome(r, 409, "conflict", "Patient/u-taken, the id of the resource, is another")
    assert_nothing_written(client, before)


def test_conditional_update_with_one_match_updates_it(client):
    existing = create(client, with_mrn("u-one"))
    r = client.put("Patient?" + mrn_query("u-one"), with_mrn("u-one", active=False))
    assert r.status == 200, r
    assert r.json["id"] == existing["id"]
    assert r.json["meta"]["versionId"] == "2"
    assert r.json["active"] is False
    assert r.header("ETag") == 'W/"2"'
    # with the same id in the body
    r = client.put("Patient?" + mrn_query("u-one"), with_mrn("u-one", id=existing["id"]))
    assert r.status == 200 and r.json["meta"]["versionId"] == "3", r
    assert client.get(f"Patient/{existing['id']}").json["meta"]["versionId"] == "3"


def test_conditional_update_with_another_id_in_the_body_is_400(client):
    existing = create(client, with_mrn("u-other"))
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-other"), with_mrn("u-other", id="not-the-match"))
    assert_outcome(r, 400, "invalid", f'is not the id of the resource the criteria', "Patient.id")
    assert existing["id"] in r.json["issue"][0]["diagnostics"]
    assert_nothing_written(client, before)


def test_conditional_update_with_several_matches_is_412(client):
    create(client, with_mrn("u-many"))
    create(client, with_mrn("u-many"))
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-many"), with_mrn("u-many"))
    assert_outcome(r, 412, "multiple-matches", "a conditional update needs at most one match")
    assert_nothing_written(client, before)


def test_conditional_update_honours_if_match(client):
    existing = create(client, with_mrn("u-ifmatch"))
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-ifmatch"), with_mrn("u-ifmatch"),
                   headers={"If-Match": 'W/"2"'})
    assert_outcome(r, 412, "conflict", "current version is 1")
    assert_nothing_written(client, before)
    r = client.put("Patient?" + mrn_query("u-ifmatch"), with_mrn("u-ifmatch", active=False),
                   headers={"If-Match": 'W/"1"'})
    assert r.status == 200 and r.json["id"] == existing["id"], r
    assert r.json["meta"]["versionId"] == "2"
    # If-Match where nothing matches: there is no such version to update
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-nothing"), with_mrn("u-nothing"),
                   headers={"If-Match": 'W/"1"'})
    assert_outcome(r, 412, "conflict", "does not exist")
    assert_nothing_written(client, before)


def test_conditional_update_body_checks(client):
    before = client.last_change()
    r = client.put("Patient?" + mrn_query("u-body"), {"resourceType": "Observation"})
    assert_outcome(r, 400, "invalid", "the resource is a Observation but the request is for Patient")
    r = client.put("Patient?" + mrn_query("u-body"), with_mrn("u-body", id="bad id!"))
    assert_outcome(r, 400, "value", "is not a valid id", "Patient.id")
    r = client.put("Patient?" + mrn_query("u-body"), with_mrn("u-body", gender="robot"))
    assert_outcome(r, 422, "code-invalid")
    assert_nothing_written(client, before)


# ---- conditional delete -------------------------------------------------------------------------

def test_conditional_delete_without_a_match_is_204_and_writes_nothing(client):
    before = client.last_change()
    r = client.delete("Patient?" + mrn_query("d-none"))
    assert r.status == 204 and r.body == b"", r
    r = client.delete("Patient?" + mrn_query("d-none"),
                      headers={"Prefer": "return=OperationOutcome"})
    assert_outcome(r, 200, "informational", "nothing was deleted", severity="information")
    assert_nothing_written(client, before)


def test_conditional_delete_with_one_match_deletes_it(client):
    existing = create(client, with_mrn("d-one"))
    other = create(client, with_mrn("d-one-not"))
    r = client.delete("Patient?" + mrn_query("d-one"))
    assert r.status == 204, r
    assert r.header("ETag") == 'W/"2"'
    assert client.get(f"Patient/{existing['id']}").status == 410
    assert client.get(f"Patient/{other['id']}").status == 200
    # with If-Match naming the current version, and a stale one
    again = create(client, with_mrn("d-one-b"))
    before = client.last_change()
    assert_outcome(client.delete("Patient?" + mrn_query("d-one-b"), headers={"If-Match": 'W/"4"'}),
                   412, "conflict")
    assert_nothing_written(client, before)
    assert client.delete("Patient?" + mrn_query("d-one-b"),
                         headers={"If-Match": 'W/"1"'}).status == 204
    assert client.get(f"Patient/{again['id']}").status == 410


def test_conditional_delete_with_several_matches_is_412_by_default(client):
    a = create(client, with_mrn("d-many"))
    b = create(client, with_mrn("d-many"))
    before = client.last_change()
    r = client.delete("Patient?" + mrn_query("d-many"))
    assert_outcome(r, 412, "multiple-matches", "conditional-delete = multiple")
    assert_nothing_written(client, before)
    assert client.get(f"Patient/{a['id']}").status == 200
    assert client.get(f"Patient/{b['id']}").status == 200


def test_capability_statement_says_what_conditionals_do(client, make_server):
    for srv_client, expected in ((client, "single"),
                                 (make_server(args=["--conditional-delete", "multiple"]).client,
                                  "multiple")):
        patient_rest = [r for r in srv_client.get("metadata").json["rest"][0]["resource"]
                        if r["type"] == "Patient"][0]
        assert patient_rest["conditionalCreate"] is True
        assert patient_rest["conditionalUpdate"] is True
        assert patient_rest["conditionalDelete"] == expected
        assert patient_rest["conditionalRead"] == "not-supported"


def test_multiple_delete_deletes_every_match_in_one_transaction(make_server):
    srv = make_server(args=["--conditional-delete", "multiple"])
    c = srv.client
    ids = [create(c, with_mrn("d-all"))["id"] for _ in range(3)]
    keep = create(c, with_mrn("d-keep"))["id"]
    r = c.delete("Patient?" + mrn_query("d-all"), headers={"Prefer": "return=OperationOutcome"})
    assert_outcome(r, 200, "informational", "3 Patient resources matching", severity="information")
    for pid in ids:
        assert c.get(f"Patient/{pid}").status == 410
    assert c.get(f"Patient/{keep}").status == 200
    # one transaction: the three deletions share one lastUpdated
    history = c.get("_history?_count=3").json["entry"]
    assert sorted(e["fullUrl"].rsplit("/", 1)[1] for e in history) == sorted(ids)
    assert len({e["response"]["lastModified"] for e in history}) == 1
    # If-Match cannot name one version of several
    ids = [create(c, with_mrn("d-all-2"))["id"] for _ in range(2)]
    before = c.last_change()
    assert_outcome(c.delete("Patient?" + mrn_query("d-all-2"), headers={"If-Match": 'W/"1"'}),
                   412, "conflict", "match 2 Patient resources")
    assert_nothing_written(c, before)
    # one match is an ordinary delete; none deletes nothing
    assert c.delete("Patient?" + mrn_query("d-keep")).status == 204
    assert c.get(f"Patient/{keep}").status == 410
    assert c.delete("Patient?" + mrn_query("d-nothing")).status == 204


def test_put_and_delete_on_a_type_need_criteria(client):
    r = client.put("Patient", patient())
    assert_outcome(r, 405, "not-supported", "conditional PUT or DELETE has search criteria")
    assert r.header("Allow") == "GET, HEAD, POST"


def test_conditional_delete_of_a_bad_setting_is_refused(tmp_dir):
    r = run_cli("serve", "--db", str(tmp_dir / "x.db"), "--conditional-delete", "some")
    assert r.returncode == 2
    assert "--conditional-delete must be single or multiple" in r.stderr


# ---- concurrency ----------------------------------------------------------------------------------

def test_concurrent_conditional_creates_create_one_resource(client):
    n = 16
    results = []
    lock = threading.Lock()

    def post(i):
        r = client.post("Patient", with_mrn("race"), headers={"If-None-Exist": mrn_query("race")})
        with lock:
            results.append((r.status, r.json.get("id")))

    for _ in range(3):
        run_threads(n, post)
    statuses = sorted(s for s, _ in results)
    ids = {pid for _, pid in results}
    assert statuses == [200] * (3 * n - 1) + [201], results
    assert len(ids) == 1, results
    assert search_ids(client, mrn_query("race")) == list(ids)


def test_concurrent_conditional_updates_create_one_resource_then_update_it(client):
    n = 12
    statuses = []
    lock = threading.Lock()

    def put(i):
        r = client.put("Patient?" + mrn_query("race-u"), with_mrn("race-u", gender="male"))
        with lock:
            statuses.append(r.status)

    run_threads(n, put)
    assert sorted(statuses) == [200] * (n - 1) + [201], statuses
    ids = search_ids(client, mrn_query("race-u"))
    assert len(ids) == 1
    assert client.get(f"Patient/{ids[0]}").json["meta"]["versionId"] == str(n)
