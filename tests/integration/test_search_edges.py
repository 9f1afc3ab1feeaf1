"""Search at the edges, over HTTP: for each parameter type, its modifiers and prefixes against
stored values of every precision and shape, with the expected set of ids worked out by hand.

The matrix (type x modifier/prefix x edge) this file covers, beside test_search.py:

| type | modifiers, prefixes | edges |
| --- | --- | --- |
| date | eq ne gt lt ge le sa eb ap | search value of year, month, day, minute, second, fraction; stored date, dateTime of year, month, day, second, fraction, instant, Period open at either end, Timing events; zones (stored -05:00 against UTC days, a search value without a zone read as UTC); leap day; year boundary; ap around now and far from it |
| number | eq ne gt lt ge le sa eb ap | implicit range of the precision, exponents, negative numbers, Range |
| quantity | prefixes, `value|system|code`, `value||code`, ne | code against unit, another system |
| string | default, :exact, :contains | case, accents (precomposed and combining), ss, CJK, every part of HumanName and Address, values past the 512-byte index cut |
| token | code, system|code, |code, system|, :not, :text, :of-type | Coding, CodeableConcept, Identifier, ContactPoint, boolean, code; escaped \\| \\, \\$ |
| reference | id, Type/id, Type/id/_history/v, absolute url in and out of the base, :Type, :identifier, :missing | contained #id never matches an id |
| uri | exact, :below, :above, :missing | |
| composite | prefixes on the value component, $ | code and value from the same component only |
| any | :missing=true/false, comma (OR), repetition (AND) | extension-only primitive counts as missing |
| meta | _id, _lastUpdated, _tag, _profile, _security, _source, _list | |
| _sort | string, token, date, number, quantity, reference, uri, -desc, several keys | missing values last both ways, ties by creation order; paging while creating and deleting |

Each test tags its resources (meta.tag urn:concerto:test|NAME) and restricts its searches with
_tag so that the tests share one server.
"""
import datetime
import urllib.parse
from decimal import Decimal

from conftest import assert_outcome

TAG_SYSTEM = "urn:concerto:test"


def tagged(name, resource):
    r = dict(resource)
    meta = dict(r.get("meta", {}))
    meta["tag"] = meta.get("tag", []) + [{"system": TAG_SYSTEM, "code": name}]
    r["meta"] = meta
    return r


def put(client, resource):
    r = client.put(f"{resource['resourceType']}/{resource['id']}", resource)
    assert r.status in (200, 201), r
    return r.json


def encode(pairs):
    return urllib.parse.urlencode(pairs, safe=":|,/$*", quote_via=urllib.parse.quote)


def search(client, path, pairs, tag, headers=None, status=200):
    pairs = list(pairs) + [("_tag", f"{TAG_SYSTEM}|{tag}"), ("_count", "1000")]
    r = client.get(path + "?" + encode(pairs), headers=headers)
    assert r.status == status, r
    return r


def ids(client, path, pairs, tag):
    b = search(client, path, pairs, tag).json
    return [e["resource"]["id"] for e in b.get("entry", []) if e["search"]["mode"] == "match"]


def idset(client, path, pairs, tag):
    found = ids(client, path, pairs, tag)
    assert len(found) == len(set(found)), found
    return sorted(found)


STRICT = {"Prefer": "handling=strict"}


