"""
GET Task/$worklist: a staff member's open Tasks (their own, and the unowned ones in a role pool
of theirs) on the patients they may see, in buckets (overdue, due-today, upcoming, on-hold,
unassigned), ordered overdue first, then priority, then the patient's risk, then due time.
Under the test clock, on SQLite and PostgreSQL.

The people: coord (Practitioner pc, PractitionerRole prc coded care coordinator) is on the
teams of pat1, pat2 and pat3; nurse (pn, PractitionerRole prn coded registered nurse) is on
pat1's and pat3's; social (ps, PractitionerRole prs without a code) is a social worker in
pat1's team only; pat9 belongs to another coordinator (po); jane is the patient pat1.
"""
import base64
import datetime
import json
import os
import time

import pytest

from conftest import ON_POSTGRES, Server, assert_outcome, fresh_database, run_cli
from test_access import STAFF_SCOPES, as_, sign_in
from test_audit import events
from test_login import PASSWORD

SCT = "http://snomed.info/sct"
COORDINATOR, NURSE, SOCIAL = "768820003", "224535009", "106328005"
EXT_TOTAL = "http://concerto.dev/fhir/StructureDefinition/worklist-total"
BUCKETS = ["overdue", "due-today", "upcoming", "on-hold", "unassigned"]


def role(code):
    return [{"coding": [{"system": SCT, "code": code}]}]


def participant(who, code):
    return {"member": {"reference": f"Practitioner/{who}"}, "role": role(code)}


def care_team(tid, pid, *participants):
    return {"resourceType": "CareTeam", "id": tid, "status": "active",
            "subject": {"reference": f"Patient/{pid}"}, "participant": list(participants)}


PEOPLE = [
    {"resourceType": "Practitioner", "id": p} for p in ("pc", "pn", "ps", "po")
] + [
    {"resourceType": "PractitionerRole", "id": "prc", "practitioner": {"reference": "Practitioner/pc"},
     "code": role(COORDINATOR)},
    {"resourceType": "PractitionerRole", "id": "prn", "practitioner": {"reference": "Practitioner/pn"},
     "code": role(NURSE)},
    {"resourceType": "PractitionerRole", "id": "prs", "practitioner": {"reference": "Practitioner/ps"}},
] + [
    {"resourceType": "Patient", "id": p} for p in ("pat1", "pat2", "pat3", "pat9")
] + [
    care_team("ct1", "pat1", participant("pc", COORDINATOR), participant("pn", NURSE),
              participant("ps", SOCIAL)),
    care_team("ct2", "pat2", participant("pc", COORDINATOR)),
    care_team("ct3", "pat3", participant("pc", COORDINATOR), participant("pn", NURSE)),
    care_team("ct9", "pat9", participant("po", COORDINATOR)),
    # the patients' risk: the latest assessment counts
    {"resourceType": "RiskAssessment", "id": "ra1old", "status": "final",
     "subject": {"reference": "Patient/pat1"}, "occurrenceDateTime": "2020-01-01",
     "prediction": [{"probabilityDecimal": 0.1}]},
    {"resourceType": "RiskAssessment", "id": "ra1", "status": "final",
     "subject": {"reference": "Patient/pat1"}, "occurrenceDateTime": "2024-01-01",
     "prediction": [{"probabilityDecimal": 0.9}]},
    {"resourceType": "RiskAssessment", "id": "ra2", "status": "final",
     "subject": {"reference": "Patient/pat2"}, "occurrenceDateTime": "2024-01-01",
     "prediction": [{"qualitativeRisk": {"coding": [
         {"system": "http://terminology.hl7.org/CodeSystem/risk-probability",
          "code": "moderate"}]}}]},
]


def clock(srv):
    r = srv.client.get("/admin/clock")
    assert r.status == 200, r
    return r.json


