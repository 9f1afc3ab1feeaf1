"""Patient/[id]/$everything and Patient/$everything: the Patient compartment with the
practitioners, organizations and medications its members refer to, each once, with _since,
_type, _count and paging that stays consistent while data changes."""
from conftest import FHIR_JSON, assert_nothing_written, assert_outcome, create, observation, patient


def ref(resource):
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def key(resource):
    return f"{resource['resourceType']}/{resource['id']}"


def make_data(client):
    """Two patients and their data; returns (A's expected everything as keys, the rest)."""
    org = create(client, {"resourceType": "Organization", "name": "Acme"})
    prac = create(client, {"resourceType": "Practitioner", "name": [{"family": "Doc"}]})
    other_prac = create(client, {"resourceType": "Practitioner", "name": [{"family": "Other"}]})
    med = create(client, {"resourceType": "Medication",
                          "code": {"coding": [{"system": "http://snomed.info/sct",
                                               "code": "387517004"}]}})
    unrelated = create(client, {"resourceType": "Organization", "name": "Nobody's"})
    a = create(client, patient(managingOrganization=ref(org)))
    b = create(client, patient(gender="male"))
    obs1 = create(client, observation(subject=ref(a), performer=[ref(prac)]))
    obs2 = create(client, observation(subject=ref(a)))
    enc = create(client, {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                    "code": "AMB"},
                          "subject": ref(a), "serviceProvider": ref(org)})
    cond = create(client, {"resourceType": "Condition", "subject": ref(a),
                           "encounter": ref(enc), "code": {"text": "asthma"}})
    mr = create(client, {"resourceType": "MedicationRequest", "status": "active",
                         "intent": "order", "subject": ref(a),
                         "medicationReference": ref(med), "requester": ref(prac)})
    obs_b = create(client, observation(subject=ref(b), performer=[ref(other_prac)]))
    cond_b = create(client, {"resourceType": "Condition", "subject": ref(b),
                             "code": {"text": "flu"}})
    # in the order they were created
    everything_a = [org, prac, med, a, obs1, obs2, enc, cond, mr]
    everything_b = [other_prac, b, obs_b, cond_b]
    return {"a": a, "b": b, "obs2": obs2, "everything_a": everything_a,
            "everything_b": everything_b, "unrelated": unrelated,
            "included": {key(org), key(prac), key(med), key(other_prac)}}


def entries(bundle):
    return [e for e in bundle["entry"]]


def keys(bundle):
    return [key(e["resource"]) for e in bundle["entry"]]


def next_link(bundle):
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    return links.get("next")


def all_pages(client, url, limit=50):
    """Follows next links; returns the keys of every page."""
    pages = []
    while url and len(pages) < limit:
        r = client.get(url)
        assert r.status == 200, r
        body = r.json
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
        pages.append(keys(body))
        url = next_link(body)
    return pages


def test_everything_of_a_patient(client):
    d = make_data(client)
    a = d["a"]
    r = client.get(f"Patient/{a['id']}/$everything")
    assert r.status == 200, r
    body = r.json
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    # in the order they were created, each once
    assert keys(body) == [key(x) for x in d["everything_a"]]
    for e in entries(body):
        k = key(e["resource"])
        assert e["fullUrl"] == f"{client.base}/{k}"
        assert e["search"]["mode"] == ("include" if k in d["included"] else "match"), e
    assert next_link(body) is None
    self_link = body["link"][0]
    assert self_link == {"relation": "self",
                         "url": f"{client.base}/Patient/{a['id']}/$everything"}
    # the stored resources as they are
    assert body["entry"][0]["resource"] == client.get(key(body["entry"][0]["resource"])).json