def obs(oid, tag, **extra):
    o = {"resourceType": "Observation", "id": oid, "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]}}
    o.update(extra)
    return tagged(tag, o)


# ---- dates -----------------------------------------------------------------------------------

def test_date_prefixes_against_every_stored_shape(client):
    """Observation.date (effective[x]) over every shape a date takes, in UTC ranges [lo, hi):

    y   2026                           [2026-01-01, 2027-01-01)
    m   2026-03                        [03-01, 04-01)
    d   2026-03-01                     [03-01, 03-02)
    s   2026-03-01T23:30:00-05:00      [03-02T04:30:00, 04:30:01)  (the next day in UTC)
    f   2026-03-01T12:00:00.250Z       [12:00:00.250, 12:00:00.251)
    i   instant 2026-02-28T23:59:59.999Z [23:59:59.999, 03-01T00:00)  (ends where 03-01 starts)
    pe  Period start 2026-03-01T06:00:00Z, no end   [03-01T06:00, forever)
    ps  Period end 2026-02-15, no start            [forever ago, 02-16)
    t   Timing events 2026-02-10 and 2026-03-01T10:00:00Z: two ranges, either may match
    n   no effective[x]
    """
    t = "date-shapes"
    put(client, obs("y", t, effectiveDateTime="2026"))
    put(client, obs("m", t, effectiveDateTime="2026-03"))
    put(client, obs("d", t, effectiveDateTime="2026-03-01"))
    put(client, obs("s", t, effectiveDateTime="2026-03-01T23:30:00-05:00"))
    put(client, obs("f", t, effectiveDateTime="2026-03-01T12:00:00.250Z"))
    put(client, obs("i", t, effectiveInstant="2026-02-28T23:59:59.999Z"))
    put(client, obs("pe", t, effectivePeriod={"start": "2026-03-01T06:00:00Z"}))
    put(client, obs("ps", t, effectivePeriod={"end": "2026-02-15"}))
    put(client, obs("t", t, effectiveTiming={"event": ["2026-02-10", "2026-03-01T10:00:00Z"]}))
    put(client, obs("n", t))
    q = lambda v: idset(client, "Observation", [("date", v)], t)  # noqa: E731

    # the day 2026-03-01 in UTC: [03-01T00:00Z, 03-02T00:00Z)
    assert q("2026-03-01") == ["d", "f", "t"]  # eq: contained in the day
    assert q("eq2026-03-01") == ["d", "f", "t"]
    # ne: some value not contained in the day (t's event of 02-10 is not)
    assert q("ne2026-03-01") == ["i", "m", "pe", "ps", "s", "t", "y"]
    assert q("gt2026-03-01") == ["m", "pe", "s", "y"]  # reaches past 03-02T00:00
    assert q("lt2026-03-01") == ["i", "ps", "t", "y"]  # starts before 03-01T00:00
    assert q("ge2026-03-01") == ["d", "f", "m", "pe", "s", "t", "y"]
    assert q("le2026-03-01") == ["d", "f", "i", "ps", "t", "y"]
    assert q("sa2026-03-01") == ["s"]  # starts at or after 03-02T00:00
    assert q("eb2026-03-01") == ["i", "ps", "t"]  # ends at or before 03-01T00:00

    # search precision: year, month, minute, second, fraction
    assert q("2026") == ["d", "f", "i", "m", "s", "t", "y"]
    assert q("2026-03") == ["d", "f", "m", "s", "t"]
    # February: i, and t by its event of 02-10 (a value matches when any of its ranges does)
    assert q("2026-02") == ["i", "t"]
    assert q("2026-02-10") == ["t"]
    assert q("2026-03-02T04:30Z") == ["s"]  # minute
    assert q("2026-03-01T23:30-05:00") == ["s"]  # the same minute in the stored zone
    assert q("2026-03-02T04:30:00Z") == ["s"]  # second
    assert q("2026-03-02T04:30:00.5Z") == []  # [.5, .6) does not contain [00, 01)
    assert q("2026-03-01T12:00:00Z") == ["f"]
    assert q("2026-03-01T12:00:00.25Z") == ["f"]  # [.250, .260) holds [.250, .251)
    assert q("2026-03-01T12:00:00.2Z") == ["f"]
    assert q("2026-03-01T12:00:00.251Z") == []
    assert q("2026-02-28T23:59:59.999Z") == ["i"]

    # time zones: the stored -05:00 evening is the next UTC day
    assert "s" not in q("2026-03-01")
    assert "s" in q("2026-03-02")
    # a search value without a zone is read as UTC (docs/api.md)
    assert q("2026-03-02T04:30") == ["s"]
    assert q("2026-03-01T23:30") == []
    assert q("2026-03-01T23:30:00") == []
    # the zone may be written +hh:mm: 05:30+01:00 is 04:30Z
    assert q("2026-03-02T05:30:00+01:00") == ["s"]

    # open periods
    assert q("gt2100") == ["pe"]
    assert q("lt1900") == ["ps"]
    assert q("2100") == []  # an open end is not contained in any range

    assert idset(client, "Observation", [("date:missing", "true")], t) == ["n"]
    assert len(idset(client, "Observation", [("date:missing", "false")], t)) == 9
    # AND of two prefixes, each on its own: y and pe start before April and reach past 03-01
    assert idset(client, "Observation", [("date", "ge2026-03-01"), ("date", "lt2026-04")],
                 t) == ["d", "f", "m", "pe", "s", "t", "y"]
    assert idset(client, "Observation", [("date", "sa2026-02-28"), ("date", "eb2026-03-03")],
                 t) == ["d", "f", "s", "t"]
    # OR: comma
    assert q("2026-03-02,2026-02-10") == ["s", "t"]


def test_date_leap_days_and_year_boundaries(client):
    t = "date-leap"
    put(client, tagged(t, {"resourceType": "Patient", "id": "leap", "birthDate": "2024-02-29"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "mar1", "birthDate": "2024-03-01"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "dec31", "birthDate": "2025-12-31"}))
    # 2025-12-31T23:30:00-01:00 is 2026-01-01T00:30Z
    put(client, obs("nye", t, effectiveDateTime="2025-12-31T23:30:00-01:00"))
    p = lambda v: idset(client, "Patient", [("birthdate", v)], t)  # noqa: E731
    assert p("2024-02-29") == ["leap"]
    assert p("2024-02") == ["leap"]
    assert p("gt2024-02-28") == ["dec31", "leap", "mar1"]
    assert p("lt2024-03-01") == ["leap"]
    assert p("eb2024-03") == ["leap"]
    assert p("sa2024-02") == ["dec31", "mar1"]
    assert p("2025") == ["dec31"]
    assert p("lt2026") == ["dec31", "leap", "mar1"]
    assert p("ge2026-01-01") == []
    # 2025-02-29 and 2024-02-30 are no dates: strict handling refuses them
    for bad in ("2025-02-29", "2024-02-30", "2024-13", "2024-00-10", "24-02-01"):
        r = search(client, "Patient", [("birthdate", bad)], t, headers=STRICT, status=400)
        assert_outcome(r, 400, "invalid", bad)
    o = lambda v: idset(client, "Observation", [("date", v)], t)  # noqa: E731
    assert o("2025") == []
    assert o("2025-12-31") == []
    assert o("2026") == ["nye"]
    assert o("2026-01-01") == ["nye"]
    assert o("2025-12-31T23:30:00-01:00") == ["nye"]
    assert o("lt2026") == []
    assert o("ge2026") == ["nye"]


def test_date_ap_is_ten_percent_of_the_distance_to_now(client):
    """ap widens the search range by 10% of the distance between now and the value (each side).

    Far from now: ap2000-01-01 in 2026 widens by about 2.7 years each side, to roughly
    [1997-04, 2002-09); that holds 1998-06 and 2002-01 but not 1996 or 2004 (true until 2033).
    Near now: ap<today> widens by less than 2.4 hours: the day before yesterday is outside.
    """
    t = "date-ap"
    today = datetime.datetime.now(datetime.timezone.utc).date()
    put(client, tagged(t, {"resourceType": "Patient", "id": "y1996", "birthDate": "1996"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "m1998", "birthDate": "1998-06"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "m2002", "birthDate": "2002-01"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "y2004", "birthDate": "2004"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "today",
                           "birthDate": today.isoformat()}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "before",
                           "birthDate": (today - datetime.timedelta(days=2)).isoformat()}))
    p = lambda v: idset(client, "Patient", [("birthdate", v)], t)  # noqa: E731
    assert p("ap2000-01-01") == ["m1998", "m2002"]
    assert p("2000-01-01") == []
    assert p("ap" + today.isoformat()) == ["today"]


# ---- numbers and quantities ------------------------------------------------------------------

def risk(rid, tag, probability):
    p = {"probabilityDecimal": probability} if not isinstance(probability, dict) \
        else {"probabilityRange": probability}
    return tagged(tag, {"resourceType": "RiskAssessment", "id": rid, "status": "final",
                        "subject": {"reference": "Patient/nobody"}, "prediction": [p]})


