"""Quantity search across UCUM units: a value with system http://unitsofmeasure.org is indexed
in canonical units too, and a search that names a UCUM unit compares canonical with
canonical (5.4 mg finds 0.0054 g; gt5 mg finds 1 g). Celsius and [degF] are converted to
kelvin by their offsets (37 Cel, 98.6 [degF] and 310.15 K are one temperature). Quantities
without the UCUM system, and units the server does not know, compare system and code as
written. Expected results are worked out by hand from the resources below.
"""
import sqlite3
import urllib.parse

from conftest import run_cli, sqlite_only

UCUM = "http://unitsofmeasure.org"
TAG = "urn:concerto:test|units"

# id -> valueQuantity
QUANTITIES = {
    "q-5.4mg": {"value": 5.4, "system": UCUM, "code": "mg", "unit": "mg"},
    "q-0.0054g": {"value": 0.0054, "system": UCUM, "code": "g", "unit": "g"},
    "q-5mg": {"value": 5, "system": UCUM, "code": "mg", "unit": "mg"},
    "q-6mg": {"value": 6, "system": UCUM, "code": "mg", "unit": "mg"},
    "q-1g": {"value": 1, "system": UCUM, "code": "g", "unit": "g"},
    "q-5400ug": {"value": 5400, "system": UCUM, "code": "ug", "unit": "µg"},
    "q-lt5mg": {"value": 5, "comparator": "<", "system": UCUM, "code": "mg", "unit": "mg"},
    "q-37cel": {"value": 37, "system": UCUM, "code": "Cel", "unit": "°C"},
    "q-98.6degf": {"value": 98.6, "system": UCUM, "code": "[degF]", "unit": "°F"},
    "q-310.15k": {"value": 310.15, "system": UCUM, "code": "K", "unit": "K"},
    "q-5.4mg-nosystem": {"value": 5.4, "unit": "mg"},
    "q-5.4mg-other": {"value": 5.4, "system": "http://example.org/units", "code": "mg"},
    "q-5.4mg-dl": {"value": 5.4, "system": UCUM, "code": "mg/dL", "unit": "mg/dL"},
    "q-54mg-l": {"value": 54, "system": UCUM, "code": "mg/L", "unit": "mg/L"},
}


def load(client):
    for oid, quantity in QUANTITIES.items():
        o = {"resourceType": "Observation", "id": oid, "status": "final",
             "meta": {"tag": [{"system": "urn:concerto:test", "code": "units"}]},
             "code": {"text": "amount"}, "valueQuantity": quantity}
        r = client.put(f"Observation/{oid}", o)
        assert r.status in (200, 201), r


def ids(client, value, name="value-quantity"):
    q = urllib.parse.urlencode([(name, value), ("_tag", TAG)])
    r = client.get(f"Observation?{q}", headers={"Prefer": "handling=strict"})
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


def test_equal_across_units(client):
    load(client)
    same = ["q-0.0054g", "q-5.4mg", "q-5400ug"]
    assert ids(client, f"5.4|{UCUM}|mg") == same
    assert ids(client, f"0.0054|{UCUM}|g") == same
    assert ids(client, f"5400|{UCUM}|ug") == same
    # the precision of the value given: 5 mg is [4.5, 5.5) mg
    assert ids(client, f"5|{UCUM}|mg") == ["q-0.0054g", "q-5.4mg", "q-5400ug", "q-5mg"]
    # a compound unit: 5.4 mg/dL is 54 mg/L
    assert ids(client, f"54|{UCUM}|mg/L") == ["q-5.4mg-dl", "q-54mg-l"]
    assert ids(client, f"0.054|{UCUM}|g/L") == ["q-5.4mg-dl", "q-54mg-l"]


