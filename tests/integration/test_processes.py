"""
Several `concerto serve` processes on one PostgreSQL database, as behind a load balancer
(docs/deploy.md): a write through one is readable through the other at once, If-Match races
between them have one winner, a SearchParameter defined through one is used by the other at
once and its reindex runs once, each change event is handled by exactly one process, and
killing one process with SIGKILL in the middle of a stream of writes loses nothing it
acknowledged: the other serves every acknowledged write and takes over the events the dead
one had claimed once their lease runs out.

Runs in the PostgreSQL pass of the suite (CONCERTO_TEST_DB=postgresql); the servers log each
change event they handle (--log-level debug), which is how the tests see who handled what.
"""
import glob
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import ON_POSTGRES, fresh_database, patient, run_threads

pytestmark = pytest.mark.skipif(not ON_POSTGRES,
                                reason="several processes share a PostgreSQL database: runs "
                                       "in the PostgreSQL pass")

LEASE = 2  # seconds: a dead process's claims are taken over this soon
ARGS = ["--log-level", "debug", "--work-lease", str(LEASE), "--work-poll", "50"]
HANDLED = re.compile(r"outbox event (\d+) \((\w+) (\w+)/([^/]+)/_history/(\d+)\) handled by (\S+)")
MMN = "http://example.org/fhir/StructureDefinition/mothers-maiden-name"