def test_number_prefixes_precision_exponents_and_negatives(client):
    """RiskAssessment.probability: stored decimals are points; a Range is [low, high].

    A search value without a prefix (and with ne, ap) stands for the range of its precision:
    100 is [99.5, 100.5), 100.0 is [99.95, 100.05), 1e2 is [50, 150) (one significant
    figure), 1.0e2 is [95, 105). gt lt ge le sa eb compare with the exact value, as the R4
    examples say ("gt100: values that are greater than exactly 100").
    """
    t = "numbers"
    put(client, risk("v100", t, 100))
    put(client, risk("v1004", t, Decimal("100.4")))
    put(client, risk("v1005", t, Decimal("100.5")))
    put(client, risk("v995", t, Decimal("99.5")))
    put(client, risk("v150", t, Decimal("1.5e2")))
    put(client, risk("vneg", t, Decimal("-2.5")))
    put(client, risk("rng", t, {"low": {"value": 10}, "high": {"value": 20}}))
    put(client, tagged(t, {"resourceType": "RiskAssessment", "id": "none", "status": "final",
                           "subject": {"reference": "Patient/nobody"}}))
    q = lambda v: idset(client, "RiskAssessment", [("probability", v)], t)  # noqa: E731
    assert q("100") == ["v100", "v1004", "v995"]
    assert q("eq100") == ["v100", "v1004", "v995"]
    assert q("100.0") == ["v100"]  # [99.95, 100.05)
    assert q("100.4") == ["v1004"]
    assert q("1e2") == ["v100", "v1004", "v1005", "v995"]  # [50, 150)
    assert q("1.0e2") == ["v100", "v1004", "v1005", "v995"]  # [95, 105)
    assert q("1.5e2") == ["v150"]  # [145, 155)
    assert q("150") == ["v150"]
    assert q("-2.5") == ["vneg"]
    assert q("-2") == ["vneg"]  # [-2.5, -1.5) holds its low end
    assert q("-3") == []  # [-3.5, -2.5) does not hold its high end
    assert q("ne100") == ["rng", "v1005", "v150", "vneg"]
    assert q("gt100") == ["v1004", "v1005", "v150"]
    assert q("ge100") == ["v100", "v1004", "v1005", "v150"]
    assert q("lt100") == ["rng", "v995", "vneg"]
    assert q("le100") == ["rng", "v100", "v995", "vneg"]
    assert q("lt0") == ["vneg"]
    assert q("gt-3") == ["rng", "v100", "v1004", "v1005", "v150", "v995", "vneg"]
    assert q("sa100") == ["v1004", "v1005", "v150"]
    assert q("eb100") == ["rng", "v995", "vneg"]
    # ap: 10% of the value each side of the implicit range: [89.5, 110.5)
    assert q("ap100") == ["v100", "v1004", "v1005", "v995"]
    # a Range [10, 20]
    assert q("15") == []  # [14.5, 15.5) does not contain [10, 20]
    assert q("gt15") == ["rng", "v100", "v1004", "v1005", "v150", "v995"]
    assert q("lt15") == ["rng", "vneg"]
    assert q("ap15") == ["rng"]  # [13, 17) overlaps [10, 20]
    assert q("sa5") == ["rng", "v100", "v1004", "v1005", "v150", "v995"]
    assert q("eb25") == ["rng", "vneg"]
    assert idset(client, "RiskAssessment", [("probability:missing", "true")], t) == ["none"]
    assert q("99.5,150") == ["v150", "v995"]
    assert idset(client, "RiskAssessment", [("probability", "gt99"), ("probability", "lt100.45")],
                 t) == ["v100", "v1004", "v995"]
    # sorted by the low end (a Range by its low, either direction); the one without, last
    s = lambda k: ids(client, "RiskAssessment", [("_sort", k)], t)  # noqa: E731
    assert s("probability") == ["vneg", "rng", "v995", "v100", "v1004", "v1005", "v150", "none"]
    assert s("-probability") == ["v150", "v1005", "v1004", "v100", "v995", "rng", "vneg", "none"]


def qty(value, unit=None, system=None, code=None, comparator=None):
    q = {"value": value}
    for k, v in (("unit", unit), ("system", system), ("code", code), ("comparator", comparator)):
        if v is not None:
            q[k] = v
    return q


UCUM = "http://unitsofmeasure.org"


def test_quantity_systems_codes_units_and_prefixes(client):
    t = "quantities"
    put(client, obs("mg", t, valueQuantity=qty(Decimal("5.4"), "mg", UCUM, "mg")))
    put(client, obs("g", t, valueQuantity=qty(Decimal("5.4"), "g", UCUM, "g")))
    put(client, obs("unit", t, valueQuantity=qty(Decimal("5.4"), "mg")))  # unit only
    put(client, obs("other", t, valueQuantity=qty(Decimal("5.4"), "mg", "urn:other", "mg")))
    put(client, obs("big", t, valueQuantity=qty(1000, "mg", UCUM, "mg")))
    put(client, obs("neg", t, valueQuantity=qty(Decimal("-3"), "Cel", UCUM, "Cel")))
    put(client, obs("gt", t, valueQuantity=qty(10, "mg", UCUM, "mg", comparator=">")))
    put(client, obs("none", t))
    q = lambda v: idset(client, "Observation", [("value-quantity", v)], t)  # noqa: E731
    assert q("5.4") == ["g", "mg", "other", "unit"]
    assert q(f"5.4|{UCUM}|mg") == ["mg"]
    assert q("5.4||mg") == ["mg", "other", "unit"]  # any system; the code or the unit
    assert q("5.4|urn:other|mg") == ["other"]
    assert q(f"5.4|{UCUM}|") == ["g", "mg"]  # an empty code: any
    # UCUM units convert: 5.4 g is 5400 mg (tests/integration/test_quantity_units.py)
    assert q(f"ne5.4|{UCUM}|mg") == ["big", "g", "gt"]
    assert q(f"lt5.4|{UCUM}|mg") == []
    assert q(f"le5.4|{UCUM}|mg") == ["mg"]
    assert q(f"gt5.4|{UCUM}|mg") == ["big", "g", "gt"]
    assert q(f"gt1000|{UCUM}|mg") == ["g", "gt"]  # "> 10" reaches to infinity
    assert q(f"1e3|{UCUM}|mg") == ["big"]  # [500, 1500)
    assert q(f"lt0|{UCUM}|Cel") == ["neg"]
    assert q("-3||Cel") == ["neg"]
    assert q("10") == []  # "> 10" is not 10
    assert q(f"ap5|{UCUM}|mg") == ["mg"]  # [4, 6)
    assert idset(client, "Observation", [("value-quantity:missing", "true")], t) == ["none"]


