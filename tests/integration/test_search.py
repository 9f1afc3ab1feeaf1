"""Search over HTTP: every parameter type, modifiers and prefixes, dates with precision and
zones, missing values, unicode, references (versions, absolute urls), chains, _has, _include
and _revinclude, _sort, paging while writes happen, strict and lenient handling, compartments,
POST _search and searches of all types.

Each test writes its own resources with a tag of its own (meta.tag urn:concerto:test|NAME)
and restricts its searches with _tag, so the tests of this file share one server without
seeing each other's data. Expected results are worked out by hand from the resources.
"""
import urllib.parse
from decimal import Decimal

from conftest import assert_outcome, run_cli, sqlite_only

TAG_SYSTEM = "urn:concerto:test"


def tagged(name, resource):
    r = dict(resource)
    r["meta"] = {"tag": [{"system": TAG_SYSTEM, "code": name}]}
    return r


def put(client, resource):
    r = client.put(f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), r
    return r.json


def encode(pairs):
    return urllib.parse.urlencode(pairs, safe=":|,/$*", quote_via=urllib.parse.quote)


def bundle(client, path, pairs=(), tag=None, status=200, headers=None):
    pairs = list(pairs)
    if tag:
        pairs.append(("_tag", f"{TAG_SYSTEM}|{tag}"))
    url = path + ("?" + encode(pairs) if pairs else "")
    r = client.get(url, headers=headers)
    assert r.status == status, r
    b = r.json
    assert b["resourceType"] == "Bundle" and b["type"] == "searchset", b
    return b


def matches(b):
    return [e["resource"]["resourceType"] + "/" + e["resource"]["id"]
            for e in b.get("entry", []) if e["search"]["mode"] == "match"]


def included(b):
    return sorted(e["resource"]["resourceType"] + "/" + e["resource"]["id"]
                  for e in b.get("entry", []) if e["search"]["mode"] == "include")


def ids(client, path, pairs=(), tag=None, **kw):
    return [m.split("/", 1)[1] for m in matches(bundle(client, path, pairs, tag, **kw))]


def idset(client, path, pairs=(), tag=None):
    return sorted(ids(client, path, pairs, tag))


def link(b, relation):
    urls = [link["url"] for link in b.get("link", []) if link["relation"] == relation]
    return urls[0] if urls else None


