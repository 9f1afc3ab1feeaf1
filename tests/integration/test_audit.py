"""The audit trail over HTTP and from the command line: reads, searches and failures recorded
as AuditEvents that searches by patient, agent, date and action find; AuditEvent refusing every
write; `concerto audit verify` passing on the served database and naming the record changed
behind its back (sqlite3 on SQLite, psql on PostgreSQL); the CSV export; and SIGTERM right
after many reads losing no record."""
import base64
import csv
import datetime
import io
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ON_POSTGRES, assert_outcome, observation, patient, run_cli


@pytest.fixture(autouse=True)
def audit_reader(server):
    """Reads of the audit trail go with the token of a service granted system/AuditEvent.rs."""
    server.client.audit_auth = server.auditor_token()


def events(client, query, expect=None, timeout=5.0):
    """The AuditEvents of a search (following next links). Records are stored a few
    milliseconds after the response: with expect, waits until that many are found."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        r = client.get("AuditEvent?" + query, auth=client.audit_auth)
        while True:
            assert r.status == 200, r
            assert r.json["type"] == "searchset"
            found.extend(e["resource"] for e in r.json.get("entry", []))
            nxt = [link["url"] for link in r.json["link"] if link["relation"] == "next"]
            if not nxt:
                break
            r = client.get(nxt[0], auth=client.audit_auth)
        if expect is None or len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def subtypes(found):
    return sorted(e["subtype"][0]["code"] for e in found)


def entity(event, role_code=None):
    for e in event.get("entity", []):
        if role_code is None and "role" not in e:
            return e
        if role_code and e.get("role", {}).get("code") == role_code:
            return e
    return None


def put_patient(client, pid):
    r = client.put(f"Patient/{pid}", patient(id=pid))
    assert r.status in (200, 201), r


def test_reads_and_searches_are_recorded(client):
    pid = "aud-" + uuid.uuid4().hex[:12]
    put_patient(client, pid)
    obs = client.post("Observation", observation(subject={"reference": f"Patient/{pid}"}))
    assert obs.status == 201, obs
    oid = obs.json["id"]
    assert client.get(f"Patient/{pid}").status == 200
    assert client.get(f"Observation/{oid}").status == 200
    assert client.get(f"Observation/{oid}/_history/1").status == 200
    assert client.get(f"Observation?subject=Patient/{pid}").status == 200
    assert client.get(f"Patient/{pid}/$everything").status == 200

    found = events(client, f"patient={pid}&subtype=read,vread,search-type,operation", expect=5)
    assert subtypes(found) == ["operation", "read", "read", "search-type", "vread"], found
    for e in found:
        assert e["resourceType"] == "AuditEvent"
        assert e["type"]["code"] == "rest"
        assert e["type"]["system"] == "http://terminology.hl7.org/CodeSystem/audit-event-type"
        assert e["outcome"] == "0" and e["outcomeDesc"] == "200 OK"
        assert e["source"]["observer"]["display"] == "Concerto"
        assert entity(e, "1")["what"]["reference"] == f"Patient/{pid}"
        assert e["agent"][0]["requestor"] is True
        assert e["agent"][0]["network"]["address"] == "127.0.0.1"
        assert e["action"] in ("R", "E")
    search = [e for e in found if e["subtype"][0]["code"] == "search-type"][0]
    assert base64.b64decode(entity(search)["query"]).decode() == f"subject=Patient/{pid}"
    assert entity(search)["what"]["reference"] == "Observation"
    read = [e for e in found if e["subtype"][0]["code"] == "read"
            and entity(e)["what"]["reference"] == f"Observation/{oid}"]
    assert len(read) == 1
    # sealed into the chain within moments: its seq and hash are details of the entity
    deadline = time.monotonic() + 5
    while True:
        one = client.get(f"AuditEvent/{read[0]['id']}", auth=client.audit_auth)
        assert one.status == 200, one
        details = {d["type"]: d["valueString"] for d in entity(one.json).get("detail", [])}
        if "chain-hash" in details or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert int(details["chain-seq"]) >= 1 and len(details["chain-hash"]) == 64
    assert one.json["id"] == read[0]["id"]

    # action and date narrow the search
    assert len(events(client, f"patient={pid}&action=R", expect=4)) == 4
    assert len(events(client, f"patient={pid}&action=E")) == 1
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert len(events(client, f"patient={pid}&date={today.isoformat()}&action=R")) == 4
    assert len(events(client, f"patient={pid}&date=ge{today.year}&date=lt{today.year + 1}"
                              f"&action=R")) == 4
    assert events(client, f"patient={pid}&date=lt2000-01-01") == []
    assert events(client, f"patient=Patient/{pid}&type=110114") == []
    assert len(events(client, f"patient=Patient/{pid}&type=rest&subtype=read")) == 2


def test_the_agent_is_the_caller(client):
    pid = "aud-" + uuid.uuid4().hex[:12]
    put_patient(client, pid)
    assert client.get(f"Patient/{pid}").status == 200
    found = events(client, f"patient={pid}&subtype=read", expect=1)
    assert found
    user = found[0]["agent"][0].get("name")
    if not user:
        pytest.skip("the requests of this harness carry no bearer token: no user to search by")
    assert found[0]["agent"][0]["who"]["display"] == user
    mine = events(client, f"agent={user}&patient={pid}")
    assert {e["id"] for e in found} <= {e["id"] for e in mine}
    assert events(client, f"agent=nobody-{uuid.uuid4().hex[:8]}&patient={pid}") == []
    # a write by that user is recorded in its own transaction
    writes = events(client, f"patient={pid}&action=C,U")
    assert writes and writes[0]["agent"][0]["name"] == user


def test_failures_are_recorded_with_their_status(client):
    pid = "missing-" + uuid.uuid4().hex[:12]
    assert client.get(f"Patient/{pid}").status == 404
    found = events(client, f"patient={pid}", expect=1)
    assert len(found) == 1
    assert found[0]["outcome"] == "4"
    assert found[0]["outcomeDesc"] == "404 Not Found"
    assert found[0]["subtype"][0]["code"] == "read"


def test_paging_newest_first(client):
    pid = "aud-" + uuid.uuid4().hex[:12]
    put_patient(client, pid)
    for _ in range(5):
        assert client.get(f"Patient/{pid}").status == 200
    assert len(events(client, f"patient={pid}&subtype=read", expect=5)) == 5
    r = client.get(f"AuditEvent?patient={pid}&subtype=read&_count=2", auth=client.audit_auth)
    assert r.status == 200, r
    ids = [int(e["resource"]["id"]) for e in r.json["entry"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    nxt = [link["url"] for link in r.json["link"] if link["relation"] == "next"]
    assert nxt
    r2 = client.get(nxt[0], auth=client.audit_auth)
    ids2 = [int(e["resource"]["id"]) for e in r2.json["entry"]]
    assert len(ids2) == 2 and max(ids2) < min(ids)


def test_bad_parameters_are_refused(client):
    assert_outcome(client.get("AuditEvent?date=yesterday", auth=client.audit_auth), 400, "invalid", "date must be")
    assert_outcome(client.get("AuditEvent?date=sa2020", auth=client.audit_auth), 400, "invalid", "not supported")
    assert_outcome(client.get("AuditEvent?action=X", auth=client.audit_auth), 400, "invalid", "action")
    assert_outcome(client.get("AuditEvent?entity=1", auth=client.audit_auth), 400, "invalid",
                   "does not support the search parameter \"entity\"")
    assert_outcome(client.get("AuditEvent/abc", auth=client.audit_auth), 404, "not-found", "is not known")
    assert_outcome(client.get("AuditEvent/999999999", auth=client.audit_auth), 404, "not-found", "is not known")


def test_audit_events_cannot_be_changed(client):
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded":
             "2026-01-01T00:00:00Z", "agent": [{"requestor": True}],
             "source": {"observer": {"display": "x"}}}
    message = "the audit trail cannot be changed"
    assert_outcome(client.post("AuditEvent", event), 405, "not-supported", message)
    assert_outcome(client.put("AuditEvent/1", dict(event, id="1")), 405, "not-supported", message)
    assert_outcome(client.delete("AuditEvent/1"), 405, "not-supported", message)
    assert_outcome(client.request("PATCH", "AuditEvent/1", [], headers={
        "Content-Type": "application/json-patch+json"}), 405, "not-supported", message)
    assert_outcome(client.delete("AuditEvent?agent=x"), 405, "not-supported", message)
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": event, "request": {"method": "POST", "url": "AuditEvent"}},
            {"request": {"method": "DELETE", "url": "AuditEvent/1"}}]}
        r = client.post("", bundle)
        if kind == "transaction":
            assert_outcome(r, 405, "not-supported", message)
        else:
            assert r.status == 200, r
            for e in r.json["entry"]:
                assert e["response"]["status"].startswith("405"), e
                assert message in e["response"]["outcome"]["issue"][0]["diagnostics"]


def test_capability_statement_lists_audit_event(client):
    cs = client.get("metadata").json
    res = [r for r in cs["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert len(res) == 1
    assert sorted(i["code"] for i in res[0]["interaction"]) == ["read", "search-type"]
    assert sorted(p["name"] for p in res[0]["searchParam"]) == \
        ["action", "agent", "date", "patient", "subtype", "type"]


# ---- the command line ----------------------------------------------------------------------

def raw_sql(srv, sql):
    """Runs sql on the served database behind the server's back."""
    if ON_POSTGRES:
        tool = shutil.which("psql")
        assert tool, "psql is not installed"
        out = subprocess.run([tool, "-v", "ON_ERROR_STOP=1", "-q", str(srv.db), "-c", sql],
                             capture_output=True, text=True, timeout=60)
    else:
        tool = shutil.which("sqlite3")
        if not tool:
            pytest.skip("the sqlite3 command-line tool is not installed")
        out = subprocess.run([tool, str(srv.db), sql], capture_output=True, text=True,
                             timeout=60)
    assert out.returncode == 0, out.stderr