# ---- strings ---------------------------------------------------------------------------------

def test_string_case_accents_and_scripts(client):
    t = "string-unicode"
    pat = lambda pid, family, **kw: put(client, tagged(t, dict(  # noqa: E731
        {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}, **kw)))
    pat("zoe1", "Zoë")  # precomposed ë
    pat("zoe2", "Zoe\u0308")  # e and a combining diaeresis
    pat("zoe3", "ZOE")
    pat("zoe4", "zoe")
    pat("ss1", "Weiß")
    pat("ss2", "Weiss")
    pat("cjk", "東京都")
    pat("greek", "Σωκράτης")
    q = lambda v, name="family": idset(client, "Patient", [(name, v)], t)  # noqa: E731
    for v in ("zoe", "ZOE", "Zoë", "zoe\u0308", "ZO", "z"):
        assert q(v) == ["zoe1", "zoe2", "zoe3", "zoe4"], v
    assert q("weiss") == ["ss1", "ss2"]
    assert q("WEISS") == ["ss1", "ss2"]
    assert q("weiß") == ["ss1", "ss2"]
    assert q("東京") == ["cjk"]
    assert q("京") == []
    assert q("σωκρατης") == ["greek"]
    # :exact: case and accents count, and so does the byte form of the accent
    assert q("Zoë", "family:exact") == ["zoe1"]
    assert q("Zoe\u0308", "family:exact") == ["zoe2"]
    assert q("zoe", "family:exact") == ["zoe4"]
    assert q("Zo", "family:exact") == []
    assert q("Weiß", "family:exact") == ["ss1"]
    assert q("東京都", "family:exact") == ["cjk"]
    # :contains: anywhere, case and accents ignored
    assert q("OE", "family:contains") == ["zoe1", "zoe2", "zoe3", "zoe4"]
    assert q("ss", "family:contains") == ["ss1", "ss2"]
    assert q("京", "family:contains") == ["cjk"]
    assert q("%", "family:contains") == []  # LIKE wildcards are literal
    assert q("_", "family:contains") == []
    assert q("zoe,weiss") == ["ss1", "ss2", "zoe1", "zoe2", "zoe3", "zoe4"]
    assert q("Zoë,Weiss", "family:exact") == ["ss2", "zoe1"]


