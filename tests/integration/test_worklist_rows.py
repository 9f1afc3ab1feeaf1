"""
Task/$worklist reads the work rows the store keeps beside each open Task (docs/internals/
store.md, "Task work rows"): they must follow every way a Task is written. Tasks loaded by
`concerto import`, then changed by PATCH, by a transaction Bundle and by DELETE, appear in,
move between and leave the coordinator's worklist as the Tasks themselves say. On SQLite and
PostgreSQL, under the test clock.
"""
import datetime
import json
import os

import pytest

from conftest import ON_POSTGRES, Server, fresh_database, run_cli
from test_access import STAFF_SCOPES, sign_in
from test_login import PASSWORD
from test_worklist import COORDINATOR, NURSE, PEOPLE, buckets, clock, instant, role, worklist

DAY = datetime.timedelta(days=1)
PATCH = "application/json-patch+json"


def task(tid, pid, due, owner="Practitioner/pc", status="ready", performer=None, priority=None):
    t = {"resourceType": "Task", "id": tid, "status": status, "intent": "order",
         "for": {"reference": f"Patient/{pid}"},
         "restriction": {"period": {"end": instant(due)}}}
    if owner:
        t["owner"] = {"reference": owner}
    if performer:
        t["performerType"] = role(performer)
    if priority:
        t["priority"] = priority
    return t


@pytest.fixture(scope="module")
def srv():
    db = fresh_database() if ON_POSTGRES else None
    srv = Server(db=db, args=["--test-clock", "--token-ttl", "86400"])
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    dbname = str(srv.db)
    assert run_cli("init", "--db", dbname).returncode == 0
    # the due times are days away from the real clock: the test clock starts there
    now = datetime.datetime.now(datetime.timezone.utc)
    imported = [task("late", "pat1", now - 2 * DAY),
                task("later", "pat2", now + 10 * DAY),
                task("pool", "pat2", now + 5 * DAY, owner=None, status="requested",
                     performer=COORDINATOR),
                task("closed", "pat1", now - 2 * DAY, status="completed"),
                task("nurses", "pat1", now - 2 * DAY, owner="Practitioner/pn")]
    data = srv.dir / "data.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in PEOPLE + imported))
    r = run_cli("import", "--db", dbname, str(data))
    assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", dbname, "--username", "coord", "--role", "coordinator",
                "--practitioner", "pc", "--practitioner-role", "prc", "--password-stdin",
                input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", "http://127.0.0.1:9/callback")
    assert r.returncode == 0, r.stderr
    srv.start()
    srv.tokens = {"coord": sign_in(srv, "coord", STAFF_SCOPES)["access_token"]}
    srv.now = datetime.datetime.fromisoformat(clock(srv)["now"].replace("Z", "+00:00"))
    srv.tasks = {i: i for i in ("late", "later", "pool", "closed", "nurses")}
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def current(srv):
    """{bucket: [task ids]} of the coordinator's worklist, the buckets with any."""
    got = buckets(srv, worklist(srv, "coord"))
    return {b: names for b, (names, total) in got.items() if total}


def patch(srv, tid, ops):
    version = srv.client.get(f"Task/{tid}").json["meta"]["versionId"]
    r = srv.client.request("PATCH", f"Task/{tid}", ops,
                           headers={"Content-Type": PATCH, "If-Match": f'W/"{version}"'})
    assert r.status == 200, r.body
    return r.json


def test_imported_tasks_are_on_the_worklist(srv):
    assert current(srv) == {"overdue": ["late"], "upcoming": ["later"], "unassigned": ["pool"]}


def test_patches_move_tasks(srv):
    # due earlier and stat: still upcoming, first; then taken by the coordinator from the pool
    patch(srv, "later", [{"op": "replace", "path": "/restriction/period/end",
                          "value": instant(srv.now + 3 * DAY)}])
    patch(srv, "pool", [{"op": "add", "path": "/owner", "value": {"reference": "Practitioner/pc"}},
                        {"op": "replace", "path": "/status", "value": "received"},
                        {"op": "add", "path": "/priority", "value": "stat"}])
    assert current(srv) == {"overdue": ["late"], "upcoming": ["pool", "later"]}
    # handed to the nurse: off the coordinator's list; put on hold: into that bucket
    patch(srv, "pool", [{"op": "replace", "path": "/owner",
                         "value": {"reference": "Practitioner/pn"}}])
    for status in ("in-progress", "on-hold"):
        patch(srv, "later", [{"op": "replace", "path": "/status", "value": status}])
    assert current(srv) == {"overdue": ["late"], "on-hold": ["later"]}
    # back from the nurse's into the pool of the nurses: not the coordinator's
    patch(srv, "nurses", [{"op": "remove", "path": "/owner"},
                          {"op": "add", "path": "/performerType", "value": role(NURSE)}])
    assert current(srv) == {"overdue": ["late"], "on-hold": ["later"]}


