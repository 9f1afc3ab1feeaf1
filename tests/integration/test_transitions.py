"""
The transition workflow on the coordination engine: hospital stays written as the HL7 feed
writes them (Encounters through the FHIR API), on a database made with `concerto init` and a
server under the test clock in New York. An admission tells the primary coordinator and the
primary care physician and starts discharge planning; an emergency registration tells them
too; a discharge to a community setting starts transitional care management with exact
deadlines (weekends, Thanksgiving, 7 and 14 days, 72 hours) chosen by the stay's complexity;
a discharge elsewhere or from the emergency department does not; a cancelled admission or
discharge cancels the work it started, and a discharge after that starts it anew; a
readmission within 30 days is flagged. Each step waits until the engine has handled every
change (the outbox is empty). On SQLite and PostgreSQL.
"""
import shutil
import subprocess
import time

from conftest import ON_POSTGRES, create, patient, run_cli

BASE = "http://concerto.dev/fhir/"
EXT = BASE + "StructureDefinition/"
SNOMED = "http://snomed.info/sct"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
COORDINATION = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]
ROLES = {
    "coordinator": {"coding": [{"system": SNOMED, "code": "768820003",
                                "display": "Care coordinator"}]},
    "pcp": {"coding": [{"system": SNOMED, "code": "446050000",
                        "display": "Primary care physician"}]},
    "nurse": {"coding": [{"system": SNOMED, "code": "224535009", "display": "Registered nurse"}]},
}
TOTAL_DEFINITIONS = 36  # data/protocols: PlanDefinitions, ActivityDefinitions, a Questionnaire


# ---- the server, its clock and its engine ------------------------------------------------

CLOCK_ARGS = ["--test-clock", "--token-ttl", "86400", "--calendar-timezone", "America/New_York"]


def initialised_server(make_server, extra=()):
    srv = make_server(args=[*CLOCK_ARGS, *extra], start=False)
    r = run_cli("init", "--db", str(srv.db))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"built-in protocols: {TOTAL_DEFINITIONS} definitions loaded" in r.stdout, r.stdout
    return srv.start()


def set_clock(srv, when):
    r = srv.client.post("/admin/clock", body={"now": when})
    assert r.status == 200, r
    srv.token = None
    srv.client.token = srv.token = srv.get_token()


def sql(srv, text):
    if ON_POSTGRES:
        cmd = [shutil.which("psql"), "-v", "ON_ERROR_STOP=1", "-qtA", str(srv.db), "-c", text]
    else:
        cmd = [shutil.which("sqlite3"), str(srv.db), text]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def restart(srv, when):
    srv.stopped_by_test = False
    srv.token = None
    srv.start()
    set_clock(srv, when)
    drained(srv)
    return srv.client


def redeliver(srv, resource, when):
    """With the server stopped, the change event of resource's version comes again (as after
    a crash before its acknowledgement); the server starts again at the test time `when` and
    handles it."""
    import datetime
    srv.stop()
    time_us = int(datetime.datetime.fromisoformat(
        resource["meta"]["lastUpdated"].replace("Z", "+00:00")).timestamp() * 1_000_000)
    sql(srv, "INSERT INTO outbox (seq, type, id, version, action, time_us) VALUES (0, "
             f"'{resource['resourceType']}', '{resource['id']}', "
             f"{resource['meta']['versionId']}, 1, {time_us})")
    return restart(srv, when)


def drained(srv, timeout=60.0):
    """Waits until the engine handled every change event (what a handler writes is in the
    outbox before the event that caused it leaves it)."""
    deadline = time.monotonic() + timeout
    while sql(srv, "SELECT count(*) FROM outbox") != "0":
        assert time.monotonic() < deadline, "the engine did not handle the changes"
        time.sleep(0.1)


# ---- the record --------------------------------------------------------------------------

def found(client, url):
    r = client.get(url)
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", []) if e["search"]["mode"] == "match"]


def made(client, pid, protocol, rtype="Task"):
    """What protocol made for the patient, by action id (one each)."""
    out = {}
    for r in found(client, f"{rtype}?{'patient' if rtype == 'Task' else 'subject'}="
                           f"Patient/{pid}&_count=200"):
        value = r["identifier"][0]["value"]
        if value.startswith(protocol + "/"):
            out.setdefault(value.split("/")[1], []).append(r)
    return out


def one_each(by_action):
    for action, rs in by_action.items():
        assert len(rs) == 1, (action, rs)
    return {action: rs[0] for action, rs in by_action.items()}