def test_string_every_part_of_humanname_and_address(client):
    t = "string-parts"
    put(client, tagged(t, {"resourceType": "Patient", "id": "hn",
                           "name": [{"text": "Dr. Ann Q. Xavier Jr.", "family": "Xavier",
                                     "given": ["Ann", "Quinn"], "prefix": ["Dr."],
                                     "suffix": ["Jr."]}],
                           "address": [{"text": "1 Elm Row, Oakham", "line": ["1 Elm Row",
                                                                             "Flat 7"],
                                        "city": "Oakham", "district": "Rutland",
                                        "state": "Leics", "postalCode": "LE15 6AA",
                                        "country": "UK"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "other",
                           "name": [{"family": "Young"}],
                           "address": [{"city": "Zurich"}]}))
    q = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    for part in ("xavier", "ann", "quinn", "dr.", "jr.", "dr. ann q"):
        assert q("name", part) == ["hn"], part
    assert q("family", "ann") == []
    assert q("given", "quinn") == ["hn"]
    assert q("given", "xavier") == []
    for part in ("1 elm", "flat 7", "oakham", "rutland", "leics", "le15", "uk", "1 elm row, o"):
        assert q("address", part) == ["hn"], part
    assert q("address-city", "oakham") == ["hn"]
    assert q("address-city", "rutland") == []
    assert q("address-state", "leics") == ["hn"]
    assert q("address-postalcode", "le15 6aa") == ["hn"]
    assert q("address-country", "uk") == ["hn"]
    assert q("address:contains", "row") == ["hn"]
    assert q("name:exact", "Quinn") == ["hn"]
    assert q("name:missing", "false") == ["hn", "other"]
    assert q("address-state:missing", "true") == ["other"]


def test_string_past_the_index_cut(client):
    """Strings are indexed up to 512 bytes: searches for longer values are cut the same way."""
    t = "string-long"
    long_family = "A" * 300 + "é" * 200 + "tail"  # 300 + 400 + 4 bytes
    put(client, tagged(t, {"resourceType": "Patient", "id": "long",
                           "name": [{"family": long_family}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "short",
                           "name": [{"family": "A" * 10}]}))
    q = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    assert q("family", "a" * 300) == ["long"]
    assert q("family", "a" * 300 + "e" * 100) == ["long"]
    assert q("family", "a" * 300 + "e" * 200) == ["long"]  # past the cut: compared up to it
    assert q("family", long_family) == ["long"]
    assert q("family:exact", long_family) == ["long"]
    # a value longer than the cut is compared up to it, normalized form included: the same
    # first 512 bytes but another normalized form (no "tail") is not the stored text
    assert q("family:exact", "A" * 300 + "é" * 200) == []
    assert q("family:exact", "A" * 10) == ["short"]
    assert q("family", "a" * 11) == ["long"]


def test_string_empty_values(client):
    t = "string-empty"
    put(client, tagged(t, {"resourceType": "Patient", "id": "e1", "name": [{"family": "X"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "e2"}))
    # an empty value is no criterion: lenient leaves it out, strict refuses it
    r = search(client, "Patient", [("family", "")], t)
    assert sorted(e["resource"]["id"] for e in r.json["entry"]
                  if e["search"]["mode"] == "match") == ["e1", "e2"]
    search(client, "Patient", [("family", "")], t, headers=STRICT, status=400)


# ---- tokens ----------------------------------------------------------------------------------

def test_tokens_on_every_type_and_escapes(client):
    t = "tokens-edges"
    loinc = "http://loinc.org"
    put(client, obs("c1", t, code={"coding": [{"system": loinc, "code": "8310-5",
                                               "display": "Body temperature"}],
                                   "text": "Temp"}))
    put(client, obs("c2", t, code={"coding": [{"code": "8310-5"}]}))  # no system
    put(client, obs("c3", t, code={"coding": [{"system": "urn:local", "code": "t"},
                                              {"system": loinc, "code": "8867-4"}]}))
    put(client, obs("c4", t, code={"text": "Freitext Körper"}))  # text only
    q = lambda v, name="code": idset(client, "Observation", [(name, v)], t)  # noqa: E731
    assert q("8310-5") == ["c1", "c2"]
    assert q(f"{loinc}|8310-5") == ["c1"]
    assert q("|8310-5") == ["c2"]
    assert q(f"{loinc}|") == ["c1", "c3"]
    assert q("urn:local|") == ["c3"]
    assert q("8310") == []  # tokens are whole codes
    assert q("8310-5", "code:not") == ["c3", "c4"]
    assert q(f"{loinc}|8310-5", "code:not") == ["c2", "c3", "c4"]
    assert q("8310-5,8867-4", "code:not") == ["c4"]  # neither
    assert q("body", "code:text") == ["c1"]
    assert q("temp", "code:text") == ["c1"]  # CodeableConcept.text
    assert q("freitext korper", "code:text") == ["c4"]
    assert q("korper", "code:text") == []  # :text starts with, as a string does
    assert q("8310-5,t") == ["c1", "c2", "c3"]
    assert idset(client, "Observation", [("code", "8310-5"), ("code", f"{loinc}|")],
                 t) == ["c1"]

    # Identifier with | , $ and \ in its value; ContactPoint; boolean; code
    put(client, tagged(t, {"resourceType": "Patient", "id": "p1", "active": True,
                           "gender": "other",
                           "identifier": [{"system": "urn:x", "value": "a|b"},
                                          {"system": "urn:y", "value": "c,d$e\\f"}],
                           "telecom": [{"system": "phone", "value": "+1 555 0100"},
                                       {"system": "email", "value": "Ann@Example.org"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "p2", "active": False,
                           "identifier": [{"value": "a"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "p3"}))
    p = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    assert p("identifier", "urn:x|a\\|b") == ["p1"]
    assert p("identifier", "a\\|b") == ["p1"]
    assert p("identifier", "a") == ["p2"]
    assert p("identifier", "urn:y|c\\,d\\$e\\\\f") == ["p1"]
    assert p("identifier", "c\\,d\\$e\\f") == ["p1"]  # a backslash before f is kept
    assert p("identifier", "c,d") == []  # two values, c or d
    assert p("identifier", "|a") == ["p2"]
    assert p("identifier:not", "a") == ["p1", "p3"]
    assert p("phone", "+1 555 0100") == ["p1"]
    assert p("email", "Ann@Example.org") == ["p1"]
    # a ContactPoint is a token of its value alone, without a system (R4 token table)
    assert p("telecom", "|+1 555 0100") == ["p1"]
    assert p("telecom", "phone|+1 555 0100") == []
    assert p("active", "true") == ["p1"]
    assert p("active", "false") == ["p2"]
    assert p("active:not", "true") == ["p2", "p3"]
    assert p("active:missing", "true") == ["p3"]
    assert p("gender", "other") == ["p1"]
    assert p("gender", "|other") == []  # gender carries its code system
    assert p("gender:not", "other") == ["p2", "p3"]
    assert p("gender:missing", "false") == ["p1"]
    # :of-type needs an Identifier type coding
    r = search(client, "Patient", [("identifier:of-type", "a|b")], t, headers=STRICT,
               status=400)
    assert r.json["resourceType"] == "OperationOutcome"


# ---- references ------------------------------------------------------------------------------

def test_reference_versions_urls_types_and_contained(client):
    t = "refs-edges"
    base = client.base
    put(client, tagged(t, {"resourceType": "Patient", "id": "x"}))
    put(client, tagged(t, {"resourceType": "Group", "id": "x", "type": "person",
                           "actual": True}))
    put(client, obs("rel", t, subject={"reference": "Patient/x"}))
    put(client, obs("v2", t, subject={"reference": "Patient/x/_history/2"}))
    put(client, obs("grp", t, subject={"reference": "Group/x"}))
    put(client, obs("own", t, subject={"reference": f"{base}/Patient/x"}))
    put(client, obs("ownv", t, subject={"reference": f"{base}/Patient/x/_history/2"}))
    put(client, obs("ext", t, subject={"reference": "http://elsewhere.org/fhir/Patient/x"}))
    put(client, obs("con", t, contained=[{"resourceType": "Patient", "id": "x"}],
                    subject={"reference": "#x"}))
    put(client, obs("none", t))
    q = lambda v, name="subject": idset(client, "Observation", [(name, v)], t)  # noqa: E731
    assert q("x") == ["grp", "own", "ownv", "rel", "v2"]  # any type, never the contained #x
    assert q("Patient/x") == ["own", "ownv", "rel", "v2"]
    assert q("Group/x") == ["grp"]
    assert q("x", "subject:Group") == ["grp"]
    assert q("Patient/x/_history/2") == ["ownv", "v2"]
    assert q("Patient/x/_history/1") == []
    assert q(f"{base}/Patient/x") == ["own", "ownv", "rel", "v2"]
    assert q(f"{base}/Patient/x/_history/2") == ["ownv", "v2"]
    assert q("http://elsewhere.org/fhir/Patient/x") == ["ext"]
    assert q("http://elsewhere.org/fhir/Patient/x/_history/1") == []
    # "#x" is no reference a search can name: strict refuses it, lenient leaves it out
    search(client, "Observation", [("subject", "#x")], t, headers=STRICT, status=400)
    assert q("true", "subject:missing") == ["con", "none"]
    assert q("false", "subject:missing") == ["ext", "grp", "own", "ownv", "rel", "v2"]
    assert q("x", "patient") == ["own", "ownv", "rel", "v2"]  # patient: Patient only
    assert q("Group/x,http://elsewhere.org/fhir/Patient/x") == ["ext", "grp"]
    # a type that is not a target, and a :Type the value contradicts, are refused
    search(client, "Observation", [("subject", "Medication/x")], t, headers=STRICT,
           status=400)
    search(client, "Observation", [("subject:Group", "Patient/x")], t, headers=STRICT,
           status=400)


# ---- uri -------------------------------------------------------------------------------------

def test_uri_exact_below_above(client):
    t = "uri-edges"
    for vid, url in (("ab", "http://acme.org/fhir/ValueSet/a/b"),
                     ("a", "http://acme.org/fhir/ValueSet/a"),
                     ("abc", "http://acme.org/fhir/ValueSet/abc"),
                     ("other", "http://other.org/fhir/ValueSet/a")):
        put(client, tagged(t, {"resourceType": "ValueSet", "id": vid, "status": "active",
                               "url": url}))
    put(client, tagged(t, {"resourceType": "ValueSet", "id": "nourl", "status": "draft"}))
    q = lambda name, v: idset(client, "ValueSet", [(name, v)], t)  # noqa: E731
    assert q("url", "http://acme.org/fhir/ValueSet/a") == ["a"]
    assert q("url", "http://acme.org/fhir/ValueSet/A") == []  # uris are case-sensitive
    assert q("url", "http://acme.org/fhir/ValueSet/a/") == []
    # :below is a string prefix: /a finds /abc too
    assert q("url:below", "http://acme.org/fhir/ValueSet/a") == ["a", "ab", "abc"]
    assert q("url:below", "http://acme.org/fhir/ValueSet/a/") == ["ab"]
    assert q("url:below", "http://acme.org/") == ["a", "ab", "abc"]
    # :above: the stored url is a prefix of the value
    assert q("url:above", "http://acme.org/fhir/ValueSet/a/b/_history/3") == ["a", "ab"]
    assert q("url:above", "http://acme.org/fhir/ValueSet/a") == ["a"]
    assert q("url:missing", "true") == ["nourl"]
    assert q("url", "http://acme.org/fhir/ValueSet/a,http://other.org/fhir/ValueSet/a") == \
        ["a", "other"]


# ---- :missing on every type ------------------------------------------------------------------

def test_missing_on_every_type_and_extension_only_values(client):
    t = "missing-edges"
    ext = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                          "valueCode": "unknown"}]}
    put(client, tagged(t, {"resourceType": "Patient", "id": "full", "birthDate": "1970",
                           "gender": "male", "name": [{"family": "F"}],
                           "generalPractitioner": [{"reference": "Practitioner/p"}]}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "ext", "_birthDate": ext,
                           "_gender": ext}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "bare"}))
    q = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    for name in ("birthdate", "gender", "family", "general-practitioner", "identifier"):
        full = [] if name == "identifier" else ["full"]
        assert q(f"{name}:missing", "false") == full, name
        assert q(f"{name}:missing", "true") == sorted({"ext", "bare", "full"} - set(full)), name
    # number, quantity, composite, uri
    put(client, obs("m-q", t, valueQuantity=qty(1, "mg", UCUM, "mg")))
    put(client, obs("m-none", t))
    o = lambda name, v: idset(client, "Observation", [(name, v)], t)  # noqa: E731
    assert o("value-quantity:missing", "true") == ["m-none"]
    assert o("code-value-quantity:missing", "false") == ["m-q"]
    assert o("code-value-quantity:missing", "true") == ["m-none"]
    assert q("_profile:missing", "true") == ["bare", "ext", "full"]


# ---- composite -------------------------------------------------------------------------------

def test_composites_pair_values_from_one_element(client):
    t = "composite-edges"
    loinc = "http://loinc.org"
    sys_ = {"system": loinc, "code": "8480-6"}
    dia = {"system": loinc, "code": "8462-4"}
    bp = lambda oid, s, d: put(client, obs(oid, t, code={"coding": [  # noqa: E731
        {"system": loinc, "code": "85354-9"}]}, component=[
        {"code": {"coding": [sys_]}, "valueQuantity": qty(s, "mm[Hg]", UCUM, "mm[Hg]")},
        {"code": {"coding": [dia]}, "valueQuantity": qty(d, "mm[Hg]", UCUM, "mm[Hg]")}]))
    bp("bp1", 150, 90)
    bp("bp2", 120, 160)  # odd, but pairs the high value with the diastolic code
    put(client, obs("wt", t, code={"coding": [{"system": loinc, "code": "29463-7"}]},
                    valueQuantity=qty(150, "kg", UCUM, "kg")))
    q = lambda name, v: idset(client, "Observation", [(name, v)], t)  # noqa: E731
    cv = "component-code-value-quantity"
    assert q(cv, f"{loinc}|8480-6$gt140") == ["bp1"]
    assert q(cv, f"{loinc}|8462-4$gt140") == ["bp2"]  # not bp1: its 150 is the systolic
    assert q(cv, "8480-6$120") == ["bp2"]
    assert q(cv, f"8480-6$120|{UCUM}|mm[Hg]") == ["bp2"]
    assert q(cv, "8480-6$120||kg") == []
    assert q(cv, "8480-6$le120,8462-4$le90") == ["bp1", "bp2"]
    assert q(cv, "8480-6$ge150") == ["bp1"]
    assert q(cv, "8480-6$ne150") == ["bp2"]
    assert q("code-value-quantity", f"{loinc}|29463-7$150") == ["wt"]
    assert q("code-value-quantity", f"{loinc}|85354-9$150") == []  # the value is a component's
    assert q("combo-code-value-quantity", "8462-4$160") == ["bp2"]
    assert q("combo-code-value-quantity", "29463-7$gt100") == ["wt"]
    # a value without its $ part is malformed
    search(client, "Observation", [(cv, "8480-6")], t, headers=STRICT, status=400)


# ---- meta parameters, _list ------------------------------------------------------------------

def test_meta_parameters_and_list(client):
    t = "meta-edges"
    prof = "http://example.org/StructureDefinition/p"
    put(client, tagged(t, {"resourceType": "Patient", "id": "m1",
                           "meta": {"profile": [prof], "source": "urn:src#a",
                                    "tag": [{"system": "urn:t", "code": "vip"}],
                                    "security": [{"system": "urn:s", "code": "R"}]}}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "m2",
                           "meta": {"tag": [{"system": "urn:t", "code": "basic"}]}}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "m3"}))
    put(client, tagged(t, {"resourceType": "List", "id": "l1", "status": "current",
                           "mode": "working", "entry": [{"item": {"reference": "Patient/m1"}},
                                                        {"item": {"reference": "Patient/m3"}}]}))
    put(client, tagged(t, {"resourceType": "List", "id": "l2", "status": "current",
                           "mode": "working",
                           "entry": [{"item": {"reference": "Patient/m2"}}]}))
    q = lambda name, v: idset(client, "Patient", [(name, v)], t)  # noqa: E731
    assert q("_tag", "urn:t|vip") == ["m1"]
    assert q("_tag", "vip,basic") == ["m1", "m2"]
    assert q("_tag:not", "urn:t|vip") == ["m2", "m3"]
    assert q("_tag", "urn:t|") == ["m1", "m2"]
    assert q("_security", "urn:s|R") == ["m1"]
    assert q("_security:missing", "true") == ["m2", "m3"]
    assert q("_profile", prof) == ["m1"]
    assert q("_source", "urn:src#a") == ["m1"]
    assert q("_id", "m1,m3,nothere") == ["m1", "m3"]
    assert q("_id", "M1") == []
    assert q("_list", "l1") == ["m1", "m3"]
    assert q("_list", "l1,l2") == ["m1", "m2", "m3"]
    assert q("_list", "nolist") == []
    assert idset(client, "Patient", [("_list", "l1"), ("_id", "m3")], t) == ["m3"]


# ---- sorting and paging ----------------------------------------------------------------------

def test_sort_on_every_type_with_missing_values_and_ties(client):
    """Missing values sort last in both directions; ties keep the order of creation."""
    t = "sort-edges"
    put(client, obs("so-a", t, valueQuantity=qty(5, "mg", UCUM, "mg"),
                    effectiveDateTime="2026-01-02", subject={"reference": "Patient/b"}))
    put(client, obs("so-b", t, valueQuantity=qty(Decimal("-1"), "mg", UCUM, "mg"),
                    effectiveDateTime="2026-01-01T10:00:00Z",
                    subject={"reference": "Patient/a"}))
    put(client, obs("so-c", t, effectiveDateTime="2026-01-02"))  # ties a on date
    put(client, obs("so-d", t, valueQuantity=qty(5, "mg", UCUM, "mg"),
                    subject={"reference": "Group/a"}, status="amended"))
    s = lambda v: ids(client, "Observation", [("_sort", v)], t)  # noqa: E731
    assert s("value-quantity") == ["so-b", "so-a", "so-d", "so-c"]
    assert s("-value-quantity") == ["so-a", "so-d", "so-b", "so-c"]
    assert s("date") == ["so-b", "so-a", "so-c", "so-d"]
    assert s("-date") == ["so-a", "so-c", "so-b", "so-d"]
    assert s("date,-value-quantity") == ["so-b", "so-a", "so-c", "so-d"]
    assert s("-date,value-quantity") == ["so-a", "so-c", "so-b", "so-d"]
    assert s("status") == ["so-d", "so-a", "so-b", "so-c"]  # amended < final, then creation order
    assert s("-status") == ["so-a", "so-b", "so-c", "so-d"]
    # references sort by Type/id: Group/a < Patient/a < Patient/b
    assert s("subject") == ["so-d", "so-b", "so-a", "so-c"]
    assert s("-subject") == ["so-a", "so-b", "so-d", "so-c"]
    assert s("_id") == ["so-a", "so-b", "so-c", "so-d"]
    assert s("-_lastUpdated") == ["so-d", "so-c", "so-b", "so-a"]
    # strings and uris
    for vid, url, name in (("v1", "urn:b", "Beta"), ("v2", None, "alpha"), ("v3", "urn:a", None)):
        vs = {"resourceType": "ValueSet", "id": vid, "status": "active"}
        if url:
            vs["url"] = url
        if name:
            vs["name"] = name
        put(client, tagged(t, vs))
    v = lambda k: ids(client, "ValueSet", [("_sort", k)], t)  # noqa: E731
    assert v("url") == ["v3", "v1", "v2"]
    assert v("-url") == ["v1", "v3", "v2"]
    assert v("name") == ["v2", "v1", "v3"]  # case ignored: alpha < Beta
    assert v("-name") == ["v1", "v2", "v3"]


def test_sorted_paging_while_creating_and_deleting(client):
    """Each resource that matches for the whole walk is seen exactly once; ones created
    behind the cursor are not seen, ones created ahead are; deleted ones are not seen."""
    t = "paging-edges"
    fam = lambda i: f"F{i:02d}"  # noqa: E731
    for i in range(0, 20, 2):
        put(client, tagged(t, {"resourceType": "Patient", "id": f"g{i:02d}",
                               "name": [{"family": fam(i)}]}))
    # some without a family: they come last
    for i in (90, 91):
        put(client, tagged(t, {"resourceType": "Patient", "id": f"g{i}"}))
    url = "Patient?" + encode([("_tag", f"{TAG_SYSTEM}|{t}"), ("_sort", "-family"),
                               ("_count", "3")])
    seen = []
    r = client.get(url)
    step = 0
    while True:
        assert r.status == 200, r
        page = [e["resource"]["id"] for e in r.json.get("entry", [])]
        seen.extend(page)
        step += 1
        if step == 1:  # after g18 g16 g14: one behind the cursor, one ahead, delete ahead
            put(client, tagged(t, {"resourceType": "Patient", "id": "g17",
                                   "name": [{"family": fam(17)}]}))
            put(client, tagged(t, {"resourceType": "Patient", "id": "g05",
                                   "name": [{"family": fam(5)}]}))
            assert client.delete("Patient/g08").status == 204
            assert client.delete("Patient/g18").status == 204  # already seen
        if step == 3:  # a new one without a value, and delete one of those
            put(client, tagged(t, {"resourceType": "Patient", "id": "g92"}))
            assert client.delete("Patient/g90").status == 204
        nxt = [x["url"] for x in r.json.get("link", []) if x["relation"] == "next"]
        if not nxt:
            break
        r = client.get(nxt[0])
    assert seen == ["g18", "g16", "g14", "g12", "g10", "g06", "g05", "g04", "g02", "g00",
                    "g91", "g92"]


def test_last_updated_prefixes_and_precision(client):
    """_lastUpdated is an instant (microseconds): a point [u, u + 1 µs)."""
    t = "updated-edges"
    u1 = put(client, tagged(t, {"resourceType": "Patient", "id": "u1"}))["meta"]["lastUpdated"]
    u2 = put(client, tagged(t, {"resourceType": "Patient", "id": "u2"}))["meta"]["lastUpdated"]
    assert u1 < u2
    q = lambda v: idset(client, "Patient", [("_lastUpdated", v)], t)  # noqa: E731
    assert q(u1) == ["u1"]  # the full fraction: that instant alone
    assert q(f"eq{u2}") == ["u2"]
    assert q(f"ne{u1}") == ["u2"]
    assert q(f"sa{u1}") == ["u2"]
    assert q(f"eb{u2}") == ["u1"]
    assert q(f"ge{u2}") == ["u2"]
    assert q(f"le{u1}") == ["u1"]
    # ap widens by 10% of the time since u1 (milliseconds): u1 always, u2 maybe
    assert "u1" in q(f"ap{u1}")
    assert "u1" in q(u1[:10])  # its UTC day (u2 too, unless midnight fell between them)
    assert q("ge2020") == ["u1", "u2"]
    assert q("lt2020") == []
    assert q("sa2999") == []
    assert idset(client, "Patient", [("_lastUpdated", f"ge{u1}"), ("_lastUpdated", f"lt{u2}")],
                 t) == ["u1"]


def test_timing_bounds_period(client):
    t = "timing-edges"
    put(client, obs("tb", t, effectiveTiming={"repeat": {"boundsPeriod": {
        "start": "2026-05-01", "end": "2026-05-31"}, "frequency": 1, "period": 1,
        "periodUnit": "d"}}))
    put(client, obs("te", t, effectiveTiming={"event": ["2026-05-15T08:00:00Z"]}))
    q = lambda v: idset(client, "Observation", [("date", v)], t)  # noqa: E731
    assert q("2026-05") == ["tb", "te"]  # [05-01, 06-01) holds both
    assert q("2026-05-15") == ["te"]  # the bounds are wider than the day
    assert q("ap2026-05-15") == ["tb", "te"]  # overlap
    assert q("gt2026-05-20") == ["tb"]
    assert q("lt2026-05-02") == ["tb"]  # starts before 05-02
    assert q("le2026-05-01") == []  # neither starts before 05-01 nor is contained in it
    assert q("eb2026-06") == ["tb", "te"]
    assert q("sa2026-04") == ["tb", "te"]


def test_sort_dates_with_open_periods(client):
    """A date sorts by the start of its range in both directions: an open start is the
    beginning of time, an open end does not count."""
    t = "sort-periods"
    put(client, obs("sp-mid", t, effectiveDateTime="2026-01-01"))
    put(client, obs("sp-open-start", t, effectivePeriod={"end": "2025-01-01"}))
    put(client, obs("sp-open-end", t, effectivePeriod={"start": "2026-06-01"}))
    put(client, obs("sp-none", t))
    s = lambda v: ids(client, "Observation", [("_sort", v)], t)  # noqa: E731
    assert s("date") == ["sp-open-start", "sp-mid", "sp-open-end", "sp-none"]
    assert s("-date") == ["sp-open-end", "sp-mid", "sp-open-start", "sp-none"]


def test_date_leap_seconds_fractions_and_extreme_zones(client):
    """A leap second (R4's dateTime allows :60) is read as the last second of its minute, so
    it stays in its day and year; fractions beyond microseconds are cut to one microsecond;
    +14:00 is the furthest zone."""
    t = "date-extremes"
    put(client, obs("ls", t, effectiveDateTime="2016-12-31T23:59:60Z"))  # [23:59:59, 00:00)
    put(client, obs("f7", t, effectiveDateTime="2026-03-01T12:00:00.1234567Z"))  # .123456 1µs
    put(client, obs("z14", t, effectiveDateTime="2026-03-01T00:30:00+14:00"))  # 02-28T10:30Z
    q = lambda v: idset(client, "Observation", [("date", v)], t)  # noqa: E731
    assert q("2016") == ["ls"]
    assert q("2016-12-31") == ["ls"]
    assert q("2017") == []
    assert q("2016-12-31T23:59:60Z") == ["ls"]
    assert q("2016-12-31T23:59:59Z") == ["ls"]
    assert q("2026-03-01T12:00:00.123456Z") == ["f7"]
    assert q("2026-03-01T12:00:00.1234567Z") == ["f7"]
    assert q("2026-03-01T12:00:00.123457Z") == []
    assert q("2026-02-28") == ["z14"]
    assert q("2026-03-01") == ["f7"]
    assert q("2026-02-28T10:30:00Z") == ["z14"]
    search(client, "Observation", [("date", "2026-03-01T00:30:00+14:30")], t, headers=STRICT,
           status=400)
    search(client, "Observation", [("date", "2016-12-31T23:59:61Z")], t, headers=STRICT,
           status=400)


def test_sorted_paging_through_ties(client):
    """Equal keys are ordered by creation, and the cursor holds that too: a page boundary
    inside a run of ties neither repeats nor skips; a resource created meanwhile with the
    same key comes after the others of its run (it was created last), so it is seen."""
    t = "paging-ties"
    for i in range(5):
        put(client, tagged(t, {"resourceType": "Patient", "id": f"tie{i}",
                               "birthDate": "1980"}))
    put(client, tagged(t, {"resourceType": "Patient", "id": "tie-early",
                           "birthDate": "1970"}))
    url = "Patient?" + encode([("_tag", f"{TAG_SYSTEM}|{t}"), ("_sort", "birthdate"),
                               ("_count", "2")])
    seen, r, step = [], client.get(url), 0
    while True:
        assert r.status == 200, r
        seen.extend(e["resource"]["id"] for e in r.json.get("entry", []))
        step += 1
        if step == 2:  # after tie-early tie0 tie1 tie2
            put(client, tagged(t, {"resourceType": "Patient", "id": "tie-new",
                                   "birthDate": "1980"}))
            assert client.delete("Patient/tie3").status == 204
        nxt = [x["url"] for x in r.json.get("link", []) if x["relation"] == "next"]
        if not nxt:
            break
        r = client.get(nxt[0])
    assert seen == ["tie-early", "tie0", "tie1", "tie2", "tie4", "tie-new"]
