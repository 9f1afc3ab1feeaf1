"""Search of contained resources (_contained, _containedType, chains into contained
resources) and references written as absolute urls of this server followed by chains, _has,
_include, _revinclude and compartments.

Contained resources carry no tag of their own, so these tests tell their data apart by names
and codes no other test uses. Expected results are worked out by hand from the resources.
"""
import sqlite3

from conftest import assert_outcome, run_cli, sqlite_only
from test_search import bundle, idset, included, matches, obs, put, tagged

T = "contained"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def entries(b):
    return sorted((e["fullUrl"], e["resource"]["resourceType"] + "/" + e["resource"]["id"])
                  for e in b.get("entry", []) if e["search"]["mode"] == "match")


def contained_data(client):
    put(client, obs("ct-o1", T, subject={"reference": "#p1"},
                    contained=[{"resourceType": "Patient", "id": "p1",
                                "name": [{"family": "Chalmersia"}], "gender": "male"}]))
    put(client, tagged(T, {"resourceType": "Patient", "id": "ct-p",
                           "name": [{"family": "Chalmersia"}], "gender": "female"}))
    put(client, tagged(T, {"resourceType": "Medication", "id": "ct-med",
                           "code": {"coding": [{"system": RX, "code": "ctd-1"}]}}))
    put(client, tagged(T, {
        "resourceType": "MedicationRequest", "id": "ct-mr1", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/ct-p"},
        "medicationReference": {"reference": "#med1"},
        "contained": [{"resourceType": "Medication", "id": "med1",
                       "code": {"coding": [{"system": RX, "code": "ctd-1"}]}}]}))
    put(client, tagged(T, {
        "resourceType": "MedicationRequest", "id": "ct-mr2", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/ct-p"},
        "medicationReference": {"reference": "Medication/ct-med"}}))
    # a contained Medication the request does not refer to through medication
    put(client, tagged(T, {
        "resourceType": "MedicationRequest", "id": "ct-mr3", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/ct-p"},
        "medicationCodeableConcept": {"text": "something else"},
        "supportingInformation": [{"reference": "#med2"}],
        "contained": [{"resourceType": "Medication", "id": "med2",
                       "code": {"coding": [{"system": RX, "code": "ctd-1"}]}}]}))


def test_contained_default_true_both_and_types(client):
    contained_data(client)
    base = client.base
    # by default only top-level resources
    assert idset(client, "Patient", [("name", "chalmersia")]) == ["ct-p"]
    assert idset(client, "Medication", [("code", f"{RX}|ctd-1")]) == ["ct-med"]
    # the contained resource itself, with the container's url and #id
    b = bundle(client, "Patient", [("name", "chalmersia"), ("_contained", "true"),
                                   ("_containedType", "contained")])
    assert entries(b) == [(f"{base}/Observation/ct-o1#p1", "Patient/p1")]
    assert b["entry"][0]["resource"] == {"resourceType": "Patient", "id": "p1",
                                         "name": [{"family": "Chalmersia"}], "gender": "male"}
    # the container (the default _containedType)
    b = bundle(client, "Patient", [("name", "chalmersia"), ("_contained", "true")])
    assert entries(b) == [(f"{base}/Observation/ct-o1", "Observation/ct-o1")]
    # both: top-level and contained
    b = bundle(client, "Patient", [("name", "chalmersia"), ("_contained", "both"),
                                   ("_containedType", "contained")])
    assert entries(b) == [(f"{base}/Observation/ct-o1#p1", "Patient/p1"),
                          (f"{base}/Patient/ct-p", "Patient/ct-p")]
    b = bundle(client, "Patient", [("name", "chalmersia"), ("_contained", "both")])
    assert entries(b) == [(f"{base}/Observation/ct-o1", "Observation/ct-o1"),
                          (f"{base}/Patient/ct-p", "Patient/ct-p")]
    # the criteria apply to the contained resource
    assert matches(bundle(client, "Patient", [("name", "chalmersia"), ("gender", "female"),
                                              ("_contained", "true")])) == []
    assert matches(bundle(client, "Patient", [("name", "chalmersia"), ("gender", "male"),
                                              ("_contained", "true"),
                                              ("_containedType", "contained")])) == ["Patient/p1"]
    assert matches(bundle(client, "Patient", [("_id", "p1"), ("_contained", "true"),
                                              ("_containedType", "contained")])) == ["Patient/p1"]
    # two containers of a matching Medication, one entry each
    b = bundle(client, "Medication", [("code", f"{RX}|ctd-1"), ("_contained", "true"),
                                      ("_total", "accurate")])
    assert sorted(matches(b)) == ["MedicationRequest/ct-mr1", "MedicationRequest/ct-mr3"]
    assert b["total"] == 2
    b = bundle(client, "Medication", [("code", f"{RX}|ctd-1"), ("_contained", "both"),
                                      ("_containedType", "contained"), ("_total", "accurate")])
    assert b["total"] == 3
    assert entries(b) == [(f"{base}/Medication/ct-med", "Medication/ct-med"),
                          (f"{base}/MedicationRequest/ct-mr1#med1", "Medication/med1"),
                          (f"{base}/MedicationRequest/ct-mr3#med2", "Medication/med2")]
    # pages of one, both ways
    seen, url = [], None
    b = bundle(client, "Medication", [("code", f"{RX}|ctd-1"), ("_contained", "both"),
                                      ("_containedType", "contained"), ("_count", "1")])
    while True:
        seen += entries(b)
        url = next((x["url"] for x in b["link"] if x["relation"] == "next"), None)
        if not url:
            break
        r = client.get(url)
        assert r.status == 200, r
        b = r.json
    assert sorted(seen) == entries(bundle(client, "Medication", [
        ("code", f"{RX}|ctd-1"), ("_contained", "both"), ("_containedType", "contained")]))
    assert len(seen) == 3
    # _elements applies to a contained match
    b = bundle(client, "Patient", [("name", "chalmersia"), ("_contained", "true"),
                                   ("_containedType", "contained"), ("_elements", "gender")])
    assert b["entry"][0]["resource"]["gender"] == "male"
    assert "name" not in b["entry"][0]["resource"]


