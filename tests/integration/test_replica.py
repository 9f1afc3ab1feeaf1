"""
Searches from a PostgreSQL read replica (`concerto serve --db PRIMARY --db-replica REPLICA`):
a write is readable by id at once (reads by id stay on the primary), searches come from the
replica (shown by pausing its replay: a new write is then missing from searches but not from
reads by id), a replica that goes down leaves searches answering from the primary, and one
that comes back is used again; with --replica-max-lag, a replica too far behind is left
until it has caught up. Runs on a primary and a hot standby of its own (tools/pg-cluster
start and replica); skipped when PostgreSQL is not installed.
"""
import glob
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT

PG_CLUSTER = ROOT / "tools/pg-cluster"
DEADLINE = 60.0

pytestmark = pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                reason="PostgreSQL is not installed (tools/install-deps)")


def cluster(*args):
    out = subprocess.run([str(PG_CLUSTER), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def psql(uri, sql):
    exe = shutil.which("psql") or sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    out = subprocess.run([exe, uri, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def new_dir():
    directory = tempfile.mkdtemp(prefix="concerto-pg-", dir="/tmp")
    shutil.rmtree(directory)  # pg-cluster creates it (owned by postgres when run as root)
    return directory


@pytest.fixture
def pg_pair():
    """A primary and a hot standby of it: a dict of their directories and URIs."""
    primary_dir, replica_dir = new_dir(), new_dir()
    try:
        primary = cluster("start", primary_dir)
        replica = cluster("replica", replica_dir, primary_dir)
        yield {"primary": primary, "replica": replica, "replica_dir": replica_dir}
    finally:
        subprocess.run([str(PG_CLUSTER), "stop", replica_dir], capture_output=True, timeout=120)
        subprocess.run([str(PG_CLUSTER), "stop", primary_dir], capture_output=True, timeout=120)


def serve(make_server, pair, max_lag="0"):
    return make_server(db=pair["primary"],
                       args=["--db-replica", pair["replica"], "--replica-max-lag", max_lag])


def create(c, family):
    r = c.post("Patient", {"resourceType": "Patient", "name": [{"family": family}]})
    assert r.status == 201, r
    return r.json["id"]


def found(c, family):
    """How many Patients a search by family finds (asserting the search answers 200)."""
    r = c.get(f"Patient?family={family}&_total=accurate")
    assert r.status == 200, r
    return r.json["total"]


def wait_until(check, what):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {DEADLINE:.0f} s: {what}")


def pause_replay(pair):
    psql(pair["replica"], "SELECT pg_wal_replay_pause()")
    wait_until(lambda: psql(pair["replica"], "SELECT pg_get_wal_replay_pause_state()") == "paused",
               "the replica's replay pauses")


def resume_replay(pair):
    psql(pair["replica"], "SELECT pg_wal_replay_resume()")


def test_searches_read_from_the_replica(pg_pair, make_server):
    srv = serve(make_server, pg_pair)
    c = srv.client
    alpha = create(c, "Alpha")
    assert c.get(f"Patient/{alpha}").status == 200  # by id: at once, from the primary
    wait_until(lambda: found(c, "Alpha") == 1, "the search finds the new Patient")

    # with the replica's replay paused, a write reaches the primary only
    pause_replay(pg_pair)
    beta = create(c, "Beta")
    r = c.get(f"Patient/{beta}")
    assert r.status == 200, r
    assert r.json["name"][0]["family"] == "Beta"
    deadline = time.monotonic() + 3  # several of the server's looks at the replica
    while time.monotonic() < deadline:
        assert found(c, "Beta") == 0
        assert found(c, "Alpha") == 1
        time.sleep(0.2)
    r = c.get(f"Patient?_id={beta}")
    assert r.status == 200 and r.json.get("entry", []) == [], r
    # history reads from the replica too, where the resource is not there yet (the access
    # policy looks it up first: 404); the id read before it from the primary
    r = c.get(f"Patient/{beta}/_history")
    assert r.status == 404, r
    r = c.get(f"Patient/{alpha}/$everything")
    assert r.status == 200 and len(r.json["entry"]) == 1, r

    resume_replay(pg_pair)
    wait_until(lambda: found(c, "Beta") == 1, "the search finds the write once replayed")
    r = c.get(f"Patient/{beta}/_history")
    assert r.status == 200 and len(r.json["entry"]) == 1, r
    assert "read replica" not in srv.stderr()  # it was never out of use


def test_replica_down_searches_answer_from_the_primary(pg_pair, make_server):
    srv = serve(make_server, pg_pair)
    c = srv.client
    create(c, "Alpha")
    wait_until(lambda: found(c, "Alpha") == 1, "the search finds the new Patient")

    cluster("down", pg_pair["replica_dir"])
    create(c, "Gamma")
    for _ in range(10):  # on both event loops, over more than one look at the replica
        assert found(c, "Gamma") == 1
        assert found(c, "Alpha") == 1
        time.sleep(0.2)
    r = c.get("Patient/_history")
    assert r.status == 200 and len(r.json["entry"]) == 2, r
    log = srv.stderr()
    assert log.count("the read replica cannot be used") == 1, log

    cluster("up", pg_pair["replica_dir"])
    # back on the replica: a write its paused replay has not applied is missing again
    pause_replay(pg_pair)
    create(c, "Delta")
    wait_until(lambda: found(c, "Delta") == 0, "searches read from the replica again")
    assert "the read replica is back" in srv.stderr()
    resume_replay(pg_pair)
    wait_until(lambda: found(c, "Delta") == 1, "the search finds the write once replayed")


def test_replica_too_far_behind_is_left_until_it_catches_up(pg_pair, make_server):
    srv = serve(make_server, pg_pair, max_lag="2")
    c = srv.client
    create(c, "Alpha")
    wait_until(lambda: found(c, "Alpha") == 1, "the search finds the new Patient")
    # nothing to replay is not being behind, however old the last replayed write is
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert found(c, "Alpha") == 1
        time.sleep(0.5)
    assert "behind" not in srv.stderr()

    pause_replay(pg_pair)
    create(c, "Beta")
    # once the replica is more than 2 s behind, searches read from the primary
    wait_until(lambda: found(c, "Beta") == 1, "the search reads from the primary")
    assert "the read replica is" in srv.stderr() and "behind" in srv.stderr()
    resume_replay(pg_pair)
    wait_until(lambda: found(c, "Beta") == 1 and "the read replica is back" in srv.stderr(),
               "searches read from the replica again")


def test_replica_needs_postgresql(tmp_dir):
    from conftest import run_cli
    out = run_cli("serve", "--db", str(tmp_dir / "x.db"), "--db-replica",
                  "postgresql://concerto@127.0.0.1:1/concerto")
    assert out.returncode == 2, out
    assert "--db-replica needs a PostgreSQL --db" in out.stderr
    out = run_cli("serve", "--help")
    assert "--db-replica URI" in out.stdout and "--replica-max-lag" in out.stdout