def world(client, *roles):
    """A patient with a care coordination team: role -> Practitioner id."""
    pid = create(client, patient())["id"]
    people = {role: create(client, {"resourceType": "Practitioner",
                                    "name": [{"family": role.title()}]})["id"] for role in roles}
    create(client, {"resourceType": "CareTeam", "status": "active", "category": COORDINATION,
                    "subject": {"reference": f"Patient/{pid}"},
                    "participant": [{"role": [ROLES[role]],
                                     "member": {"reference": f"Practitioner/{who}"}}
                                    for role, who in people.items()]})
    return pid, people


def conditions(client, pid, n):
    return [{"condition": {"reference": "Condition/" + create(client, {
        "resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
        "code": {"text": f"Diagnosis {i}"}})["id"]}} for i in range(n)]


def stay(client, pid, start, cls="IMP", status="in-progress", **extra):
    body = {"resourceType": "Encounter", "status": status,
            "class": {"system": ACT, "code": cls}, "subject": {"reference": f"Patient/{pid}"},
            "identifier": [{"system": "urn:example:visit", "value": f"V-{pid}-{start}"}],
            "period": {"start": start}}
    body.update(extra)
    return create(client, body)


def put(client, resource, drop=(), **changes):
    body = dict(resource, **changes)
    body.pop("meta")
    for key in drop:
        body.pop(key, None)
    r = client.put(f"{resource['resourceType']}/{resource['id']}", body,
                   headers={"If-Match": f'W/"{resource["meta"]["versionId"]}"'})
    assert r.status == 200, r
    return r.json


def discharge(client, enc, end, disposition="home", **extra):
    period = dict(enc["period"], end=end)
    hospitalization = {"dischargeDisposition": {"coding": [
        {"system": DISPOSITION, "code": disposition}]}}
    return put(client, enc, status="finished", period=period, hospitalization=hospitalization,
               **extra)


def due(task):
    return task["restriction"]["period"]["end"]


def owner(task):
    return task.get("owner", {}).get("reference")


def assert_tcm_task(task, action, encounter, pid):
    ref = f"Encounter/{encounter['id']}"
    assert task["identifier"] == [{"system": "urn:concerto:protocol-action",
                                   "value": f"transitional-care/{action}/{ref}/_history/"
                                            f"{encounter['meta']['versionId']}"}]
    assert task["extension"] == [{"url": EXT + "protocol-action",
                                  "valueString": BASE + "PlanDefinition/transitional-care#"
                                                 + action}]
    assert task["focus"] == {"reference": ref}
    assert task["for"] == {"reference": f"Patient/{pid}"}
    assert task["intent"] == "order" and task["status"] == "ready"


# ---- admission, discharge, TCM -----------------------------------------------------------

