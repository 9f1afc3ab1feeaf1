"""
The built-in protocols end to end: a database made with `concerto init` (so data/protocols is
in it), a server under the test clock, and for each event-triggered protocol the event driven
in through the API, then the exact Tasks that come out: their fields, owners (by care team
role, or the role's pool), due dates as exact local instants (weekends, US federal holidays,
daylight saving, other time zones), the patient's CarePlan of the protocol, the escalation
when a Task stalls, the same event delivered twice, and a SIGKILL between the commit of the
triggering write and its handling. Then, for every built-in protocol, the periodic ones too,
the first escalation step at its Task's due time, and for every event-triggered one a crash
before its event was handled. On SQLite and PostgreSQL.
"""
import shutil
import subprocess
import time

import pytest

from conftest import ON_POSTGRES, create, patient, run_cli, settle

BASE = "http://concerto.dev/fhir/"
EXT = BASE + "StructureDefinition/"
SNOMED = "http://snomed.info/sct"
NOTIFICATION = "urn:concerto:notification"
COORDINATION = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]
COORDINATOR = {"coding": [{"system": SNOMED, "code": "768820003", "display": "Care coordinator"}]}
PHARMACIST = {"coding": [{"system": SNOMED, "code": "46255001", "display": "Pharmacist"}]}
PCP = {"coding": [{"system": SNOMED, "code": "446050000", "display": "Primary care physician"}]}
SUPERVISOR = {"coding": [{"system": BASE + "CodeSystem/care-team-role", "code": "supervisor",
                          "display": "Care coordination supervisor"}]}
REFERRAL = [{"coding": [{"system": SNOMED, "code": "3457005"}]}]
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def clock_args(zone="America/New_York", *extra):
    return ["--test-clock", "--token-ttl", "86400", "--calendar-timezone", zone, *extra]


# ---- the server and its clock ------------------------------------------------------------

def initialised_server(make_server, zone="America/New_York", extra=()):
    """A server on a database made with `concerto init` (the built-in protocols loaded)."""
    srv = make_server(args=clock_args(zone, *extra), start=False)
    r = run_cli("init", "--db", str(srv.db))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "built-in protocols: 36 definitions loaded" in r.stdout, r.stdout
    return srv.start()


def set_clock(srv, when):
    """Moves the server's clock to when (an ISO instant with its offset) and takes a new token
    (the old one may have expired in the time skipped)."""
    r = srv.client.post("/admin/clock", body={"now": when})
    assert r.status == 200, r
    srv.token = None
    srv.client.token = srv.token = srv.get_token()


def start_again(srv, when=None):
    """Starts a stopped server (its clock starts from the real time again); moves it to when."""
    srv.stopped_by_test = False
    srv.token = None
    srv.start()
    if when:
        set_clock(srv, when)
    return srv.client


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def sql(srv, text):
    """Runs text on the served database behind the server's back; returns its output."""
    if ON_POSTGRES:
        cmd = [shutil.which("psql"), "-v", "ON_ERROR_STOP=1", "-qtA", str(srv.db), "-c", text]
    else:
        cmd = [shutil.which("sqlite3"), str(srv.db), text]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def deliver_again(srv, resource, when):
    """With the server stopped: the change event of resource's version comes again, as after
    a crash before its acknowledgement; then start it and wait until it was handled."""
    srv.stop()
    sql(srv, "INSERT INTO outbox (seq, type, id, version, action, time_us) VALUES (0, "
             f"'{resource['resourceType']}', '{resource['id']}', "
             f"{resource['meta']['versionId']}, 1, {when})")
    client = start_again(srv)
    assert wait_for(lambda: sql(srv, "SELECT count(*) FROM outbox") == "0"), \
        "the event was not handled again"
    return client


def event_time_us(resource):
    """The outbox time of the version of resource (its lastUpdated), in microseconds."""
    import datetime
    text = resource["meta"]["lastUpdated"].replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1_000_000)


# ---- the record --------------------------------------------------------------------------

def found(client, url):
    r = client.get(url)
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match"]


def tasks_of(client, pid):
    return sorted(found(client, f"Task?patient=Patient/{pid}&_count=100"),
                  key=lambda t: t["identifier"][0]["value"])


def task_by_code(tasks, code):
    [task] = [t for t in tasks if t["code"]["coding"][0]["code"] == code]
    return task


def notifications(client, query):
    return found(client, f"Communication?{query}&_count=100")


