"""Token :in, :not-in, :above and :below against the ValueSets and CodeSystems stored on the
server: a CodeSystem with a three-level hierarchy (nested concepts and a parent property),
ValueSets by expansion, by concept list, by whole system, by filter, with exclude and nested
valueSet includes; Observations and Conditions coded in and out of them. Expected results
are worked out by hand from the resources below.

Hierarchy of http://example.org/cs/shape (nested concepts, except "tri-eq", whose parent is
given by a `parent` property):

    shape
      polygon
        tri, quad, tri-eq (parent tri)
      round
        circle, ellipse
"""
import urllib.parse

from conftest import assert_outcome

STRICT = {"Prefer": "handling=strict"}
SHAPE = "http://example.org/cs/shape"
OTHER = "http://example.org/cs/other"
TAG = "urn:concerto:test|terminology"

CODESYSTEM = {
    "resourceType": "CodeSystem", "id": "shape", "url": SHAPE, "status": "active",
    "content": "complete",
    "property": [{"code": "sides", "type": "integer"}, {"code": "parent", "type": "code"}],
    "concept": [{
        "code": "shape",
        "concept": [
            {"code": "polygon", "concept": [
                {"code": "tri", "property": [{"code": "sides", "valueInteger": 3}]},
                {"code": "quad", "property": [{"code": "sides", "valueInteger": 4}]},
            ]},
            {"code": "round", "concept": [{"code": "circle"}, {"code": "ellipse"}]},
        ],
    }, {
        "code": "tri-eq",
        "property": [{"code": "parent", "valueCode": "tri"},
                     {"code": "sides", "valueInteger": 3}],
    }],
}

VALUESETS = [
    # by expansion (nested contains)
    {"resourceType": "ValueSet", "id": "vs-expansion", "url": "http://example.org/vs/expansion",
     "status": "active",
     "expansion": {"timestamp": "2026-01-01T00:00:00Z", "contains": [
         {"system": SHAPE, "code": "circle"},
         {"system": OTHER, "code": "x", "contains": [{"system": SHAPE, "code": "quad"}]}]}},
    # by concept list
    {"resourceType": "ValueSet", "id": "vs-list", "url": "http://example.org/vs/list",
     "version": "1", "status": "active",
     "compose": {"include": [{"system": SHAPE, "concept": [{"code": "tri"}, {"code": "ellipse"}]}]}},
    # the whole system, without round and its descendants
    {"resourceType": "ValueSet", "id": "vs-all-but-round", "url": "http://example.org/vs/all-but-round",
     "status": "active",
     "compose": {"include": [{"system": SHAPE}],
                 "exclude": [{"system": SHAPE,
                              "filter": [{"property": "concept", "op": "is-a", "value": "round"}]}]}},
    # is-a polygon
    {"resourceType": "ValueSet", "id": "vs-polygon", "url": "http://example.org/vs/polygon",
     "status": "active",
     "compose": {"include": [{"system": SHAPE,
                              "filter": [{"property": "concept", "op": "is-a", "value": "polygon"}]}]}},
    # three sides (a property)
    {"resourceType": "ValueSet", "id": "vs-three", "url": "http://example.org/vs/three",
     "status": "active",
     "compose": {"include": [{"system": SHAPE,
                              "filter": [{"property": "sides", "op": "=", "value": "3"}]}]}},
    # nested: the list and the expansion, without circle
    {"resourceType": "ValueSet", "id": "vs-nested", "url": "http://example.org/vs/nested",
     "status": "active",
     "compose": {"include": [{"valueSet": ["http://example.org/vs/list"]},
                             {"valueSet": ["ValueSet/vs-expansion"]}],
                 "exclude": [{"system": SHAPE, "concept": [{"code": "circle"}]}]}},
    # a filter the server cannot compute
    {"resourceType": "ValueSet", "id": "vs-regex", "url": "http://example.org/vs/regex",
     "status": "active",
     "compose": {"include": [{"system": SHAPE,
                              "filter": [{"property": "concept", "op": "regex", "value": "t.*"}]}]}},
    # a system without a CodeSystem on the server
    {"resourceType": "ValueSet", "id": "vs-unknown-system", "url": "http://example.org/vs/unknown-system",
     "status": "active", "compose": {"include": [{"system": "http://example.org/cs/nowhere"}]}},
    # a cycle
    {"resourceType": "ValueSet", "id": "vs-cycle", "url": "http://example.org/vs/cycle",
     "status": "active", "compose": {"include": [{"valueSet": ["http://example.org/vs/cycle"]}]}},
]

