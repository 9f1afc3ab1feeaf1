"""Protocols: a PlanDefinition (workflow-definition) and the ActivityDefinitions its actions
name, run by the engine when a change makes a named event (and by PlanDefinition/$apply): the
Tasks, CommunicationRequests and Flags they make, with owners by care team role and due times
on the business calendar, the patient's CarePlan of the protocol, follow-on actions when a Task
completes, and never the same thing twice for one event."""
import datetime
import shutil
import subprocess
import time
import uuid

from conftest import ON_POSTGRES, assert_outcome, create, patient, settle
from test_access import as_, world  # noqa: F401 (a fixture: people with accounts and care teams)

# --test-clock: settle() waits for the engine's work (GET /admin/clock)
SERVER_ARGS = ("--test-clock",)

EXT = "http://concerto.dev/fhir/StructureDefinition/"
SNOMED = "http://snomed.info/sct"
COORDINATION = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]
COORDINATOR = {"coding": [{"system": SNOMED, "code": "768820003"}]}
SOCIAL_WORKER = {"coding": [{"system": SNOMED, "code": "106328005"}]}
REFERRAL = [{"coding": [{"system": SNOMED, "code": "3457005"}]}]
WORKFLOW = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                        "code": "workflow-definition"}]}
CLOCK_ARGS = ["--test-clock", "--token-ttl", "86400", "--calendar-timezone", "America/New_York"]


def tag():
    return uuid.uuid4().hex[:10]


def activity(url, kind="Task", role=COORDINATOR, due="2 business days", **extra):
    a = {"resourceType": "ActivityDefinition", "url": url, "version": "1", "status": "active",
         "kind": kind, "description": f"Follow up ({url})", "priority": "urgent",
         "code": {"text": "follow-up"}}
    if role:
        a["participant"] = [{"type": "practitioner", "role": role}]
    if due:
        a["extension"] = [{"url": EXT + "due", "valueString": due}]
    a.update(extra)
    return a


def action(aid, definition=None, trigger="referral-created", condition=None, after=None, **extra):
    a = {"id": aid, "title": f"step {aid}"}
    if trigger:
        a["trigger"] = [{"type": "named-event", "name": trigger}]
    if after:
        a["relatedAction"] = [{"actionId": after, "relationship": "after-end"}]
    if condition:
        a["condition"] = [{"kind": "applicability",
                           "expression": {"language": "text/fhirpath", "expression": condition}}]
    if definition:
        a["definitionCanonical"] = definition
    a.update(extra)
    return a


def plan(url, actions, status="active"):
    return {"resourceType": "PlanDefinition", "url": url, "status": status, "type": WORKFLOW,
            "title": "Referral follow-up", "action": actions}


def practitioner(client):
    return create(client, {"resourceType": "Practitioner", "name": [{"family": "Coord"}]})["id"]


def enrolled_patient(client, role=COORDINATOR):
    """A patient with a care coordination team whose coordinator (and, with role, a member in
    that role) is a new Practitioner; returns (patient id, coordinator id)."""
    pid = create(client, patient())["id"]
    coordinator = practitioner(client)
    participants = [{"role": [COORDINATOR], "member": {"reference": f"Practitioner/{coordinator}"}}]
    create(client, {"resourceType": "CareTeam", "status": "active", "category": COORDINATION,
                    "subject": {"reference": f"Patient/{pid}"}, "participant": participants})
    return pid, coordinator


def referral(pid, text, status="active"):
    return {"resourceType": "ServiceRequest", "status": status, "intent": "order",
            "category": REFERRAL, "code": {"text": text},
            "subject": {"reference": f"Patient/{pid}"}}


