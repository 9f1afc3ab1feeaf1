"""
Encounter/$readmissions: the 30-day readmission measure as a MeasureReport. Hospital stays are
written through the FHIR API as the HL7 feed writes them, and the engine flags the readmissions
(docs/transitions.md); the dates are counted back from the server's clock at the start (New
York): a period long closed with a readmission within 30 days, one after 32 days, a patient
discharged dead, a discharge on the first and on the last day of the period and one the day
before it; a recent period pending until its 30-day window closes (the test clock walked to a
minute before and then to it). A nurse counts only the patients of her care teams. Bad
parameters are 400 naming the parameter. On SQLite and PostgreSQL.
"""
import base64
import datetime
import json
import os
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from conftest import ON_POSTGRES, Server, assert_outcome, fresh_database, run_cli, settle
from test_access import STAFF_SCOPES, sign_in
from test_audit import events
from test_login import APP_URI, PASSWORD

ZONE = ZoneInfo("America/New_York")
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
EXT = "http://concerto.dev/fhir/StructureDefinition/"

PEOPLE = [
    {"resourceType": "Practitioner", "id": "p1"},
    {"resourceType": "Practitioner", "id": "p2"},
    *({"resourceType": "Patient", "id": pid, "name": [{"family": pid.title()}]}
      for pid in ("ames", "bell", "cole", "dunn", "egan", "ford")),
    # the nurse (p1) is on the care teams of ames and bell only
    *({"resourceType": "CareTeam", "id": f"ct-{pid}", "status": "active",
       "subject": {"reference": f"Patient/{pid}"},
       "participant": [{"member": {"reference": f"Practitioner/{who}"}}]}
      for pid, who in (("ames", "p1"), ("bell", "p1"), ("cole", "p2"), ("dunn", "p2"),
                       ("egan", "p2"), ("ford", "p2"))),
]


@pytest.fixture(scope="module")
def world():
    db = fresh_database() if ON_POSTGRES else None
    srv = Server(db=db, args=["--test-clock", "--token-ttl", "86400",
                              "--calendar-timezone", "America/New_York"])
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    dbname = str(srv.db)
    assert run_cli("init", "--db", dbname).returncode == 0
    data = srv.dir / "people.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in PEOPLE))
    r = run_cli("import", "--db", dbname, str(data))
    assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", dbname, "--username", "nurse1", "--role", "nurse",
                "--practitioner", "p1", "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    srv.nurse = sign_in(srv, "nurse1", STAFF_SCOPES)["access_token"]
    now = srv.client.get("/admin/clock")
    assert now.status == 200, now
    utc = datetime.datetime.fromisoformat(now.json["now"].replace("Z", "+00:00"))
    srv.today = utc.astimezone(ZONE).date()
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def local(day, hour, minute=0):
    """A local date and time in New York as a dateTime with its offset."""
    return datetime.datetime(day.year, day.month, day.day, hour, minute,
                             tzinfo=ZONE).isoformat()


def created(srv, resource):
    r = srv.client.post(resource["resourceType"], resource)
    assert r.status == 201, r
    return r.json


def stay(srv, pid, start, end=None, disposition="home"):
    """A stay of pid admitted at start; discharged at end (arriving already discharged, as a
    feed that missed the admission sends it) when end is given."""
    e = {"resourceType": "Encounter", "status": "finished" if end else "in-progress",
         "class": {"system": ACT_CODE, "code": "IMP"},
         "subject": {"reference": f"Patient/{pid}"}, "period": {"start": start}}
    if end:
        e["period"]["end"] = end
        e["hospitalization"] = {"dischargeDisposition": {"coding": [
            {"system": DISPOSITION, "code": disposition}]}}
    made = created(srv, e)
    settle(srv.client)
    return made


def readmissions(srv, start=None, end=None, who=None, method="GET", body=None, extra=""):
    query = "&".join(f"{k}={v}" for k, v in (("periodStart", start), ("periodEnd", end)) if v)
    url = "Encounter/$readmissions" + ("?" + query if query else "") + extra
    kw = {"auth": who} if who else {}
    return srv.client.request(method, url, body, **kw)