def practitioner(client, family):
    return create(client, {"resourceType": "Practitioner", "name": [{"family": family}]})["id"]


def team(client, pid, **members):
    """The patient's care coordination team: members as role=practitioner id."""
    roles = {"coordinator": COORDINATOR, "pharmacist": PHARMACIST, "pcp": PCP,
             "supervisor": SUPERVISOR}
    participants = [{"role": [roles[role]], "member": {"reference": f"Practitioner/{who}"}}
                    for role, who in members.items()]
    return create(client, {"resourceType": "CareTeam", "status": "active",
                           "category": COORDINATION, "subject": {"reference": f"Patient/{pid}"},
                           "participant": participants})


def put(client, resource, **changes):
    body = dict(resource, **changes)
    body.pop("meta")
    r = client.put(f"{resource['resourceType']}/{resource['id']}", body,
                   headers={"If-Match": f'W/"{resource["meta"]["versionId"]}"'})
    assert r.status == 200, r
    return r.json


def complete(client, task):
    task = put(client, task, status="in-progress")
    return put(client, task, status="completed")


def escalated(task):
    return next((e["valueInteger"] for e in task.get("extension", [])
                 if e["url"] == EXT + "escalated"), 0)


def read(client, ref):
    r = client.get(ref)
    assert r.status == 200, r
    return r.json


def careplan_of(client, pid, protocol):
    plans = [p for p in found(client, f"CarePlan?subject=Patient/{pid}")
             if p["identifier"][0]["value"].startswith(protocol + "/")]
    assert [p["identifier"] for p in plans] == [
        [{"system": "urn:concerto:protocol-careplan", "value": f"{protocol}/Patient/{pid}"}]]
    plan = plans[0]
    assert plan["status"] == "active" and plan["intent"] == "plan"
    assert plan["subject"] == {"reference": f"Patient/{pid}"}
    assert plan["instantiatesCanonical"] == [BASE + "PlanDefinition/" + protocol]
    return plan


def assert_made_by(task, protocol, action, activity, event, pid, careplan):
    """The fields every Task a built-in protocol makes carries."""
    ref = f"{event['resourceType']}/{event['id']}"
    assert task["intent"] == "order"
    assert task["for"] == {"reference": f"Patient/{pid}"}
    assert task["focus"] == {"reference": ref}
    assert task["instantiatesCanonical"] == f"{BASE}ActivityDefinition/{activity}|1.0.0"
    assert task["identifier"] == [{"system": "urn:concerto:protocol-action",
                                   "value": f"{protocol}/{action}/{ref}/_history/"
                                            f"{event['meta']['versionId']}"}]
    assert task["extension"] == [{"url": EXT + "protocol-action",
                                  "valueString": f"{BASE}PlanDefinition/{protocol}#{action}"}]
    assert task["basedOn"] == [{"reference": f"CarePlan/{careplan['id']}"}]
    assert {"reference": {"reference": f"Task/{task['id']}"}} in careplan["activity"]


# ---- new patient intake ------------------------------------------------------------------

INTAKE = [  # action, ActivityDefinition, Task.code, role
    ("assign-care-team", "intake-assign-care-team", "assign-care-team", COORDINATOR),
    ("conditions", "intake-conditions", "review-conditions", COORDINATOR),
    ("medications", "intake-medications", "review-medications", PHARMACIST),
    ("phq9", "intake-phq9", "screen-depression", COORDINATOR),
    ("social-needs", "intake-social-needs", "screen-social-needs", COORDINATOR),
    ("functional-status", "intake-functional-status", "assess-function", COORDINATOR),
    ("care-plan", "intake-care-plan", "write-care-plan", COORDINATOR),
]


def enrol(client, pid):
    return create(client, {"resourceType": "EpisodeOfCare", "status": "active",
                           "patient": {"reference": f"Patient/{pid}"},
                           "type": [{"text": "Chronic care management"}]})