def test_admission_then_friday_discharge_of_high_complexity(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid, people = world(c, "coordinator", "pcp", "nurse")
    coordinator, pcp, nurse = (f"Practitioner/{people[r]}" for r in ("coordinator", "pcp", "nurse"))
    # admitted on Monday 17 November 2031 at 8:00 (recorded at 10:00)
    set_clock(srv, "2031-11-17T10:00:00-05:00")
    enc = stay(c, pid, "2031-11-17T08:00:00-05:00", diagnosis=conditions(c, pid, 1))
    drained(srv)
    requests = one_each(made(c, pid, "hospital-admission", "CommunicationRequest"))
    assert sorted(requests) == ["notify-coordinator", "notify-pcp"]
    assert requests["notify-coordinator"]["recipient"] == [{"reference": coordinator}]
    assert requests["notify-pcp"]["recipient"] == [{"reference": pcp}]
    for cr in requests.values():
        assert cr["status"] == "active" and cr["priority"] == "urgent"
        assert cr["about"] == [{"reference": f"Encounter/{enc['id']}"}]
        assert cr["subject"] == {"reference": f"Patient/{pid}"}
        assert cr["authoredOn"].startswith("2031-11-17T10:00:")
    [planning] = made(c, pid, "hospital-admission")["discharge-planning"]
    assert owner(planning) == coordinator
    assert planning["code"]["coding"][0]["code"] == "discharge-planning"
    assert due(planning) == "2031-11-18T23:59:59.999-05:00"  # 1 business day

    # discharged home on Friday 21 November at 15:00 after more than 4 days: high complexity
    set_clock(srv, "2031-11-21T15:20:00-05:00")
    enc = discharge(c, enc, "2031-11-21T15:00:00-05:00")
    drained(srv)
    tcm = one_each(made(c, pid, "transitional-care"))
    assert sorted(tcm) == ["education", "face-to-face-7", "home-visit",
                           "interactive-contact", "medication-reconciliation-7",
                           "post-discharge-call"]
    for action, task in tcm.items():
        assert_tcm_task(task, action, enc, pid)
    # 2 business days after a Friday: Monday, Tuesday, to the end of Tuesday
    assert due(tcm["interactive-contact"]) == "2031-11-25T23:59:59.999-05:00"
    assert due(tcm["post-discharge-call"]) == "2031-11-25T23:59:59.999-05:00"
    assert due(tcm["face-to-face-7"]) == "2031-11-28T15:00:00.000-05:00"
    assert due(tcm["medication-reconciliation-7"]) == "2031-11-28T15:00:00.000-05:00"
    assert due(tcm["education"]) == "2031-11-28T15:00:00.000-05:00"
    assert due(tcm["home-visit"]) == "2031-11-24T15:00:00.000-05:00"  # 72 hours
    assert owner(tcm["interactive-contact"]) == coordinator
    assert owner(tcm["face-to-face-7"]) == coordinator
    for action in ("medication-reconciliation-7", "home-visit", "education"):
        assert owner(tcm[action]) == nurse, action
        assert tcm[action]["performerType"] == [ROLES["nurse"]]
    assert tcm["interactive-contact"]["code"]["coding"][0]["code"] == "tcm-interactive-contact"
    assert tcm["interactive-contact"]["description"].startswith("Reach the patient")
    assert tcm["post-discharge-call"]["input"] == [{
        "type": {"text": "questionnaire"},
        "valueCanonical": BASE + "Questionnaire/post-discharge-call|1.0.0"}]
    q = c.get("Questionnaire/post-discharge-call").json
    assert [i["linkId"] for i in q["item"]] == [
        "instructions-understood", "warning-signs-known", "knows-whom-to-call",
        "medications-understood", "concerns"]
    # the admission's work goes on; the discharge made no second admission notice
    assert len(made(c, pid, "hospital-admission")["discharge-planning"]) == 1
    assert len(found(c, f"CommunicationRequest?subject=Patient/{pid}")) == 2

    # the interactive contact escalates at its due time: urgent, the owner told
    set_clock(srv, "2031-11-26T00:00:30-05:00")
    deadline = time.monotonic() + 60
    tid = tcm["interactive-contact"]["id"]
    while c.get(f"Task/{tid}").json.get("priority") != "urgent":
        assert time.monotonic() < deadline, "the interactive contact did not escalate"
        time.sleep(0.2)


def test_discharge_before_thanksgiving_of_moderate_complexity(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid, people = world(c, "coordinator")  # no nurse: the coordinator does the nurse's work
    coordinator = f"Practitioner/{people['coordinator']}"
    # the feed sends the discharge first: the Encounter is created finished; a 2-day stay,
    # routine admission, two diagnoses: moderate complexity
    set_clock(srv, "2031-11-26T16:00:00-05:00")
    enc = stay(c, pid, "2031-11-24T09:00:00-05:00", status="finished",
               period={"start": "2031-11-24T09:00:00-05:00", "end": "2031-11-26T15:00:00-05:00"},
               priority={"coding": [{"system": PRIORITY, "code": "R"}]},
               diagnosis=conditions(c, pid, 2),
               hospitalization={"dischargeDisposition": {"coding": [
                   {"system": DISPOSITION, "code": "home"},
                   {"system": "http://terminology.hl7.org/CodeSystem/v2-0112", "code": "01"}]}})
    drained(srv)
    tcm = one_each(made(c, pid, "transitional-care"))
    assert sorted(tcm) == ["education", "face-to-face-14", "interactive-contact",
                           "medication-reconciliation-14", "post-discharge-call"]
    # discharged on Wednesday 26 November 2031; Thursday the 27th is Thanksgiving: Friday 28,
    # Monday 1 December
    assert due(tcm["interactive-contact"]) == "2031-12-01T23:59:59.999-05:00"
    assert due(tcm["face-to-face-14"]) == "2031-12-10T15:00:00.000-05:00"
    assert due(tcm["medication-reconciliation-14"]) == "2031-12-10T15:00:00.000-05:00"
    assert due(tcm["education"]) == "2031-12-03T15:00:00.000-05:00"
    for task in tcm.values():
        assert owner(task) == coordinator
    assert tcm["medication-reconciliation-14"]["performerType"] == [ROLES["coordinator"]]
    assert made(c, pid, "hospital-admission") == {}  # created finished: no admission

    # an emergent admission of one day is of high complexity; so are three diagnoses, and a
    # stay whose discharge date is 4 days after its admission date, however few the hours
    high = ["education", "face-to-face-7", "home-visit", "interactive-contact",
            "medication-reconciliation-7", "post-discharge-call"]
    moderate = ["education", "face-to-face-14", "interactive-contact",
                "medication-reconciliation-14", "post-discharge-call"]
    day = ("2031-12-01T09:00:00-05:00", "2031-12-02T09:00:00-05:00")
    for extra, (start, end), expected in (
            ({"priority": {"coding": [{"system": PRIORITY, "code": "EM"}]}}, day, high),
            ({"diagnosis": conditions(c, pid, 3)}, day, high),
            ({}, ("2031-12-01T23:00:00-05:00", "2031-12-05T01:00:00-05:00"), high),
            ({}, ("2031-12-01T00:30:00-05:00", "2031-12-04T23:30:00-05:00"), moderate)):
        other = stay(c, pid, start, status="finished", period={"start": start, "end": end},
                     **extra)
        drained(srv)
        actions = sorted(a for a, ts in made(c, pid, "transitional-care").items()
                         for t in ts if t["focus"]["reference"] == f"Encounter/{other['id']}")
        assert actions == expected, (extra, start, end)

    # a discharge the feed sent without its time (no period.end): the deadlines count from
    # when Concerto learned of it, Friday 5 December at 10:00
    set_clock(srv, "2031-12-05T10:00:00-05:00")
    timeless = stay(c, pid, "2031-12-04T09:00:00-05:00", status="finished")
    drained(srv)
    tcm = {a: [t for t in ts if t["focus"]["reference"] == f"Encounter/{timeless['id']}"]
           for a, ts in made(c, pid, "transitional-care").items()}
    tcm = one_each({a: ts for a, ts in tcm.items() if ts})
    assert due(tcm["interactive-contact"]) == "2031-12-09T23:59:59.999-05:00"
    # 14 days from the event's time (the test clock runs on from 10:00)
    assert due(tcm["face-to-face-14"])[:17] == "2031-12-19T10:00:"
    assert due(tcm["face-to-face-14"]) == tcm["face-to-face-14"]["authoredOn"].replace(
        "2031-12-05", "2031-12-19")


def test_no_tcm_for_a_facility_or_an_emergency_visit(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid, people = world(c, "coordinator", "pcp")
    set_clock(srv, "2031-11-04T10:00:00-05:00")
    # discharged to a skilled nursing facility, or an office visit that ends: nothing
    enc = stay(c, pid, "2031-11-01T10:00:00-04:00")
    discharge(c, enc, "2031-11-04T09:00:00-05:00", disposition="snf")
    office = stay(c, pid, "2031-11-04T09:00:00-05:00", cls="AMB")
    put(c, office, status="finished")
    drained(srv)
    assert made(c, pid, "transitional-care") == {}

    # the emergency department: the coordinator and the physician are told, nothing more
    ed = stay(c, pid, "2031-11-04T09:30:00-05:00", cls="EMER")
    drained(srv)
    requests = [r for r in found(c, f"CommunicationRequest?subject=Patient/{pid}")
                if r["about"] == [{"reference": f"Encounter/{ed['id']}"}]]
    assert sorted((r["identifier"][0]["value"].split("/")[1], r["recipient"][0]["reference"])
                  for r in requests) == [
        ("notify-coordinator-ed", f"Practitioner/{people['coordinator']}"),
        ("notify-pcp-ed", f"Practitioner/{people['pcp']}")]
    # sent home from the ED: the ED follow-up, not transitional care
    discharge(c, ed, "2031-11-04T14:00:00-05:00")
    drained(srv)
    assert made(c, pid, "transitional-care") == {}
    [follow_up] = made(c, pid, "ed-visit-follow-up")["follow-up"]
    assert due(follow_up) == "2031-11-11T14:00:00.000-05:00"

    # admitted from the ED (the class changes to inpatient): an admission
    ed2 = stay(c, pid, "2031-11-05T09:30:00-05:00", cls="EMER")
    drained(srv)
    put(c, ed2, **{"class": {"system": ACT, "code": "IMP"}})
    drained(srv)
    planning = made(c, pid, "hospital-admission")["discharge-planning"]
    assert sorted(t["focus"]["reference"] for t in planning) == sorted(
        [f"Encounter/{enc['id']}", f"Encounter/{ed2['id']}"])


def test_cancelled_admission_and_discharge(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid, people = world(c, "coordinator", "pcp")
    set_clock(srv, "2031-11-03T10:00:00-05:00")
    # an admission cancelled (A11): its discharge planning Task cancelled, notices revoked
    wrong = stay(c, pid, "2031-11-03T08:00:00-05:00")
    drained(srv)
    put(c, c.get(f"Encounter/{wrong['id']}").json, status="cancelled")
    drained(srv)
    [planning] = made(c, pid, "hospital-admission")["discharge-planning"]
    assert planning["status"] == "cancelled"
    assert planning["statusReason"] == {"text": "the admission was cancelled"}
    requests = found(c, f"CommunicationRequest?subject=Patient/{pid}")
    assert sorted(r["status"] for r in requests) == ["revoked", "revoked"]

    # a stay discharged, then the discharge cancelled (A13)
    enc = stay(c, pid, "2031-11-04T08:00:00-05:00")
    drained(srv)
    set_clock(srv, "2031-11-06T12:00:00-05:00")
    discharged = discharge(c, enc, "2031-11-06T11:00:00-05:00")
    drained(srv)
    first = one_each(made(c, pid, "transitional-care"))
    assert len(first) == 5
    # the coordinator reached the patient before the cancellation: that stays done
    contact = first["interactive-contact"]
    contact = put(c, contact, status="in-progress")
    contact = put(c, contact, status="completed")
    reopened = put(c, discharged, status="in-progress", period={"start": enc["period"]["start"]},
                   drop=("hospitalization",))
    drained(srv)
    after = one_each(made(c, pid, "transitional-care"))
    assert after["interactive-contact"]["status"] == "completed"
    for action, task in after.items():
        if action != "interactive-contact":
            assert task["status"] == "cancelled", action
            assert task["statusReason"] == {"text": "the discharge was cancelled"}
    versions = sorted((t["id"], t["meta"]["versionId"])
                      for ts in made(c, pid, "transitional-care").values() for t in ts)
    c = redeliver(srv, reopened, "2031-11-06T13:00:00-05:00")
    assert sorted((t["id"], t["meta"]["versionId"])
                  for ts in made(c, pid, "transitional-care").values() for t in ts) == versions
    # the stay goes on: its discharge planning and admission notices stand
    open_planning = [t for t in made(c, pid, "hospital-admission")["discharge-planning"]
                     if t["focus"]["reference"] == f"Encounter/{enc['id']}"]
    assert [t["status"] for t in open_planning] == ["ready"]
    assert sorted(r["status"] for r in found(c, f"CommunicationRequest?subject=Patient/{pid}")
                  ) == ["active", "active", "revoked", "revoked"]

    # discharged again on Wednesday 12 November, after 8 days (high complexity): transitional
    # care anew, keyed by the new version
    set_clock(srv, "2031-11-12T12:00:00-05:00")
    again = discharge(c, reopened, "2031-11-12T11:00:00-05:00")
    drained(srv)
    fresh = one_each({a: [t for t in ts if t["status"] == "ready"]
                      for a, ts in made(c, pid, "transitional-care").items()
                      if any(t["status"] == "ready" for t in ts)})
    assert sorted(fresh) == ["education", "face-to-face-7", "home-visit", "interactive-contact",
                             "medication-reconciliation-7", "post-discharge-call"]
    for action, task in fresh.items():
        assert_tcm_task(task, action, again, pid)
    # Thursday 13, Friday 14
    assert due(fresh["interactive-contact"]) == "2031-11-14T23:59:59.999-05:00"


def test_cancellation_handled_before_the_admission(make_server):
    # the worker looks for work once a minute: the events wait until the server is killed
    srv = initialised_server(make_server, extra=("--work-poll", "60000"))
    c = srv.client
    set_clock(srv, "2031-11-03T10:00:00-05:00")  # wakes the worker once
    pid, _ = world(c, "coordinator", "pcp")
    enc = stay(c, pid, "2031-11-03T08:00:00-05:00")
    put(c, enc, status="cancelled")
    srv.kill()
    admission = (f"FROM outbox WHERE type = 'Encounter' AND id = '{enc['id']}' "
                 "AND version = 1")
    assert sql(srv, "SELECT count(*) " + admission) == "1", "handled before the kill"
    # the admission's event is held back: the cancellation is handled first
    sql(srv, "DELETE " + admission)
    srv.args = CLOCK_ARGS
    c = restart(srv, "2031-11-03T10:05:00-05:00")
    assert found(c, f"Task?patient=Patient/{pid}") == []
    # then the admission's event: the admission was taken back, nobody is told, nothing to do
    c = redeliver(srv, enc, "2031-11-03T10:10:00-05:00")
    assert found(c, f"Task?patient=Patient/{pid}") == []
    assert found(c, f"CommunicationRequest?subject=Patient/{pid}") == []


def test_readmission_within_30_days_is_flagged(make_server):
    srv = initialised_server(make_server)
    c = srv.client
    pid, _ = world(c, "coordinator")
    other, _ = world(c, "coordinator")
    set_clock(srv, "2031-12-20T10:00:00-05:00")
    # discharged on 31 October at noon; admitted again on 30 November at 11:00, within 30 days
    first = stay(c, pid, "2031-10-28T08:00:00-04:00", status="finished",
                 period={"start": "2031-10-28T08:00:00-04:00", "end": "2031-10-31T12:00:00-04:00"})
    # the other patient: discharged on 31 October, admitted again 31 days later
    stay(c, other, "2031-10-28T08:00:00-04:00", status="finished",
         period={"start": "2031-10-28T08:00:00-04:00", "end": "2031-10-31T12:00:00-04:00"})
    drained(srv)
    again = stay(c, pid, "2031-11-30T11:00:00-05:00")
    late = stay(c, other, "2031-12-01T12:00:00-05:00")
    drained(srv)
    [flag] = found(c, f"Flag?subject=Patient/{pid}")
    assert flag["status"] == "active"
    assert flag["code"]["coding"] == [{"system": SNOMED, "code": "417005",
                                       "display": "Hospital re-admission"}]
    assert flag["identifier"] == [{"system": "urn:concerto:readmission",
                                   "value": f"Encounter/{again['id']}"}]
    assert flag["encounter"] == {"reference": f"Encounter/{again['id']}"}
    assert flag["extension"] == [{"url": EXT + "readmission",
                                  "valueReference": {"reference": f"Encounter/{first['id']}"}}]
    assert flag["period"] == {"start": "2031-11-30T11:00:00-05:00"}
    marked = c.get(f"Encounter/{again['id']}").json
    assert marked["extension"] == [{"url": EXT + "readmission",
                                    "valueReference": {"reference": f"Encounter/{first['id']}"}}]
    assert marked["meta"]["versionId"] == "2"
    assert found(c, f"Flag?subject=Patient/{other}") == []
    assert "extension" not in c.get(f"Encounter/{late['id']}").json

    # the admission's event handled again, an update during the stay: nothing more
    c = redeliver(srv, again, "2031-12-20T11:00:00-05:00")
    assert [f["meta"]["versionId"] for f in found(c, f"Flag?subject=Patient/{pid}")] == ["1"]
    assert c.get(f"Encounter/{again['id']}").json["meta"]["versionId"] == "2"
    marked = put(c, marked, location=[{"location": {"display": "Ward 4"}}])
    drained(srv)
    assert len(found(c, f"Flag?subject=Patient/{pid}")) == 1

    # a stay the feed sent as discharged only (no admission came): flagged at the discharge
    third, _ = world(c, "coordinator")
    stay(c, third, "2031-11-20T08:00:00-05:00", status="finished",
         period={"start": "2031-11-20T08:00:00-05:00", "end": "2031-11-22T12:00:00-05:00"})
    drained(srv)
    only = stay(c, third, "2031-12-10T08:00:00-05:00", status="finished",
                period={"start": "2031-12-10T08:00:00-05:00", "end": "2031-12-12T12:00:00-05:00"})
    drained(srv)
    assert [f["encounter"] for f in found(c, f"Flag?subject=Patient/{third}")] == [
        {"reference": f"Encounter/{only['id']}"}]

    # cancelling the admission withdraws the flag; that event again changes nothing
    cancelled = put(c, marked, status="cancelled")
    drained(srv)
    [flag] = found(c, f"Flag?subject=Patient/{pid}")
    assert flag["status"] == "entered-in-error"
    c = redeliver(srv, cancelled, "2031-12-20T12:00:00-05:00")
    assert [(f["status"], f["meta"]["versionId"]) for f in found(c, f"Flag?subject=Patient/{pid}")
            ] == [("entered-in-error", flag["meta"]["versionId"])]