# Observation id -> code (system, code), None: no code
OBSERVATIONS = {
    "o-shape": (SHAPE, "shape"), "o-polygon": (SHAPE, "polygon"), "o-tri": (SHAPE, "tri"),
    "o-quad": (SHAPE, "quad"), "o-tri-eq": (SHAPE, "tri-eq"), "o-round": (SHAPE, "round"),
    "o-circle": (SHAPE, "circle"), "o-ellipse": (SHAPE, "ellipse"), "o-x": (OTHER, "x"),
    "o-tri-other": (OTHER, "tri"), "o-none": None,
}


def load(client):
    r = client.put("CodeSystem/shape", CODESYSTEM)
    assert r.status in (200, 201), r
    for vs in VALUESETS:
        r = client.put(f"ValueSet/{vs['id']}", vs)
        assert r.status in (200, 201), r
    for oid, code in OBSERVATIONS.items():
        o = {"resourceType": "Observation", "id": oid, "status": "final",
             "meta": {"tag": [{"system": "urn:concerto:test", "code": "terminology"}]}}
        if code:
            o["code"] = {"coding": [{"system": code[0], "code": code[1]}]}
        else:
            o["code"] = {"text": "no code"}
        r = client.put(f"Observation/{oid}", o)
        assert r.status in (200, 201), r
    c = {"resourceType": "Condition", "id": "c-quad", "subject": {"reference": "Patient/p"},
         "code": {"coding": [{"system": SHAPE, "code": "quad"}]}}
    assert client.put("Condition/c-quad", c).status in (200, 201)


def search(client, name, value, headers=None, type_="Observation"):
    q = urllib.parse.urlencode([(name, value), ("_tag", TAG)] if type_ == "Observation"
                               else [(name, value)])
    return client.get(f"{type_}?{q}", headers=headers)


def ids(client, name, value, headers=None, type_="Observation"):
    r = search(client, name, value, headers, type_)
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