def verify(srv, *extra):
    return run_cli("audit", "verify", "--db", str(srv.db), *extra)


def test_verify_and_export(make_server, tmp_dir):
    srv = make_server()
    pid = "aud-" + uuid.uuid4().hex[:12]
    put_patient(srv.client, pid)
    assert srv.client.post("Observation", observation(
        subject={"reference": f"Patient/{pid}"})).status == 201
    for _ in range(6):
        assert srv.client.get(f"Patient/{pid}").status == 200
    assert srv.client.get(f"Observation?subject=Patient/{pid}&code=29463-7,x").status == 200
    assert srv.client.get("Patient/nope-" + pid).status == 404
    assert srv.stop() == 0

    out = verify(srv)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("audit trail intact: ") and lines[0].endswith(" records verified")
    count = int(lines[0].split()[3])
    assert count >= 8
    assert lines[1] == f"last record: {count}"
    anchor = lines[2].split(": ")[1]
    assert len(anchor) == 64
    assert verify(srv, "--expect-last", anchor).returncode == 0
    bad = verify(srv, "--expect-last", "zz")
    assert bad.returncode == 2 and "64 hex digits" in bad.stderr

    # the export holds every record, CSV with a header, oldest first
    path = tmp_dir / "audit.csv"
    out = run_cli("audit", "export", "--db", str(srv.db), "--output", str(path))
    assert out.returncode == 0, out.stderr
    data = path.read_bytes().decode()
    assert data.startswith("seq,time,user,role,client,patient,action,type,id,query,outcome,"
                           "source,detail,hash\r\n")
    rows = list(csv.DictReader(io.StringIO(data, newline="")))
    assert len(rows) == count
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    assert rows[-1]["hash"] == anchor
    mine = [r for r in rows if r["patient"] == pid]
    # the writes by the harness's token (the PUT that created the Patient is an update, as
    # FHIR names the interaction), then the reads
    assert sorted(r["action"] for r in mine) == ["create"] + ["read"] * 6 + ["search", "update"]
    search = [r for r in mine if r["action"] == "search"][0]
    assert search["query"] == f"subject=Patient/{pid}&code=29463-7,x"
    assert search["type"] == "Observation" and search["outcome"] == "200"
    assert search["time"].endswith("Z") and search["source"] == "127.0.0.1"
    # the filters
    out = run_cli("audit", "export", "--db", str(srv.db), "--patient", pid)
    assert out.returncode == 0, out.stderr
    assert len(list(csv.DictReader(io.StringIO(out.stdout, newline="")))) == 9  # the two writes, six reads and the search
    out = run_cli("audit", "export", "--db", str(srv.db), "--to", "2000-01-01")
    assert len(out.stdout.splitlines()) == 1  # the header only
    out = run_cli("audit", "export", "--db", str(srv.db), "--from", "tomorrow")
    assert out.returncode == 2 and "--from must be a date" in out.stderr

    # tampering: a changed field, a removed record, the newest records removed
    seq = int(mine[2]["seq"])
    raw_sql(srv, f"UPDATE audit SET outcome = '403' WHERE seq = {seq}")
    out = verify(srv)
    assert out.returncode == 1
    assert f"audit record {seq} is altered" in out.stderr, out.stderr
    raw_sql(srv, f"UPDATE audit SET outcome = '200' WHERE seq = {seq}")
    assert verify(srv).returncode == 0
    raw_sql(srv, f"DELETE FROM audit WHERE seq = {seq}")
    out = verify(srv)
    assert out.returncode == 1
    assert f"audit record {seq} is missing: record {seq + 1} comes where it should be" \
        in out.stderr, out.stderr
    raw_sql(srv, f"DELETE FROM audit WHERE seq >= {seq}")
    raw_sql(srv, f"UPDATE audit_head SET last_seq = {seq - 1}, last_hash = "
                 f"(SELECT hash FROM audit WHERE seq = {seq - 1})")
    assert verify(srv).returncode == 0  # consistent in itself ...
    out = verify(srv, "--expect-last", anchor)  # ... but not with the anchor kept elsewhere
    assert out.returncode == 1
    assert "the newest records were removed or rewritten" in out.stderr, out.stderr


@pytest.mark.slow
def test_sigterm_right_after_many_reads_loses_no_record(make_server):
    srv = make_server()
    pid = "aud-" + uuid.uuid4().hex[:12]
    put_patient(srv.client, pid)
    answered = [0] * 4

    def reader(i):
        s = srv.client.session()
        for _ in range(150):
            if s.request("GET", f"/fhir/Patient/{pid}").status == 200:
                answered[i] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert srv.stop() == 0  # at once: most records are still queued in memory
    out = run_cli("audit", "export", "--db", str(srv.db), "--patient", pid)
    assert out.returncode == 0, out.stderr
    reads = [r for r in csv.DictReader(io.StringIO(out.stdout, newline=""))
             if r["action"] == "read"]
    assert len(reads) == sum(answered) == 600
    assert all(r["seq"] for r in reads), "every record is sealed at shutdown"
    assert verify(srv).returncode == 0