def name_patient(pid, family, given, tag, **extra):
    p = {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": given}]}
    p.update(extra)
    return tagged(tag, p)


# ---- strings ---------------------------------------------------------------------------------

def test_strings_default_exact_contains_and_unicode(client):
    t = "strings"
    put(client, name_patient("s-1", "Müller", ["José"], t))
    put(client, name_patient("s-2", "Muller", ["Jose"], t))
    put(client, name_patient("s-3", "Mueller", ["Anna"], t))
    put(client, name_patient("s-4", "Straße", ["Zoë"], t, address=[{"city": "Köln"}]))
    assert idset(client, "Patient", [("family", "muller")], t) == ["s-1", "s-2"]
    assert idset(client, "Patient", [("family", "MÜLLER")], t) == ["s-1", "s-2"]
    assert idset(client, "Patient", [("family", "Mu\u0308ller")], t) == ["s-1", "s-2"]
    assert idset(client, "Patient", [("family", "mu")], t) == ["s-1", "s-2", "s-3"]
    assert idset(client, "Patient", [("family:exact", "Müller")], t) == ["s-1"]
    assert idset(client, "Patient", [("family:exact", "müller")], t) == []
    assert idset(client, "Patient", [("family:contains", "ulle")], t) == ["s-1", "s-2"]
    assert idset(client, "Patient", [("family:contains", "ELL")], t) == ["s-3"]
    assert idset(client, "Patient", [("family", "strasse")], t) == ["s-4"]
    assert idset(client, "Patient", [("given", "jose")], t) == ["s-1", "s-2"]
    assert idset(client, "Patient", [("given:exact", "José")], t) == ["s-1"]
    assert idset(client, "Patient", [("name", "zoe")], t) == ["s-4"]
    assert idset(client, "Patient", [("address-city", "koln")], t) == ["s-4"]
    assert idset(client, "Patient", [("address", "KÖ")], t) == ["s-4"]
    # comma: OR; repeated: AND
    assert idset(client, "Patient", [("family", "straße,mueller")], t) == ["s-3", "s-4"]
    assert idset(client, "Patient", [("family", "mu"), ("given", "anna")], t) == ["s-3"]
    # an escaped comma is part of the value
    assert idset(client, "Patient", [("family", "muller\\,x")], t) == []


# ---- tokens ----------------------------------------------------------------------------------

def test_tokens_systems_not_text_and_of_type(client):
    t = "tokens"
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
          "text": "Medical record number"}
    put(client, tagged(t, {"resourceType": "Patient", "id": "t-1", "active": True,
                           "gender": "female",
                           "identifier": [{"type": mr, "system": "urn:mrn", "value": "A1"}],
                           "telecom": [{"system": "email", "value": "a@example.org"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "t-2", "active": False,
                           "gender": "male",
                           "identifier": [{"system": "urn:other", "value": "A1"},
                                          {"value": "B2"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "t-3", "gender": "unknown"}))
    assert idset(client, "Patient", [("identifier", "A1")], t) == ["t-1", "t-2"]
    assert idset(client, "Patient", [("identifier", "urn:mrn|A1")], t) == ["t-1"]
    assert idset(client, "Patient", [("identifier", "urn:other|")], t) == ["t-2"]
    assert idset(client, "Patient", [("identifier", "|B2")], t) == ["t-2"]
    assert idset(client, "Patient", [("identifier", "|A1")], t) == []
    assert idset(client, "Patient", [("identifier:of-type",
                                      "http://terminology.hl7.org/CodeSystem/v2-0203|MR|A1")],
                 t) == ["t-1"]
    assert idset(client, "Patient", [("identifier:text", "medical")], t) == ["t-1"]
    assert idset(client, "Patient", [("gender", "female")], t) == ["t-1"]
    assert idset(client, "Patient", [("gender", "http://hl7.org/fhir/administrative-gender|male")],
                 t) == ["t-2"]
    assert idset(client, "Patient", [("gender", "female,male")], t) == ["t-1", "t-2"]
    # :not also keeps resources that have no value at all
    assert idset(client, "Patient", [("gender:not", "female")], t) == ["t-2", "t-3"]
    assert idset(client, "Patient", [("active", "true")], t) == ["t-1"]
    assert idset(client, "Patient", [("active", "false")], t) == ["t-2"]
    assert idset(client, "Patient", [("active:missing", "true")], t) == ["t-3"]
    assert idset(client, "Patient", [("email", "a@example.org")], t) == ["t-1"]
    assert idset(client, "Patient", [("_id", "t-1,t-3")], t) == ["t-1", "t-3"]
    assert idset(client, "Patient", [("_id:not", "t-1")], t) == ["t-2", "t-3"]


# ---- dates -------------------------------------------------------------------------------

def obs(oid, tag, **extra):
    o = {"resourceType": "Observation", "id": oid, "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}}
    o.update(extra)
    return tagged(tag, o)


def test_dates_precision_zones_and_prefixes(client):
    t = "dates"
    put(client, obs("d-a", t, effectiveDateTime="2024-03-10T23:30:00-05:00"))  # 03-11T04:30Z
    put(client, obs("d-b", t, effectiveDateTime="2024-03-10"))
    put(client, obs("d-c", t, effectiveDateTime="2024-03"))
    put(client, obs("d-p", t, effectivePeriod={"start": "2024-04-01T00:00:00Z"}))
    put(client, obs("d-n", t))
    q = lambda v: idset(client, "Observation", [("date", v)], t)  # noqa: E731
    assert q("2024-03-10") == ["d-b"]
    assert q("2024-03-11") == ["d-a"]
    assert q("2024-03") == ["d-a", "d-b", "d-c"]
    assert q("2024") == ["d-a", "d-b", "d-c"]  # the open period reaches past 2024
    assert q("2024-03-10T23:30:00-05:00") == ["d-a"]
    assert q("2024-03-11T04:30:00Z") == ["d-a"]
    assert q("2024-03-11T04:30Z") == ["d-a"]
    assert q("2024-03-11T05:30:00+01:00") == ["d-a"]
    assert q("ge2024-03-11") == ["d-a", "d-c", "d-p"]
    assert q("gt2024-03-11") == ["d-c", "d-p"]
    assert q("lt2024-03-10") == ["d-c"]
    assert q("le2024-03-10") == ["d-b", "d-c"]
    assert q("sa2024-03-10") == ["d-a", "d-p"]
    assert q("eb2024-03-11") == ["d-b"]
    assert q("ne2024-03") == ["d-p"]
    assert q("ge2030") == ["d-p"]
    assert idset(client, "Observation", [("date", "ge2024-03-10"), ("date", "lt2024-03-11")],
                 t) == ["d-b", "d-c"]
    assert idset(client, "Observation", [("date:missing", "true")], t) == ["d-n"]
    # an unencoded + in a zone arrives as a space and is still read as +
    r = client.get("Observation?date=2024-03-11T05:30:00+01:00&_tag=" + TAG_SYSTEM + "|" + t)
    assert sorted(matches(r.json)) == ["Observation/d-a"]
    # birthdate: a date alone
    put(client, tagged(t, {"resourceType": "Patient", "id": "d-p1", "birthDate": "1970-06"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "d-p2", "birthDate": "1970-06-15"}))
    assert idset(client, "Patient", [("birthdate", "1970-06")], t) == ["d-p1", "d-p2"]
    assert idset(client, "Patient", [("birthdate", "1970-06-15")], t) == ["d-p2"]
    assert idset(client, "Patient", [("birthdate", "ap1970-06-15")], t) == ["d-p1", "d-p2"]


# ---- numbers and quantities ----------------------------------------------------------------

def test_numbers_and_quantities(client):
    t = "numbers"
    put(client, obs("n-kg", t, valueQuantity={"value": Decimal("72.50"), "unit": "kg",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "kg"}))
    put(client, obs("n-cm", t, valueQuantity={"value": 180, "unit": "cm",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "cm"}))
    put(client, obs("n-lt", t, valueQuantity={"value": 5, "comparator": "<", "unit": "mg/dL"}))
    q = lambda v: idset(client, "Observation", [("value-quantity", v)], t)  # noqa: E731
    assert q("72.5") == ["n-kg"]
    assert q("72.50") == ["n-kg"]
    assert q("72") == []  # [71.5, 72.5) does not hold 72.50
    assert q("72.5|http://unitsofmeasure.org|kg") == ["n-kg"]
    assert q("72.5||kg") == ["n-kg"]
    assert q("72.5||g") == []
    assert q("gt100") == ["n-cm"]
    assert q("ge72.5") == ["n-cm", "n-kg"]
    assert q("lt100") == ["n-kg", "n-lt"]
    assert q("le4") == ["n-lt"]  # "< 5" reaches below 4
    assert q("ap75") == ["n-kg"]
    assert q("5||mg/dL") == []  # "< 5" is not 5
    assert q("lt5||mg/dL") == ["n-lt"]
    put(client, tagged(t, {"resourceType": "RiskAssessment", "id": "n-r", "status": "final",
                           "subject": {"reference": "Patient/n-nobody"},
                           "prediction": [{"probabilityDecimal": Decimal("0.25")}]}))
    assert idset(client, "RiskAssessment", [("probability", "0.25")], t) == ["n-r"]
    assert idset(client, "RiskAssessment", [("probability", "gt0.2")], t) == ["n-r"]
    assert idset(client, "RiskAssessment", [("probability", "lt0.2")], t) == []
    assert idset(client, "RiskAssessment", [("probability", "0.2")], t) == []  # [0.15, 0.25)
    assert idset(client, "RiskAssessment", [("probability", "0.3")], t) == ["n-r"]  # [0.25, 0.35)
    assert idset(client, "RiskAssessment", [("probability", "0.4")], t) == []


# ---- references, chains, _has --------------------------------------------------------------

def test_references_versions_absolute_and_identifiers(client):
    t = "refs"
    put(client, tagged(t, {"resourceType": "Patient", "id": "r-x"}))
    put(client, obs("r-rel", t, subject={"reference": "Patient/r-x"}))
    put(client, obs("r-ver", t, subject={"reference": "Patient/r-x/_history/1"}))
    put(client, obs("r-abs", t, subject={"reference": "http://other.example/fhir/Patient/r-x"}))
    put(client, obs("r-own", t, subject={"reference": f"{client.base}/Patient/r-x"}))
    put(client, obs("r-idf", t, subject={"identifier": {"system": "urn:mrn", "value": "9"}}))
    put(client, obs("r-con", t, contained=[{"resourceType": "Patient", "id": "c"}],
                    subject={"reference": "#c"}))
    q = lambda v, name="subject": idset(client, "Observation", [(name, v)], t)  # noqa: E731
    assert q("Patient/r-x") == ["r-own", "r-rel", "r-ver"]
    assert q("r-x") == ["r-own", "r-rel", "r-ver"]  # an absolute url of this server is local
    assert q("Patient/r-x", "patient") == ["r-own", "r-rel", "r-ver"]
    assert q("r-x", "subject:Patient") == ["r-own", "r-rel", "r-ver"]
    assert q("Patient/r-x/_history/1") == ["r-ver"]
    assert q("Patient/r-x/_history/2") == []
    assert q(f"{client.base}/Patient/r-x") == ["r-own", "r-rel", "r-ver"]
    assert q("http://other.example/fhir/Patient/r-x") == ["r-abs"]
    assert q("urn:mrn|9", "subject:identifier") == ["r-idf"]
    assert q("9", "subject:identifier") == ["r-idf"]
    # a contained reference is not indexed: the subject counts as missing
    assert q("true", "subject:missing") == ["r-con"]
    assert q("Group/r-x") == []


def test_chains_and_has(client):
    t = "chains"
    put(client, tagged(t, {"resourceType": "Practitioner", "id": "c-dr",
                           "name": [{"family": "Dolittle"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "c-p1",
                           "name": [{"family": "Amsel"}],
                           "generalPractitioner": [{"reference": "Practitioner/c-dr"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "c-p2",
                           "name": [{"family": "Drossel"}]}))
    put(client, tagged(t, {"resourceType": "Location", "id": "c-loc", "name": "Amsel Clinic"}))
    put(client, obs("c-o1", t, subject={"reference": "Patient/c-p1"}, status="final"))
    put(client, obs("c-o2", t, subject={"reference": "Patient/c-p2"}, status="amended"))
    put(client, obs("c-o3", t, subject={"reference": "Location/c-loc"}))
    q = lambda name, v: idset(client, "Observation", [(name, v)], t)  # noqa: E731
    assert q("subject:Patient.name", "amsel") == ["c-o1"]
    assert q("subject:Patient.family", "dross") == ["c-o2"]
    # without a type: every target type on which the rest of the chain is valid
    assert q("subject.name", "amsel") == ["c-o1", "c-o3"]
    assert q("patient.general-practitioner.name", "dolittle") == ["c-o1"]
    assert q("subject:Patient.general-practitioner:Practitioner.family", "doli") == ["c-o1"]
    p = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    assert p("_has:Observation:patient:status", "amended") == ["c-p2"]
    assert p("_has:Observation:subject:status", "final") == ["c-p1"]
    assert p("_has:Observation:subject:code", "http://loinc.org|29463-7") == ["c-p1", "c-p2"]
    assert idset(client, "Practitioner",
                 [("_has:Patient:general-practitioner:_has:Observation:patient:status",
                   "final")], t) == ["c-dr"]
    # a chain that finds the target after an update of the target
    put(client, tagged(t, {"resourceType": "Patient", "id": "c-p2",
                           "name": [{"family": "Fink"}]}))
    assert q("subject:Patient.name", "dross") == []
    assert q("subject:Patient.name", "fink") == ["c-o2"]


# ---- includes ------------------------------------------------------------------------------

def test_include_and_revinclude(client):
    t = "includes"
    put(client, tagged(t, {"resourceType": "Organization", "id": "i-org", "name": "Clinic"}))
    put(client, tagged(t, {"resourceType": "Practitioner", "id": "i-dr"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "i-p",
                           "managingOrganization": {"reference": "Organization/i-org"},
                           "generalPractitioner": [{"reference": "Practitioner/i-dr"}]}))
    put(client, obs("i-o1", t, subject={"reference": "Patient/i-p"}))
    put(client, obs("i-o2", t, subject={"reference": "Patient/i-p"},
                    performer=[{"reference": "Practitioner/i-dr"}]))
    b = bundle(client, "Observation", [("_include", "Observation:subject")], t)
    assert sorted(matches(b)) == ["Observation/i-o1", "Observation/i-o2"]
    assert included(b) == ["Patient/i-p"]  # once, though both refer to it
    for e in b["entry"]:
        rt, rid = e["resource"]["resourceType"], e["resource"]["id"]
        assert e["fullUrl"] == f"{client.base}/{rt}/{rid}"
    b = bundle(client, "Observation", [("_include", "Observation:*")], t)
    assert included(b) == ["Patient/i-p", "Practitioner/i-dr"]
    b = bundle(client, "Observation", [("_include", "Observation:performer:Practitioner")], t)
    assert included(b) == ["Practitioner/i-dr"]
    b = bundle(client, "Observation", [("_include", "Observation:subject"),
                                       ("_include:iterate", "Patient:organization")], t)
    assert included(b) == ["Organization/i-org", "Patient/i-p"]
    b = bundle(client, "Patient", [("_revinclude", "Observation:subject")], t)
    assert matches(b) == ["Patient/i-p"]
    assert included(b) == ["Observation/i-o1", "Observation/i-o2"]
    b = bundle(client, "Practitioner", [("_revinclude", "Observation:performer"),
                                        ("_revinclude", "Patient:general-practitioner")], t)
    assert included(b) == ["Observation/i-o2", "Patient/i-p"]
    # included resources are not counted in the total
    b = bundle(client, "Observation", [("_include", "Observation:subject"),
                                       ("_total", "accurate")], t)
    assert b["total"] == 2


# ---- sorting and paging ------------------------------------------------------------------

def test_sort_keys_directions_and_missing_values(client):
    t = "sort"
    put(client, name_patient("o-1", "Berg", ["X"], t, birthDate="1990-05-01", gender="male"))
    put(client, name_patient("o-2", "Aal", ["Y"], t, birthDate="1985", gender="female"))
    put(client, name_patient("o-3", "Cohn", ["Z"], t, gender="female"))
    put(client, name_patient("o-4", "Aal", ["W"], t, birthDate="2001-01-01", gender="male"))
    s = lambda v: ids(client, "Patient", [("_sort", v)], t)  # noqa: E731
    assert s("birthdate") == ["o-2", "o-1", "o-4", "o-3"]  # missing last
    assert s("-birthdate") == ["o-4", "o-1", "o-2", "o-3"]  # missing last again
    assert s("family,-birthdate") == ["o-4", "o-2", "o-1", "o-3"]
    assert s("gender,family") == ["o-2", "o-3", "o-4", "o-1"]
    assert s("-_id") == ["o-4", "o-3", "o-2", "o-1"]
    assert s("_lastUpdated") == ["o-1", "o-2", "o-3", "o-4"]
    # given holds several values per patient: the lowest sorts ascending
    put(client, name_patient("o-5", "Dorn", ["A", "Zz"], t))
    assert ids(client, "Patient", [("_sort", "given"), ("family", "dorn,berg")], t) == \
        ["o-5", "o-1"]
    assert ids(client, "Patient", [("_sort", "-given"), ("family", "dorn,berg")], t) == \
        ["o-5", "o-1"]


def walk(client, first_url):
    """The pages from first_url following next links, and the link of the last page."""
    pages = []
    r = client.get(first_url)
    while True:
        assert r.status == 200, r
        pages.append(r.json)
        nxt = link(r.json, "next")
        if not nxt:
            return pages
        r = client.get(nxt)


def test_paging_forward_backward_and_while_writing(client):
    t = "paging"
    for i in range(7):
        put(client, name_patient(f"g-{i}", f"Fam{i}", ["P"], t, birthDate=f"19{50 + i}"))
    base_q = "Patient?" + encode([("_tag", f"{TAG_SYSTEM}|{t}"), ("_count", "3"),
                                  ("_sort", "-birthdate")])
    pages = walk(client, base_q)
    assert [matches(p) for p in pages] == [
        ["Patient/g-6", "Patient/g-5", "Patient/g-4"],
        ["Patient/g-3", "Patient/g-2", "Patient/g-1"],
        ["Patient/g-0"]]
    assert link(pages[0], "previous") is None
    # back from the last page
    r = client.get(link(pages[2], "previous"))
    assert matches(r.json) == ["Patient/g-3", "Patient/g-2", "Patient/g-1"]
    r = client.get(link(r.json, "previous"))
    assert matches(r.json) == ["Patient/g-6", "Patient/g-5", "Patient/g-4"]
    assert link(r.json, "previous") is None

    # writes between pages: what comes before the cursor does not shift what comes after
    first = client.get(base_q).json
    assert matches(first) == ["Patient/g-6", "Patient/g-5", "Patient/g-4"]
    put(client, name_patient("g-new-first", "New", ["P"], t, birthDate="1999"))
    put(client, name_patient("g-new-mid", "New", ["P"], t, birthDate="1952-06"))
    assert client.delete("Patient/g-5").status == 204
    assert client.delete("Patient/g-1").status == 204
    second = client.get(link(first, "next")).json
    assert matches(second) == ["Patient/g-3", "Patient/g-new-mid", "Patient/g-2"]
    third = client.get(link(second, "next")).json
    assert matches(third) == ["Patient/g-0"]
    assert link(third, "next") is None

    # default order: creation, so new resources come on later pages
    pages = walk(client, "Patient?" + encode([("_tag", f"{TAG_SYSTEM}|{t}"), ("_count", "4")]))
    seen = [m for p in pages for m in matches(p)]
    assert len(seen) == len(set(seen)) == 7
    # the links keep the query and carry a cursor
    nxt = link(pages[0], "next")
    assert nxt.startswith(f"{client.base}/Patient?")
    assert "_count=4" in nxt and "_page=" in nxt


def test_paging_cursor_errors_and_offset(client):
    t = "offset"
    for i in range(3):
        put(client, name_patient(f"f-{i}", "Off", ["P"], t))
    assert ids(client, "Patient", [("_offset", "1"), ("_count", "1")], t) == ["f-1"]
    b = bundle(client, "Patient", [("_offset", "1"), ("_count", "1")], t)
    assert "_offset" not in link(b, "next")
    assert ids(client, "Patient", [("_count", "0")], t) == []
    r = client.get("Patient?_page=zz&_count=2")
    assert_outcome(r, 400, "invalid", "paging cursor")


def test_total_and_summary_count(client):
    t = "total"
    for i in range(5):
        put(client, name_patient(f"x-{i}", "Tot", ["P"], t, gender="male" if i % 2 else "female"))
    b = bundle(client, "Patient", [("_total", "accurate"), ("_count", "2")], t)
    assert b["total"] == 5 and len(b["entry"]) == 2
    b = bundle(client, "Patient", [("gender", "female"), ("_summary", "count")], t)
    assert b["total"] == 3
    assert not b.get("entry")
    b = bundle(client, "Patient", [], t)
    assert "total" not in b


# ---- handling ------------------------------------------------------------------------------

def test_lenient_lists_what_it_ignored_and_strict_refuses(client):
    t = "handling"
    put(client, name_patient("h-1", "Lenient", ["P"], t))
    b = bundle(client, "Patient", [("foo", "bar"), ("birthdate", "2024-13"),
                                   ("family", "lenient")], t)
    assert matches(b) == ["Patient/h-1"]
    outcome = [e for e in b["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    issues = outcome[0]["resource"]["issue"]
    assert [i["expression"] for i in issues] == [["foo"], ["birthdate"]]
    assert 'unknown search parameter "foo" for Patient' in issues[0]["diagnostics"]
    assert '"2024-13" is not a valid date for birthdate' in issues[1]["diagnostics"]
    # the self link shows what was applied only
    assert "foo" not in link(b, "self") and "family=lenient" in link(b, "self")
    # a terminology modifier cannot run here: ignored when lenient, refused when strict
    b = bundle(client, "Patient", [("gender:in", "http://example.org/vs"),
                                   ("family", "lenient")], t)
    assert matches(b) == ["Patient/h-1"]
    b = bundle(client, "Patient", [("_contained", "sometimes"), ("family", "lenient")], t)
    assert matches(b) == ["Patient/h-1"]
    issues = [e for e in b["entry"] if e["search"]["mode"] == "outcome"][0]["resource"]["issue"]
    assert issues[0]["expression"] == ["_contained"]
    r = client.get("Patient?foo=bar&family=x", headers={"Prefer": "handling=strict"})
    assert_outcome(r, 400, "invalid", 'unknown search parameter "foo"')
    r = client.get("Patient?gender:in=http://example.org/vs",
                   headers={"Prefer": "handling=strict"})
    assert_outcome(r, 400, "invalid", ":in")
    r = client.get("Patient?family=lenient", headers={"Prefer": "handling=strict"})
    assert r.status == 200


# ---- other forms -------------------------------------------------------------------------

def test_summary_and_elements_trim_the_resources(client):
    t = "subset"
    put(client, name_patient("e-1", "Subset", ["P"], t, gender="male", birthDate="1990",
                             text={"status": "generated",
                                   "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
                             maritalStatus={"text": "single"}))
    put(client, obs("e-o", t, subject={"reference": "Patient/e-1"}))

    def only(pairs):
        b = bundle(client, "Patient", pairs, t)
        assert matches(b) == ["Patient/e-1"], b
        return [e["resource"] for e in b["entry"] if e["search"]["mode"] == "match"][0]

    def subsetted(r):
        return {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"} in r["meta"].get("tag", [])

    r = only([("_summary", "true")])
    assert "name" in r and "gender" in r and "text" not in r and "maritalStatus" not in r
    assert subsetted(r) and r["meta"]["versionId"] == "1"
    r = only([("_summary", "text")])
    assert sorted(r) == ["id", "meta", "resourceType", "text"]
    r = only([("_summary", "data")])
    assert "text" not in r and "maritalStatus" in r and subsetted(r)
    r = only([("_summary", "false")])
    assert "text" in r and not subsetted(r)
    r = only([("_elements", "birthDate,gender")])
    assert sorted(r) == ["birthDate", "gender", "id", "meta", "resourceType"]
    # _elements trims the matches only; _summary everything
    b = bundle(client, "Observation", [("_elements", "status"),
                                       ("_include", "Observation:subject")], t)
    inc = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "include"][0]
    assert "name" in inc and not subsetted(inc)
    mat = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "match"][0]
    assert sorted(mat) == ["id", "meta", "resourceType", "status"]


def test_post_search_and_searches_of_all_types(client):
    t = "forms"
    put(client, name_patient("w-1", "Formal", ["P"], t))
    put(client, obs("w-o", t, subject={"reference": "Patient/w-1"}))
    body = encode([("family", "formal"), ("_tag", f"{TAG_SYSTEM}|{t}")])
    r = client.post("Patient/_search", body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    assert matches(r.json) == ["Patient/w-1"]
    assert link(r.json, "self").startswith(f"{client.base}/Patient?")
    r = client.post("Patient/_search", "{}", headers={"Content-Type": "application/fhir+json"})
    assert_outcome(r, 415, "not-supported")
    # all types, and some types
    assert sorted(matches(bundle(client, "/fhir", [], t))) == ["Observation/w-o",
                                                               "Patient/w-1"]
    b = bundle(client, "/fhir", [("_type", "Observation")], t)
    assert matches(b) == ["Observation/w-o"]
    assert "_type=Observation" in link(b, "self")
    # what is set aside in a search of some types is the pair that asked for it
    b = bundle(client, "/fhir", [("_type", "Patient"), ("gender:in", "http://example.org/vs"),
                                 ("family", "formal")], t)
    assert matches(b) == ["Patient/w-1"]
    issues = [e for e in b["entry"] if e["search"]["mode"] == "outcome"][0]["resource"]["issue"]
    assert [i["expression"] for i in issues] == [["gender:in"]]
    assert "family=formal" in link(b, "self") and "gender" not in link(b, "self")
    r = client.post("_search", encode([("_tag", f"{TAG_SYSTEM}|{t}"), ("_type", "Patient")]),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and matches(r.json) == ["Patient/w-1"]


def test_patient_compartment(client):
    t = "compartment"
    put(client, tagged(t, {"resourceType": "Patient", "id": "k-1"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "k-2",
                           "link": [{"other": {"reference": "Patient/k-1"}, "type": "seealso"}]}))
    put(client, obs("k-o1", t, subject={"reference": "Patient/k-1"}))
    put(client, obs("k-o2", t, subject={"reference": "Patient/k-2"},
                    performer=[{"reference": "Patient/k-1"}]))
    put(client, obs("k-o3", t, subject={"reference": "Patient/k-2"}))
    put(client, tagged(t, {"resourceType": "Encounter", "id": "k-e", "status": "finished",
                           "class": {"code": "AMB"}, "subject": {"reference": "Patient/k-1"}}))
    assert idset(client, "Patient/k-1/Observation", [], t) == ["k-o1", "k-o2"]
    assert idset(client, "Patient/k-1/Observation", [("_id", "k-o2")], t) == ["k-o2"]
    assert idset(client, "Patient/k-1/Encounter", [], t) == ["k-e"]
    assert idset(client, "Patient/k-1/Patient", [], t) == ["k-1", "k-2"]
    b = bundle(client, "Patient/k-1/Observation", [("_count", "1")], t)
    assert link(b, "self").startswith(f"{client.base}/Patient/k-1/Observation?")
    assert link(b, "next").startswith(f"{client.base}/Patient/k-1/Observation?")
    r = client.get("Patient/k-1/Organization")
    assert_outcome(r, 400, "invalid", "not in the Patient compartment")


def test_index_follows_updates_and_deletes(client):
    t = "lifecycle"
    put(client, name_patient("l-1", "Before", ["P"], t))
    assert idset(client, "Patient", [("family", "before")], t) == ["l-1"]
    put(client, name_patient("l-1", "After", ["P"], t))
    assert idset(client, "Patient", [("family", "before")], t) == []
    assert idset(client, "Patient", [("family", "after")], t) == ["l-1"]
    assert client.delete("Patient/l-1").status == 204
    assert idset(client, "Patient", [("family", "after")], t) == []
    assert idset(client, "Patient", [("_id", "l-1")], t) == []
    put(client, name_patient("l-1", "Again", ["P"], t))
    assert idset(client, "Patient", [("family", "again")], t) == ["l-1"]


def test_meta_parameters(client):
    t = "meta"
    p = tagged(t, {"resourceType": "Patient", "id": "m-1"})
    p["meta"]["profile"] = ["http://example.org/StructureDefinition/care-patient|2.0"]
    p["meta"]["security"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                              "code": "R"}]
    p["meta"]["source"] = "http://feeds.example.org/adt"
    put(client, p)
    put(client, tagged(t, {"resourceType": "Patient", "id": "m-2"}))
    q = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    assert q("_profile", "http://example.org/StructureDefinition/care-patient") == ["m-1"]
    assert q("_profile", "http://example.org/StructureDefinition/care-patient|2.0") == ["m-1"]
    assert q("_profile:below", "http://example.org/StructureDefinition/") == ["m-1"]
    assert q("_security", "R") == ["m-1"]
    assert q("_security:not", "R") == ["m-2"]
    assert q("_source", "http://feeds.example.org/adt") == ["m-1"]
    assert q("_profile:missing", "true") == ["m-2"]
    assert idset(client, "Patient", [("_tag", f"{TAG_SYSTEM}|{t}"), ("_tag", "other")]) == []


def test_patches_and_transactions_are_indexed(client):
    import json
    t = "written"
    put(client, name_patient("wr-1", "Patchy", ["P"], t))
    ops = [{"op": "replace", "path": "/name/0/family", "value": "Patched"}]
    r = client.request("PATCH", "Patient/wr-1", json.dumps(ops).encode(),
                       headers={"Content-Type": "application/json-patch+json"})
    assert r.status == 200, r
    assert idset(client, "Patient", [("family", "patchy")], t) == []
    assert idset(client, "Patient", [("family", "patched")], t) == ["wr-1"]
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0f8f4b9e-2b5e-4d4c-9a0e-7a1c2d3e4f50",
         "resource": name_patient("ignored", "Transacted", ["P"], t),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": obs("ignored", t, subject={
            "reference": "urn:uuid:0f8f4b9e-2b5e-4d4c-9a0e-7a1c2d3e4f50"}),
         "request": {"method": "POST", "url": "Observation"}}]}
    for e in tx["entry"]:
        e["resource"].pop("id")
    r = client.post("/fhir", tx)
    assert r.status == 200, r
    pid = idset(client, "Patient", [("family", "transacted")], t)
    assert len(pid) == 1
    # the reference was rewritten to Patient/id before the index was made
    assert len(idset(client, "Observation", [("subject", f"Patient/{pid[0]}")], t)) == 1
    assert len(idset(client, "Observation", [("subject:Patient.family", "transacted")], t)) == 1


def test_last_updated(client):
    t = "updated"
    before = put(client, name_patient("u-1", "Upd", ["P"], t))["meta"]["lastUpdated"]
    after = put(client, name_patient("u-2", "Upd", ["P"], t))["meta"]["lastUpdated"]
    assert idset(client, "Patient", [("_lastUpdated", f"gt{before}")], t) == ["u-2"]
    assert idset(client, "Patient", [("_lastUpdated", f"le{before}")], t) == ["u-1"]
    assert idset(client, "Patient", [("_lastUpdated", f"ge{before}"),
                                     ("_lastUpdated", f"le{after}")], t) == ["u-1", "u-2"]
    assert idset(client, "Patient", [("_lastUpdated", "lt2000")], t) == []


def test_capability_statement_lists_search(client):
    cs = client.get("metadata").json
    rest = cs["rest"][0]
    assert {"code": "search-system"} in rest.get("interaction", [])
    patient = [r for r in rest["resource"] if r["type"] == "Patient"][0]
    assert {"code": "search-type"} in patient["interaction"]
    params = {p["name"]: p for p in patient["searchParam"]}
    assert params["birthdate"]["type"] == "date"
    assert params["birthdate"]["definition"] == \
        "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    assert params["_id"]["type"] == "token"
    assert "Observation:subject" in [r for r in
                                     [x for x in rest["resource"] if x["type"] == "Observation"][0]
                                     ["searchInclude"]]
    assert "Observation:subject" in patient["searchRevInclude"]


@sqlite_only("empties the index tables of the database file directly")
def test_reindex_rebuilds_the_index(make_server):
    import sqlite3
    srv = make_server()
    c = srv.client
    put(c, name_patient("ri-1", "Reindexed", ["P"], "reindex", gender="female"))
    put(c, obs("ri-o", "reindex", subject={"reference": "Patient/ri-1"}))
    assert srv.stop() == 0
    db = sqlite3.connect(str(srv.db))
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name LIKE 'ix_%' AND name NOT LIKE 'ix_text_%'")]
    assert "ix_string" in tables and "ix_reference" in tables
    for table in tables:
        db.execute(f"DELETE FROM {table}")
    db.commit()
    db.close()
    srv.stopped_by_test = False
    srv.start()
    assert ids(c := srv.client, "Patient", [("family", "reindexed")]) == []
    assert srv.stop() == 0
    out = run_cli("reindex", "--db", str(srv.db))
    assert out.returncode == 0, out.stderr
    assert "2 resources reindexed" in out.stderr, out.stderr
    assert "concerto reindex: 2 of 2 resources" in out.stderr, out.stderr
    srv.stopped_by_test = False
    srv.start()
    c = srv.client
    assert ids(c, "Patient", [("family", "reindexed")]) == ["ri-1"]
    assert ids(c, "Observation", [("subject:Patient.gender", "female")]) == ["ri-o"]
    out = run_cli("reindex", "--db", str(srv.dir / "missing.db"))
    assert out.returncode == 1


def test_an_empty_result_has_no_entry_array(client):
    # FHIR JSON never has an empty array: a Bundle without entries has no "entry" at all
    put(client, {"resourceType": "Patient", "id": "lonely", "name": [{"family": "Lonely"}]})
    for url in ("Patient?family=nobody-has-this-name", "Patient?_summary=count",
                "Patient?family=Lonely&_count=0", "Basic/_history",
                "Patient?family=nobody-has-this-name&_total=accurate"):
        r = client.get(url)
        assert r.status == 200, (url, r)
        assert "entry" not in r.json, (url, r.json)
        assert b"[]" not in r.body, (url, r.body)
    r = client.get("Patient?_summary=count")
    assert r.json["total"] >= 1
