"""
Encounter/[id]/$tcm: the Transitional Care Management report of a discharge. The Tasks are
written here as the transitional-care protocol makes them (identifier, protocol-action
extension, focus, due time); the clock is the test clock, walked forward through one patient's
discharge (Friday before Martin Luther King Jr. Day: the 2nd business day is Wednesday) from
pending to 99496, then a readmission within 30 days and another patient's missed episode. Who
may ask is who may read the Encounter. On SQLite and PostgreSQL.
"""
import json
import os
import time

import pytest

from conftest import ON_POSTGRES, Server, assert_outcome, fresh_database, run_cli
from test_access import STAFF_SCOPES, sign_in
from test_audit import entity, events
from test_login import APP_URI, PASSWORD

EXT = "http://concerto.dev/fhir/StructureDefinition/"
PLAN = "http://concerto.dev/fhir/PlanDefinition/transitional-care"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

PEOPLE = [
    {"resourceType": "Practitioner", "id": "p1"},
    {"resourceType": "Practitioner", "id": "p3"},
    {"resourceType": "Patient", "id": "pat1", "name": [{"family": "Ames", "given": ["Jane"]}]},
    {"resourceType": "Patient", "id": "pat2", "name": [{"family": "Bell", "given": ["Ray"]}]},
    {"resourceType": "CareTeam", "id": "ct1", "status": "active",
     "subject": {"reference": "Patient/pat1"},
     "participant": [{"member": {"reference": "Practitioner/p1"}}]},
    {"resourceType": "CareTeam", "id": "ct2", "status": "active",
     "subject": {"reference": "Patient/pat2"},
     "participant": [{"member": {"reference": "Practitioner/p1"}}]},
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
    for name, link in (("nurse1", "p1"), ("nurse3", "p3")):
        r = run_cli("user", "add", "--db", dbname, "--username", name, "--role", "nurse",
                    "--practitioner", link, "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    srv.tokens = {name: sign_in(srv, name, STAFF_SCOPES)["access_token"]
                  for name in ("nurse1", "nurse3")}
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def set_clock(srv, now):
    """Moves the server's clock, and takes a new token (the old one may have expired in the
    time skipped). The nurses' tokens are only good before the clock first moves."""
    r = srv.client.post("/admin/clock", body={"now": now})
    assert r.status == 200, r
    srv.token = None
    srv.client.token = srv.token = srv.get_token()


def created(srv, resource):
    r = srv.client.post(resource["resourceType"], resource)
    assert r.status == 201, r
    return r.json


def put(srv, resource):
    r = srv.client.request("PUT", f"{resource['resourceType']}/{resource['id']}", resource,
                           headers={"If-Match": f'W/"{resource["meta"]["versionId"]}"'})
    assert r.status == 200, r
    return r.json


def stay(patient, start, status="in-progress", **extra):
    e = {"resourceType": "Encounter", "status": status,
         "class": {"system": ACT_CODE, "code": "IMP"},
         "subject": {"reference": f"Patient/{patient}"}, "period": {"start": start}}
    e.update(extra)
    return e


def discharge(srv, encounter, end):
    body = dict(encounter)
    body["status"] = "finished"
    body["period"] = dict(encounter["period"], end=end)
    return put(srv, body)


def protocol_task(srv, encounter, action, due, version=2):
    """A Task as the protocol makes it for the discharge (version `version` of the Encounter)."""
    eid = encounter["id"]
    return created(srv, {
        "resourceType": "Task", "status": "ready", "intent": "order",
        "for": encounter["subject"], "focus": {"reference": f"Encounter/{eid}"},
        "description": action,
        "identifier": [{"system": "urn:concerto:protocol-action",
                        "value": f"transitional-care/{action}/Encounter/{eid}/_history/{version}"}],
        "extension": [{"url": EXT + "protocol-action", "valueString": f"{PLAN}#{action}"}],
        "restriction": {"period": {"end": due}}})


def attempt(srv, task, patient, status, sent, medium="PHONE", **extra):
    c = {"resourceType": "Communication", "status": status,
         "partOf": [{"reference": f"Task/{task['id']}"}],
         "subject": {"reference": f"Patient/{patient}"}, "sent": sent,
         "medium": [{"coding": [{"system": MODE, "code": medium}]}]}
    c.update(extra)
    return created(srv, c)


def tcm(srv, eid, who=None, method="GET", body=None):
    auth = srv.tokens[who] if who else None
    kw = {"auth": auth} if who else {}
    return srv.client.request(method, f"Encounter/{eid}/$tcm", body, **kw)


def report(r):
    """The Parameters as {name: value} with requirements by name and code's parts."""
    assert r.status == 200, r
    assert r.json["resourceType"] == "Parameters"
    out = {}
    for p in r.json["parameter"]:
        if "part" in p:
            parts = {}
            for part in p["part"]:
                value = next(v for k, v in part.items() if k.startswith("value"))
                if part["name"] == "satisfiedBy":
                    parts.setdefault("satisfiedBy", []).append(value["reference"])
                else:
                    parts[part["name"]] = value
            out[parts.pop("name", None) if p["name"] == "requirement" else p["name"]] = parts
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def test_errors_and_access(world):
    """Before the clock moves (the nurses' tokens are of the real time)."""
    srv = world
    assert_outcome(tcm(srv, "nosuch"), 404, "not-found")
    enc = created(srv, stay("pat1", "2026-11-01T08:00:00-05:00", status="finished"))
    r = tcm(srv, enc["id"])
    assert_outcome(r, 422, "business-rule", expression="Encounter.period.end")
    assert "it has no period.end" in r.json["issue"][0]["diagnostics"]
    # a nurse on no care team of the patient may not read the Encounter, nor its report
    enc = discharge(srv, created(srv, stay("pat1", "2026-11-01T08:00:00-05:00")),
                    "2026-11-03T10:00:00-05:00")
    assert_outcome(srv.client.get(f"Encounter/{enc['id']}", auth=srv.tokens["nurse3"]), 403,
                   "forbidden")
    assert_outcome(tcm(srv, enc["id"], who="nurse3"), 403, "forbidden")
    rep = report(tcm(srv, enc["id"], who="nurse1"))
    assert rep["patient"] == {"reference": "Patient/pat1"}
    # long past, nothing done: every requirement missed
    assert [rep[n]["status"] for n in ("interactive-contact", "face-to-face",
                                       "medication-reconciliation")] == ["missed"] * 3
    assert rep["code"]["status"] == "final"
    # recorded as a read of the Encounter, in the patient's trail
    srv.client.audit_auth = srv.auditor_token()
    deadline = time.monotonic() + 5
    while True:  # records are stored moments after the response
        found = events(srv.client, "patient=pat1&subtype=read")
        reads = [e for e in found if entity(e)["what"]["reference"] == f"Encounter/{enc['id']}"]
        if reads or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(reads) == 1, found
    assert reads[0]["outcome"] == "0"


def test_a_discharge_from_pending_to_99496_then_a_readmission(world):
    srv = world
    set_clock(srv, "2027-01-10T08:00:00-05:00")
    enc = created(srv, stay("pat1", "2027-01-10T08:00:00-05:00"))
    # the protocol's Tasks for the discharge (version 2 of the Encounter), made before it so
    # that the engine finds them there
    contact = protocol_task(srv, enc, "interactive-contact", "2027-01-20T23:59:59-05:00")
    protocol_task(srv, enc, "face-to-face-7", "2027-01-22T14:00:00-05:00")
    medrec = protocol_task(srv, enc, "medication-reconciliation-7", "2027-01-22T14:00:00-05:00")
    # still in hospital: no report
    r = tcm(srv, enc["id"])
    assert_outcome(r, 422, "business-rule", expression="Encounter.status")
    assert f"Encounter/{enc['id']} is not a discharge" in r.json["issue"][0]["diagnostics"]

    set_clock(srv, "2027-01-15T15:00:00-05:00")
    enc = discharge(srv, enc, "2027-01-15T14:00:00-05:00")  # Friday
    rep = report(tcm(srv, enc["id"]))
    assert rep["encounter"] == {"reference": f"Encounter/{enc['id']}"}
    assert rep["patient"] == {"reference": "Patient/pat1"}
    assert rep["discharge"] == "2027-01-15T14:00:00.000-05:00"
    assert rep["periodEnd"] == "2027-02-14T14:00:00.000-05:00"
    assert rep["complexity"] == "high"
    assert rep["eligible"] is True
    c = rep["interactive-contact"]
    # Monday 18 January is a holiday: Tuesday and Wednesday are the two business days
    assert c["deadline"] == "2027-01-20T23:59:59.999-05:00"
    assert c["status"] == "pending"
    assert c["task"] == {"reference": f"Task/{contact['id']}"}
    assert c["attempts"] == 0
    assert rep["face-to-face"]["deadline"] == "2027-01-22T23:59:59.999-05:00"
    assert rep["face-to-face"]["status"] == "pending"
    assert rep["medication-reconciliation"]["status"] == "pending"
    assert rep["medication-reconciliation"]["deadline"] == "2027-01-22T23:59:59.999-05:00"
    assert rep["code"] == {"code": "none", "status": "provisional", "reachable": "99496",
                           "reason": "pending: interactive contact, face-to-face visit, "
                                     "medication reconciliation; 99496 is still reachable"}

    # two unsuccessful attempts by the deadline satisfy the contact
    a1 = attempt(srv, contact, "pat1", "not-done", "2027-01-19T10:00:00-05:00",
                 statusReason={"text": "no answer"})
    rep = report(tcm(srv, enc["id"]))
    assert rep["interactive-contact"]["status"] == "pending"
    assert rep["interactive-contact"]["attempts"] == 1
    a2 = attempt(srv, contact, "pat1", "not-done", "2027-01-20T16:30:00-05:00", medium="VIDEOCONF")
    set_clock(srv, "2027-01-21T09:00:00-05:00")
    rep = report(tcm(srv, enc["id"]))
    c = rep["interactive-contact"]
    assert c["status"] == "met"
    assert c["attempts"] == 2
    assert c["satisfiedBy"] == [f"Communication/{a1['id']}", f"Communication/{a2['id']}"]
    assert c["metAt"] == "2027-01-20T16:30:00.000-05:00"

    # reconciliation done on Thursday (the time the Task was completed), the visit on Friday,
    # the 7th day
    medrec = put(srv, dict(medrec, status="in-progress"))
    set_clock(srv, "2027-01-21T11:00:00-05:00")
    medrec = put(srv, dict(medrec, status="completed"))
    rep = report(tcm(srv, enc["id"]))
    assert rep["medication-reconciliation"]["status"] == "met"
    assert rep["medication-reconciliation"]["satisfiedBy"] == [f"Task/{medrec['id']}"]
    assert rep["code"]["status"] == "provisional"
    set_clock(srv, "2027-01-22T16:00:00-05:00")
    visit = created(srv, {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": ACT_CODE, "code": "AMB"},
                          "subject": {"reference": "Patient/pat1"},
                          "period": {"start": "2027-01-22T15:00:00-05:00",
                                     "end": "2027-01-22T15:30:00-05:00"}})
    rep = report(tcm(srv, enc["id"]))
    f = rep["face-to-face"]
    assert f["status"] == "met"
    assert f["visit"] == {"reference": f"Encounter/{visit['id']}"}
    assert f["visitDate"] == "2027-01-22T15:00:00.000-05:00"
    assert rep["medication-reconciliation"]["deadline"] == "2027-01-22T23:59:59.999-05:00"
    assert rep["code"]["code"] == "99496"
    assert rep["code"]["status"] == "final"
    assert "reachable" not in rep["code"]
    # POST answers the same; it takes no parameters
    assert report(tcm(srv, enc["id"], method="POST"))["code"]["code"] == "99496"
    r = tcm(srv, enc["id"], method="POST",
            body={"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]})
    assert_outcome(r, 400, "invalid", expression="Parameters.parameter[0]")
    assert_outcome(tcm(srv, enc["id"], method="DELETE"), 405, "not-supported")

    # readmitted and discharged again within the 30 days: one TCM per 30 days
    set_clock(srv, "2027-01-28T09:00:00-05:00")
    again = created(srv, stay("pat1", "2027-01-28T09:00:00-05:00"))
    again = discharge(srv, again, "2027-01-30T12:00:00-05:00")
    rep = report(tcm(srv, again["id"]))
    assert rep["code"]["code"] == "none"
    assert rep["code"]["status"] == "final"
    assert rep["code"]["reason"] == (
        f"one TCM per patient per 30 days: Encounter/{enc['id']}, discharged "
        "2027-01-15T14:00:00.000-05:00, already supports 99496")
    # the first one is not affected by the later one
    assert report(tcm(srv, enc["id"]))["code"]["code"] == "99496"


def test_a_missed_episode(world):
    srv = world
    set_clock(srv, "2027-01-28T10:00:00-05:00")
    enc = created(srv, stay("pat2", "2027-01-26T10:00:00-05:00"))
    enc = discharge(srv, enc, "2027-01-28T08:00:00-05:00")  # Thursday, a stay of 2 days
    rep = report(tcm(srv, enc["id"]))
    assert rep["complexity"] == "moderate"
    assert rep["interactive-contact"]["deadline"] == "2027-02-01T23:59:59.999-05:00"
    assert rep["face-to-face"]["deadline"] == "2027-02-11T23:59:59.999-05:00"
    assert "task" not in rep["interactive-contact"]
    # a completed contact about the Encounter, but a letter: no interactive contact
    created(srv, {"resourceType": "Communication", "status": "completed",
                  "subject": {"reference": "Patient/pat2"},
                  "about": [{"reference": f"Encounter/{enc['id']}"}],
                  "sent": "2027-01-29T10:00:00-05:00",
                  "medium": [{"coding": [{"system": MODE, "code": "WRITTEN"}]}]})
    set_clock(srv, "2027-02-02T00:00:00-05:00")
    rep = report(tcm(srv, enc["id"]))
    assert rep["interactive-contact"]["status"] == "missed"
    assert rep["interactive-contact"]["successfulContacts"] == 0
    assert rep["code"] == {"code": "none", "status": "final",
                           "reason": "missed: interactive contact"}


def test_capability_statement_lists_tcm(world):
    r = world.client.get("metadata")
    assert r.status == 200, r
    encounter = next(t for t in r.json["rest"][0]["resource"] if t["type"] == "Encounter")
    assert [o["name"] for o in encounter["operation"]] == ["tcm", "readmissions"]
