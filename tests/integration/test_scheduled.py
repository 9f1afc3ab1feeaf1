"""Scheduled protocol actions (a periodic trigger named "scheduled") under the test clock: an
action recurs for each enrolled patient (an active EpisodeOfCare), anchored at the enrolment,
on the business calendar's local time across daylight saving changes; each occurrence makes
exactly one Task, also across a crash; ending the enrolment or retiring the plan stops it; a
plan written after patients enrolled schedules them. Then the built-in periodic protocols end
to end. On SQLite and PostgreSQL."""
import datetime
import zoneinfo

from conftest import ON_POSTGRES, assert_outcome, create, fresh_database, run_cli, settle
from test_overdue import CLOCK_ARGS, set_clock, wait_for
from test_protocols import WORKFLOW, activity, enrolled_patient, found, tag

NY = zoneinfo.ZoneInfo("America/New_York")
OCCURRENCE = "urn:concerto:protocol-action"


def at(text):
    """A New York wall time "2028-03-06 09:00" as an aware datetime."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=NY)


def weekly_plan(t, status="active", timing=None):
    return {"resourceType": "PlanDefinition", "url": f"urn:test:pd:{t}", "status": status,
            "type": WORKFLOW, "title": "Weekly call",
            "action": [{"id": "weekly", "title": "Weekly call",
                        "trigger": [{"type": "periodic", "name": "scheduled", "timingTiming":
                                     timing or {"repeat": {"frequency": 1, "period": 7,
                                                           "periodUnit": "d"}}}],
                        "condition": [{"kind": "applicability", "expression": {
                            "language": "text/fhirpath",
                            "expression": "%patient.active != false"}}],
                        "definitionCanonical": f"urn:test:ad:{t}|1"}]}


def enrol(client, pid, start):
    return create(client, {"resourceType": "EpisodeOfCare", "status": "active",
                           "patient": {"reference": f"Patient/{pid}"},
                           "period": {"start": start.isoformat()}})


def put(client, resource, **changes):
    body = dict(resource, **changes)
    body.pop("meta", None)
    r = client.put(f"{body['resourceType']}/{body['id']}", body,
                   headers={"If-Match": f'W/"{resource["meta"]["versionId"]}"'})
    assert r.status == 200, r
    return r.json


def made(client, pid, url):
    """The Tasks of Patient/pid that instantiate the ActivityDefinition url, by occurrence
    key (what follows "_occurrence/" in their identifier)."""
    tasks = found(client, f"Task?patient=Patient/{pid}&_count=100")
    out = {}
    for task in tasks:
        if not task.get("instantiatesCanonical", "").startswith(url):
            continue
        value = next(i["value"] for i in task["identifier"] if i["system"] == OCCURRENCE)
        key = value.split("/_occurrence/")[1]
        assert key not in out, f"two Tasks for occurrence {key}"
        out[key] = task
    return out


def setup_weekly(c, t):
    create(c, activity(f"urn:test:ad:{t}", due="2 business days"))
    return create(c, weekly_plan(t))


def test_weekly_on_local_time_across_dst_until_enrolment_ends(make_server):
    srv = make_server(args=CLOCK_ARGS)
    monday = at("2028-03-06 09:00")  # New York springs forward on Sunday 2028-03-12
    set_clock(srv, monday)
    c = srv.client
    t = tag()
    plan = setup_weekly(c, t)
    pid, coordinator = enrolled_patient(c)
    episode = enrol(c, pid, monday)
    url = f"urn:test:ad:{t}"

    set_clock(srv, at("2028-03-13 08:59"))
    settle(c)
    assert made(c, pid, url) == {}

    set_clock(srv, at("2028-03-13 09:00:01"))
    assert wait_for(lambda: made(c, pid, url))
    tasks = made(c, pid, url)
    assert list(tasks) == ["2028-03-13"]
    task = tasks["2028-03-13"]
    assert task["identifier"] == [{"system": OCCURRENCE,
                                   "value": f"{plan['id']}/weekly/Patient/{pid}"
                                            "/_occurrence/2028-03-13"}]
    assert task["authoredOn"] == "2028-03-13T09:00:00.000-04:00"  # 09:00 local, now EDT
    assert task["restriction"]["period"]["end"] == "2028-03-15T23:59:59.999-04:00"
    assert task["status"] == "ready" and task["intent"] == "order"
    assert task["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert task["for"] == task["focus"] == {"reference": f"Patient/{pid}"}
    assert task["instantiatesCanonical"] == f"{url}|1"
    assert {"url": "http://concerto.dev/fhir/StructureDefinition/protocol-action",
            "valueString": f"urn:test:pd:{t}#weekly"} in task["extension"]

    set_clock(srv, at("2028-03-20 09:00:01"))
    assert wait_for(lambda: len(made(c, pid, url)) == 2)
    settle(c)
    tasks = made(c, pid, url)
    assert sorted(tasks) == ["2028-03-13", "2028-03-20"]
    assert tasks["2028-03-20"]["authoredOn"] == "2028-03-20T09:00:00.000-04:00"

    # the enrolment ends: no more occurrences
    put(c, episode, status="finished",
        period={"start": monday.isoformat(), "end": at("2028-03-21 12:00").isoformat()})
    set_clock(srv, at("2028-03-27 09:00:01"))
    settle(c)
    assert sorted(made(c, pid, url)) == ["2028-03-13", "2028-03-20"]


def test_a_plan_written_after_enrolment_schedules_changing_it_reschedules_retiring_stops(make_server):
    srv = make_server(args=CLOCK_ARGS)
    monday = at("2027-10-25 09:00")  # New York falls back on Sunday 2027-11-07
    set_clock(srv, monday)
    c = srv.client
    pid, _ = enrolled_patient(c)
    enrol(c, pid, monday)
    other, _ = enrolled_patient(c)
    create(c, {"resourceType": "EpisodeOfCare", "status": "finished",
               "patient": {"reference": f"Patient/{other}"}})
    settle(c)
    t = tag()
    url = f"urn:test:ad:{t}"
    plan = setup_weekly(c, t)

    set_clock(srv, at("2027-11-01 09:00:01"))
    assert wait_for(lambda: made(c, pid, url))
    set_clock(srv, at("2027-11-08 09:00:01"))
    assert wait_for(lambda: len(made(c, pid, url)) == 2)
    tasks = made(c, pid, url)
    assert tasks["2027-11-01"]["authoredOn"] == "2027-11-01T09:00:00.000-04:00"
    assert tasks["2027-11-08"]["authoredOn"] == "2027-11-08T09:00:00.000-05:00"  # now EST
    assert made(c, other, url) == {}  # not enrolled

    # every 14 days from the enrolment instead: 2027-11-22 next, not 2027-11-15
    plan = put(c, plan, action=weekly_plan(t, timing={"repeat": {"period": 14,
                                                                 "periodUnit": "d"}})["action"])
    set_clock(srv, at("2027-11-15 09:00:01"))
    settle(c)
    assert sorted(made(c, pid, url)) == ["2027-11-01", "2027-11-08"]
    set_clock(srv, at("2027-11-22 09:00:01"))
    assert wait_for(lambda: len(made(c, pid, url)) == 3)
    assert "2027-11-22" in made(c, pid, url)

    put(c, plan, status="retired")
    set_clock(srv, at("2027-12-06 09:00:01"))
    settle(c)
    assert sorted(made(c, pid, url)) == ["2027-11-01", "2027-11-08", "2027-11-22"]


def test_a_crash_after_an_occurrence_duplicates_nothing(make_server):
    srv = make_server(args=CLOCK_ARGS)
    monday = at("2028-05-01 09:00")
    set_clock(srv, monday)
    c = srv.client
    t = tag()
    url = f"urn:test:ad:{t}"
    setup_weekly(c, t)
    pid, _ = enrolled_patient(c)
    enrol(c, pid, monday)
    settle(c)
    set_clock(srv, at("2028-05-08 09:00:01"))
    assert wait_for(lambda: made(c, pid, url))
    srv.kill()  # SIGKILL: the job's completion may not have been written
    srv.stopped_by_test = False
    srv.start()
    # past the claim's lease, before the next occurrence: whatever was unanswered runs again
    set_clock(srv, at("2028-05-08 09:05"))
    c = srv.client
    settle(c)
    assert list(made(c, pid, url)) == ["2028-05-08"]
    set_clock(srv, at("2028-05-15 09:00:01"))
    assert wait_for(lambda: len(made(c, pid, url)) == 2)
    settle(c)
    assert sorted(made(c, pid, url)) == ["2028-05-08", "2028-05-15"]


def test_a_schedule_the_engine_cannot_keep_is_refused(client):
    t = tag()
    cases = [({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
              "repeat.frequency", "repeat.frequency must be 1"),
             ({"repeat": {"period": 1, "periodUnit": "s"}},
              "repeat.periodUnit", "h, d, wk, mo or a"),
             ({"repeat": {"period": 0, "periodUnit": "d"}},
              "repeat.period", "a whole number from 1"),
             ({"repeat": {"period": 1, "periodUnit": "d", "count": 3}},
              "repeat.count", "not supported")]
    for timing, element, text in cases:
        r = client.post("PlanDefinition", weekly_plan(t, timing=timing))
        assert_outcome(r, 422, "business-rule", expression="PlanDefinition.action[0].trigger[0]"
                       f".timingTiming.{element}")
        assert text in r.json["issue"][0]["diagnostics"]
    assert found(client, f"PlanDefinition?url=urn:test:pd:{t}") == []


def init_db(tmp_path):
    db = fresh_database() if ON_POSTGRES else str(tmp_path / "s.db")
    r = run_cli("init", "--db", db)
    assert r.returncode == 0, r.stdout + r.stderr
    return db


def test_the_built_in_periodic_protocols(tmp_path, make_server):
    srv = make_server(db=init_db(tmp_path), args=CLOCK_ARGS)
    enrolled = at("2027-08-03 10:00")
    set_clock(srv, enrolled)
    c = srv.client
    pid, coordinator = enrolled_patient(c)
    enrol(c, pid, enrolled)
    settle(c)
    base = "http://concerto.dev/fhir/ActivityDefinition/"

    # a month later: the check-in, due in 5 business days, Labor Day (Monday 2027-09-06) skipped
    set_clock(srv, at("2027-09-03 10:00:01"))
    assert wait_for(lambda: made(c, pid, base + "routine-check-in"))
    check_in = made(c, pid, base + "routine-check-in")["2027-09-03"]
    assert check_in["identifier"][0]["value"] == \
        f"routine-follow-up/check-in/Patient/{pid}/_occurrence/2027-09-03"
    assert check_in["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert check_in["status"] == "ready"
    assert check_in["authoredOn"] == "2027-09-03T10:00:00.000-04:00"
    assert check_in["restriction"]["period"]["end"] == "2027-09-13T23:59:59.999-04:00"
    assert check_in["instantiatesCanonical"] == base + "routine-check-in|1.0.0"
    assert made(c, pid, base + "review-care-plan") == {}

    # 90 days after enrolment: the care plan review, due in 10 business days, Veterans Day
    # (Thursday 2027-11-11) skipped, and the clock fallen back to EST by then
    set_clock(srv, at("2027-11-01 10:00:01"))
    assert wait_for(lambda: made(c, pid, base + "review-care-plan"))
    review = made(c, pid, base + "review-care-plan")["2027-11-01"]
    assert review["identifier"][0]["value"] == \
        f"periodic-care-plan-review/review/Patient/{pid}/_occurrence/2027-11-01"
    assert review["owner"] == {"reference": f"Practitioner/{coordinator}"}
    assert review["code"]["text"] == "Review the care plan"
    assert review["authoredOn"] == "2027-11-01T10:00:00.000-04:00"
    assert review["restriction"]["period"]["end"] == "2027-11-16T23:59:59.999-05:00"
    # the check-ins of September and October, the one missed while the clock jumped made once
    assert wait_for(lambda: len(made(c, pid, base + "routine-check-in")) == 2)
    settle(c)
    assert sorted(made(c, pid, base + "routine-check-in")) == ["2027-09-03", "2027-10-03"]
    assert list(made(c, pid, base + "review-care-plan")) == ["2027-11-01"]