def test_type_and_since(client):
    d = make_data(client)
    a = d["a"]
    r = client.get(f"Patient/{a['id']}/$everything?_type=Observation,Practitioner")
    assert r.status == 200, r
    prac, obs1, obs2 = d["everything_a"][1], d["everything_a"][4], d["everything_a"][5]
    assert keys(r.json) == [key(prac), key(obs1), key(obs2)]
    assert r.json["link"][0]["url"].endswith("$everything?_type=Observation,Practitioner")
    # _since: only what was updated at or after the instant
    updated = client.put(key(obs2), {**obs2, "status": "amended"})
    assert updated.status == 200, updated
    since = updated.json["meta"]["lastUpdated"]
    r = client.get(f"Patient/{a['id']}/$everything?_since={since}")
    assert r.status == 200, r
    assert keys(r.json) == [key(obs2)]
    assert r.json["entry"][0]["resource"]["status"] == "amended"
    r = client.get(f"Patient/{a['id']}/$everything?_since=2999-01-01T00:00:00Z")
    assert r.status == 200 and "entry" not in r.json
    # POST with a Parameters body
    r = client.post(f"Patient/{a['id']}/$everything",
                    {"resourceType": "Parameters",
                     "parameter": [{"name": "_type", "valueString": "Encounter,Condition"}]})
    assert r.status == 200, r
    assert sorted(keys(r.json)) == sorted(key(x) for x in d["everything_a"]
                                          if x["resourceType"] in ("Encounter", "Condition"))


def test_paging_sees_each_resource_once_while_data_changes(client):
    d = make_data(client)
    a = d["a"]
    r = client.get(f"Patient/{a['id']}/$everything?_count=2")
    assert r.status == 200, r
    first = keys(r.json)
    assert len(first) == 2
    # a resource created after the first page comes on a later page
    late = create(client, observation(subject=ref(a), status="preliminary"))
    pages = [first] + all_pages(client, next_link(r.json))
    assert all(len(p) <= 2 for p in pages), pages
    seen = [k for p in pages for k in p]
    assert len(seen) == len(set(seen)), seen
    assert set(seen) == {key(x) for x in d["everything_a"]} | {key(late)}
    assert len(pages) == 5
    # the next link keeps the parameters
    assert "_count=2" in next_link(r.json) and "_page=" in next_link(r.json)


def test_errors(client):
    before = client.last_change()
    assert_outcome(client.get("Patient/nobody/$everything"), 404, "not-found",
                   "Patient/nobody is not known")
    pid = create(client, patient())["id"]
    assert client.delete(f"Patient/{pid}").status == 204
    assert_outcome(client.get(f"Patient/{pid}/$everything"), 410, "deleted")
    pid = create(client, patient())["id"]
    assert_outcome(client.get(f"Patient/{pid}/$everything?_type=Observation,Nothing"), 400,
                   "invalid", '_type: "Nothing" is not a FHIR R4 resource type', "_type")
    assert_outcome(client.get(f"Patient/{pid}/$everything?_since=yesterday"), 400, "invalid",
                   "_since must be an instant")
    assert_outcome(client.get(f"Patient/{pid}/$everything?_count=0"), 400, "invalid",
                   "_count must be a positive integer")
    assert_outcome(client.get(f"Patient/{pid}/$everything?_page=xyz"), 400, "invalid",
                   "is not one this server made")
    assert_outcome(client.post(f"Patient/{pid}/$everything", {"resourceType": "Parameters",
                                                              "parameter": [{"name": "start",
                                                                             "valueDate": "2020"}]}),
                   400, "invalid", 'no parameter "start"')
    assert_outcome(client.delete(f"Patient/{pid}/$everything"), 405, "not-supported")
    assert_outcome(client.get(f"Observation/{pid}/$everything"), 404, "not-found")


def test_type_level_everything_pages_through_every_patient(make_server):
    srv = make_server()
    client = srv.client
    d = make_data(client)
    expected = {key(x) for x in d["everything_a"] + d["everything_b"]}
    for count in (1, 3, 50):
        pages = all_pages(client, f"Patient/$everything?_count={count}")
        seen = [k for p in pages for k in p]
        assert len(seen) == len(set(seen)), seen
        # the Organization nobody refers to is not in anybody's everything
        assert set(seen) == expected, set(seen) ^ expected
        assert all(len(p) <= count for p in pages)
    r = client.get("Patient/$everything?_type=Patient")
    assert sorted(keys(r.json)) == sorted([key(d["a"]), key(d["b"])])


def test_capability_statement_lists_everything(client):
    cs = client.get("metadata").json
    patient_entry = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"} \
        in patient_entry["operation"]