def test_chains_follow_references_to_contained_resources(client):
    contained_data(client)
    # the spec's example: a contained Medication and a referenced one
    assert idset(client, "MedicationRequest", [("medication.code", f"{RX}|ctd-1")]) == \
        ["ct-mr1", "ct-mr2"]
    assert idset(client, "MedicationRequest", [("medication:Medication.code", "ctd-1")]) == \
        ["ct-mr1", "ct-mr2"]
    assert idset(client, "Observation", [("subject:Patient.name", "chalmersia")]) == ["ct-o1"]
    assert idset(client, "Observation", [("subject:Patient.gender", "female")], T) == []


def test_contained_rows_follow_updates_and_deletes(client):
    put(client, tagged(T, {
        "resourceType": "MedicationRequest", "id": "ct-life", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/x"},
        "medicationReference": {"reference": "#m"},
        "contained": [{"resourceType": "Medication", "id": "m",
                       "code": {"coding": [{"system": RX, "code": "ctd-life-1"}]}}]}))
    q = lambda code: idset(client, "Medication", [("code", code), ("_contained", "true"),  # noqa
                                                  ("_containedType", "contained")])
    assert q("ctd-life-1") == ["m"]
    put(client, tagged(T, {
        "resourceType": "MedicationRequest", "id": "ct-life", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/x"},
        "medicationReference": {"reference": "#m"},
        "contained": [{"resourceType": "Medication", "id": "m",
                       "code": {"coding": [{"system": RX, "code": "ctd-life-2"}]}}]}))
    assert q("ctd-life-1") == []
    assert q("ctd-life-2") == ["m"]
    assert idset(client, "MedicationRequest", [("medication.code", "ctd-life-2")]) == ["ct-life"]
    assert client.delete("MedicationRequest/ct-life").status == 204
    assert q("ctd-life-2") == []
    assert idset(client, "MedicationRequest", [("medication.code", "ctd-life-2")]) == []