def psql(uri, sql):
    exe = shutil.which("psql") or sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    out = subprocess.run([exe, uri, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def wait_for_empty_outbox(uri, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        pending, dead = psql(uri, "SELECT count(*), count(*) FILTER (WHERE dead) FROM outbox").split("|")
        assert int(dead) == 0, "an event went dead"
        if int(pending) == 0:
            return
        assert time.monotonic() < deadline, f"{pending} events still pending"
        time.sleep(0.1)


def handled(*servers):
    """event id -> list of (version key, worker) from the servers' logs."""
    out = {}
    for srv in servers:
        for path in srv.stderr_paths:
            for m in HANDLED.finditer(srv.stderr(path)):
                key = f"{m.group(3)}/{m.group(4)}/{m.group(5)}"
                out.setdefault(int(m.group(1)), []).append((key, m.group(6)))
    return out


@pytest.fixture
def pair(make_server):
    uri = fresh_database()
    a = make_server(db=uri, args=ARGS)
    b = make_server(db=uri, args=ARGS)
    return uri, a, b


def test_writes_through_one_are_read_through_the_other_at_once(pair):
    uri, a, b = pair
    for i in range(20):
        r = a.client.post("Patient", patient(name=[{"family": f"Seen{i}"}]))
        assert r.status == 201, r
        pid = r.json["id"]
        g = b.client.get(f"Patient/{pid}")
        assert g.status == 200, g
        assert g.body == r.body
        u = b.client.put(f"Patient/{pid}", patient(id=pid, name=[{"family": f"Again{i}"}]),
                         headers={"If-Match": 'W/"1"'})
        assert u.status == 200, u
        v = a.client.get(f"Patient/{pid}/_history/2")
        assert v.status == 200 and v.body == u.body
        s = a.client.get(f"Patient?family=Again{i}")
        assert [e["resource"]["id"] for e in s.json["entry"]] == [pid]
    d = a.client.delete(f"Patient/{pid}")
    assert d.status in (200, 204)
    assert b.client.get(f"Patient/{pid}").status == 410


def test_if_match_races_between_processes_have_one_winner(pair):
    uri, a, b = pair
    for round_ in range(10):
        r = a.client.post("Patient", patient())
        pid = r.json["id"]
        statuses = [None, None]

        def update(i):
            srv = (a, b)[i]
            body = patient(id=pid, name=[{"family": f"Writer{i}"}])
            statuses[i] = srv.client.put(f"Patient/{pid}", body,
                                         headers={"If-Match": 'W/"1"'}).status

        run_threads(2, update)
        assert sorted(statuses) == [200, 412], (round_, statuses)
        h = b.client.get(f"Patient/{pid}/_history")
        assert h.json["total"] == 2


def test_a_search_parameter_defined_through_one_is_used_by_the_other(pair):
    uri, a, b = pair
    before = a.client.post("Patient", {"resourceType": "Patient",
                                       "extension": [{"url": MMN, "valueString": "Okafor"}]})
    assert before.status == 201
    sp = {"resourceType": "SearchParameter", "status": "active", "code": "mothers-maiden-name",
          "url": "http://example.org/fhir/SearchParameter/patient-mothers-maiden-name",
          "name": "MothersMaidenName", "description": "the mother's maiden name",
          "base": ["Patient"], "type": "string",
          "expression": f"Patient.extension.where(url = '{MMN}').value"}
    assert a.client.post("SearchParameter", sp).status == 201
    after = b.client.post("Patient", {"resourceType": "Patient",
                                      "extension": [{"url": MMN, "valueString": "Okonkwo"}]})
    assert after.status == 201
    # b knows the parameter at once (it looks again when a search names one it does not know)
    r = b.client.get("Patient?mothers-maiden-name=Oko", headers={"Prefer": "handling=strict"})
    assert r.status == 200, r
    # and the reindex, run once by one of the two, finds the resource written before
    deadline = time.monotonic() + 30
    while True:
        r = b.client.get("Patient?mothers-maiden-name=Oka")
        ids = [e["resource"]["id"] for e in r.json.get("entry", [])
               if e["search"]["mode"] == "match"]
        if ids == [before.json["id"]] or time.monotonic() > deadline:
            assert ids == [before.json["id"]]
            break
        time.sleep(0.1)
    done = "reindex of Patient after a search parameter change: done"
    logs = [a.stderr(), b.stderr()]
    assert sum(log.count(done) for log in logs) == 1, logs


def test_each_change_event_is_handled_by_one_process(pair):
    uri, a, b = pair
    written = []
    lock = threading.Lock()

    def work(i):
        srv = (a, b)[i % 2]
        s = srv.client.session()
        try:
            for n in range(40):
                r = s.request("POST", "/fhir/Patient", patient(name=[{"family": f"E{i}-{n}"}]))
                assert r.status == 201, r
                with lock:
                    written.append(f"Patient/{r.json['id']}/1")
        finally:
            s.close()

    run_threads(8, work)
    wait_for_empty_outbox(uri)
    events = handled(a, b)
    versions = int(psql(uri, "SELECT count(*) FROM resource_version"))
    assert versions == len(written) == 320
    assert len(events) == versions
    twice = {e: who for e, who in events.items() if len(who) != 1}
    assert not twice, f"handled more than once: {twice}"
    assert sorted(who[0][0] for who in events.values()) == sorted(written)


def test_killing_one_process_loses_nothing_acknowledged(pair):
    uri, a, b = pair
    acked = {}  # id -> body, acknowledged by a or b
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i):
        srv = (a, b)[i % 2]
        s = srv.client.session(timeout=10)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                try:
                    r = s.request("POST", "/fhir/Patient",
                                  patient(name=[{"family": f"K{i}-{n}"}]))
                except OSError:
                    if srv is a:
                        return  # a is gone: nothing more is acknowledged by it
                    raise
                if r.status == 201:
                    with lock:
                        acked[r.json["id"]] = r.body
                else:
                    assert r.status == 503, r
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    a.kill()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(60)
    assert len(acked) > 50

    # every acknowledged write is there, as it was acknowledged
    s = b.client.session()
    try:
        for pid, body in acked.items():
            r = s.request("GET", f"/fhir/Patient/{pid}")
            assert r.status == 200, r
            assert r.body == body
    finally:
        s.close()
    # and every change event is handled: b takes over what a had claimed once the lease ends
    wait_for_empty_outbox(uri, seconds=30 + LEASE)
    events = handled(b)
    twice = [e for e, who in events.items() if len(who) != 1]
    assert not twice, f"b handled events twice: {twice}"