def test_a_transaction_creates_and_closes_tasks(srv):
    new = task("fresh", "pat3", srv.now + 3 * DAY)
    del new["id"]
    late = srv.client.get("Task/late").json
    late["status"] = "cancelled"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8c3e2e0e-0000-4000-8000-000000000001", "resource": new,
         "request": {"method": "POST", "url": "Task"}},
        {"resource": late, "request": {"method": "PUT", "url": "Task/late",
                                       "ifMatch": f'W/"{late["meta"]["versionId"]}"'}}]}
    r = srv.client.post("", bundle)
    assert r.status == 200, r.body
    created = r.json["entry"][0]["response"]["location"].split("/")[1]
    srv.tasks[created] = "fresh"
    assert current(srv) == {"upcoming": ["fresh"], "on-hold": ["later"]}


def test_a_deleted_task_leaves(srv):
    assert srv.client.delete("Task/later").status in (200, 204)
    assert current(srv) == {"upcoming": ["fresh"]}
    # and a Task made again under the same id comes back
    r = srv.client.put("Task/later", task("later", "pat2", srv.now - DAY))
    assert r.status in (200, 201), r.body
    assert current(srv) == {"overdue": ["later"], "upcoming": ["fresh"]}


def test_risk_and_care_team_changes_count_at_once(srv):
    """The patients' risk (the store's risk rows) and the caller's roles in the care teams
    follow each write at once: a new RiskAssessment moves its patient's Tasks up, a withdrawn
    one gives way to the patient's earlier assessment, and a role change in a CareTeam brings
    that role's pool of the patient onto the worklist and takes it off again."""
    for tid, pid in (("r2", "pat2"), ("r3", "pat3")):
        r = srv.client.put(f"Task/{tid}", task(tid, pid, srv.now - 2 * DAY))
        assert r.status == 201, r.body
        srv.tasks[tid] = tid
    # pat2 is at moderate risk (0.5), pat3 has no assessment
    assert current(srv)["overdue"] == ["r2", "later", "r3"]
    ra = {"resourceType": "RiskAssessment", "status": "final",
          "subject": {"reference": "Patient/pat3"}, "occurrenceDateTime": instant(srv.now),
          "prediction": [{"probabilityDecimal": 0.95}]}
    r = srv.client.put("RiskAssessment/ra3", dict(ra, id="ra3"))
    assert r.status == 201, r.body
    assert current(srv)["overdue"] == ["r3", "r2", "later"]
    # an older, lower one does not count while the newer one stands
    old = dict(ra, id="ra3old", occurrenceDateTime="2020-01-01",
               prediction=[{"probabilityDecimal": 0.01}])
    assert srv.client.put("RiskAssessment/ra3old", old).status == 201
    assert current(srv)["overdue"] == ["r3", "r2", "later"]
    # withdrawn: the older one is the latest
    r = srv.client.put("RiskAssessment/ra3", dict(ra, id="ra3", status="entered-in-error"))
    assert r.status == 200, r.body
    assert current(srv)["overdue"] == ["r2", "later", "r3"]
    # and deleted: pat3 has no risk again, below pat2 still
    assert srv.client.delete("RiskAssessment/ra3old").status in (200, 204)
    assert current(srv)["overdue"] == ["r2", "later", "r3"]
    # pat2 at negligible risk: pat3 (none) still last, pat2's Tasks by due time
    r = srv.client.put("RiskAssessment/ra2", {
        "resourceType": "RiskAssessment", "id": "ra2", "status": "final",
        "subject": {"reference": "Patient/pat2"}, "occurrenceDateTime": instant(srv.now),
        "prediction": [{"probabilityDecimal": 0.0}]})
    assert r.status == 200, r.body
    assert current(srv)["overdue"] == ["r2", "later", "r3"]

    # the nurses' pool of pat3: not the coordinator's until the team makes her a nurse there
    pooled = task("np3", "pat3", srv.now + 2 * DAY, owner=None, status="requested",
                  performer=NURSE)
    assert srv.client.put("Task/np3", pooled).status == 201
    srv.tasks["np3"] = "np3"
    assert "unassigned" not in current(srv)
    team = srv.client.get("CareTeam/ct3").json
    team["participant"][0]["role"] = role(NURSE)
    r = srv.client.request("PUT", "CareTeam/ct3", team,
                           headers={"If-Match": f'W/"{team["meta"]["versionId"]}"'})
    assert r.status == 200, r.body
    assert current(srv)["unassigned"] == ["np3"]
    # her part in the team ended: the pool is not hers any more
    team = r.json
    team["participant"][0]["period"] = {"end": instant(srv.now - DAY)}
    r = srv.client.request("PUT", "CareTeam/ct3", team,
                           headers={"If-Match": f'W/"{team["meta"]["versionId"]}"'})
    assert r.status == 200, r.body
    assert "unassigned" not in current(srv)
