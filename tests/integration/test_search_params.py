"""Custom SearchParameter resources: written through the API they are checked before anything
is stored, take effect for searches at once, and the resource types they apply to are
reindexed in the background so resources written before the parameter are found too (the
tests poll the search until the reindex has reached them; the server logs its progress).
Updates change the expression, deletes and retirement remove the parameter, the
CapabilityStatement lists it, and a restarted server loads it from the database.

Each test uses a server of its own (the parameters are global to a server). Expected results
are worked out by hand from the resources.
"""
import json
import time

from conftest import assert_nothing_written, assert_outcome, create, run_cli

MMN = "http://example.org/fhir/StructureDefinition/mothers-maiden-name"
SP_URL = "http://example.org/fhir/SearchParameter/patient-mothers-maiden-name"
STRICT = {"Prefer": "handling=strict"}
POLL_SECONDS = 20


def mmn_param(**extra):
    sp = {"resourceType": "SearchParameter", "url": SP_URL, "name": "MothersMaidenName",
          "status": "active", "description": "Search by the mother's maiden name",
          "code": "mothers-maiden-name", "base": ["Patient"], "type": "string",
          "expression": f"Patient.extension.where(url = '{MMN}').value"}
    sp.update(extra)
    return {k: v for k, v in sp.items() if v is not None}


def mmn_patient(family, maiden):
    return {"resourceType": "Patient", "name": [{"family": family}],
            "extension": [{"url": MMN, "valueString": maiden}]}


def search(client, query, headers=None, status=200):
    r = client.get(query, headers=headers)
    assert r.status == status, r
    return r.json


def found(client, query, headers=None):
    b = search(client, query, headers)
    return sorted(e["resource"]["id"] for e in b.get("entry", [])
                  if e["search"]["mode"] == "match")


def poll(client, query, expected):
    """Searches until the result is expected (the background reindex has caught up)."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        got = found(client, query)
        if got == sorted(expected) or time.monotonic() > deadline:
            assert got == sorted(expected), f"{query}: {got} != {sorted(expected)}"
            return
        time.sleep(0.05)


def ignored(client, query):
    """The diagnostics of a lenient search's outcome entry ([] when nothing was ignored)."""
    b = search(client, query)
    out = [e for e in b.get("entry", []) if e["search"]["mode"] == "outcome"]
    return [i["diagnostics"] for o in out for i in o["resource"]["issue"]]


def capability_params(client, type_name):
    r = client.get("metadata")
    assert r.status == 200
    for res in r.json["rest"][0]["resource"]:
        if res["type"] == type_name:
            return {p["name"]: p for p in res.get("searchParam", [])}
    raise AssertionError(type_name)


def test_custom_parameter_end_to_end(make_server, tmp_dir):
    srv = make_server(db=tmp_dir / "sp.db")
    client = srv.client
    before = create(client, mmn_patient("Before", "Smith"))["id"]
    other = create(client, mmn_patient("Other", "Jones"))["id"]
    # unknown before it is defined
    r = client.get("Patient?mothers-maiden-name=smith", headers=STRICT)
    assert_outcome(r, 400, "invalid", 'unknown search parameter "mothers-maiden-name"')

    r = client.post("SearchParameter", mmn_param())
    assert r.status == 201, r
    sp = r.json
    after = create(client, mmn_patient("After", "Smithson"))["id"]
    # the resource written after the parameter is indexed by its own write; the one written
    # before once the background reindex has reached it
    poll(client, "Patient?mothers-maiden-name=smith", [before, after])
    assert found(client, "Patient?mothers-maiden-name:exact=Smith") == [before]
    assert found(client, "Patient?mothers-maiden-name=jones") == [other]
    assert found(client, "Patient?mothers-maiden-name:missing=true") == []
    deadline = time.monotonic() + POLL_SECONDS
    while ("reindex of Patient after a search parameter change: done,"
           not in srv.stderr() and time.monotonic() < deadline):
        time.sleep(0.05)
    assert "reindex of Patient after a search parameter change: done," \
        in srv.stderr()
    caps = capability_params(client, "Patient")
    assert caps["mothers-maiden-name"] == {"name": "mothers-maiden-name",
                                           "definition": SP_URL, "type": "string"}
    assert "mothers-maiden-name" not in capability_params(client, "Observation")

    # a new expression: the family name instead of the extension
    sp["expression"] = "Patient.name.family"
    r = client.put(f"SearchParameter/{sp['id']}", sp)
    assert r.status == 200, r
    poll(client, "Patient?mothers-maiden-name=smith", [])
    assert found(client, "Patient?mothers-maiden-name=before") == [before]
    assert found(client, "Patient?mothers-maiden-name=a") == [after]

    # the server restarted: the parameter is loaded from the database
    assert srv.stop() == 0
    srv.start()
    client = srv.client
    assert found(client, "Patient?mothers-maiden-name=oth") == [other]
    assert "mothers-maiden-name" in capability_params(client, "Patient")

    # delete: an unknown parameter again, in lenient and strict searches
    r = client.delete(f"SearchParameter/{sp['id']}")
    assert r.status in (200, 204), r
    r = client.get("Patient?mothers-maiden-name=oth", headers=STRICT)
    assert_outcome(r, 400, "invalid", 'unknown search parameter "mothers-maiden-name" for Patient')
    assert ignored(client, "Patient?mothers-maiden-name=oth") == [
        'unknown search parameter "mothers-maiden-name" for Patient']
    assert "mothers-maiden-name" not in capability_params(client, "Patient")