def assert_intake(client, pid, episode, owners):
    """The seven intake Tasks of the enrolment episode; owners: action -> Practitioner id or
    None (the Task waits in its role's pool)."""
    tasks = wait_for(lambda: len(tasks_of(client, pid)) == 7 and tasks_of(client, pid))
    assert tasks, f"not 7 intake Tasks: {tasks_of(client, pid)}"
    careplan = careplan_of(client, pid, "new-patient-intake")
    assert careplan["title"] == "New patient intake"
    assert len(careplan["activity"]) == 7
    authored = tasks[0]["authoredOn"]
    # Thursday 16 January 2031 in New York; Monday the 20th is Martin Luther King Jr. Day
    assert authored.startswith("2031-01-16T14:00:") and authored.endswith("-05:00"), authored
    due = {
        "assign-care-team": "2031-01-21T23:59:59.999-05:00",  # Fri 17, (Mon 20), Tue 21
        "care-plan": authored.replace("2031-01-16", "2031-02-15"),  # 30 days, same wall time
    }
    for action, activity, code, role in INTAKE:
        [task] = [t for t in tasks if t["identifier"][0]["value"].split("/")[1] == action]
        assert_made_by(task, "new-patient-intake", action, activity, episode, pid, careplan)
        assert task["code"]["coding"][0] == {"system": BASE + "CodeSystem/task", "code": code,
                                             "display": task["code"]["text"]}
        assert task["priority"] == "routine"
        assert task["authoredOn"] == authored
        assert task["performerType"] == [role]
        # ten business days: Fri 17, Tue 21 ... Fri 31 (the holiday skipped)
        assert task["restriction"] == {"period": {"end": due.get(
            action, "2031-01-31T23:59:59.999-05:00")}}, action
        if owners.get(action):
            assert task["status"] == "ready", action
            assert task["owner"] == {"reference": f"Practitioner/{owners[action]}"}, action
        else:
            assert task["status"] == "requested", action
            assert "owner" not in task, action
    return tasks, careplan