def populations(r):
    assert r.status == 200, r
    report = r.json
    assert report["resourceType"] == "MeasureReport"
    [group] = report["group"]
    counts = {}
    for p in group["population"]:
        [coding] = p["code"]["coding"]
        assert coding["system"] == POPULATION
        counts[coding["code"]] = p["count"]
    assert list(counts) == ["initial-population", "denominator-exclusion", "denominator",
                            "numerator"]
    return counts


def score(r):
    s = r.json["group"][0].get("measureScore")
    if s is not None:
        assert (s["unit"], s["system"], s["code"]) == ("1", "http://unitsofmeasure.org", "1")
        return s["value"]
    return None


def flag_of(srv, encounter):
    r = srv.client.get(f"Flag?identifier=urn:concerto:readmission|Encounter/{encounter['id']}")
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match"]


def test_populations_access_and_pending(world):
    srv = world
    today = srv.today
    first = today - datetime.timedelta(days=70)
    last = first + datetime.timedelta(days=29)
    day = lambda n: first + datetime.timedelta(days=n)  # noqa: E731

    # bell: discharged in the first half hour of the period, admitted again 32 days later
    bell = stay(srv, "bell", local(day(-3), 9), local(day(0), 0, 30))
    stay(srv, "bell", local(day(32), 9))
    # ames: discharged on day 5, admitted again 20 days later: a readmission
    ames = stay(srv, "ames", local(day(2), 8), local(day(4), 12))
    ames_again = stay(srv, "ames", local(day(24), 11))
    # cole: died in hospital
    stay(srv, "cole", local(day(10), 8), local(day(14), 16), disposition="exp")
    # dunn: discharged on the last evening of the period
    stay(srv, "dunn", local(day(25), 8), local(last, 23, 30))
    # egan: discharged the evening before the period, readmitted in it
    egan = stay(srv, "egan", local(day(-5), 8), local(day(-1), 23, 30))
    stay(srv, "egan", local(day(3), 10))

    [ames_flag] = flag_of(srv, ames_again)
    assert ames_flag["extension"] == [{"url": EXT + "readmission",
                                       "valueReference": {"reference": f"Encounter/{ames['id']}"}}]
    assert len(srv.client.get("Flag?identifier=urn:concerto:readmission|").json["entry"]) == 2
    assert bell["status"] == egan["status"] == "finished"

    # the administrator's system client counts every stay
    r = readmissions(srv, first, last)
    assert populations(r) == {"initial-population": 4, "denominator-exclusion": 1,
                              "denominator": 3, "numerator": 1}
    assert score(r) == Decimal("0.3333")
    report = r.json
    assert report["status"] == "complete"  # the window closed 10 days ago
    assert report["type"] == "summary"
    assert report["measure"] == "http://concerto.dev/fhir/Measure/readmission-30-day"
    assert report["period"] == {"start": first.isoformat(), "end": last.isoformat()}
    assert report["improvementNotation"]["coding"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
        "code": "decrease"}]
    assert report["date"].startswith(today.isoformat()), report["date"]
    assert report["evaluatedResource"] == [{"reference": f"Flag/{ames_flag['id']}"}]
    # the report is a valid R4 MeasureReport: the server stores it
    stored = srv.client.post("MeasureReport", report)
    assert stored.status == 201, stored

    # one day less at the end: dunn is out; egan's stay is in once the period starts a day early
    r = readmissions(srv, first, day(28))
    assert populations(r)["initial-population"] == 3
    r = readmissions(srv, day(-1), last)
    assert populations(r) == {"initial-population": 5, "denominator-exclusion": 1,
                              "denominator": 4, "numerator": 2}
    assert score(r) == Decimal("0.5")
    assert len(r.json["evaluatedResource"]) == 2

    # POST with a Parameters body answers the same
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "periodStart", "valueDate": first.isoformat()},
        {"name": "periodEnd", "valueDate": last.isoformat()}]}
    r = readmissions(srv, method="POST", body=body)
    assert populations(r)["numerator"] == 1 and score(r) == Decimal("0.3333")

    # the nurse sees ames and bell only
    r = readmissions(srv, first, last, who=srv.nurse)
    assert populations(r) == {"initial-population": 2, "denominator-exclusion": 0,
                              "denominator": 2, "numerator": 1}
    assert score(r) == Decimal("0.5")
    assert r.json["evaluatedResource"] == [{"reference": f"Flag/{ames_flag['id']}"}]
    # a period of no stay: no score
    r = readmissions(srv, "2001-01-01", "2001-01-31", who=srv.nurse)
    assert populations(r) == {"initial-population": 0, "denominator-exclusion": 0,
                              "denominator": 0, "numerator": 0}
    assert score(r) is None and "evaluatedResource" not in r.json
    assert r.json["status"] == "complete"
    # recorded as a search of Encounter in the trail of each patient counted, and only theirs
    srv.client.audit_auth = srv.auditor_token()
    query = f"periodStart={first}&periodEnd={last}".encode()

    def nurse_measures(pid):
        return [e for e in events(srv.client, f"patient={pid}&subtype=search-type")
                if e["agent"][0].get("name") == "nurse1"
                and any(x["what"]["reference"] == "Encounter"
                        and base64.b64decode(x.get("query", "")) == query
                        for x in e["entity"])]
    assert len(nurse_measures("ames")) == 1 and len(nurse_measures("bell")) == 1
    assert nurse_measures("cole") == []

    # a recent period: pending until 30 days after the day after its end
    recent_start = today - datetime.timedelta(days=5)
    recent_end = today - datetime.timedelta(days=1)
    stay(srv, "ford", local(recent_start, 8), local(today - datetime.timedelta(days=3), 12))
    r = readmissions(srv, recent_start, recent_end)
    assert populations(r)["denominator"] == 1 and score(r) == Decimal("0.0")
    assert r.json["status"] == "pending"
    closes = today + datetime.timedelta(days=30)
    before = datetime.datetime(closes.year, closes.month, closes.day, tzinfo=ZONE) - \
        datetime.timedelta(minutes=1)
    moved = srv.client.post("/admin/clock", body={"now": before.isoformat()})
    assert moved.status == 200, moved
    srv.token = None
    srv.client.token = srv.token = srv.get_token()
    assert readmissions(srv, recent_start, recent_end).json["status"] == "pending"
    moved = srv.client.post("/admin/clock", body={"now": local(closes, 0)})
    assert moved.status == 200, moved
    r = readmissions(srv, recent_start, recent_end)
    assert r.json["status"] == "complete"
    assert populations(r)["denominator"] == 1