def test_component_parameter_and_retirement(make_server):
    """An Observation parameter on a component's code, on two bases; retired: gone."""
    client = make_server().client

    def obs(code):
        return {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "component": [{"code": {"coding": [{"system": "http://loinc.org",
                                                    "code": code}]},
                               "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}]}

    systolic = create(client, obs("8480-6"))["id"]
    diastolic = create(client, obs("8462-4"))["id"]
    param = {"resourceType": "SearchParameter",
             "url": "http://example.org/fhir/SearchParameter/component-code-x",
             "name": "ComponentCodeX", "status": "draft", "description": "component codes",
             "code": "component-code-x", "base": ["Observation"], "type": "token",
             "expression": "Observation.component.code"}
    sp = create(client, param)
    poll(client, "Observation?component-code-x=http://loinc.org|8480-6", [systolic])
    assert found(client, "Observation?component-code-x=8462-4") == [diastolic]
    assert found(client, "Observation?component-code-x:not=8462-4") == [systolic]

    sp["status"] = "retired"
    r = client.put(f"SearchParameter/{sp['id']}", sp)
    assert r.status == 200, r
    r = client.get("Observation?component-code-x=8462-4", headers=STRICT)
    assert_outcome(r, 400, "invalid", 'unknown search parameter "component-code-x"')


def test_custom_code_hides_a_builtin_one_and_a_bundle_defines_it(make_server):
    """A transaction creates a parameter and a resource together; a custom parameter with the
    code of a built-in one replaces it for its base."""
    client = make_server().client
    create(client, {"resourceType": "Patient", "name": [{"family": "Ames"}], "gender": "male"})
    sp = mmn_param(code="gender", url="http://example.org/fhir/SearchParameter/gender-by-name",
                   expression="Patient.name.family")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": sp, "request": {"method": "POST", "url": "SearchParameter"}},
        {"resource": {"resourceType": "Patient", "name": [{"family": "Bell"}],
                      "gender": "female"},
         "request": {"method": "POST", "url": "Patient"}}]}
    r = client.post("", bundle)
    assert r.status == 200, r
    bell = r.json["entry"][1]["response"]["location"].split("/")[1]
    ames = found(client, "Patient?name=ames")
    assert len(ames) == 1
    poll(client, "Patient?gender=ames", ames)
    assert found(client, "Patient?gender=bell") == [bell]
    assert found(client, "Patient?gender=female") == []


def test_invalid_definitions_are_refused_and_nothing_is_written(make_server):
    client = make_server().client
    create(client, mmn_patient("Any", "Smith"))
    cases = [
        (mmn_param(expression=None), "SearchParameter.expression",
         'cannot register search parameter "mothers-maiden-name": it has no expression'),
        (mmn_param(expression="Patient.name.where("), "SearchParameter.expression",
         "its expression is not valid FHIRPath: could not parse FHIRPath at column 20"),
        (mmn_param(code="maiden name"), "SearchParameter.code",
         'code "maiden name" is not a valid parameter name'),
        (mmn_param(type="composite", component=[
            {"definition": "http://example.org/none", "expression": "value"},
            {"definition": "http://hl7.org/fhir/SearchParameter/Patient-gender",
             "expression": "gender"}]),
         "SearchParameter.component",
         'component "http://example.org/none" is not a known search parameter'),
        (mmn_param(target=["Patient"]), "SearchParameter.target",
         "targets are for reference parameters"),
    ]
    for body, expression, text in cases:
        before = client.last_change()
        r = client.post("SearchParameter", body)
        assert_outcome(r, 422, "business-rule", text, expression=expression)
        assert_nothing_written(client, before)
        # an update is checked the same way
        r = client.put("SearchParameter/bad", dict(body, id="bad"))
        assert_outcome(r, 422, "business-rule", text, expression=expression)
        assert_nothing_written(client, before)
    r = client.get("SearchParameter?_total=accurate")
    assert r.json["total"] == 0
    r = client.get("Patient?mothers-maiden-name=smith", headers=STRICT)
    assert r.status == 400
    # a retired definition is stored but not checked nor used
    r = client.post("SearchParameter", mmn_param(status="retired", expression=None))
    assert r.status == 201, r
    r = client.get("Patient?mothers-maiden-name=smith", headers=STRICT)
    assert_outcome(r, 400, "invalid", 'unknown search parameter "mothers-maiden-name"')


def test_import_defines_and_indexes(make_server, tmp_dir):
    """concerto import of a SearchParameter after the resources it indexes: the import
    reindexes their type before it ends, and a server on the database searches by it."""
    db = tmp_dir / "import.db"
    lines = [dict(mmn_patient("Imported", "Garcia"), id="imported-1"),
             mmn_param(id="mmn")]
    path = tmp_dir / "data.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    r = run_cli("import", "--db", str(db), str(path))
    assert r.returncode == 0, r.stderr
    assert "reindex of Patient after a search parameter change: done, 1 resources" in r.stderr
    client = make_server(db=db).client
    assert found(client, "Patient?mothers-maiden-name=garc") == ["imported-1"]