def test_new_patient_intake(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    set_clock(srv, "2031-01-16T14:00:00-05:00")
    # enrolled before anyone is on a care team: all seven wait in their roles' pools
    lone = create(c, patient())["id"]
    episode = enrol(c, lone)
    lone_tasks, _ = assert_intake(c, lone, episode, {})
    # with a care coordination team (a primary coordinator, no pharmacist): the coordinator's
    # Tasks are theirs, the medication review waits for a pharmacist
    pid = create(c, patient())["id"]
    coordinator = practitioner(c, "Coordinator")
    team(c, pid, coordinator=coordinator)
    episode2 = enrol(c, pid)
    owners = {action: coordinator for action, _, _, role in INTAKE if role is COORDINATOR}
    tasks, careplan = assert_intake(c, pid, episode2, owners)
    # the coordinator hears of each Task given to them, once
    assert wait_for(lambda: len(notifications(c, f"recipient=Practitioner/{coordinator}")) == 6)
    # an update of the episode that does not enrol again (still active) makes nothing
    put(c, episode2, type=[{"text": "Principal care management"}])
    settle(c)
    assert [t["id"] for t in tasks_of(c, pid)] == [t["id"] for t in tasks]

    # the enrolment's event delivered again makes nothing more
    c = deliver_again(srv, episode2, event_time_us(episode2))
    assert [(t["id"], t["meta"]["versionId"]) for t in tasks_of(c, pid)] == \
        [(t["id"], "1") for t in tasks]
    assert read(c, f"CarePlan/{careplan['id']}")["meta"]["versionId"] == \
        careplan["meta"]["versionId"]
    assert len(tasks_of(c, lone)) == len(lone_tasks)
    assert len(notifications(c, f"recipient=Practitioner/{coordinator}")) == 6


# ---- specialist referral -----------------------------------------------------------------

def referral(client, pid):
    return create(client, {"resourceType": "ServiceRequest", "status": "active",
                           "intent": "order", "category": REFERRAL,
                           "code": {"text": "Cardiology consultation"},
                           "subject": {"reference": f"Patient/{pid}"}})


def referral_world(c):
    pid = create(c, patient())["id"]
    people = {role: practitioner(c, role.title())
              for role in ("coordinator", "pcp", "supervisor")}
    team(c, pid, **people)
    return pid, people


def test_specialist_referral_runs_its_steps_in_turn(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    # Friday 14 February 2031; Monday the 17th is Washington's Birthday
    set_clock(srv, "2031-02-14T10:00:00-05:00")
    pid, people = referral_world(c)
    sr = referral(c, pid)
    [confirm] = wait_for(lambda: tasks_of(c, pid))
    careplan = careplan_of(c, pid, "specialist-referral")
    assert careplan["title"] == "Specialist referral management"
    assert_made_by(confirm, "specialist-referral", "confirm-receipt", "referral-confirm-receipt",
                   sr, pid, careplan)
    assert confirm["status"] == "ready" and confirm["priority"] == "routine"
    assert confirm["code"]["coding"][0]["code"] == "referral-confirm-receipt"
    assert confirm["description"] == ("Confirm with the specialist's office that the referral "
                                      "and its supporting documents arrived.")
    assert confirm["owner"] == {"reference": f"Practitioner/{people['coordinator']}"}
    # two business days after a Friday before a Monday holiday: Tuesday, Wednesday
    assert confirm["restriction"]["period"]["end"] == "2031-02-19T23:59:59.999-05:00"

    # receipt confirmed on Tuesday: the appointment is next, 10 business days
    set_clock(srv, "2031-02-18T09:00:00-05:00")
    confirm = complete(c, confirm)
    schedule = wait_for(lambda: [t for t in tasks_of(c, pid) if t["id"] != confirm["id"]])
    [schedule] = schedule
    careplan = careplan_of(c, pid, "specialist-referral")
    assert_made_by(schedule, "specialist-referral", "schedule", "referral-schedule", confirm,
                   pid, careplan)
    assert schedule["code"]["coding"][0]["code"] == "referral-schedule"
    assert schedule["owner"] == {"reference": f"Practitioner/{people['coordinator']}"}
    assert schedule["authoredOn"].startswith("2031-02-18T09:00:")
    assert schedule["restriction"]["period"]["end"] == "2031-03-04T23:59:59.999-05:00"

    # scheduled on Tuesday 25 February: the report is due 30 calendar days later, at the same
    # New York wall time although daylight saving time began on 9 March
    set_clock(srv, "2031-02-25T11:00:00-05:00")
    schedule = complete(c, schedule)
    [result] = wait_for(lambda: [t for t in tasks_of(c, pid)
                                 if t["id"] not in (confirm["id"], schedule["id"])])
    careplan = careplan_of(c, pid, "specialist-referral")
    assert_made_by(result, "specialist-referral", "result", "referral-result", schedule, pid,
                   careplan)
    authored = result["authoredOn"]
    assert authored.startswith("2031-02-25T11:00:") and authored.endswith("-05:00"), authored
    assert result["restriction"]["period"]["end"] == \
        authored.replace("2031-02-25", "2031-03-27").replace("-05:00", "-04:00")
    assert result["owner"] == {"reference": f"Practitioner/{people['coordinator']}"}

    # the report is in on Friday 21 March: the referring clinician closes the loop
    set_clock(srv, "2031-03-21T16:00:00-04:00")
    result = complete(c, result)
    [close] = wait_for(lambda: [t for t in tasks_of(c, pid) if t["code"]["coding"][0]["code"]
                                == "referral-close-loop"])
    careplan = careplan_of(c, pid, "specialist-referral")
    assert_made_by(close, "specialist-referral", "close-loop", "referral-close-loop", result,
                   pid, careplan)
    assert close["owner"] == {"reference": f"Practitioner/{people['pcp']}"}
    assert close["performerType"] == [PCP]
    assert close["restriction"]["period"]["end"] == "2031-03-28T23:59:59.999-04:00"
    assert [a["reference"]["reference"] for a in careplan["activity"]] == \
        [f"Task/{t['id']}" for t in (confirm, schedule, result, close)]
    assert len(tasks_of(c, pid)) == 4

    # completing the last Task makes nothing more
    complete(c, close)
    settle(c)
    assert len(tasks_of(c, pid)) == 4


def test_a_stalled_referral_escalates(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    set_clock(srv, "2031-02-14T10:00:00-05:00")
    pid, people = referral_world(c)
    sr = referral(c, pid)
    [task] = wait_for(lambda: tasks_of(c, pid))
    tid = task["id"]
    coordinator, supervisor = people["coordinator"], people["supervisor"]
    assert task["restriction"]["period"]["end"] == "2031-02-19T23:59:59.999-05:00"

    set_clock(srv, "2031-02-19T23:50:00-05:00")
    settle(c)
    assert read(c, f"Task/{tid}")["meta"]["versionId"] == "1", "escalated before its due time"

    # at the due time: urgent, and its owner is told
    set_clock(srv, "2031-02-20T00:00:30-05:00")
    assert wait_for(lambda: escalated(read(c, f"Task/{tid}")) == 1), "step 1 did not run"
    task = read(c, f"Task/{tid}")
    assert task["priority"] == "urgent"
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert {"url": EXT + "overdue", "valueDateTime": "2031-02-19T23:59:59.999-05:00"} \
        in task["extension"]
    step1 = task["meta"]["versionId"]
    [told] = notifications(c, f"identifier={NOTIFICATION}|Task/{tid}/_history/{step1}/escalation/1")
    assert told["recipient"] == [{"reference": f"Practitioner/{coordinator}"}]
    assert told["about"] == [{"reference": f"Task/{tid}"}]
    assert told["subject"] == {"reference": f"Patient/{pid}"}

    # one business day later (the end of Thursday): the supervisor's
    set_clock(srv, "2031-02-20T23:00:00-05:00")
    settle(c)
    assert escalated(read(c, f"Task/{tid}")) == 1, "step 2 ran early"
    set_clock(srv, "2031-02-21T00:00:30-05:00")
    assert wait_for(lambda: escalated(read(c, f"Task/{tid}")) == 2), "step 2 did not run"
    task = read(c, f"Task/{tid}")
    assert task["owner"] == {"reference": f"Practitioner/{supervisor}"}
    assert task["priority"] == "urgent"
    assert task["status"] == "ready"
    assert task["note"][-1]["text"] == (
        "Escalated (step 2): overdue since 2031-02-19 23:59 America/New_York; reassigned from "
        f"Practitioner/{coordinator} to Practitioner/{supervisor}.")
    # the supervisor hears of it once
    assert wait_for(lambda: notifications(c, f"recipient=Practitioner/{supervisor}"))
    settle(c)
    sent = notifications(c, f"recipient=Practitioner/{supervisor}")
    assert len(sent) == 1, [n["payload"] for n in sent]
    assert sent[0]["about"] == [{"reference": f"Task/{tid}"}]
    # nothing further happens to it, and the referral's event again makes nothing
    version = task["meta"]["versionId"]
    c = deliver_again(srv, sr, event_time_us(sr))
    set_clock(srv, "2031-02-28T12:00:00-05:00")
    settle(c)
    assert [t["id"] for t in tasks_of(c, pid)] == [tid]
    assert read(c, f"Task/{tid}")["meta"]["versionId"] == version


# ---- missed appointment ------------------------------------------------------------------

def appointment(client, pid, start):
    return create(client, {
        "resourceType": "Appointment", "status": "booked", "start": start,
        "end": start.replace(":00:00", ":30:00"), "description": "Diabetes review",
        "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}]})


def test_missed_appointment_outreach(make_server):
    # an organisation in Chicago: its business days end at midnight Chicago time
    srv = initialised_server(make_server, zone="America/Chicago")
    c = srv.client
    pid = create(c, patient())["id"]
    coordinator = practitioner(c, "Coordinator")
    team(c, pid, coordinator=coordinator)
    # missed on Friday afternoon, 7 March 2031: due at the end of Monday (after the change to
    # daylight saving time on Sunday the 9th)
    set_clock(srv, "2031-03-07T14:00:00-06:00")
    visit = appointment(c, pid, "2031-03-07T13:00:00-06:00")
    settle(c)
    assert tasks_of(c, pid) == [], "a booked appointment made a Task"
    set_clock(srv, "2031-03-07T15:00:00-06:00")
    missed = put(c, visit, status="noshow")
    [task] = wait_for(lambda: tasks_of(c, pid))
    careplan = careplan_of(c, pid, "missed-appointment-outreach")
    assert_made_by(task, "missed-appointment-outreach", "outreach", "noshow-outreach", missed,
                   pid, careplan)
    assert task["status"] == "ready" and task["priority"] == "urgent"
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert task["code"]["coding"][0]["code"] == "noshow-outreach"
    assert task["authoredOn"].startswith("2031-03-07T15:00:") and \
        task["authoredOn"].endswith("-06:00")
    assert task["restriction"]["period"]["end"] == "2031-03-10T23:59:59.999-05:00"

    # missed on the Friday before Memorial Day (Monday 26 May): due at the end of Tuesday
    set_clock(srv, "2031-05-23T13:30:00-05:00")
    visit2 = appointment(c, pid, "2031-05-23T13:00:00-05:00")
    missed2 = put(c, visit2, status="noshow")
    tasks = wait_for(lambda: len(tasks_of(c, pid)) == 2 and tasks_of(c, pid))
    assert tasks
    [task2] = [t for t in tasks if t["focus"]["reference"] == f"Appointment/{visit2['id']}"]
    assert task2["restriction"]["period"]["end"] == "2031-05-27T23:59:59.999-05:00"
    careplan = careplan_of(c, pid, "missed-appointment-outreach")
    assert_made_by(task2, "missed-appointment-outreach", "outreach", "noshow-outreach", missed2,
                   pid, careplan)
    assert len(careplan["activity"]) == 2

    # the missed appointment's event again: nothing more
    c = deliver_again(srv, missed2, event_time_us(missed2))
    assert sorted(t["id"] for t in tasks_of(c, pid)) == sorted(t["id"] for t in tasks)


# ---- emergency department visit ----------------------------------------------------------

def encounter(client, pid, cls, start):
    return create(client, {
        "resourceType": "Encounter", "status": "in-progress",
        "class": {"system": ACT, "code": cls}, "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start}})


def ed_tasks(client, pid):
    """The Tasks of the ED follow-up (a hospital stay starts other protocols too)."""
    return [t for t in tasks_of(client, pid)
            if t["identifier"][0]["value"].startswith("ed-visit-follow-up/")]


def test_ed_visit_follow_up(make_server):
    srv = initialised_server(make_server, zone="America/Los_Angeles")
    c = srv.client
    pid = create(c, patient())["id"]
    coordinator = practitioner(c, "Coordinator")
    team(c, pid, coordinator=coordinator)
    set_clock(srv, "2031-03-07T18:00:00-08:00")
    ed = encounter(c, pid, "EMER", "2031-03-07T18:00:00-08:00")
    stay = encounter(c, pid, "IMP", "2031-03-07T18:00:00-08:00")
    # the visit ends at 22:30 on Friday 7 March; the discharge is recorded the next morning
    set_clock(srv, "2031-03-08T09:00:00-08:00")
    finished = put(c, ed, status="finished",
                   period={"start": "2031-03-07T18:00:00-08:00", "end": "2031-03-07T22:30:00-08:00"})
    [task] = wait_for(lambda: ed_tasks(c, pid))
    careplan = careplan_of(c, pid, "ed-visit-follow-up")
    assert_made_by(task, "ed-visit-follow-up", "follow-up", "ed-follow-up", finished, pid,
                   careplan)
    assert task["status"] == "ready" and task["priority"] == "urgent"
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert task["code"]["coding"][0]["code"] == "ed-follow-up"
    # 7 calendar days after the end of the visit, at the same Los Angeles wall time although
    # daylight saving time began on Sunday 9 March
    assert task["restriction"]["period"]["end"] == "2031-03-14T22:30:00.000-07:00"
    assert task["authoredOn"].startswith("2031-03-08T09:00:")

    # a hospital stay that ends is not an emergency visit: this protocol makes nothing for it
    put(c, stay, status="finished",
        period={"start": "2031-03-07T18:00:00-08:00", "end": "2031-03-08T08:00:00-08:00"})
    settle(c)
    assert [t["id"] for t in ed_tasks(c, pid)] == [task["id"]]

    # a visit recorded as finished without its end time (an A03 without PV1-45): 7 days from
    # its start rather than no follow-up at all
    set_clock(srv, "2031-03-20T08:00:00-07:00")
    ed2 = encounter(c, pid, "EMER", "2031-03-19T23:15:00-07:00")
    put(c, ed2, status="finished")
    tasks = wait_for(lambda: len(ed_tasks(c, pid)) == 2 and ed_tasks(c, pid))
    assert tasks, "no Task for a visit without an end time"
    [task2] = [t for t in tasks if t["focus"]["reference"] == f"Encounter/{ed2['id']}"]
    assert task2["restriction"]["period"]["end"] == "2031-03-26T23:15:00.000-07:00"

    plan_version = careplan_of(c, pid, "ed-visit-follow-up")["meta"]["versionId"]
    c = deliver_again(srv, finished, event_time_us(finished))
    assert sorted(t["id"] for t in ed_tasks(c, pid)) == sorted([task["id"], task2["id"]])
    assert careplan_of(c, pid, "ed-visit-follow-up")["meta"]["versionId"] == plan_version


# ---- abnormal result ---------------------------------------------------------------------

def glucose(client, pid, interpretation):
    return create(client, {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0",
                             "display": "Glucose"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 310 if interpretation == "H" else 95, "unit": "mg/dL",
                          "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": interpretation}]}]})


def test_abnormal_result_follow_up(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid = create(c, patient())["id"]
    coordinator, pcp = practitioner(c, "Coordinator"), practitioner(c, "Physician")
    team(c, pid, coordinator=coordinator, pcp=pcp)
    # Wednesday 2 July 2031, 16:00; Friday the 4th is Independence Day
    set_clock(srv, "2031-07-02T16:00:00-04:00")
    glucose(c, pid, "N")
    settle(c)
    assert tasks_of(c, pid) == [], "a normal result made a Task"
    high = glucose(c, pid, "H")
    [task] = wait_for(lambda: tasks_of(c, pid))
    careplan = careplan_of(c, pid, "routine-follow-up")
    assert_made_by(task, "routine-follow-up", "abnormal-result", "abnormal-result-follow-up",
                   high, pid, careplan)
    assert task["status"] == "ready" and task["priority"] == "urgent"
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert task["performerType"] == [COORDINATOR]
    assert task["code"]["coding"][0]["code"] == "abnormal-result-follow-up"
    # Thursday 3, (Friday 4, the weekend), Monday 7
    assert task["restriction"]["period"]["end"] == "2031-07-07T23:59:59.999-04:00"

    # not followed up by then: asap, and the owner and the primary care physician are told
    set_clock(srv, "2031-07-08T00:01:00-04:00")
    assert wait_for(lambda: escalated(read(c, f"Task/{task['id']}")) == 2)
    t = read(c, f"Task/{task['id']}")
    assert t["priority"] == "asap"
    assert t["owner"] == {"reference": f"Practitioner/{coordinator}"}
    version = t["meta"]["versionId"]
    sent = notifications(c, f"identifier={NOTIFICATION}|Task/{task['id']}/_history/{version}/"
                            "escalation/1")
    assert [n["recipient"] for n in sent] == [[{"reference": f"Practitioner/{coordinator}"}]]
    sent = notifications(c, f"identifier={NOTIFICATION}|Task/{task['id']}/_history/{version}/"
                            "escalation/2")
    assert [n["recipient"] for n in sent] == [[{"reference": f"Practitioner/{pcp}"}]]

    c = deliver_again(srv, high, event_time_us(high))
    assert [t["id"] for t in tasks_of(c, pid)] == [task["id"]]


# ---- a crash between the commit and the handling -----------------------------------------

def test_killed_between_commit_and_handling(make_server):
    # the worker looks for work once a minute: the enrolment's event is still unhandled when
    # the server is killed right after the write
    srv = initialised_server(make_server, extra=("--work-poll", "60000"))
    c = srv.client
    set_clock(srv, "2031-01-16T14:00:00-05:00")  # wakes the worker once
    pid = create(c, patient())["id"]
    coordinator = practitioner(c, "Coordinator")
    team(c, pid, coordinator=coordinator)
    episode = enrol(c, pid)
    srv.kill()
    assert sql(srv, "SELECT count(*) FROM outbox WHERE type = 'EpisodeOfCare' AND id = "
                    f"'{episode['id']}'") == "1", "the event was handled before the kill"
    srv.args = clock_args()
    # the worker woken by set_clock may have claimed the event just before the kill (a claim
    # holds for a minute of the clock): past that minute, the restarted server takes it again
    c = start_again(srv, "2031-01-16T14:05:00-05:00")
    owners = {action: coordinator for action, _, _, role in INTAKE if role is COORDINATOR}
    tasks, careplan = assert_intake(c, pid, episode, owners)
    assert wait_for(lambda: sql(srv, "SELECT count(*) FROM outbox") == "0")
    settle(c)
    assert [t["id"] for t in tasks_of(c, pid)] == [t["id"] for t in tasks]
    assert len(found(c, f"CarePlan?subject=Patient/{pid}")) == 1
    assert len(notifications(c, f"recipient=Practitioner/{coordinator}")) == 6

    # killed again right after the Tasks were made: a restart makes nothing more
    srv.kill()
    c = start_again(srv)
    settle(c)
    assert [(t["id"], t["meta"]["versionId"]) for t in tasks_of(c, pid)] == \
        [(t["id"], t["meta"]["versionId"]) for t in tasks]
    assert len(notifications(c, f"recipient=Practitioner/{coordinator}")) == 6


# ---- every protocol: a crash before its event is handled, then its first escalation --------

def enrolment_tasks(c, pid, protocol):
    return [t for t in tasks_of(c, pid)
            if t["identifier"][0]["value"].startswith(protocol + "/")]


def noshow(c, pid):
    visit = appointment(c, pid, "2031-04-08T09:00:00-04:00")
    return put(c, visit, status="noshow")


def ed_discharge(c, pid):
    visit = encounter(c, pid, "EMER", "2031-04-08T06:00:00-04:00")
    return put(c, visit, status="finished",
               period={"start": "2031-04-08T06:00:00-04:00", "end": "2031-04-08T09:30:00-04:00"})


# protocol, what makes its event, how many Tasks it makes at once, the first step's priority
EVENTS = [
    ("new-patient-intake", enrol, 7, "urgent"),
    ("specialist-referral", referral, 1, "urgent"),
    ("missed-appointment-outreach", noshow, 1, "asap"),
    ("ed-visit-follow-up", ed_discharge, 1, "urgent"),
    ("routine-follow-up", lambda c, pid: glucose(c, pid, "H"), 1, "asap"),
]


def plus_seconds(instant, seconds):
    import datetime
    return (datetime.datetime.fromisoformat(instant)
            + datetime.timedelta(seconds=seconds)).isoformat()


def assert_first_step(srv, c, task, priority):
    """At its due time the Task is marked overdue, its priority raised to priority and its
    owner told once (the first escalation step of every built-in protocol)."""
    tid = task["id"]
    set_clock(srv, plus_seconds(task["restriction"]["period"]["end"], 30))
    c = srv.client
    assert wait_for(lambda: escalated(read(c, f"Task/{tid}")) >= 1), "no escalation"
    settle(c)
    task = read(c, f"Task/{tid}")
    assert task["priority"] == priority
    assert any(e["url"] == EXT + "overdue" for e in task["extension"])
    owner = task["owner"]["reference"]
    told = [n for n in notifications(c, f"recipient={owner}")
            if n["identifier"][0]["value"].startswith(f"Task/{tid}/_history/")
            and "/escalation/1" in n["identifier"][0]["value"]]
    assert len(told) == 1, told



@pytest.mark.parametrize("protocol,event,count,priority", EVENTS, ids=[e[0] for e in EVENTS])
def test_each_protocol_survives_a_crash_and_escalates(make_server, protocol, event, count,
                                                      priority):
    # the worker looks for work once a minute: the event is unhandled when the server dies
    srv = initialised_server(make_server, extra=("--work-poll", "60000"))
    c = srv.client
    start = "2031-04-08T10:00:00-04:00"  # a Tuesday
    set_clock(srv, start)  # wakes the worker once
    pid = create(c, patient())["id"]
    people = {role: practitioner(c, role.title())
              for role in ("coordinator", "pharmacist", "pcp", "supervisor")}
    team(c, pid, **people)
    trigger = event(c, pid)
    srv.kill()
    assert sql(srv, f"SELECT count(*) FROM outbox WHERE type = '{trigger['resourceType']}' "
                    f"AND id = '{trigger['id']}'") != "0", "handled before the kill"
    srv.args = clock_args()
    c = start_again(srv, start)
    assert wait_for(lambda: len(enrolment_tasks(c, pid, protocol)) == count), \
        enrolment_tasks(c, pid, protocol)
    assert wait_for(lambda: sql(srv, "SELECT count(*) FROM outbox") == "0")
    settle(c)
    made = enrolment_tasks(c, pid, protocol)
    assert len(made) == count
    assert len(found(c, f"CarePlan?subject=Patient/{pid}&identifier="
                        f"urn:concerto:protocol-careplan|{protocol}/Patient/{pid}")) == 1
    # the owned Task due first escalates
    first = min((t for t in made if "owner" in t),
                key=lambda t: t["restriction"]["period"]["end"])
    assert_first_step(srv, c, first, priority)


@pytest.mark.parametrize("protocol,days,code", [
    ("periodic-care-plan-review", 90, "review-care-plan"),
    ("routine-follow-up", 31, "routine-check-in"),
])
def test_each_periodic_protocol_escalates(make_server, protocol, days, code):
    srv = initialised_server(make_server)
    c = srv.client
    set_clock(srv, "2031-04-08T10:00:00-04:00")
    pid = create(c, patient())["id"]
    people = {role: practitioner(c, role.title()) for role in ("coordinator", "supervisor")}
    team(c, pid, **people)
    enrol(c, pid)
    set_clock(srv, plus_seconds("2031-04-08T10:00:00-04:00", days * 86400))
    c = srv.client

    def periodic():
        return [t for t in enrolment_tasks(c, pid, protocol)
                if t["code"]["coding"][0]["code"] == code]
    assert wait_for(lambda: len(periodic()) == 1), enrolment_tasks(c, pid, protocol)
    [task] = periodic()
    assert task["owner"] == {"reference": f"Practitioner/{people['coordinator']}"}
    assert_first_step(srv, c, task, "urgent")
