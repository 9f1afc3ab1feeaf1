"""
Overdue Tasks, escalation and notifications under the test clock: an open Task is marked
overdue (extension EXT/overdue) when the clock passes its due time, not before; a finished one
never is; moving the due time moves the job (and later than an overdue mark, removes it). The
escalation steps of the Task's ActivityDefinition apply in order at their times on the business
calendar, each once, also across a crash. Assigning a Task to someone writes one Communication
to their inbox; claiming one's own writes none. On SQLite and PostgreSQL.
"""
import datetime
import json
import os
import time
import zoneinfo

from conftest import ROOT, create, patient, run_cli, settle
from test_access import STAFF_SCOPES, sign_in
from test_login import APP_URI, PASSWORD

CLOCK_ARGS = ["--test-clock", "--token-ttl", "86400", "--calendar-timezone", "America/New_York"]
NY = zoneinfo.ZoneInfo("America/New_York")
EXT = "http://concerto.dev/fhir/StructureDefinition/"
NOTIFICATION = "urn:concerto:notification"
COORDINATION = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]
COORDINATOR = [{"coding": [{"system": "http://snomed.info/sct", "code": "768820003"}]}]
SUPERVISOR = [{"coding": [{"system": "http://example.org/roles", "code": "supervisor"}]}]


def holidays():
    lines = (ROOT / "data/holidays/us-federal.tsv").read_text().splitlines()
    return {datetime.date.fromisoformat(line.split("\t")[0])
            for line in lines if line and not line.startswith("#")}


def business_day_after(day):
    off = holidays()
    day += datetime.timedelta(days=1)
    while day.weekday() >= 5 or day in off:
        day += datetime.timedelta(days=1)
    return day


def coming_friday():
    """A Friday 17:00 New York time at least two days ahead."""
    day = datetime.datetime.now(NY).date() + datetime.timedelta(days=2)
    while day.weekday() != 4:
        day += datetime.timedelta(days=1)
    return datetime.datetime.combine(day, datetime.time(17, 0), NY)


def set_clock(srv, when):
    """Moves the server's clock to when, and takes a new token (the old one may have expired
    in the time skipped)."""
    r = srv.client.post("/admin/clock", body={"now": when.isoformat()})
    assert r.status == 200, r
    srv.token = None
    srv.client.token = srv.token = srv.get_token()


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def overdue_mark(task):
    return next((e["valueDateTime"] for e in task.get("extension", [])
                 if e["url"] == EXT + "overdue"), None)


def escalated(task):
    return next((e["valueInteger"] for e in task.get("extension", [])
                 if e["url"] == EXT + "escalated"), 0)


def new_task(client, pid, due, **extra):
    t = {"resourceType": "Task", "status": "ready", "intent": "order", "priority": "routine",
         "for": {"reference": f"Patient/{pid}"}, "description": "Call the patient",
         "restriction": {"period": {"end": due.isoformat()}}}
    t.update(extra)
    return create(client, t)


def put(client, task, **changes):
    body = dict(task, **changes)
    body.pop("meta")
    r = client.put(f"Task/{task['id']}", body,
                   headers={"If-Match": f'W/"{task["meta"]["versionId"]}"'})
    assert r.status == 200, r
    return r.json


def read(client, tid):
    r = client.get(f"Task/{tid}")
    assert r.status == 200, r
    return r.json


def notifications(client, query):
    r = client.get(f"Communication?{query}&_count=100")
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", [])
            if e["resource"]["resourceType"] == "Communication"]


def about(client, pid, tid):
    """The Communications of Patient/pid about Task/tid."""
    return [n for n in notifications(client, f"subject=Patient/{pid}")
            if n["about"] == [{"reference": f"Task/{tid}"}]]