def instant(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    accounts = [("coord", "coordinator", "--practitioner", "pc", "--practitioner-role", "prc"),
                ("nurse", "nurse", "--practitioner", "pn", "--practitioner-role", "prn"),
                ("social", "social-worker", "--practitioner", "ps", "--practitioner-role", "prs"),
                ("jane", "patient", "--patient", "pat1")]
    for name, kind, *links in accounts:
        r = run_cli("user", "add", "--db", dbname, "--username", name, "--role", kind, *links,
                    "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser launch/patient patient/*.rs user/*.cruds",
                "--redirect-uri", "http://127.0.0.1:9/callback")
    assert r.returncode == 0, r.stderr
    srv.start()
    # sign in on the real clock (second factors), then move to a working hour in New York so
    # that "today" has hours left: tokens live a day, the move is at most 18 hours
    srv.tokens = {n: sign_in(srv, n, STAFF_SCOPES)["access_token"]
                  for n in ("coord", "nurse", "social")}
    srv.tokens["jane"] = sign_in(srv, "jane", "launch/patient patient/*.rs")["access_token"]
    local = datetime.datetime.fromisoformat(clock(srv)["local"])
    if not 6 <= local.hour < 16:
        target = local.replace(hour=10, minute=0, second=0, microsecond=0)
        if target <= local:
            target += datetime.timedelta(days=1)
        assert srv.client.post("/admin/clock", body={"now": instant(target)}).status == 200
    srv.now = datetime.datetime.fromisoformat(clock(srv)["now"].replace("Z", "+00:00"))
    srv.tasks = {}

    def task(name, pid, due=None, owner="Practitioner/pc", priority=None, status="ready",
             performer=None, code=None):
        t = {"resourceType": "Task", "status": status, "intent": "order",
             "for": {"reference": f"Patient/{pid}"}}
        if owner:
            t["owner"] = {"reference": owner}
        if due is not None:
            t["restriction"] = {"period": {"end": instant(srv.now + due)}}
        if priority:
            t["priority"] = priority
        if performer:
            t["performerType"] = role(performer)
        if code:
            t["code"] = {"coding": [{"system": "urn:test", "code": code}]}
        r = srv.client.post("Task", t)
        assert r.status == 201, r
        srv.tasks[r.json["id"]] = name

    h = lambda n: datetime.timedelta(hours=n)
    task("o1", "pat1", h(-1))
    task("o2", "pat3", h(-2), priority="stat", code="call")
    task("o3", "pat2", h(-3))
    task("o4", "pat1", h(-5), owner="PractitionerRole/prc")
    task("d1", "pat3", h(1), priority="urgent")
    task("d2", "pat1", h(3), code="call")
    task("d3", "pat1", datetime.timedelta(minutes=30))
    task("u1", "pat2", h(72))
    task("u2", "pat3", None, priority="asap")
    task("u3", "pat2", h(48))
    task("h1", "pat1", h(48), priority="stat", status="on-hold")
    task("h2", "pat1", h(-1), status="on-hold")
    task("pool-coord", "pat2", h(24), owner=None, status="requested", performer=COORDINATOR)
    task("pool-nurse", "pat1", h(24), owner=None, status="requested", performer=NURSE)
    task("pool-social", "pat1", h(-2), owner=None, status="requested", performer=SOCIAL)
    task("pool-social-3", "pat3", h(-2), owner=None, status="requested", performer=SOCIAL)
    # not on anyone's worklist here: finished, someone else's, another team's patient
    task("done", "pat1", h(-1), status="completed")
    task("theirs", "pat1", h(-1), owner="Practitioner/pn")
    task("elsewhere", "pat9", h(-1))
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def worklist(srv, who, query="", method="GET", body=None):
    url = "Task/$worklist" + (f"?{query}" if query else "")
    r = as_(srv, who)(method, url, body)
    return r


def buckets(srv, r):
    """{bucket: ([task names listed], total)} of a worklist response, after checking that the
    Tasks that follow the Lists are those listed, in order."""
    assert r.status == 200, r
    b = r.json
    assert b["resourceType"] == "Bundle" and b["type"] == "collection"
    out, listed = {}, []
    for e in b.get("entry", []):
        res = e["resource"]
        if res["resourceType"] == "List":
            code = res["code"]["coding"][0]
            assert code["system"] == "http://concerto.dev/fhir/CodeSystem/worklist-bucket"
            total = [x["valueInteger"] for x in res["extension"] if x["url"] == EXT_TOTAL]
            ids = [x["item"]["reference"].split("/")[1] for x in res.get("entry", [])]
            out[code["code"]] = ([srv.tasks[i] for i in ids], total[0])
            listed += ids
    tasks = [e["resource"]["id"] for e in b.get("entry", [])
             if e["resource"]["resourceType"] == "Task"]
    assert tasks == listed
    return out


def test_the_coordinators_worklist_in_order(world):
    got = buckets(world, worklist(world, "coord"))
    assert got == {
        # overdue: stat first; then pat1 (risk 0.9) before pat2 (moderate); then due time
        "overdue": (["o2", "o4", "o1", "o3"], 4),
        # due today: urgent first, then the earlier due
        "due-today": (["d1", "d3", "d2"], 3),
        # upcoming: asap without a due time first, then the earlier due
        "upcoming": (["u2", "u3", "u1"], 3),
        # on hold whatever the due: the overdue one before the stat one
        "on-hold": (["h2", "h1"], 2),
        # the pool of the coordinator's role (PractitionerRole.code)
        "unassigned": (["pool-coord"], 1),
    }


def test_role_pools(world):
    got = buckets(world, worklist(world, "nurse"))
    # the nurse's own Task, and the nurse pool of a patient of hers; not the coordinator's
    assert got["unassigned"] == (["pool-nurse"], 1)
    assert got["overdue"] == (["theirs"], 1)
    assert sum(total for _, total in got.values()) == 2
    # the social worker's role comes from the care team (her PractitionerRole has no code),
    # and only for the patient of that team: pat3 is not hers
    got = buckets(world, worklist(world, "social"))
    assert got["unassigned"] == (["pool-social"], 1)
    assert sum(total for _, total in got.values()) == 1


def test_filters(world):
    got = buckets(world, worklist(world, "coord", "patient=pat2"))
    assert got["overdue"] == (["o3"], 1)
    assert got["upcoming"] == (["u3", "u1"], 2)
    assert got["unassigned"] == (["pool-coord"], 1)
    assert buckets(world, worklist(world, "coord", "patient=Patient/pat2")) == got
    got = buckets(world, worklist(world, "coord", "priority=stat"))
    assert got["overdue"] == (["o2"], 1) and got["on-hold"] == (["h1"], 1)
    assert sum(total for _, total in got.values()) == 2
    got = buckets(world, worklist(world, "coord", "code=urn:test|call"))
    assert got["overdue"] == (["o2"], 1) and got["due-today"] == (["d2"], 1)
    assert sum(total for _, total in got.values()) == 2
    got = buckets(world, worklist(world, "coord", "bucket=upcoming"))
    assert got == {"upcoming": (["u2", "u3", "u1"], 3)}
    # a team's view: its patient's Tasks of its members and its roles' pools
    got = buckets(world, worklist(world, "coord", "team=ct1"))
    assert got["overdue"] == (["o4", "o1", "theirs"], 3)
    assert got["unassigned"] == (["pool-social", "pool-nurse"], 2)
    # a team outside the caller's reach is refused like a read
    assert worklist(world, "coord", "team=ct9").status == 403


def test_count_truncates_but_totals_stay(world):
    got = buckets(world, worklist(world, "coord", "_count=2"))
    assert got["overdue"] == (["o2", "o4"], 4)
    assert got["due-today"] == (["d1", "d3"], 3)
    assert got["unassigned"] == (["pool-coord"], 1)
    got = buckets(world, worklist(world, "coord", "_count=0&bucket=overdue"))
    assert got == {"overdue": ([], 4)}


def test_post_with_parameters(world):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/pat2"}},
        {"name": "_count", "valueInteger": 1}]}
    got = buckets(world, worklist(world, "coord", method="POST", body=body))
    assert got["upcoming"] == (["u3"], 2)
    body = {"resourceType": "Parameters", "parameter": [{"name": "priority", "valueCode": "x"}]}
    assert_outcome(worklist(world, "coord", method="POST", body=body), 400, "invalid",
                   "priority must be routine, urgent, asap or stat, not \"x\"",
                   expression="priority")