@pytest.mark.parametrize("query, where, text", [
    ("?periodEnd=2026-03-31", "periodStart", "missing"),
    ("?periodStart=2026-03-01", "periodEnd", "missing"),
    ("", "periodStart", "missing"),
    ("?periodStart=2026-3-1&periodEnd=2026-03-31", "periodStart", "not a date"),
    ("?periodStart=2026-03-01&periodEnd=2026-02-30", "periodEnd", "not a date"),
    ("?periodStart=2026-03-01&periodEnd=2026-03-31T10:00:00Z", "periodEnd", "not a date"),
    ("?periodStart=2026-03-02&periodEnd=2026-03-01", "periodEnd", "before periodStart"),
    ("?periodStart=2026-03-01&periodEnd=2026-03-31&period=2026", "period", "no parameter"),
    ("?periodStart=2026-03-01&periodStart=2026-03-02&periodEnd=2026-03-31", "periodStart",
     "more than once"),
])
def test_bad_parameters(world, query, where, text):
    r = world.client.get("Encounter/$readmissions" + query)
    oo = assert_outcome(r, 400, "invalid", expression=where)
    assert where in oo["issue"][0]["diagnostics"] and text in oo["issue"][0]["diagnostics"]


def test_bad_bodies_and_methods(world):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "periodStart", "valueDate": "2026-03-01"},
        {"name": "periodEnd", "valueDate": "2026-03-31"},
        {"name": "measure", "valueString": "x"}]}
    r = readmissions(world, method="POST", body=body)
    assert_outcome(r, 400, "invalid", "no parameter \"measure\"",
                   expression="Parameters.parameter[2]")
    body["parameter"] = body["parameter"][:1]
    assert_outcome(readmissions(world, method="POST", body=body), 400, "invalid",
                   "periodEnd is missing", expression="periodEnd")
    r = world.client.request("DELETE", "Encounter/$readmissions?periodStart=2026-03-01")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, POST"
    ops = [op["name"] for res in world.client.get("metadata").json["rest"][0]["resource"]
           if res["type"] == "Encounter" for op in res["operation"]]
    assert ops == ["tcm", "readmissions"]