def ignored(r):
    assert r.status == 200, r
    outcome = [e for e in r.json.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcome, r.json
    return outcome[0]["resource"]["issue"][0]["diagnostics"]


ALL = sorted(OBSERVATIONS)


def test_in_by_expansion_list_system_filter_and_nesting(client):
    load(client)
    assert ids(client, "code:in", "http://example.org/vs/expansion") == ["o-circle", "o-quad", "o-x"]
    assert ids(client, "code:in", "http://example.org/vs/list") == ["o-ellipse", "o-tri"]
    assert ids(client, "code:in", "http://example.org/vs/list|1") == ["o-ellipse", "o-tri"]
    assert ids(client, "code:in", "ValueSet/vs-list") == ["o-ellipse", "o-tri"]
    assert ids(client, "code:in", "http://example.org/vs/all-but-round") == [
        "o-polygon", "o-quad", "o-shape", "o-tri", "o-tri-eq"]
    assert ids(client, "code:in", "http://example.org/vs/polygon") == [
        "o-polygon", "o-quad", "o-tri", "o-tri-eq"]
    assert ids(client, "code:in", "http://example.org/vs/three") == ["o-tri", "o-tri-eq"]
    assert ids(client, "code:in", "http://example.org/vs/nested") == [
        "o-ellipse", "o-quad", "o-tri", "o-x"]
    # OR of two ValueSets
    assert ids(client, "code:in", "http://example.org/vs/list,http://example.org/vs/three") == [
        "o-ellipse", "o-tri", "o-tri-eq"]
    # another resource type, and inside a chain
    assert ids(client, "code:in", "http://example.org/vs/polygon", type_="Condition") == ["c-quad"]


def test_not_in_includes_resources_without_code(client):
    load(client)
    expected = sorted(set(ALL) - {"o-polygon", "o-quad", "o-tri", "o-tri-eq"})
    assert ids(client, "code:not-in", "http://example.org/vs/polygon") == expected
    assert "o-none" in expected


def test_below_and_above(client):
    load(client)
    assert ids(client, "code:below", f"{SHAPE}|polygon") == ["o-polygon", "o-quad", "o-tri", "o-tri-eq"]
    assert ids(client, "code:below", f"{SHAPE}|tri") == ["o-tri", "o-tri-eq"]
    assert ids(client, "code:below", f"{SHAPE}|circle") == ["o-circle"]
    assert ids(client, "code:above", f"{SHAPE}|tri-eq") == ["o-polygon", "o-shape", "o-tri", "o-tri-eq"]
    assert ids(client, "code:above", f"{SHAPE}|ellipse") == ["o-ellipse", "o-round", "o-shape"]
    assert ids(client, "code:below", f"{SHAPE}|tri,{SHAPE}|round") == [
        "o-circle", "o-ellipse", "o-round", "o-tri", "o-tri-eq"]
    # a code the CodeSystem does not define: the code itself
    assert ids(client, "code:below", f"{SHAPE}|hexagon") == []


def test_unknown_terminology_strict_and_lenient(client):
    load(client)
    r = search(client, "code:in", "http://example.org/vs/missing", STRICT)
    assert_outcome(r, 400, "invalid", 'ValueSet "http://example.org/vs/missing" is not on this server')
    r = search(client, "code:in", "http://example.org/vs/missing")
    assert 'ValueSet "http://example.org/vs/missing" is not on this server' in ignored(r)
    assert len([e for e in r.json["entry"] if e["search"]["mode"] == "match"]) == len(ALL)
    r = search(client, "code:in", "ValueSet/no/such", STRICT)
    assert_outcome(r, 400, "invalid", 'ValueSet "ValueSet/no/such" is not on this server')
    r = search(client, "code:in", "ValueSet/nope", STRICT)
    assert_outcome(r, 400, "invalid", 'ValueSet "ValueSet/nope" is not on this server')
    r = search(client, "code:below", "http://example.org/cs/nowhere|a", STRICT)
    assert_outcome(r, 400, "invalid",
                   'code system "http://example.org/cs/nowhere" of "code:below" has no CodeSystem')
    r = search(client, "code:above", "http://example.org/cs/nowhere|a")
    assert "has no CodeSystem on this server" in ignored(r)
    r = search(client, "code:below", "tri", STRICT)
    assert_outcome(r, 400, "invalid", '"code:below" needs system|code, not "tri"')
    r = search(client, "code:in", "http://example.org/vs/unknown-system", STRICT)
    assert_outcome(r, 400, "invalid", 'includes code system "http://example.org/cs/nowhere"')


def test_terminology_that_cannot_be_used(client):
    load(client)
    for headers in (STRICT, None):
        r = search(client, "code:in", "http://example.org/vs/regex", headers)
        assert_outcome(r, 400, "invalid",
                       'ValueSet "http://example.org/vs/regex" has the filter "concept regex t.*"')
        r = search(client, "code:in", "http://example.org/vs/cycle", headers)
        assert_outcome(r, 400, "invalid", "ValueSets deep")


def test_a_changed_valueset_is_seen_by_the_next_search(client):
    load(client)
    assert ids(client, "code:in", "http://example.org/vs/list") == ["o-ellipse", "o-tri"]
    vs = dict(VALUESETS[1])
    vs["compose"] = {"include": [{"system": SHAPE, "concept": [{"code": "circle"}]}]}
    assert client.put("ValueSet/vs-list", vs).status == 200
    assert ids(client, "code:in", "http://example.org/vs/list") == ["o-circle"]
    assert ids(client, "code:in", "http://example.org/vs/nested") == ["o-quad", "o-x"]
    assert client.delete("ValueSet/vs-list").status in (200, 204)
    r = search(client, "code:in", "http://example.org/vs/list", STRICT)
    assert_outcome(r, 400, "invalid", "is not on this server")
    assert client.put("ValueSet/vs-list", VALUESETS[1]).status in (200, 201)


def test_too_many_codes(client):
    concepts = [{"code": f"c{i}"} for i in range(10001)]
    cs = {"resourceType": "CodeSystem", "id": "big", "url": "http://example.org/cs/big",
          "status": "active", "content": "complete", "concept": concepts}
    assert client.put("CodeSystem/big", cs).status in (200, 201)
    vs = {"resourceType": "ValueSet", "id": "big", "url": "http://example.org/vs/big",
          "status": "active", "compose": {"include": [{"system": "http://example.org/cs/big"}]}}
    assert client.put("ValueSet/big", vs).status in (200, 201)
    r = search(client, "code:in", "http://example.org/vs/big")
    assert_outcome(r, 400, "invalid", "more than 10000 codes")
    # 10,000 exactly is fine
    cs["concept"] = concepts[:10000]
    assert client.put("CodeSystem/big", cs).status == 200
    o = {"resourceType": "Observation", "id": "o-big", "status": "final",
         "code": {"coding": [{"system": "http://example.org/cs/big", "code": "c9999"}]}}
    assert client.put("Observation/o-big", o).status in (200, 201)
    r = client.get("Observation?_id=o-big&code:in=" + urllib.parse.quote("http://example.org/vs/big"))
    assert r.status == 200, r
    assert [e["resource"]["id"] for e in r.json["entry"] if e["search"]["mode"] == "match"] == ["o-big"]


def test_in_through_a_chain_and_has(client):
    load(client)
    r = client.put("Patient/p", {"resourceType": "Patient", "id": "p"})
    assert r.status in (200, 201)
    q = urllib.parse.urlencode([("_has:Condition:subject:code:in", "http://example.org/vs/polygon")])
    r = client.get(f"Patient?{q}")
    assert r.status == 200, r
    assert [e["resource"]["id"] for e in r.json["entry"] if e["search"]["mode"] == "match"] == ["p"]
    q = urllib.parse.urlencode([("_has:Condition:subject:code:in", "http://example.org/vs/three")])
    r = client.get(f"Patient?{q}")
    assert [e for e in r.json.get("entry", []) if e["search"]["mode"] == "match"] == []


def test_in_a_batch_and_in_conditional_requests(client):
    load(client)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET",
                     "url": "Observation?code:in=http://example.org/vs/polygon&_tag=" + TAG}},
        {"request": {"method": "GET",
                     "url": "Observation?code:below=" + SHAPE + "|round&_tag=" + TAG}},
        {"request": {"method": "GET", "url": "Observation?code:in=http://example.org/vs/missing"}},
    ]}
    r = client.post("", bundle)
    assert r.status == 200, r
    entries = r.json["entry"]

    def matched(e):
        return sorted(x["resource"]["id"] for x in e["resource"].get("entry", [])
                      if x["search"]["mode"] == "match")

    assert matched(entries[0]) == ["o-polygon", "o-quad", "o-tri", "o-tri-eq"]
    assert matched(entries[1]) == ["o-circle", "o-ellipse", "o-round"]
    # lenient: left out and reported, as in a plain search
    outcome = [x for x in entries[2]["resource"]["entry"] if x["search"]["mode"] == "outcome"]
    assert "is not on this server" in outcome[0]["resource"]["issue"][0]["diagnostics"]

    # conditional create: the criteria match o-quad only among the tagged Observations
    o = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    r = client.post("Observation", o, headers={
        "If-None-Exist": "code:in=http://example.org/vs/three&_tag=" + TAG})
    assert r.status == 412, r  # o-tri and o-tri-eq
    r = client.post("Observation", o, headers={
        "If-None-Exist": "code:below=" + urllib.parse.quote(SHAPE + "|quad") + "&_tag=" + TAG})
    assert r.status == 200, r
    assert r.json["id"] == "o-quad"
    # conditional requests are strict: unknown terminology is 400
    r = client.post("Observation", o, headers={
        "If-None-Exist": "code:in=http://example.org/vs/missing"})
    assert_outcome(r, 400, "invalid", 'ValueSet "http://example.org/vs/missing" is not on this server')