def test_bad_parameters_name_themselves(world):
    cases = [("priority=high", "priority", "priority must be routine, urgent, asap or stat"),
             ("bucket=late", "bucket", "bucket must be one of overdue, due-today"),
             ("_count=-1", "_count", "_count must be a whole number from 0 to 1000"),
             ("_count=5000", "_count", "_count must be a whole number from 0 to 1000"),
             ("patient=a%20b", "patient", "patient must be a Patient id or Patient/[id]"),
             ("team=", "team", "team must be a CareTeam id"),
             ("owner=x", "owner", "$worklist has no parameter \"owner\""),
             ("bucket=overdue&bucket=upcoming", "bucket", "given more than once")]
    for query, name, text in cases:
        assert_outcome(worklist(world, "coord", query), 400, "invalid", text, expression=name)


def test_patients_and_others_have_no_worklist(world):
    assert_outcome(worklist(world, "jane"), 403, "forbidden", "a patient account has no worklist")
    assert_outcome(world.client.get("Task/$worklist"), 403, "forbidden",
                   "linked to no Practitioner or PractitionerRole")
    r = as_(world, "coord")("DELETE", "Task/$worklist")
    assert_outcome(r, 405, "not-supported")


def test_it_is_audited_as_a_search(world):
    world.client.audit_auth = world.auditor_token()
    assert worklist(world, "coord", "priority=stat&_count=7").status == 200

    def about_task(event):
        return [x for x in event["entity"] if x.get("what", {}).get("reference") == "Task"]

    # one record per patient shown (o2 is pat3's, from Task.for: Task is not in R4's Patient
    # compartment), as a search of Task with its query
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in events(world.client, "patient=pat3&subtype=search-type")
                 if about_task(e) and
                 base64.b64decode(about_task(e)[0].get("query", "")).decode() == "priority=stat&_count=7"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(found) == 1, found


def test_the_capability_statement_names_it(world):
    r = world.client.get("metadata")
    task = [x for x in r.json["rest"][0]["resource"] if x["type"] == "Task"][0]
    assert {"name": "worklist",
            "definition": "http://concerto.dev/fhir/OperationDefinition/Task-worklist"} \
        in task["operation"]


def test_time_moves_tasks_into_overdue(world):
    # last in the file: the clock only goes forward
    r = world.client.post("/admin/clock", body={"advance": "PT2H"})
    assert r.status == 200, r
    got = buckets(world, worklist(world, "coord"))
    assert got["overdue"] == (["o2", "d1", "o4", "o1", "d3", "o3"], 6)
    assert got["due-today"] == (["d2"], 1)
