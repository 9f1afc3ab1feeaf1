"""A patient's care coordination team (CareTeam of category LOINC LA28865-6): at most one
active per patient, with exactly one current primary coordinator (role SNOMED CT 768820003),
whoever writes it; other care teams are free-form. When the primary coordinator changes, the
engine hands their open Tasks of the patient over to the new one."""
import time

from conftest import assert_outcome, create, patient, settle

# --test-clock: settle() waits for the engine's work (GET /admin/clock)
SERVER_ARGS = ("--test-clock",)

COORDINATION = [{"coding": [{"system": "http://loinc.org", "code": "LA28865-6"}]}]
COORDINATOR = [{"coding": [{"system": "http://snomed.info/sct", "code": "768820003"}]}]
PCP = [{"coding": [{"system": "http://snomed.info/sct", "code": "446050000"}]}]


def member(who, role, **period):
    m = {"role": role, "member": {"reference": f"Practitioner/{who}"}}
    if period:
        m["period"] = period
    return m


def team(pid, participants, status="active", category=COORDINATION):
    t = {"resourceType": "CareTeam", "status": status,
         "subject": {"reference": f"Patient/{pid}"}, "participant": participants}
    if category:
        t["category"] = category
    return t


def practitioners(client, n):
    return [create(client, {"resourceType": "Practitioner", "name": [{"family": f"P{i}"}]})["id"]
            for i in range(n)]


def test_exactly_one_current_coordinator(client):
    pid = create(client, patient())["id"]
    a, b, c = practitioners(client, 3)
    before = client.last_change()
    r = client.post("CareTeam", team(pid, [member(c, PCP)]))
    assert_outcome(r, 422, "business-rule",
                   f"is the care coordination team of Patient/{pid} and needs exactly one "
                   "current participant with role 768820003 (care coordinator), its primary "
                   "coordinator; it has 0", expression="CareTeam.participant")
    r = client.post("CareTeam", team(pid, [member(a, COORDINATOR), member(b, COORDINATOR)]))
    assert_outcome(r, 422, "business-rule", "it has 2")
    # a coordinator whose period is over, or not yet begun, does not count
    r = client.post("CareTeam", team(pid, [member(a, COORDINATOR, end="2020-01-31"),
                                           member(b, COORDINATOR, start="2099-01-01")]))
    assert_outcome(r, 422, "business-rule", "it has 0")
    assert client.last_change() == before
    r = client.post("CareTeam", team(pid, [member(a, COORDINATOR, end="2020-01-31"),
                                           member(b, COORDINATOR, start="2020-02-01"),
                                           member(c, PCP)]))
    assert r.status == 201, r.body
    # a change that leaves it without one is refused too
    t = r.json
    body = dict(t, participant=[member(c, PCP)])
    body.pop("meta")
    assert_outcome(client.put(f"CareTeam/{t['id']}", body), 422, "business-rule", "it has 0")


def test_one_coordination_team_per_patient(client):
    pid = create(client, patient())["id"]
    a, b = practitioners(client, 2)
    first = create(client, team(pid, [member(a, COORDINATOR)]))
    r = client.post("CareTeam", team(pid, [member(b, COORDINATOR)]))
    assert_outcome(r, 422, "business-rule",
                   f"Patient/{pid} already has an active care coordination team, "
                   f"CareTeam/{first['id']}", expression="CareTeam.status")
    # updating the team itself is fine
    body = dict(first, participant=[member(b, COORDINATOR)])
    body.pop("meta")
    assert client.put(f"CareTeam/{first['id']}", body).status == 200
    # once it is inactive, a new one can start; a proposed one may wait beside it
    assert create(client, team(pid, [member(a, COORDINATOR)], status="proposed"))
    body = dict(first, status="inactive")
    body.pop("meta")
    assert client.put(f"CareTeam/{first['id']}", body).status == 200
    assert create(client, team(pid, [member(a, COORDINATOR)]))
    # another patient's team is another matter
    other = create(client, patient())["id"]
    assert create(client, team(other, [member(a, COORDINATOR)]))


def test_its_subject_is_a_patient(client):
    a, = practitioners(client, 1)
    group = create(client, {"resourceType": "Group", "type": "person", "actual": True})
    t = team("x", [member(a, COORDINATOR)])
    t["subject"] = {"reference": f"Group/{group['id']}"}
    assert_outcome(client.post("CareTeam", t), 422, "business-rule",
                   "must have a Patient as its subject", expression="CareTeam.subject")


def test_other_care_teams_are_free_form(client):
    pid = create(client, patient())["id"]
    a, b = practitioners(client, 2)
    # a hospital's team: no coordinator, two of them, several at once: all fine
    assert create(client, team(pid, [member(a, PCP)], category=None))
    assert create(client, team(pid, [member(a, COORDINATOR), member(b, COORDINATOR)],
                               category=None))
    # a coordination team that is not active is not held to the rule yet
    assert create(client, team(pid, [member(a, PCP)], status="proposed"))


def wait_for(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_new_coordinator_takes_over_the_open_tasks(client):
    pid, other = create(client, patient())["id"], create(client, patient())["id"]
    a, b, c = practitioners(client, 3)

    def task(who, status, pat=pid):
        return create(client, {"resourceType": "Task", "status": status, "intent": "order",
                               "for": {"reference": f"Patient/{pat}"},
                               "owner": {"reference": f"Practitioner/{who}"}})["id"]

    open1, open2 = task(a, "ready"), task(a, "on-hold")
    done, theirs, elsewhere = task(a, "completed"), task(c, "ready"), task(a, "ready", other)
    t = create(client, team(pid, [member(a, COORDINATOR), member(c, PCP)]))
    body = dict(t, participant=[member(a, COORDINATOR, end="2020-01-01"),
                                member(b, COORDINATOR), member(c, PCP)])
    body.pop("meta")
    assert client.put(f"CareTeam/{t['id']}", body).status == 200

    def owner(tid):
        return client.get(f"Task/{tid}").json["owner"]["reference"]

    assert wait_for(lambda: owner(open1) == owner(open2) == f"Practitioner/{b}"), \
        "the open Tasks were not handed over"
    moved = client.get(f"Task/{open1}").json
    assert moved["meta"]["versionId"] == "2"
    note = moved["note"][-1]
    assert note["authorString"] == "Concerto engine"
    assert note["text"] == (f"Handed over from Practitioner/{a} to Practitioner/{b}: the primary "
                            f"coordinator of Patient/{pid} changed (CareTeam/{t['id']}).")
    # what is finished, someone else's, or another patient's stays where it was
    assert owner(done) == owner(elsewhere) == f"Practitioner/{a}"
    assert owner(theirs) == f"Practitioner/{c}"
    assert client.get(f"Task/{done}").json["meta"]["versionId"] == "1"
    # an edit of the team that keeps the coordinator hands nothing over again
    t = client.get(f"CareTeam/{t['id']}").json
    body = dict(t, name="Maria's team")
    body.pop("meta")
    assert client.put(f"CareTeam/{t['id']}", body).status == 200
    settle(client)
    assert client.get(f"Task/{open1}").json["meta"]["versionId"] == "2"
