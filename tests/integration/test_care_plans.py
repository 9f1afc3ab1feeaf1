"""
Shared care plans: what the patient and each member of their care team add to the CarePlan is
recorded with its author (notes' authorReference, the contributor extensions of activities,
goals and addressed problems), stated authors must be the writer, and what someone
contributed stays as they wrote it; a patient adds notes only. On SQLite and PostgreSQL.

The people: nurse1 (Practitioner p1) and nurse2 (Practitioner p2) are on Jane Ames's care
team; nurse3 (p3) is on none; jane is the patient Jane Ames (pat1).
"""
import datetime
import json
from decimal import Decimal
import os

import pytest

from conftest import ON_POSTGRES, Server, assert_outcome, fresh_database, run_cli
from test_access import STAFF_SCOPES, sign_in
from test_login import APP_URI, PASSWORD

EXT = "http://concerto.dev/fhir/StructureDefinition/"
PEOPLE = [
    {"resourceType": "Practitioner", "id": "p1"},
    {"resourceType": "Practitioner", "id": "p2"},
    {"resourceType": "Practitioner", "id": "p3"},
    {"resourceType": "Patient", "id": "pat1", "name": [{"family": "Ames", "given": ["Jane"]}]},
    {"resourceType": "CareTeam", "id": "ct1", "status": "active",
     "subject": {"reference": "Patient/pat1"},
     "participant": [{"member": {"reference": "Practitioner/p1"}},
                     {"member": {"reference": "Practitioner/p2"}}]},
    {"resourceType": "Condition", "id": "cond1", "subject": {"reference": "Patient/pat1"},
     "code": {"text": "heart failure"}},
]


@pytest.fixture(scope="module")
def world():
    db = fresh_database() if ON_POSTGRES else None
    srv = Server(db=db, args=["--test-clock", "--token-ttl", "86400"])
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
    accounts = [("nurse1", "nurse", "--practitioner", "p1"),
                ("nurse2", "nurse", "--practitioner", "p2"),
                ("nurse3", "nurse", "--practitioner", "p3"),
                ("jane", "patient", "--patient", "pat1")]
    for name, role, flag, link in accounts:
        r = run_cli("user", "add", "--db", dbname, "--username", name, "--role", role, flag, link,
                    "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", dbname, "--username", "admin1", "--role", "admin",
                "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser launch/patient patient/*.rs patient/CarePlan.cruds user/*.cruds",
                "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    srv.tokens = {name: sign_in(srv, name, STAFF_SCOPES)["access_token"]
                  for name in ("nurse1", "nurse2", "nurse3", "admin1")}
    jane = sign_in(srv, "jane", "launch/patient patient/*.rs patient/CarePlan.cruds")
    srv.tokens["jane"] = jane["access_token"]
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def as_(srv, who):
    def request(method, url, body=None, headers=None):
        return srv.client.request(method, url, body, headers=headers, auth=srv.tokens[who])
    return request


def plan(**extra):
    p = {"resourceType": "CarePlan", "status": "active", "intent": "plan",
         "subject": {"reference": "Patient/pat1"}, "title": "Heart failure plan"}
    p.update(extra)
    return p


def without_meta(resource):
    body = dict(resource)
    body.pop("meta", None)
    return body


def stamps(entry):
    return {e["url"][len(EXT):]: e.get("valueReference", e.get("valueDateTime"))
            for e in entry.get("extension", []) if e["url"].startswith(EXT)}