def test_contained_values_strict_and_lenient(client):
    r = client.get("Patient?name=chalmersia&_contained=maybe",
                   headers={"Prefer": "handling=strict"})
    assert_outcome(r, 400, "invalid", "_contained")
    r = client.get("Patient?name=chalmersia&_containedType=inside",
                   headers={"Prefer": "handling=strict"})
    assert_outcome(r, 400, "invalid", "_containedType")
    # lenient: left out (so the default, top-level only) and said in the outcome entry
    put(client, tagged(T, {"resourceType": "Patient", "id": "ct-lenient",
                           "name": [{"family": "Lenientia"}]}))
    b = bundle(client, "Patient", [("name", "lenientia"), ("_contained", "maybe")])
    assert matches(b) == ["Patient/ct-lenient"]
    outcome = [e for e in b["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1 and "_contained" in str(outcome[0])
    assert "_contained" not in next(x["url"] for x in b["link"] if x["relation"] == "self")
    b = bundle(client, "Patient", [("name", "lenientia"), ("_contained", "true")])
    assert matches(b) == []
    assert "_contained=true" in next(x["url"] for x in b["link"] if x["relation"] == "self")


@sqlite_only("removes the contained rows from the database file directly")
def test_reindex_fills_contained_rows(make_server):
    server = make_server()
    c = server.client
    put(c, obs("ri-o", T, subject={"reference": "#p"},
               contained=[{"resourceType": "Patient", "id": "p", "name": [{"family": "Reidx"}]}]))
    assert server.stop_checked() == []
    # as a database of schema version 4 had them: no rows of contained resources
    db = sqlite3.connect(server.db)
    with db:
        db.execute("DELETE FROM resource_contained")
        for table in ("ix_string", "ix_token", "ix_reference", "ix_date", "ix_uri"):
            db.execute(f"DELETE FROM {table} WHERE type LIKE '#%'")
    db.close()
    server.start()
    pairs = [("name", "reidx"), ("_contained", "true"), ("_containedType", "contained")]
    assert matches(bundle(server.client, "Patient", pairs)) == []
    assert idset(server.client, "Observation", [("subject:Patient.name", "reidx")]) == []
    assert server.stop_checked() == []
    result = run_cli("reindex", "--db", str(server.db))
    assert result.returncode == 0, result.stderr
    server.start()
    assert matches(bundle(server.client, "Patient", pairs)) == ["Patient/p"]
    assert idset(server.client, "Observation", [("subject:Patient.name", "reidx")]) == ["ri-o"]


# ---- absolute references to this server ------------------------------------------------------

def test_absolute_references_followed(client):
    t = "absolute"
    base = client.base
    put(client, tagged(t, {"resourceType": "Patient", "id": "ab-p", "name": [{"family": "Absolon"}],
                           "managingOrganization": {"reference": f"{base}/Organization/ab-org"}}))
    put(client, tagged(t, {"resourceType": "Organization", "id": "ab-org", "name": "Absolute Org"}))
    put(client, obs("ab-o1", t, subject={"reference": f"{base}/Patient/ab-p"}, status="final"))
    put(client, obs("ab-o2", t, subject={"reference": f"{base}/Patient/ab-p/_history/1"},
                    status="amended"))
    # the same type and id on another server: not this Patient
    put(client, obs("ab-o3", t, subject={"reference": "http://other.example/fhir/Patient/ab-p"},
                    status="cancelled"))
    put(client, obs("ab-o4", t, subject={"reference": "Patient/ab-p"}, status="preliminary"))
    q = lambda path, pairs: idset(client, path, pairs, t)  # noqa: E731
    # chains
    assert q("Observation", [("subject:Patient.name", "absolon")]) == ["ab-o1", "ab-o2", "ab-o4"]
    assert q("Observation", [("subject.name", "absolon")]) == ["ab-o1", "ab-o2", "ab-o4"]
    assert q("Observation", [("patient.organization.name", "absolute")]) == \
        ["ab-o1", "ab-o2", "ab-o4"]
    # _has
    assert q("Patient", [("_has:Observation:subject:status", "final")]) == ["ab-p"]
    assert q("Patient", [("_has:Observation:subject:status", "amended")]) == ["ab-p"]
    assert q("Patient", [("_has:Observation:subject:status", "cancelled")]) == []
    assert q("Organization", [("_has:Patient:organization:name", "absolon")]) == ["ab-org"]
    # _include and _revinclude
    for oid, expected in (("ab-o1", ["Patient/ab-p"]), ("ab-o2", ["Patient/ab-p"]),
                          ("ab-o3", []), ("ab-o4", ["Patient/ab-p"])):
        b = bundle(client, "Observation", [("_id", oid), ("_include", "Observation:subject")], t)
        assert included(b) == expected, oid
        b = bundle(client, "Observation", [("_id", oid), ("_include", "Observation:*")], t)
        assert included(b) == expected, oid
    b = bundle(client, "Observation", [("_id", "ab-o1"), ("_include", "Observation:subject"),
                                       ("_include:iterate", "Patient:organization")], t)
    assert included(b) == ["Organization/ab-org", "Patient/ab-p"]
    b = bundle(client, "Observation", [("_id", "ab-o1"),
                                       ("_include", "Observation:subject:Group")], t)
    assert included(b) == []
    b = bundle(client, "Patient", [("_id", "ab-p"), ("_revinclude", "Observation:subject")], t)
    assert included(b) == ["Observation/ab-o1", "Observation/ab-o2", "Observation/ab-o4"]
    b = bundle(client, "Patient", [("_id", "ab-p"), ("_revinclude", "Observation:*")], t)
    assert included(b) == ["Observation/ab-o1", "Observation/ab-o2", "Observation/ab-o4"]
    b = bundle(client, "Organization", [("_id", "ab-org"), ("_revinclude", "Patient:*")], t)
    assert included(b) == ["Patient/ab-p"]
    # compartment
    assert q("Patient/ab-p/Observation", []) == ["ab-o1", "ab-o2", "ab-o4"]