def test_marked_overdue_when_the_clock_passes_the_due_time(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    pid = create(c, patient())["id"]
    friday = coming_friday()
    late = new_task(c, pid, friday)
    done = new_task(c, pid, friday)
    moved = new_task(c, pid, friday)
    # finished before its time: nothing to mark
    done = put(c, done, status="in-progress")
    done = put(c, done, status="completed")
    # a later due time moves the job with it
    monday = friday + datetime.timedelta(days=3)
    moved = put(c, moved, restriction={"period": {"end": monday.isoformat()}})

    set_clock(srv, friday - datetime.timedelta(minutes=1))
    settle(c)
    assert overdue_mark(read(c, late["id"])) is None, "marked before its due time"
    assert read(c, late["id"])["meta"]["versionId"] == "1"

    set_clock(srv, friday + datetime.timedelta(minutes=1))
    assert wait_for(lambda: overdue_mark(read(c, late["id"]))), "not marked after its due time"
    t = read(c, late["id"])
    assert overdue_mark(t) == friday.isoformat()
    assert t["meta"]["versionId"] == "2"
    assert t["status"] == "ready"
    assert t["note"][-1]["authorString"] == "Concerto engine"
    assert t["note"][-1]["text"] == (f"Overdue: it was due {friday:%Y-%m-%d} 17:00 "
                                     "America/New_York and is still ready.")
    settle(c)
    assert read(c, done["id"])["meta"]["versionId"] == done["meta"]["versionId"]
    assert overdue_mark(read(c, moved["id"])) is None

    set_clock(srv, monday + datetime.timedelta(minutes=1))
    assert wait_for(lambda: overdue_mark(read(c, moved["id"]))) == monday.isoformat()

    # a later due time on an overdue Task: the mark goes, and comes again at the new time
    t = read(c, late["id"])
    tuesday = monday + datetime.timedelta(days=1)
    t = put(c, t, restriction={"period": {"end": tuesday.isoformat()}})
    assert overdue_mark(t) == friday.isoformat()  # as the client sent it
    assert wait_for(lambda: overdue_mark(read(c, late["id"])) is None), "the mark stayed"
    t = read(c, late["id"])
    assert t["note"][-1]["text"] == (f"Due time moved to {tuesday:%Y-%m-%d} 17:00 "
                                     "America/New_York: no longer overdue.")
    version = t["meta"]["versionId"]
    settle(c)
    assert read(c, late["id"])["meta"]["versionId"] == version
    set_clock(srv, tuesday + datetime.timedelta(minutes=1))
    assert wait_for(lambda: overdue_mark(read(c, late["id"]))) == tuesday.isoformat()


def escalation_world(c):
    pid = create(c, patient())["id"]
    owner = create(c, {"resourceType": "Practitioner", "name": [{"family": "Owner"}]})["id"]
    boss = create(c, {"resourceType": "Practitioner", "name": [{"family": "Boss"}]})["id"]
    create(c, {"resourceType": "CareTeam", "status": "active", "category": COORDINATION,
               "subject": {"reference": f"Patient/{pid}"},
               "participant": [{"role": COORDINATOR,
                                "member": {"reference": f"Practitioner/{owner}"}},
                               {"role": SUPERVISOR,
                                "member": {"reference": f"Practitioner/{boss}"}}]})
    url = f"http://example.org/ActivityDefinition/call-{pid}"
    create(c, {"resourceType": "ActivityDefinition", "url": url, "version": "1",
               "status": "active", "kind": "Task", "description": "Call the patient",
               "extension": [
                   {"url": EXT + "escalation", "extension": [
                       {"url": "after", "valueString": "PT0H"},
                       {"url": "priority", "valueCode": "urgent"},
                       {"url": "notify", "valueCodeableConcept": {
                           "coding": [{"system": EXT + "notify-target", "code": "owner"}]}}]},
                   {"url": EXT + "escalation", "extension": [
                       {"url": "after", "valueString": "1 business day"},
                       {"url": "reassign", "valueCodeableConcept": SUPERVISOR[0]}]}]})
    return pid, owner, boss, url


def test_escalation_steps_in_order_each_once(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    pid, owner, boss, url = escalation_world(c)
    friday = coming_friday()
    t = new_task(c, pid, friday, owner={"reference": f"Practitioner/{owner}"},
                 instantiatesCanonical=f"{url}|1")
    tid = t["id"]

    set_clock(srv, friday + datetime.timedelta(minutes=1))
    assert wait_for(lambda: escalated(read(c, tid)) == 1), "step 1 did not run at the due time"
    t = read(c, tid)
    assert overdue_mark(t) == friday.isoformat()
    assert t["priority"] == "urgent"
    assert t["owner"]["reference"] == f"Practitioner/{owner}"
    assert t["note"][-1]["text"] == (f"Escalated (step 1): overdue since {friday:%Y-%m-%d} 17:00 "
                                     f"America/New_York; priority raised to urgent; notified "
                                     f"Practitioner/{owner}.")
    step1 = t["meta"]["versionId"]
    sent = notifications(c, f"identifier={NOTIFICATION}|Task/{tid}/_history/{step1}/escalation/1")
    assert len(sent) == 1
    assert sent[0]["recipient"] == [{"reference": f"Practitioner/{owner}"}]
    assert sent[0]["about"] == [{"reference": f"Task/{tid}"}]
    assert sent[0]["payload"][0]["contentString"].startswith("Task overdue: Call the patient for "
                                                             f"Patient/{pid}, due ")

    # one business day after a Friday is the end of the next business day
    deadline = datetime.datetime.combine(business_day_after(friday.date()),
                                         datetime.time(23, 59, 59), NY)
    set_clock(srv, deadline - datetime.timedelta(hours=1))
    settle(c)
    t = read(c, tid)
    assert escalated(t) == 1 and t["meta"]["versionId"] == step1, "step 2 ran early"

    set_clock(srv, deadline + datetime.timedelta(minutes=1))
    assert wait_for(lambda: escalated(read(c, tid)) == 2), "step 2 did not run"
    t = read(c, tid)
    assert t["owner"]["reference"] == f"Practitioner/{boss}"
    assert t["priority"] == "urgent"
    assert t["note"][-1]["text"].endswith(
        f"; reassigned from Practitioner/{owner} to Practitioner/{boss}.")
    step2 = t["meta"]["versionId"]
    # the new owner hears of it; nothing runs again
    assert wait_for(lambda: len(notifications(c, f"recipient=Practitioner/{boss}")) == 1)
    set_clock(srv, deadline + datetime.timedelta(days=3))
    settle(c)
    assert read(c, tid)["meta"]["versionId"] == step2
    sent = about(c, pid, tid)
    # the owner's assignment at creation, step 1's notice, the boss's assignment
    assert sorted(n["recipient"][0]["reference"] for n in sent) == sorted(
        [f"Practitioner/{owner}", f"Practitioner/{owner}", f"Practitioner/{boss}"])


def test_a_crash_after_the_mark_duplicates_nothing(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    pid, owner, boss, url = escalation_world(c)
    friday = coming_friday()
    tid = new_task(c, pid, friday, owner={"reference": f"Practitioner/{owner}"},
                   instantiatesCanonical=f"{url}|1")["id"]
    set_clock(srv, friday + datetime.timedelta(minutes=1))
    assert wait_for(lambda: escalated(read(c, tid)) == 1)
    srv.kill()  # SIGKILL: the job's claim and the events may be unanswered
    srv.stopped_by_test = False
    srv.start()
    c = srv.client
    version = read(c, tid)["meta"]["versionId"]
    count = len(about(c, pid, tid))
    # past the claim's lease, before step 2: whatever was unanswered runs again
    set_clock(srv, friday + datetime.timedelta(minutes=5))
    settle(c)
    assert read(c, tid)["meta"]["versionId"] == version
    assert len(about(c, pid, tid)) == count == 2


def test_assignment_notifies_the_new_owner_but_a_claim_nobody(make_server):
    srv = make_server(args=CLOCK_ARGS, start=False)
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    db = str(srv.db)
    assert run_cli("init", "--db", db).returncode == 0
    people = [{"resourceType": "Practitioner", "id": "p1"},
              {"resourceType": "Practitioner", "id": "p2"},
              {"resourceType": "Patient", "id": "pat1"},
              {"resourceType": "CareTeam", "id": "ct1", "status": "active",
               "subject": {"reference": "Patient/pat1"},
               "participant": [{"member": {"reference": "Practitioner/p1"}}]}]
    data = srv.dir / "people.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in people))
    r = run_cli("import", "--db", db, str(data))
    assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", db, "--username", "nurse1", "--role", "nurse",
                "--practitioner", "p1", "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    c = srv.client
    nurse = sign_in(srv, "nurse1", STAFF_SCOPES)["access_token"]

    def task():
        return create(c, {"resourceType": "Task", "status": "requested", "intent": "order",
                          "for": {"reference": "Patient/pat1"}, "description": "Book a visit"})

    # someone else assigns: one notification, in the owner's inbox
    t = put(c, task(), owner={"reference": "Practitioner/p2"})
    assert wait_for(lambda: notifications(c, "recipient=Practitioner/p2"))
    settle(c)
    sent = notifications(c, "recipient=Practitioner/p2")
    assert len(sent) == 1
    n = sent[0]
    assert n["identifier"] == [{"system": NOTIFICATION,
                                "value": f"Task/{t['id']}/_history/{t['meta']['versionId']}"}]
    assert n["status"] == "completed"
    assert n["category"][0]["coding"][0] == {"system": EXT + "communication-category",
                                             "code": "notification"}
    assert n["subject"] == {"reference": "Patient/pat1"}
    assert n["about"] == [{"reference": f"Task/{t['id']}"}]
    assert n["payload"][0]["contentString"] == "Task assigned to you: Book a visit for Patient/pat1."

    # nurse1 claims one herself: nobody is told
    mine = task()
    body = dict(mine, owner={"reference": "Practitioner/p1"})
    body.pop("meta")
    r = c.put(f"Task/{mine['id']}", body, auth=nurse,
              headers={"If-Match": f'W/"{mine["meta"]["versionId"]}"'})
    assert r.status == 200, r
    # then is given another by someone else: that one she hears of, and only that one
    given = put(c, task(), owner={"reference": "Practitioner/p1"})
    assert wait_for(lambda: notifications(c, "recipient=Practitioner/p1"))
    settle(c)
    sent = notifications(c, "recipient=Practitioner/p1")
    assert [s["about"][0]["reference"] for s in sent] == [f"Task/{given['id']}"]
    # and reads her inbox with her own token
    r = c.get("Communication?recipient=Practitioner/p1", auth=nurse)
    assert r.status == 200, r
    assert [e["resource"]["id"] for e in r.json.get("entry", [])] == [sent[0]["id"]]