def test_team_members_contributions_are_stamped(world):
    nurse1, nurse2 = as_(world, "nurse1"), as_(world, "nurse2")
    r = nurse1("POST", "CarePlan", plan(
        note=[{"text": "daily weights"}],
        activity=[{"detail": {"status": "scheduled", "description": "weigh daily"}}],
        addresses=[{"reference": "Condition/cond1"}]))
    assert r.status == 201, r
    created = r.json
    assert created["note"][0]["authorReference"] == {"reference": "Practitioner/p1"}
    assert created["note"][0]["time"] == created["meta"]["lastUpdated"]
    s = stamps(created["activity"][0])
    assert s == {"contributor": {"reference": "Practitioner/p1"},
                 "contributed": created["meta"]["lastUpdated"]}
    assert stamps(created["addresses"][0])["contributor"] == {"reference": "Practitioner/p1"}
    # nurse2 adds a note and an activity; nurse1's stay as they were
    body = without_meta(created)
    body["note"] = body["note"] + [{"text": "call if gaining 2 kg"}]
    body["activity"] = body["activity"] + [{"reference": {"reference": "Task/t-call"}}]
    r = nurse2("PUT", f"CarePlan/{created['id']}", body)
    assert r.status == 200, r
    updated = r.json
    assert updated["note"][0] == created["note"][0]
    assert updated["note"][1]["authorReference"] == {"reference": "Practitioner/p2"}
    assert updated["activity"][0] == created["activity"][0]
    assert stamps(updated["activity"][1]) == {"contributor": {"reference": "Practitioner/p2"},
                                              "contributed": updated["meta"]["lastUpdated"]}
    # a stated contributed time is the server's to set
    body = without_meta(updated)
    body["goal"] = [{"reference": "Goal/g1", "extension": [
        {"url": EXT + "contributed", "valueDateTime": "2001-01-01T00:00:00Z"}]}]
    r = nurse2("PUT", f"CarePlan/{created['id']}", body)
    assert r.status == 200, r
    assert stamps(r.json["goal"][0]) == {"contributor": {"reference": "Practitioner/p2"},
                                         "contributed": r.json["meta"]["lastUpdated"]}


def test_forged_authors_are_refused(world):
    nurse1, nurse2 = as_(world, "nurse1"), as_(world, "nurse2")
    created = nurse1("POST", "CarePlan", plan(note=[{"text": "mine"}])).json
    url = f"CarePlan/{created['id']}"
    body = without_meta(created)
    body["note"] = body["note"] + [{"text": "said p1",
                                    "authorReference": {"reference": "Practitioner/p1"}}]
    assert_outcome(nurse2("PUT", url, body), 422, "business-rule",
                   "CarePlan.note[1] names Practitioner/p1 as its author, but it is written by "
                   "Practitioner/p2", expression="CarePlan.note[1].authorReference")
    body["note"][1] = {"text": "said someone", "authorString": "Dr Who"}
    assert_outcome(nurse2("PUT", url, body), 422, "business-rule",
                   expression="CarePlan.note[1].authorString")
    body = without_meta(created)
    body["activity"] = [{"reference": {"reference": "Task/x"}, "extension": [
        {"url": EXT + "contributor", "valueReference": {"reference": "Patient/pat1"}}]}]
    assert_outcome(nurse2("PUT", url, body), 422, "business-rule",
                   "names Patient/pat1 as its contributor", expression="CarePlan.activity[0].extension")
    # someone else's note cannot be edited or removed; one's own can
    body = without_meta(created)
    body["note"] = [{"text": "not what p1 said",
                     "authorReference": {"reference": "Practitioner/p1"},
                     "time": created["note"][0]["time"]}]
    assert_outcome(nurse2("PUT", url, body), 422, "business-rule",
                   "CarePlan.note[0] was contributed by Practitioner/p1 and cannot be changed or "
                   "removed by anyone else", expression="CarePlan.note[0]")
    del body["note"]
    assert_outcome(nurse2("PUT", url, body), 422, "business-rule", expression="CarePlan.note[0]")
    r = nurse1("PUT", url, body)
    assert r.status == 200, r
    assert "note" not in r.json
    assert r.json["meta"]["versionId"] == "2"


def test_patient_adds_notes_only(world):
    nurse1, jane = as_(world, "nurse1"), as_(world, "jane")
    created = nurse1("POST", "CarePlan", plan(note=[{"text": "low salt"}])).json
    url = f"CarePlan/{created['id']}"
    body = without_meta(created)
    body["note"] = body["note"] + [{"text": "I weigh myself every morning"}]
    r = jane("PUT", url, body)
    assert r.status == 200, r
    assert r.json["note"][1]["authorReference"] == {"reference": "Patient/pat1"}
    assert r.json["note"][0] == created["note"][0]
    mine = r.json
    body = without_meta(mine)
    body["status"] = "completed"
    assert_outcome(jane("PUT", url, body), 403, "forbidden",
                   "a patient may add notes to their CarePlan (and change or withdraw their "
                   "own), not change CarePlan.status", expression="CarePlan.status")
    body = without_meta(mine)
    body["activity"] = [{"reference": {"reference": "Task/x"}}]
    assert_outcome(jane("PUT", url, body), 403, "forbidden", expression="CarePlan.activity")
    body = without_meta(mine)
    body["note"] = [mine["note"][1]]
    assert_outcome(jane("PUT", url, body), 422, "business-rule", expression="CarePlan.note[0]")
    assert_outcome(jane("POST", "CarePlan", plan()), 403, "forbidden",
                   "a patient cannot create a CarePlan")
    assert_outcome(jane("DELETE", url), 403, "forbidden")
    # her own note she may withdraw
    body["note"] = [mine["note"][0]]
    r = jane("PUT", url, body)
    assert r.status == 200, r
    assert r.json["note"] == [created["note"][0]]