def test_prefixes_across_units(client):
    load(client)
    # exact values: gt5 mg is above 0.005 g
    assert ids(client, f"gt5|{UCUM}|mg") == ["q-0.0054g", "q-1g", "q-5.4mg", "q-5400ug", "q-6mg"]
    # (a stored "< 5 mg" is [-inf, 5] mg, closed as every stored quantity: ge5 reaches it)
    assert ids(client, f"ge5|{UCUM}|mg") == [
        "q-0.0054g", "q-1g", "q-5.4mg", "q-5400ug", "q-5mg", "q-6mg", "q-lt5mg"]
    assert ids(client, f"gt0.9|{UCUM}|g") == ["q-1g"]
    assert ids(client, f"lt0.006|{UCUM}|g") == [
        "q-0.0054g", "q-5.4mg", "q-5400ug", "q-5mg", "q-lt5mg"]
    assert ids(client, f"le6000|{UCUM}|ug") == [
        "q-0.0054g", "q-5.4mg", "q-5400ug", "q-5mg", "q-6mg", "q-lt5mg"]
    # ne: every mass outside [5.35, 5.45) mg, the open-ended < 5 mg too
    assert ids(client, f"ne5.4|{UCUM}|mg") == ["q-1g", "q-5mg", "q-6mg", "q-lt5mg"]
    # ap: 5 mg widened by 10% each side is [4, 6) mg
    assert ids(client, f"ap5|{UCUM}|mg") == ["q-0.0054g", "q-5.4mg", "q-5400ug", "q-5mg",
                                             "q-lt5mg"]


def test_temperatures_by_offset(client):
    load(client)
    temperatures = ["q-310.15k", "q-37cel", "q-98.6degf"]
    assert ids(client, f"37|{UCUM}|Cel") == temperatures
    assert ids(client, f"98.6|{UCUM}|[degF]") == temperatures
    assert ids(client, f"310.15|{UCUM}|K") == temperatures
    assert ids(client, f"gt98|{UCUM}|[degF]") == temperatures
    assert ids(client, f"gt99|{UCUM}|[degF]") == []
    assert ids(client, f"lt0|{UCUM}|Cel") == []
    # a mass is not a temperature
    assert ids(client, f"gt0|{UCUM}|K") == temperatures


def test_without_ucum_as_written(client):
    load(client)
    # no system: code or unit as written, no conversion
    assert ids(client, "5.4||mg") == ["q-5.4mg", "q-5.4mg-nosystem", "q-5.4mg-other"]
    assert ids(client, "0.0054||g") == ["q-0.0054g"]
    # another system: as written
    assert ids(client, "5.4|http://example.org/units|mg") == ["q-5.4mg-other"]
    # a code that is not UCUM: system and code as written
    assert ids(client, f"5.4|{UCUM}|milligram") == []
    # a number alone
    assert "q-5.4mg" in ids(client, "5.4")


def test_sa_eb_and_other_dimensions(client):
    load(client)
    # sa and eb compare with the exact value, in canonical units
    assert ids(client, f"sa5|{UCUM}|mg") == ["q-0.0054g", "q-1g", "q-5.4mg", "q-5400ug", "q-6mg"]
    assert ids(client, f"eb0.0054|{UCUM}|g") == ["q-5mg", "q-lt5mg"]
    assert ids(client, f"eb5400|{UCUM}|ug") == ["q-5mg", "q-lt5mg"]
    # a unit of another dimension finds nothing of this one
    assert ids(client, f"gt0|{UCUM}|mL") == []


@sqlite_only("empties the canonical columns of a database file")
def test_reindex_fills_canonical_forms(make_server, tmp_dir):
    db = tmp_dir / "units.db"
    srv = make_server(db=db)
    load(srv.client)
    assert ids(srv.client, f"5.4|{UCUM}|mg") == ["q-0.0054g", "q-5.4mg", "q-5400ug"]
    assert srv.stop() == 0
    # rows as a database from before schema version 7 has them: no canonical form
    con = sqlite3.connect(db)
    con.execute("UPDATE ix_quantity SET canonical_code = NULL, canonical_low = NULL, "
                "canonical_high = NULL")
    con.commit()
    con.close()
    srv.start()
    assert ids(srv.client, f"5.4|{UCUM}|mg") == []
    assert srv.stop() == 0
    r = run_cli("reindex", "--db", str(db))
    assert r.returncode == 0, r.stderr
    srv.start()
    assert ids(srv.client, f"5.4|{UCUM}|mg") == ["q-0.0054g", "q-5.4mg", "q-5400ug"]
