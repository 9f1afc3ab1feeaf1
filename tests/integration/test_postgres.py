"""
The server on PostgreSQL (`concerto serve --db postgresql://...`) through an outage of the
database: while PostgreSQL is down every request that needs it is answered 503 with
Retry-After, the server keeps running, and once PostgreSQL is back it recovers by itself; a
write refused during the outage left nothing behind. Runs on a throw-away cluster of its own
(tools/pg-cluster), which it stops and starts; skipped when PostgreSQL is not installed.
"""
import glob
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT

PG_CLUSTER = ROOT / "tools/pg-cluster"

pytestmark = pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                reason="PostgreSQL is not installed (tools/install-deps)")


def cluster(command, directory):
    out = subprocess.run([str(PG_CLUSTER), command, directory], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def pg():
    """A cluster of this test: (directory, URI)."""
    directory = tempfile.mkdtemp(prefix="concerto-pg-", dir="/tmp")
    shutil.rmtree(directory)  # pg-cluster creates it (owned by postgres when run as root)
    uri = cluster("start", directory)
    yield directory, uri
    subprocess.run([str(PG_CLUSTER), "stop", directory], capture_output=True, timeout=120)


def psql_count(uri, sql):
    psql = shutil.which("psql") or sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    out = subprocess.run([psql, uri, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def assert_unavailable(r):
    assert r.status == 503, r
    assert r.header("Retry-After"), r.headers
    assert r.json["resourceType"] == "OperationOutcome"
    assert r.json["issue"][0]["code"] == "transient"


def test_outage_answers_503_and_recovers(pg, make_server):
    directory, uri = pg
    srv = make_server(db=uri, args=["--log-level", "debug"])  # debug: each event handled
    c = srv.client
    r = c.post("Patient", {"resourceType": "Patient", "name": [{"family": "Before"}]})
    assert r.status == 201, r
    pid = r.json["id"]
    assert c.get(f"Patient/{pid}").status == 200

    cluster("down", directory)
    assert_unavailable(c.get(f"Patient/{pid}"))
    assert_unavailable(c.post("Patient", {"resourceType": "Patient", "name": [{"family": "Lost"}]}))
    assert_unavailable(c.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid,
                                                "name": [{"family": "Lost"}]}))
    assert_unavailable(c.get(f"Patient/{pid}/_history"))
    assert c.healthy()  # the server itself is still there

    cluster("up", directory)
    r = c.get(f"Patient/{pid}")
    assert r.status == 200, r
    assert r.json["meta"]["versionId"] == "1"  # the refused update wrote nothing
    assert r.json["name"][0]["family"] == "Before"
    r = c.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid,
                                 "name": [{"family": "After"}]})
    assert r.status == 200, r
    assert r.json["meta"]["versionId"] == "2"
    assert c.post("Patient", {"resourceType": "Patient"}).status == 201
    # versions, current rows and change events: exactly the acknowledged writes (the server's
    # worker handles the events and empties the outbox)
    assert psql_count(uri, "SELECT count(*) FROM resource_version") == 3
    assert psql_count(uri, "SELECT count(*) FROM resource") == 2
    deadline = time.monotonic() + 30
    while psql_count(uri, "SELECT count(*) FROM outbox") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert psql_count(uri, "SELECT count(*) FROM outbox") == 0
    assert srv.stderr().count(") handled by ") == 3
    assert psql_count(uri, "SELECT count(*) FROM ix_string WHERE normalized LIKE 'lost%'") == 0
