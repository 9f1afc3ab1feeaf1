"""
The work queue for admins: `concerto queue list|replay` and GET /admin/queue, POST
/admin/queue/dead/{id}/replay (admins only, audited). An event is made dead behind the
server's back (as ten failed attempts leave it); once replayed the server's worker handles it.
On SQLite and PostgreSQL.
"""
import time

from conftest import ON_POSTGRES, assert_outcome, run_cli
from test_audit import raw_sql
from test_care_plans import as_, world  # noqa: F401 (the fixture)


def make_dead(srv, rid):
    dead = "true" if ON_POSTGRES else "1"
    now = int(time.time() * 1e6)
    raw_sql(srv, "INSERT INTO outbox (seq, type, id, version, action, time_us, attempts, "
                 f"last_error, dead) VALUES (1, 'Patient', '{rid}', 3, 2, {now}, 10, "
                 f"'could not reach the handler', {dead})")


def dead_ids(queue):
    return [e["id"] for e in queue["deadEvents"]]


def wait_handled(get, event_id):
    deadline = time.time() + 20
    while time.time() < deadline:
        q = get("GET", "/admin/queue").json
        if event_id not in dead_ids(q) and q["pending"] == 0 and q["claimed"] == 0:
            return q
        time.sleep(0.2)
    raise AssertionError(f"event {event_id} was not handled: {q}")


def test_list_and_replay_over_http(world):
    admin = as_(world, "admin1")
    make_dead(world, "q-http")
    r = admin("GET", "/admin/queue")
    assert r.status == 200, r
    q = r.json
    assert q["dead"] >= 1
    event = [e for e in q["deadEvents"] if e["resource"] == "Patient/q-http/_history/3"][0]
    assert event["action"] == "update"
    assert event["attempts"] == 10
    assert event["lastError"] == "could not reach the handler"
    assert event["time"].endswith("Z")
    for who in ("nurse1", "jane"):
        assert_outcome(as_(world, who)("GET", "/admin/queue"), 403, "forbidden")
        r = as_(world, who)("POST", f"/admin/queue/dead/{event['id']}/replay")
        assert_outcome(r, 403, "forbidden", "only administrators")
    assert_outcome(world.client.request("GET", "/admin/queue", auth=None), 401, "login")
    assert_outcome(admin("GET", f"/admin/queue/dead/{event['id']}/replay"), 405, "not-supported")
    assert_outcome(admin("GET", "/admin/queue?after=x"), 400, "invalid", "after=ID")
    assert event["id"] in dead_ids(admin("GET", "/admin/queue").json)
    r = admin("POST", f"/admin/queue/dead/{event['id']}/replay")
    assert r.status == 200, r
    assert r.json == {"replayed": event["id"]}
    q = wait_handled(admin, event["id"])
    assert q["dead"] == 0
    assert_outcome(admin("POST", f"/admin/queue/dead/{event['id']}/replay"), 404, "not-found",
                   f"there is no dead outbox event {event['id']}")
    # the replay is in the audit trail, with who did it
    r = world.client.get("AuditEvent?_count=500",
                         auth=world.auditor_token())
    assert r.status == 200, r
    texts = [json_text for json_text in (str(e["resource"]) for e in r.json.get("entry", []))
             if "queue-replay" in json_text or f"outbox event {event['id']}" in json_text]
    assert any("admin1" in t for t in texts), texts


def test_list_and_replay_with_the_cli(world):
    make_dead(world, "q-cli-1")
    make_dead(world, "q-cli-2")
    db = str(world.db)
    r = run_cli("queue", "list", "--db", db)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "dead: 2" in lines
    dead = [ln for ln in lines if "/_history/3 update attempts=10 " in ln]
    assert len(dead) == 2, r.stdout
    assert dead[0].endswith("could not reach the handler")
    first = dead[0].split()[0]
    assert run_cli("queue", "replay", "--db", db).returncode == 2
    assert run_cli("queue", "replay", "x1", "--db", db).returncode == 2
    r = run_cli("queue", "replay", first, "--db", db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "replayed 1 dead event(s)"
    r = run_cli("queue", "replay", first, "--db", db)
    assert r.returncode == 1
    assert f"there is no dead outbox event {first}" in r.stderr
    r = run_cli("queue", "replay", "--all", "--db", db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "replayed 1 dead event(s)"
    wait_handled(as_(world, "admin1"), int(first))
    r = run_cli("queue", "list", "--db", db)
    assert "dead: 0" in r.stdout.splitlines()