def test_a_canonical_with_search_syntax_in_it(client):
    load(client)
    vs = {"resourceType": "ValueSet", "id": "vs-comma", "url": "http://example.org/vs/a,b$c",
          "version": "1|2", "status": "active",
          "compose": {"include": [{"system": SHAPE, "concept": [{"code": "quad"}]}]}}
    assert client.put("ValueSet/vs-comma", vs).status in (200, 201)
    # the url is one value (escaped as the search syntax wants it)
    assert ids(client, "code:in", "http://example.org/vs/a\\,b\\$c", STRICT) == ["o-quad"]
    assert ids(client, "code:in", "http://example.org/vs/a\\,b\\$c|1|2", STRICT) == ["o-quad"]


def test_shared_includes_are_expanded_once_and_reads_are_bounded(client):
    load(client)
    # d0 includes d1 three times, d1 includes d2 three times, ... d6 lists quad: 3^6 paths,
    # 7 ValueSets
    for i in range(7):
        include = ([{"valueSet": [f"http://example.org/vs/d{i + 1}"]}] * 3 if i < 6 else
                   [{"system": SHAPE, "concept": [{"code": "quad"}]}])
        vs = {"resourceType": "ValueSet", "id": f"d{i}", "url": f"http://example.org/vs/d{i}",
              "status": "active", "compose": {"include": include}}
        assert client.put(f"ValueSet/d{i}", vs).status in (200, 201)
    assert ids(client, "code:in", "http://example.org/vs/d0", STRICT) == ["o-quad"]
    # one ValueSet including 300 others: more than a search may read
    entries = [{"resource": {"resourceType": "ValueSet", "id": f"w{i}",
                             "url": f"http://example.org/vs/w{i}", "status": "active",
                             "compose": {"include": [{"system": SHAPE,
                                                      "concept": [{"code": "tri"}]}]}},
                "request": {"method": "PUT", "url": f"ValueSet/w{i}"}} for i in range(300)]
    entries.append({"resource": {
        "resourceType": "ValueSet", "id": "wide", "url": "http://example.org/vs/wide",
        "status": "active",
        "compose": {"include": [{"valueSet": [f"http://example.org/vs/w{i}"]}
                                for i in range(300)]}},
        "request": {"method": "PUT", "url": "ValueSet/wide"}})
    r = client.post("", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert r.status == 200, r
    r = search(client, "code:in", "http://example.org/vs/wide")
    assert_outcome(r, 400, "invalid",
                   "would pass the 256 ValueSets and CodeSystems one search parameter may read")


def test_descendent_of_is_not_a_and_property_filters(client):
    load(client)

    def vs(vid, include, exclude=None):
        compose = {"include": include}
        if exclude:
            compose["exclude"] = exclude
        r = client.put(f"ValueSet/{vid}", {"resourceType": "ValueSet", "id": vid,
                                            "url": f"http://example.org/vs/{vid}",
                                            "status": "active", "compose": compose})
        assert r.status in (200, 201), r
        return f"http://example.org/vs/{vid}"

    def f(prop, op, value):
        return {"property": prop, "op": op, "value": value}

    url = vs("f-desc", [{"system": SHAPE, "filter": [f("concept", "descendent-of", "polygon")]}])
    assert ids(client, "code:in", url, STRICT) == ["o-quad", "o-tri", "o-tri-eq"]
    url = vs("f-not", [{"system": SHAPE, "filter": [f("concept", "is-not-a", "round")]}])
    assert ids(client, "code:in", url, STRICT) == [
        "o-polygon", "o-quad", "o-shape", "o-tri", "o-tri-eq"]
    # two filters intersect: is-a polygon and three sides
    url = vs("f-both", [{"system": SHAPE, "filter": [f("concept", "is-a", "polygon"),
                                                      f("sides", "=", "3")]}])
    assert ids(client, "code:in", url, STRICT) == ["o-tri", "o-tri-eq"]
    # a concept list narrowed by a filter
    url = vs("f-list", [{"system": SHAPE, "concept": [{"code": "quad"}, {"code": "circle"}],
                         "filter": [f("concept", "is-a", "round")]}])
    assert ids(client, "code:in", url, STRICT) == ["o-circle"]
    # a system and a valueSet in one include intersect
    url = vs("f-and-vs", [{"system": SHAPE, "filter": [f("concept", "is-a", "polygon")],
                           "valueSet": ["http://example.org/vs/three"]}])
    assert ids(client, "code:in", url, STRICT) == ["o-tri", "o-tri-eq"]
    # an exclude by another ValueSet
    url = vs("f-exclude-vs", [{"system": SHAPE}],
             [{"valueSet": ["http://example.org/vs/polygon"]}])
    assert ids(client, "code:in", url, STRICT) == ["o-circle", "o-ellipse", "o-round", "o-shape"]
    # a property the CodeSystem does not have
    url = vs("f-colour", [{"system": SHAPE, "filter": [f("colour", "=", "red")]}])
    r = search(client, "code:in", url, STRICT)
    assert_outcome(r, 400, "invalid",
                   f'ValueSet "{url}" filters on property "colour", which CodeSystem')
    # is-a on a property other than the hierarchy
    url = vs("f-isa-sides", [{"system": SHAPE, "filter": [f("sides", "is-a", "3")]}])
    r = search(client, "code:in", url)
    assert_outcome(r, 400, "invalid", 'has the filter "sides is-a 3"')


def test_a_codesystem_without_its_concepts(client):
    load(client)
    cs = {"resourceType": "CodeSystem", "id": "absent", "url": "http://example.org/cs/absent",
          "status": "active", "content": "not-present"}
    assert client.put("CodeSystem/absent", cs).status in (200, 201)
    vs = {"resourceType": "ValueSet", "id": "vs-absent", "url": "http://example.org/vs/absent",
          "status": "active", "compose": {"include": [{"system": "http://example.org/cs/absent"}]}}
    assert client.put("ValueSet/vs-absent", vs).status in (200, 201)
    r = search(client, "code:in", "http://example.org/vs/absent")
    assert_outcome(r, 400, "invalid", 'CodeSystem "http://example.org/cs/absent", which is '
                                      'stored without them (content not-present)')
    r = search(client, "code:below", "http://example.org/cs/absent|x")
    assert_outcome(r, 400, "invalid", '"code:below" needs the concepts of CodeSystem')
    # a concept list needs no CodeSystem at all
    vs["compose"] = {"include": [{"system": "http://example.org/cs/absent",
                                  "concept": [{"code": "x"}]}]}
    assert client.put("ValueSet/vs-absent", vs).status == 200
    assert ids(client, "code:in", "http://example.org/vs/absent", STRICT) == []