def test_outside_the_care_team(world):
    created = as_(world, "nurse1")("POST", "CarePlan", plan()).json
    body = without_meta(created)
    body["note"] = [{"text": "hello"}]
    r = as_(world, "nurse3")("PUT", f"CarePlan/{created['id']}", body)
    assert_outcome(r, 403, "forbidden")


def test_goals(world):
    nurse1 = as_(world, "nurse1")
    goal = {"resourceType": "Goal", "lifecycleStatus": "active",
            "achievementStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                "code": "in-progress"}]},
            "description": {"text": "weight under 80 kg"},
            "subject": {"reference": "Patient/pat1"},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org",
                                                "code": "29463-7"}]},
                        "detailQuantity": {"value": 80, "unit": "kg",
                                           "system": "http://unitsofmeasure.org", "code": "kg"},
                        "dueDate": "2030-01-01"}]}
    r = nurse1("POST", "Goal", goal)
    assert r.status == 201, r
    gid = r.json["id"]
    r = nurse1("GET", "Goal?patient=pat1&lifecycle-status=active&achievement-status=in-progress")
    assert r.status == 200, r
    assert [e["resource"]["id"] for e in r.json.get("entry", [])] == [gid]
    r = nurse1("POST", "Goal", dict(goal, lifecycleStatus="done"))
    assert_outcome(r, 422, "code-invalid", expression="Goal.lifecycleStatus")
    r = nurse1("POST", "CarePlan", plan(goal=[{"reference": f"Goal/{gid}"}]))
    assert r.status == 201, r
    assert stamps(r.json["goal"][0])["contributor"] == {"reference": "Practitioner/p1"}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_adherence(world):
    nurse1 = as_(world, "nurse1")
    clock = world.client.get("/admin/clock")
    assert clock.status == 200, clock
    t0 = datetime.datetime.fromisoformat(clock.json["now"].replace("Z", "+00:00"))
    day = datetime.timedelta(days=1)
    hour = datetime.timedelta(hours=1)
    due = iso(t0 + 6 * hour)

    def task(status, due_at, **extra):
        body = {"resourceType": "Task", "status": status, "intent": "order",
                "for": {"reference": "Patient/pat1"}, "restriction": {"period": {"end": due_at}}}
        body.update(extra)
        r = nurse1("POST", "Task", body)
        assert r.status == 201, r
        return r.json

    early = task("completed", due)
    open_task = task("ready", due)
    late = task("ready", due)
    later = task("ready", iso(t0 + 10 * day))
    executed = task("ready", due)
    referral = nurse1("POST", "ServiceRequest", {
        "resourceType": "ServiceRequest", "status": "completed", "intent": "order",
        "subject": {"reference": "Patient/pat1"}, "occurrenceDateTime": due}).json
    visit = nurse1("POST", "Appointment", {
        "resourceType": "Appointment", "status": "booked", "start": due,
        "end": iso(t0 + 7 * hour),
        "participant": [{"actor": {"reference": "Patient/pat1"}, "status": "accepted"}]}).json
    activities = [{"reference": {"reference": f"Task/{t['id']}"}}
                  for t in (early, open_task, late, later, executed)]
    activities += [{"reference": {"reference": f"ServiceRequest/{referral['id']}"}},
                   {"reference": {"reference": f"Appointment/{visit['id']}"}},
                   {"detail": {"status": "completed", "description": "education",
                               "scheduledPeriod": {"end": due}}},
                   {"detail": {"status": "scheduled", "scheduledString": "weekly"}},
                   {"reference": {"reference": "Task/not-there"}}]
    cp = nurse1("POST", "CarePlan", plan(activity=activities)).json

    def adherence(who="nurse1"):
        r = as_(world, who)("GET", f"CarePlan/{cp['id']}/$adherence")
        assert r.status == 200, r
        assert r.json["resourceType"] == "Parameters"
        top = {p["name"]: next(v for k, v in p.items() if k.startswith("value"))
               for p in r.json["parameter"] if p["name"] != "activity"}
        rows = [{p["name"]: next(v for k, v in p.items() if k.startswith("value"))
                 for p in a["part"]} for a in r.json["parameter"] if a["name"] == "activity"]
        return top, rows

    top, rows = adherence()
    assert [r["outcome"] for r in rows] == [
        "on-time", "not-yet-due", "not-yet-due", "not-yet-due", "not-yet-due", "on-time",
        "not-yet-due", "on-time", "no-due-time", "unknown"]
    assert (top["due"], top["onTime"], top["late"], top["notDone"], top["notYetDue"]) == \
        (3, 3, 0, 0, 5)
    assert top["adherence"] == 1
    assert rows[0]["reference"] == {"reference": f"Task/{early['id']}"}
    assert rows[0]["due"] == due and rows[0]["done"] is True
    assert rows[7]["activity"] == "CarePlan.activity[7]"

    # twelve hours on: the open Task is overdue, the late one is done after its due time, the
    # executed one was done (executionPeriod.end) before it, the appointment was missed
    r = world.client.post("/admin/clock", body={"advance": "PT12H"})
    assert r.status == 200, r

    def move(t, status, **extra):
        body = without_meta(t)
        body.update(status=status, **extra)
        r = nurse1("PUT", f"Task/{t['id']}", body,
                   headers={"If-Match": f'W/"{t["meta"]["versionId"]}"'})
        assert r.status == 200, r
        return r.json

    move(move(late, "in-progress"), "completed")
    move(move(executed, "in-progress"), "completed",
         executionPeriod={"end": iso(t0 + 3 * hour)})
    body = without_meta(visit)
    body["status"] = "noshow"
    assert nurse1("PUT", f"Appointment/{visit['id']}", body).status == 200
    top, rows = adherence()
    assert [r["outcome"] for r in rows] == [
        "on-time", "not-done", "late", "not-yet-due", "on-time", "on-time", "not-done",
        "on-time", "no-due-time", "unknown"]
    assert (top["due"], top["onTime"], top["late"], top["notDone"], top["notYetDue"]) == \
        (7, 4, 1, 2, 1)
    assert top["adherence"] == Decimal("0.57")
    assert rows[2]["done"] is True and rows[2]["doneAt"] > due
    assert rows[4]["doneAt"] == iso(t0 + 3 * hour)
    # the patient sees her own plan's figures; someone outside the team does not
    assert adherence("jane")[0]["due"] == 7
    assert_outcome(as_(world, "nurse3")("GET", f"CarePlan/{cp['id']}/$adherence"), 403,
                   "forbidden")
    assert_outcome(nurse1("POST", f"CarePlan/{cp['id']}/$adherence", {}), 405, "not-supported")