def wait_for(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def found(client, url):
    r = client.get(url)
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match"]


def tasks_of(client, pid):
    return found(client, f"Task?patient=Patient/{pid}&_count=100")


def setup_protocol(client, t, **activity_extra):
    ad = create(client, activity(f"urn:test:ad:{t}", **activity_extra))
    pd = create(client, plan(f"urn:test:pd:{t}", [
        action("call", f"urn:test:ad:{t}|1", condition=f"code.text = '{t}'")]))
    return ad, pd


def parse_instant(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_referral_makes_the_task_of_the_protocol(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    # Friday 10 January 2031, 10:00 in New York: two business days later is the end of Tuesday
    r = c.post("/admin/clock", body={"now": "2031-01-10T10:00:00-05:00"})
    assert r.status == 200, r
    srv.token = None  # the harness's token expired on the way
    c.token = srv.token = srv.get_token()
    t = tag()
    ad, pd = setup_protocol(c, t)
    pid, coordinator = enrolled_patient(c)
    sr = create(c, referral(pid, t))
    tasks = wait_for(lambda: tasks_of(c, pid))
    assert len(tasks) == 1, tasks
    task = tasks[0]
    assert task["status"] == "ready"
    assert task["intent"] == "order"
    assert task["priority"] == "urgent"
    assert task["description"] == f"Follow up (urn:test:ad:{t})"
    assert task["code"] == {"text": "follow-up"}
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert task["performerType"] == [COORDINATOR]
    assert task["for"] == {"reference": f"Patient/{pid}"}
    assert task["focus"] == {"reference": f"ServiceRequest/{sr['id']}"}
    assert task["instantiatesCanonical"] == f"urn:test:ad:{t}|1"
    assert task["identifier"] == [{"system": "urn:concerto:protocol-action",
                                   "value": f"{pd['id']}/call/ServiceRequest/{sr['id']}/_history/1"}]
    assert task["extension"] == [{"url": EXT + "protocol-action",
                                  "valueString": f"urn:test:pd:{t}#call"}]
    assert task["restriction"]["period"]["end"] == "2031-01-14T23:59:59.999-05:00"
    authored = parse_instant(task["authoredOn"])
    assert abs((authored - parse_instant("2031-01-10T15:00:00Z")).total_seconds()) < 60
    # the patient's CarePlan of the protocol holds it
    careplan_ref = task["basedOn"][0]["reference"]
    careplan = c.get(careplan_ref).json
    assert careplan["status"] == "active" and careplan["intent"] == "plan"
    assert careplan["subject"] == {"reference": f"Patient/{pid}"}
    assert careplan["instantiatesCanonical"] == [f"urn:test:pd:{t}"]
    assert careplan["title"] == "Referral follow-up"
    assert careplan["activity"] == [{"reference": {"reference": f"Task/{task['id']}"}}]
    # a second referral: a second Task, the same CarePlan, updated
    sr2 = create(c, referral(pid, t))
    assert wait_for(lambda: len(tasks_of(c, pid)) == 2)
    careplan = c.get(careplan_ref).json
    assert careplan["meta"]["versionId"] == "2"
    second = [x for x in tasks_of(c, pid) if x["focus"]["reference"] == f"ServiceRequest/{sr2['id']}"]
    assert careplan["activity"][1] == {"reference": {"reference": f"Task/{second[0]['id']}"}}
    found_plans = found(c, f"CarePlan?subject=Patient/{pid}")
    assert [p["id"] for p in found_plans] == [careplan["id"]]


def test_a_false_condition_makes_nothing(client):
    t = tag()
    setup_protocol(client, t)
    pid, _ = enrolled_patient(client)
    create(client, referral(pid, "something else"))
    # a draft referral is not a referral-created event either
    create(client, referral(pid, t, status="draft"))
    settle(client)
    assert tasks_of(client, pid) == []
    assert found(client, f"CarePlan?subject=Patient/{pid}") == []


def test_an_unrelated_update_does_not_fire_again(client):
    t = tag()
    setup_protocol(client, t)
    pid, _ = enrolled_patient(client)
    sr = create(client, referral(pid, t))
    assert wait_for(lambda: len(tasks_of(client, pid)) == 1)
    body = dict(sr, note=[{"text": "called the clinic"}])
    body.pop("meta")
    assert client.put(f"ServiceRequest/{sr['id']}", body).status == 200
    settle(client)
    assert len(tasks_of(client, pid)) == 1


def sql_output(srv, sql):
    """Runs sql on the served database behind the server's back; returns its output."""
    if ON_POSTGRES:
        cmd = [shutil.which("psql"), "-v", "ON_ERROR_STOP=1", "-qtA", str(srv.db), "-c", sql]
    else:
        cmd = [shutil.which("sqlite3"), str(srv.db), sql]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_event_handled_again_makes_nothing_more(make_server):
    srv = make_server()
    c = srv.client
    t = tag()
    setup_protocol(c, t)
    pid, _ = enrolled_patient(c)
    sr = create(c, referral(pid, t))
    assert wait_for(lambda: len(tasks_of(c, pid)) == 1)
    task = tasks_of(c, pid)[0]
    careplan = c.get(task["basedOn"][0]["reference"]).json
    srv.stop()
    # the event of the referral comes again, as after a crash before its acknowledgement
    when = int(parse_instant(sr["meta"]["lastUpdated"]).timestamp() * 1_000_000)
    sql_output(srv, "INSERT INTO outbox (seq, type, id, version, action, time_us) VALUES "
                    f"(0, 'ServiceRequest', '{sr['id']}', 1, 1, {when})")
    srv.start()
    c = srv.client
    assert wait_for(lambda: sql_output(srv, "SELECT count(*) FROM outbox") == "0"), \
        "the event was not handled again"
    assert [x["id"] for x in tasks_of(c, pid)] == [task["id"]]
    assert c.get(f"Task/{task['id']}").json["meta"]["versionId"] == "1"
    assert c.get(f"CarePlan/{careplan['id']}").json["meta"]["versionId"] == "1"


def test_a_completed_task_runs_the_next_action(client):
    t = tag()
    create(client, activity(f"urn:test:ad:{t}"))
    create(client, activity(f"urn:test:ad2:{t}", kind="CommunicationRequest", due="7 days",
                            description="Send the visit summary"))
    pd = create(client, plan(f"urn:test:pd:{t}", [
        action("call", f"urn:test:ad:{t}", condition=f"code.text = '{t}'"),
        action("summary", f"urn:test:ad2:{t}|1", trigger=None, after="call"),
    ]))
    pid, coordinator = enrolled_patient(client)
    create(client, referral(pid, t))
    assert wait_for(lambda: len(tasks_of(client, pid)) == 1)
    task = tasks_of(client, pid)[0]
    assert found(client, f"CommunicationRequest?subject=Patient/{pid}") == []
    for status in ("in-progress", "completed"):
        body = dict(task, status=status)
        body.pop("meta")
        r = client.put(f"Task/{task['id']}", body,
                       headers={"If-Match": f'W/"{task["meta"]["versionId"]}"'})
        assert r.status == 200, r
        task = r.json
    requests = wait_for(lambda: found(client, f"CommunicationRequest?subject=Patient/{pid}"))
    assert len(requests) == 1, requests
    cr = requests[0]
    assert cr["status"] == "active"
    assert cr["recipient"] == [{"reference": f"Practitioner/{coordinator}"}]
    assert cr["payload"] == [{"contentString": "Send the visit summary"}]
    assert cr["about"] == [{"reference": f"Task/{task['id']}"}]
    assert cr["identifier"][0]["value"] == f"{pd['id']}/summary/Task/{task['id']}/_history/3"
    due = parse_instant(cr["occurrenceDateTime"]) - parse_instant(cr["authoredOn"])
    assert abs(due.total_seconds() - 7 * 86400) <= 3600  # 7 calendar days (a DST change: 1 h)
    careplan = client.get(task["basedOn"][0]["reference"]).json
    assert careplan["activity"][1] == {"reference": {"reference": f"CommunicationRequest/{cr['id']}"}}


def test_nobody_in_the_role_leaves_the_task_in_the_pool(client):
    t = tag()
    setup_protocol(client, t, role=SOCIAL_WORKER)
    pid, _ = enrolled_patient(client)
    create(client, referral(pid, t))
    tasks = wait_for(lambda: tasks_of(client, pid))
    assert len(tasks) == 1
    assert tasks[0]["status"] == "requested"
    assert "owner" not in tasks[0]
    assert tasks[0]["performerType"] == [SOCIAL_WORKER]


def test_a_flag_action(client):
    t = tag()
    code = {"text": f"referral pending {t}"}
    pd = create(client, plan(f"urn:test:pd:{t}", [
        action("flag", condition=f"code.text = '{t}'",
               extension=[{"url": EXT + "flag", "valueCodeableConcept": code}])]))
    pid, _ = enrolled_patient(client)
    sr = create(client, referral(pid, t))
    flags = wait_for(lambda: found(client, f"Flag?subject=Patient/{pid}"))
    assert len(flags) == 1
    assert flags[0]["status"] == "active"
    assert flags[0]["code"] == code
    assert flags[0]["identifier"][0]["value"] == \
        f"{pd['id']}/flag/ServiceRequest/{sr['id']}/_history/1"


def test_apply_and_dry_run(client, server):
    t = tag()
    create(client, activity(f"urn:test:ad:{t}", due="PT4H"))
    pd = create(client, plan(f"urn:test:pd:{t}", [
        action("enrol", f"urn:test:ad:{t}", trigger="patient-enrolled",
               condition="%patient.gender = 'female'"),
        action("later", f"urn:test:ad:{t}", trigger=None, after="enrol")]))
    pid, coordinator = enrolled_patient(client)
    url = f"PlanDefinition/{pd['id']}/$apply"
    settle(client)  # what the engine does for the writes above is done: it writes nothing later
    before = client.last_change()
    r = client.get(f"{url}?subject=Patient/{pid}&dryRun=true")
    assert r.status == 200, r
    assert r.json["resourceType"] == "Bundle" and r.json["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in r.json["entry"]]
    assert kinds == ["CarePlan", "Task"]
    planned = r.json["entry"][1]["resource"]
    assert planned["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert "end" in planned["restriction"]["period"]
    assert client.last_change() == before, "a dry run wrote something"
    assert tasks_of(client, pid) == []

    r = client.post(url, {"resourceType": "Parameters", "parameter": [
        {"name": "subject", "valueReference": {"reference": f"Patient/{pid}"}}]})
    assert r.status == 200, r
    careplan = r.json
    assert careplan["resourceType"] == "CarePlan"
    tasks = tasks_of(client, pid)
    assert len(tasks) == 1
    assert careplan["activity"] == [{"reference": {"reference": f"Task/{tasks[0]['id']}"}}]
    assert tasks[0]["focus"] == {"reference": f"Patient/{pid}"}
    due = parse_instant(tasks[0]["restriction"]["period"]["end"]) - \
        parse_instant(tasks[0]["authoredOn"])
    assert abs(due.total_seconds() - 4 * 3600) < 1
    # applying again for the same patient version makes nothing more
    r = client.get(f"{url}?subject=Patient/{pid}")
    assert r.status == 200 and r.json["id"] == careplan["id"]
    assert len(tasks_of(client, pid)) == 1

    # errors
    assert_outcome(client.get(url), 400, "invalid", "subject", expression="subject")
    assert_outcome(client.get(f"{url}?subject=Patient/nobody-{t}"), 404, "not-found")
    assert_outcome(client.get(f"PlanDefinition/none-{t}/$apply?subject=Patient/{pid}"), 404,
                   "not-found")
    assert_outcome(client.get(f"{url}?subject=Patient/{pid}&dryRun=maybe"), 400, "invalid",
                   expression="dryRun")
    draft = create(client, plan(f"urn:test:pd2:{t}", [action("a", f"urn:test:ad:{t}")],
                                status="draft"))
    assert_outcome(client.get(f"PlanDefinition/{draft['id']}/$apply?subject=Patient/{pid}"),
                   422, "business-rule", "only an active protocol", 
                   expression="PlanDefinition.status")
    r = client.get(f"{url}?subject=Patient/{pid}", auth=server.auditor_token())
    assert_outcome(r, 403, "forbidden")
    cap = client.get("metadata").json
    ops = [res.get("operation") for res in cap["rest"][0]["resource"]
           if res["type"] == "PlanDefinition"]
    assert ops == [[{"name": "apply",
                     "definition": "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"}]]


def test_a_protocol_that_cannot_run_is_refused(client):
    t = tag()
    settle(client)  # the engine's work for the tests before is done: it writes nothing later
    before = client.last_change()
    cases = [
        (plan(f"urn:test:{t}", [action("a", "urn:x", condition="code.text = ")]),
         "PlanDefinition.action[0].condition[0].expression.expression", "does not compile"),
        (plan(f"urn:test:{t}", [action("a", "urn:x", trigger="referral-sent")]),
         "PlanDefinition.action[0].trigger[0].name", 'no named event "referral-sent"'),
        (plan(f"urn:test:{t}", [action("a", "urn:x"), action("b", "urn:x", trigger=None,
                                                              after="c")]),
         "PlanDefinition.action[1].relatedAction[0].actionId", 'no action "c"'),
        (plan(f"urn:test:{t}", [action("a", "urn:x", trigger=None, after="b"),
                                action("b", "urn:x", trigger=None, after="a")]),
         "PlanDefinition.action[0].relatedAction", "make a cycle"),
        (plan(f"urn:test:{t}", [action("a", "urn:x"), action("a", "urn:y")]),
         "PlanDefinition.action[1].id", 'two actions have the id "a"'),
    ]
    for body, expression, text in cases:
        r = client.post("PlanDefinition", body)
        assert_outcome(r, 422, "business-rule", text, expression=expression)
    bad = [
        (activity(f"urn:test:{t}", due="2 fortnights"),
         f"ActivityDefinition.extension('{EXT}due').valueString", "2 fortnights"),
        (activity(f"urn:test:{t}", kind="MedicationRequest"), "ActivityDefinition.kind",
         "not \"MedicationRequest\""),
        (activity(f"urn:test:{t}", extension=[
            {"url": EXT + "due", "valueString": "1 business day"},
            {"url": EXT + "escalation", "extension": [
                {"url": "after", "valueString": "PT0H"},
                {"url": "priority", "valueCode": "very-urgent"}]}]),
         "ActivityDefinition.extension[1].extension[1]", "priority \"very-urgent\" is not"),
    ]
    for body, expression, text in bad:
        r = client.post("ActivityDefinition", body)
        assert_outcome(r, 422, "business-rule", text, expression=expression)
    assert client.last_change() == before
    # a missing ActivityDefinition is found out when an event comes: the event fails
    pd = create(client, plan(f"urn:test:pd:{t}", [
        action("call", f"urn:test:missing:{t}", condition=f"code.text = '{t}'")]))
    assert pd["id"]
    # other PlanDefinitions are only stored
    other = plan(f"urn:test:os:{t}", [{"title": "no id, no trigger"}])
    other["type"] = {"coding": [{"system": WORKFLOW["coding"][0]["system"], "code": "order-set"}]}
    assert client.post("PlanDefinition", other).status == 201
    # retire the protocol whose ActivityDefinition is missing, for the other tests
    body = dict(pd, status="retired")
    body.pop("meta")
    assert client.put(f"PlanDefinition/{pd['id']}", body).status == 200


def test_who_may_apply(world):
    """A patient may not apply a protocol; staff may, for the patients of their care teams,
    and what is made is theirs."""
    t = tag()
    c = world.client
    create(c, activity(f"urn:test:ad:{t}"))
    pd = create(c, plan(f"urn:test:pd:{t}", [action("a", f"urn:test:ad:{t}")]))
    url = f"PlanDefinition/{pd['id']}/$apply?subject=Patient/pat1"
    assert_outcome(as_(world, "jane")("GET", url), 403, "forbidden", "a patient cannot apply")
    assert_outcome(as_(world, "nurse2")("GET", url), 403, "forbidden",
                   "outside your care teams")
    r = as_(world, "nurse1")("GET", url)
    assert r.status == 200, r
    tasks = found(c, f"Task?identifier=urn:concerto:protocol-action|{pd['id']}/a/Patient/pat1/"
                     "_history/1")
    assert len(tasks) == 1
    # pat1 has no care coordination team: nobody holds the role, the Task waits in the pool
    assert tasks[0]["status"] == "requested" and "owner" not in tasks[0]
    [entry] = r.json["activity"]
    assert entry["reference"] == {"reference": f"Task/{tasks[0]['id']}"}
    # applied by a person: the activity records them as its contributor
    assert {"url": "http://concerto.dev/fhir/StructureDefinition/contributor",
            "valueReference": {"reference": "Practitioner/p1"}} in entry["extension"]


def test_a_missing_activity_fails_the_event_until_it_is_written(make_server):
    srv = make_server()
    c = srv.client
    t = tag()
    pd = create(c, plan(f"urn:test:pd:{t}", [action("call", f"urn:test:ad:{t}|1")]))
    pid, coordinator = enrolled_patient(c)
    sr = create(c, referral(pid, t))
    errors = f"SELECT last_error FROM outbox WHERE type = 'ServiceRequest' AND id = '{sr['id']}'"
    last_error = wait_for(lambda: sql_output(srv, errors))
    assert last_error == (f'action "call" of urn:test:pd:{t} names urn:test:ad:{t}|1, which is '
                          "not an active ActivityDefinition"), last_error
    assert tasks_of(c, pid) == []
    # written afterwards, the retry finds it
    create(c, activity(f"urn:test:ad:{t}"))
    tasks = wait_for(lambda: tasks_of(c, pid), timeout=30)
    assert len(tasks) == 1
    assert tasks[0]["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert tasks[0]["identifier"][0]["value"] == \
        f"{pd['id']}/call/ServiceRequest/{sr['id']}/_history/1"
