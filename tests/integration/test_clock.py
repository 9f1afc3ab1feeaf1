"""
The test clock: `concerto serve --test-clock` serves /admin/clock, which moves the server's wall
clock forward (lastUpdated, search's "now", tokens, due jobs); without the flag the path does
not exist. The calendar settings are checked at start.
"""
import datetime
import shutil
import subprocess
import time
import uuid

from conftest import ON_POSTGRES, assert_outcome, create, patient, run_cli, settle
from test_audit import raw_sql

CLOCK_ARGS = ["--test-clock", "--token-ttl", "86400", "--calendar-timezone", "America/New_York"]


def parse_instant(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def real_now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_absent_without_the_flag(client):
    for method in ("GET", "POST"):
        r = client.request(method, "/admin/clock", body={"advance": "P1D"})
        assert_outcome(r, 404, "not-found")


def test_who_may_use_it(make_server):
    srv = make_server(args=CLOCK_ARGS)
    assert "TEST CLOCK ON" in srv.stderr()
    assert_outcome(srv.client.get("/admin/clock", auth=None), 401, "login")
    r = srv.client.post("/admin/clock", body={"advance": "P1D"}, auth=srv.auditor_token())
    assert_outcome(r, 403, "forbidden")
    assert_outcome(srv.client.request("PUT", "/admin/clock", body={}), 405, "not-supported")
    r = srv.client.get("/admin/clock")
    assert r.status == 200, r
    assert r.json["offsetSeconds"] == 0
    assert r.json["timeZone"] == "America/New_York"
    assert abs((parse_instant(r.json["now"]) - real_now()).total_seconds()) < 60
    assert parse_instant(r.json["local"]) == parse_instant(r.json["now"]).replace(microsecond=0)


def test_advance_moves_last_updated_and_search(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    tag = uuid.uuid4().hex[:10]
    before = create(c, patient(identifier=[{"system": "urn:t", "value": tag}]))
    r = c.post("/admin/clock", body={"advance": "PT6H"})
    assert r.status == 200, r
    assert 6 * 3600 - 5 <= r.json["offsetSeconds"] <= 6 * 3600
    moved = parse_instant(r.json["now"])
    assert (moved - real_now()).total_seconds() > 6 * 3600 - 60
    after = create(c, patient(identifier=[{"system": "urn:t", "value": tag}]))
    assert parse_instant(after["meta"]["lastUpdated"]) >= moved
    cut = (real_now() + datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = c.get(f"Patient?identifier=urn:t|{tag}&_lastUpdated=gt{cut}")
    assert r.status == 200, r
    assert [e["resource"]["id"] for e in r.json.get("entry", [])] == [after["id"]]
    r = c.get(f"Patient?identifier=urn:t|{tag}&_lastUpdated=lt{cut}")
    assert [e["resource"]["id"] for e in r.json.get("entry", [])] == [before["id"]]

    # to an instant given with its offset; then never back
    target = (real_now() + datetime.timedelta(hours=12)).replace(microsecond=0)
    text = target.astimezone(datetime.timezone(datetime.timedelta(hours=-5))).isoformat()
    r = c.post("/admin/clock", body={"now": text})
    assert r.status == 200, r
    assert parse_instant(r.json["now"]) >= target
    assert (parse_instant(r.json["now"]) - target).total_seconds() < 5
    r = c.post("/admin/clock", body={"now": (real_now() + datetime.timedelta(hours=1)).isoformat()})
    assert_outcome(r, 409, "conflict", expression="now")
    assert "cannot move the clock back" in r.json["issue"][0]["diagnostics"]
    assert c.get("/admin/clock").json["offsetSeconds"] >= 12 * 3600 - 60


def test_bad_requests_change_nothing(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    for body, status, code in [
        ({"advance": "2 fortnights"}, 400, "value"),
        ({"advance": 3}, 400, "value"),
        ({"now": "2030-01-01"}, 400, "value"),
        ({"now": "2030-01-01T10:00:00"}, 400, "value"),
        ({}, 400, "invalid"),
        ({"now": "2030-01-01T10:00:00Z", "advance": "P1D"}, 400, "invalid"),
        ([], 400, "invalid"),
    ]:
        assert_outcome(c.post("/admin/clock", body=body), status, code)
    assert c.get("/admin/clock").json["offsetSeconds"] == 0
    r = c.post("/admin/clock", body={"advance": "2 fortnights"})
    assert '"2 fortnights" is not a duration' in r.json["issue"][0]["diagnostics"]


def test_a_future_job_runs_once_the_clock_reaches_it(make_server):
    srv = make_server(args=CLOCK_ARGS)
    c = srv.client
    due = int((time.time() + 2 * 3600) * 1_000_000)
    raw_sql(srv, f"INSERT INTO job (kind, key, run_at_us) VALUES ('reindex', 'Patient', {due})")

    def pending():
        return run_job_count(srv)

    time.sleep(1.5)
    assert pending() == 1  # not due yet: the worker leaves it
    r = c.post("/admin/clock", body={"advance": "3 hours"})
    assert r.status == 200, r
    deadline = time.monotonic() + 20
    while pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pending() == 0, "the job did not run after the clock passed its time"


def test_the_work_counts_show_what_the_queues_hold(make_server):
    # the worker looks for work once a minute: what is put behind its back waits in the counts
    srv = make_server(args=CLOCK_ARGS + ["--work-poll", "60000"])
    c = srv.client
    assert c.get("/admin/clock").json["work"] == {"events": 0, "jobsDue": 0}
    now = int(time.time() * 1_000_000)
    raw_sql(srv, "INSERT INTO outbox (seq, type, id, version, action, time_us) "
                 f"VALUES (0, 'Patient', 'nobody', 1, 1, {now})")
    raw_sql(srv, f"INSERT INTO job (kind, key, run_at_us) VALUES ('reindex', 'Patient', {now})")
    raw_sql(srv, "INSERT INTO job (kind, key, run_at_us) VALUES ('reindex', 'Observation', "
                 f"{now + 2 * 3600 * 1_000_000})")
    assert c.get("/admin/clock").json["work"] == {"events": 1, "jobsDue": 1}
    # moving the clock wakes the worker: the event is handled, the due job runs, and the job
    # of two hours later is due then
    r = c.post("/admin/clock", body={"advance": "PT1M"})
    assert r.status == 200, r
    settle(c)
    assert c.get("/admin/clock").json["work"] == {"events": 0, "jobsDue": 0}
    assert run_job_count(srv) == 0
    assert c.post("/admin/clock", body={"advance": "3 hours"}).status == 200
    settle(c)
    assert run_job_count(srv, "kind = 'reindex'") == 0


def run_job_count(srv, where="kind = 'reindex' AND key = 'Patient'"):
    """The jobs in the served database (sqlite3 or psql): by default the reindex of Patient."""
    sql = f"SELECT count(*) FROM job WHERE {where}"
    if ON_POSTGRES:
        cmd = [shutil.which("psql"), "-At", str(srv.db), "-c", sql]
    else:
        cmd = [shutil.which("sqlite3"), str(srv.db), sql]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_calendar_settings_are_checked(tmp_dir):
    db = str(tmp_dir / "x.db")
    for args, message in [
        (["--calendar-timezone", "Mars/Olympus"], 'unknown time zone "Mars/Olympus"'),
        (["--calendar-working-days", "Mon-Funday"], 'working days "Mon-Funday"'),
        (["--calendar-holidays", str(tmp_dir / "none.tsv")], "could not open the holidays file"),
        (["--test-clock", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "--test-clock"),
    ]:
        r = run_cli("serve", "--db", db, "--listen", "127.0.0.1:0", *args)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr, r.stderr