def test_adherence_absent_when_nothing_is_due(world):
    nurse1 = as_(world, "nurse1")
    cp = nurse1("POST", "CarePlan", plan(activity=[
        {"detail": {"status": "scheduled", "scheduledPeriod": {"end": "2999-01-01"}}}])).json
    r = nurse1("GET", f"CarePlan/{cp['id']}/$adherence")
    assert r.status == 200, r
    names = [p["name"] for p in r.json["parameter"]]
    assert "adherence" not in names
    assert {"name": "due", "valueInteger": 0} in r.json["parameter"]


def test_capability_statement_lists_adherence(world):
    r = world.client.get("metadata")
    assert r.status == 200, r
    care_plan = [t for t in r.json["rest"][0]["resource"] if t["type"] == "CarePlan"][0]
    assert [op["name"] for op in care_plan["operation"]] == ["adherence"]


def test_entries_from_before_attribution(world):
    # a service (import, the engine) writes entries as they are: no stamps
    r = world.client.post("CarePlan", plan(note=[{"text": "imported"}],
                                           activity=[{"reference": {"reference": "Task/old"}}]))
    assert r.status == 201, r
    old = r.json
    assert old["note"] == [{"text": "imported"}]
    assert "extension" not in old["activity"][0]
    url = f"CarePlan/{old['id']}"
    body = without_meta(old)
    del body["note"]
    assert_outcome(as_(world, "jane")("PUT", url, body), 403, "forbidden",
                   expression="CarePlan.note[0]")
    # staff may edit it; what they write is theirs
    body["activity"] = [{"reference": {"reference": "Task/new"}}]
    r = as_(world, "nurse2")("PUT", url, body)
    assert r.status == 200, r
    assert "note" not in r.json
    assert stamps(r.json["activity"][0])["contributor"] == {"reference": "Practitioner/p2"}
