"""`concerto migrate-data`: an SQLite deployment moved to PostgreSQL.

A server on an SQLite file writes varied data (several types, updates, deletes and a
re-creation, a custom SearchParameter and resources it indexes, contained resources); with the
server stopped (its worker has handled the change events by then), the file is given a backlog
of events as a server that stopped before handling them leaves it, one of them made dead, one
claimed, one acknowledged, and a job (straight in the file). migrate-data copies it into a fresh database
of the test cluster, and a server on the copy (`concerto serve --db postgresql://...`) answers
reads, vreads, histories and searches (the custom parameter's too) exactly as the source did;
new writes go on after the copied keys. A target that is not empty is refused, and so is a source
in use; a copy that fails or is interrupted leaves the target empty.

PostgreSQL targets need a cluster (CONCERTO_TEST_PG_CLUSTER, which tools/check starts): without
one they are skipped. The same checks run with an SQLite file as the target, which needs
nothing. The source is an SQLite file whichever pass runs, so the tests run in the SQLite pass
only (they would do the same again in the PostgreSQL pass).
"""
import glob
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import (ON_POSTGRES, concerto_bin, create, fresh_database, loads, run_cli,
                      sanitizer_lines, server_env)

pytestmark = pytest.mark.skipif(
    ON_POSTGRES, reason="the source is an SQLite file in either pass: runs in the SQLite pass")

MMN = "http://example.org/fhir/StructureDefinition/mothers-maiden-name"
SP_URL = "http://example.org/fhir/SearchParameter/patient-mothers-maiden-name"
LOINC = "http://loinc.org"


def have_cluster():
    return bool(os.environ.get("CONCERTO_TEST_PG_CLUSTER"))


def psql(uri, sql):
    """The first column of the first row of sql on uri, as text ('' when none)."""
    exe = shutil.which("psql") or (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or [None])[-1]
    if not exe:
        pytest.skip("psql is not installed")
    out = subprocess.run([exe, uri, "-Atc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


class Target:
    """A new, empty target database: a PostgreSQL database of the cluster or an SQLite file."""

    def __init__(self, kind, tmp_dir, name="target"):
        self.kind = kind
        if kind == "postgresql":
            if not have_cluster():
                pytest.skip("no PostgreSQL cluster (CONCERTO_TEST_PG_CLUSTER): tools/check "
                            "starts one")
            self.location = fresh_database()
        else:
            self.location = str(tmp_dir / f"{name}.db")

    def scalar(self, sql):
        """An integer query on the target's tables (0 when a table does not exist yet)."""
        if self.kind == "postgresql":
            exists = psql(self.location, "SELECT to_regclass('public.resource_version') IS NOT NULL")
            if exists != "t":
                return 0
            return int(psql(self.location, sql) or 0)
        if not os.path.exists(self.location):
            return 0
        con = sqlite3.connect(self.location)
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'resource_version'").fetchone():
                return 0
            return int(con.execute(sql).fetchone()[0] or 0)
        finally:
            con.close()

    def execute(self, sql):
        if self.kind == "postgresql":
            psql(self.location, sql)
        else:
            con = sqlite3.connect(self.location)
            con.executescript(sql)
            con.commit()
            con.close()

    def rows(self):
        """How many rows the copy writes hold (versions, resources, events, jobs, leases)."""
        return sum(self.scalar(f"SELECT count(*) FROM {t}")
                   for t in ("resource_version", "resource", "outbox", "job", "lease"))


@pytest.fixture(params=["postgresql", "sqlite"])
def target_kind(request):
    return request.param


# ---- the source -----------------------------------------------------------------------------

def mmn_param():
    return {"resourceType": "SearchParameter", "url": SP_URL, "name": "MothersMaidenName",
            "status": "active", "description": "Search by the mother's maiden name",
            "code": "mothers-maiden-name", "base": ["Patient"], "type": "string",
            "expression": f"Patient.extension.where(url = '{MMN}').value"}


def build_source(srv):
    """Writes the varied data; returns the ids it made."""
    c = srv.client
    ids = {}
    assert c.post("SearchParameter", mmn_param()).status == 201
    org = create(c, {"resourceType": "Organization", "name": "Saint Elsewhere"})
    ids["org"] = org["id"]
    patients = []
    for family, maiden in [("Ames", "Smith"), ("Baker", "Jones"), ("Cole", "Smithers")]:
        p = create(c, {"resourceType": "Patient", "name": [{"family": family, "given": ["Pat"]}],
                       "gender": "female", "birthDate": "1970-01-01",
                       "managingOrganization": {"reference": f"Organization/{org['id']}"},
                       "extension": [{"url": MMN, "valueString": maiden}]})
        patients.append(p["id"])
    ids["patients"] = patients
    # updates: Ames twice (version 3), the last one changing the maiden name
    pid = patients[0]
    for n, maiden in [(2, "Smith"), (3, "Brown")]:
        r = c.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid,
                                     "name": [{"family": "Ames", "given": ["Pat", str(n)]}],
                                     "gender": "female", "birthDate": "1970-01-01",
                                     "extension": [{"url": MMN, "valueString": maiden}]})
        assert r.status == 200, r
    # observations, one updated, one deleted
    obs = []
    for i, value in enumerate([70, 80, 90]):
        o = create(c, {"resourceType": "Observation", "status": "final",
                       "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                       "subject": {"reference": f"Patient/{patients[i]}"},
                       "effectiveDateTime": f"2024-0{i + 1}-15",
                       "valueQuantity": {"value": value, "unit": "kg", "code": "kg",
                                         "system": "http://unitsofmeasure.org"}})
        obs.append(o["id"])
    ids["observations"] = obs
    r = c.put(f"Observation/{obs[1]}", {"resourceType": "Observation", "id": obs[1],
                                        "status": "amended",
                                        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
                                        "subject": {"reference": f"Patient/{patients[1]}"},
                                        "effectiveDateTime": "2024-02-16",
                                        "valueQuantity": {"value": 81, "unit": "kg", "code": "kg",
                                                          "system": "http://unitsofmeasure.org"}})
    assert r.status == 200, r
    assert c.delete(f"Observation/{obs[2]}").status in (200, 204)
    # the risk rows and care team member rows (docs/internals/store.md) come over with the
    # copy: one standing assessment, one withdrawn (no row), a team
    for rid, status, pid in (("risk-1", "final", patients[0]),
                             ("risk-2", "entered-in-error", patients[1])):
        r = c.put(f"RiskAssessment/{rid}", {
            "resourceType": "RiskAssessment", "id": rid, "status": status,
            "subject": {"reference": f"Patient/{pid}"}, "occurrenceDateTime": "2024-03-01",
            "prediction": [{"probabilityDecimal": 0.625}]})
        assert r.status == 201, r
    r = c.put("CareTeam/team-1", {
        "resourceType": "CareTeam", "id": "team-1", "status": "active",
        "subject": {"reference": f"Patient/{patients[0]}"},
        "participant": [{"member": {"reference": f"Patient/{patients[0]}"},
                         "role": [{"coding": [{"system": "urn:r", "code": "self"}]}]}]})
    assert r.status == 201, r
    # deleted and created again (version 3 after a delete)
    enc = c.put("Encounter/enc-1", {"resourceType": "Encounter", "id": "enc-1",
                                    "status": "finished", "class": {"code": "AMB"},
                                    "subject": {"reference": f"Patient/{patients[0]}"}})
    assert enc.status == 201, enc
    assert c.delete("Encounter/enc-1").status in (200, 204)
    enc = c.put("Encounter/enc-1", {"resourceType": "Encounter", "id": "enc-1",
                                    "status": "in-progress", "class": {"code": "IMP"},
                                    "subject": {"reference": f"Patient/{patients[1]}"}})
    assert enc.status == 201, enc
    # a deleted Practitioner stays deleted
    pr = create(c, {"resourceType": "Practitioner", "name": [{"family": "Gone"}]})
    assert c.delete(f"Practitioner/{pr['id']}").status in (200, 204)
    ids["practitioner"] = pr["id"]
    # contained resources
    med = create(c, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                     "contained": [{"resourceType": "Medication", "id": "m1",
                                    "code": {"text": "aspirin",
                                             "coding": [{"system": "http://rx", "code": "asa"}]}}],
                     "medicationReference": {"reference": "#m1"},
                     "subject": {"reference": f"Patient/{patients[2]}"}})
    ids["medreq"] = med["id"]
    return ids


def queries(ids):
    """Requests whose answers must be the same on the source and the target."""
    p, o = ids["patients"], ids["observations"]
    return [
        f"Patient/{p[0]}", f"Patient/{p[0]}/_history/1", f"Patient/{p[0]}/_history/2",
        f"Patient/{p[0]}/_history", f"Observation/{o[2]}", f"Observation/{o[2]}/_history",
        f"Observation/{o[2]}/_history/1", "Encounter/enc-1", "Encounter/enc-1/_history",
        "Encounter/enc-1/_history/2", f"Practitioner/{ids['practitioner']}",
        f"MedicationRequest/{ids['medreq']}", f"Organization/{ids['org']}",
        "Patient/_history", "Observation/_history", "_history?_count=50",
        "Patient?mothers-maiden-name=Smith", "Patient?mothers-maiden-name=Brown",
        "Patient?mothers-maiden-name:exact=Smithers", "Patient?family=ames",
        "Patient?_sort=-family", "Patient?organization.name=saint",
        "Observation?subject:Patient.mothers-maiden-name=Jones",
        f"Observation?code={LOINC}|29463-7&_total=accurate",
        "Observation?value-quantity=gt75|http://unitsofmeasure.org|kg",
        "Observation?status=amended", "Observation?date=ge2024-02-01",
        f"Observation?_include=Observation:subject&subject=Patient/{p[1]}",
        f"Patient?_revinclude=Observation:subject&_id={p[0]},{p[1]}",
        "Encounter?status=in-progress", "Encounter?class=IMP",
        "Medication?code=http://rx|asa&_contained=true",
        "Medication?code=http://rx|asa&_contained=true&_containedType=contained",
        "MedicationRequest?medication.code=asa", "Practitioner?family=gone",
        "Patient?_count=1", "SearchParameter?url=" + SP_URL,
        "Organization?_content=elsewhere", "Patient?_content=pat&_sort=family",
    ]


def normalize(body, origin):
    """A response body without what differs between two servers: their base URL, and the
    Bundle's own id and timestamp."""
    text = body.decode("utf-8").replace(origin, "BASE")
    if not text.strip():
        return text
    value = loads(text)
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        value.pop("id", None)
        value.pop("meta", None)
        value.pop("timestamp", None)
    return value


def answers(srv, ids):
    out = {}
    for q in queries(ids):
        r = srv.client.get(q)
        out[q] = (r.status, r.header("ETag"), r.header("Last-Modified"),
                  normalize(r.body, srv.client.origin))
    return out


def tamper_queues(db):
    """With the server stopped: an event for every version not handled yet, the first made
    dead after three attempts, the second claimed, the last one acknowledged (gone: its id must
    not come back), a job scheduled."""
    con = sqlite3.connect(db)
    con.execute("INSERT INTO outbox (seq, type, id, version, action, time_us, available_us) "
                "SELECT seq, type, id, version, CASE WHEN deleted THEN 3 WHEN status = 201 "
                "THEN 1 ELSE 2 END, updated_us, updated_us FROM resource_version ORDER BY seq")
    first, second, last = con.execute(
        "SELECT min(event_id), min(event_id) + 1, max(event_id) FROM outbox").fetchone()
    con.execute("UPDATE outbox SET dead = 1, attempts = 3, last_error = 'handler failed: boom', "
                "claimed_by = 'host-a/1/2' WHERE event_id = ?", (first,))
    con.execute("UPDATE outbox SET attempts = 1, claimed_by = 'host-a/1/3', "
                "claim_until_us = 1900000000000000 WHERE event_id = ?", (second,))
    con.execute("DELETE FROM outbox WHERE event_id = ?", (last,))
    con.execute("INSERT INTO job (kind, key, run_at_us, payload, attempts, last_error, revision) "
                "VALUES ('task-escalation', 'Task/t1', 1900000000000000, '{\"level\":2}', 1, "
                "'timed out', 3)")
    con.commit()
    con.close()
    return last


def sqlite_rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def migrate(source, target, *extra, timeout=600):
    r = run_cli("migrate-data", "--from", str(source), "--to", target, *extra, timeout=timeout)
    assert not sanitizer_lines(r.stderr), r.stderr
    return r


@pytest.fixture
def source_db(make_server, tmp_dir):
    """The source file with its data, its server stopped: (path, ids, answers, last event id)."""
    db = tmp_dir / "source.db"
    srv = make_server(db=db)
    ids = build_source(srv)
    before = answers(srv, ids)
    assert srv.stop() == 0
    last_event = tamper_queues(db)
    return db, ids, before, last_event


# ---- the tests ------------------------------------------------------------------------------

def test_migrate_copies_everything_and_serves_the_same(source_db, target_kind, make_server,
                                                       tmp_dir):
    db, ids, before, last_event = source_db
    target = Target(target_kind, tmp_dir)
    r = migrate(db, target.location)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the target matches the source" in r.stdout, r.stdout
    assert "DIFFERENT" not in r.stdout
    assert "versions (100%)" in r.stderr, r.stderr
    # the table: per type, then the queues
    versions = sqlite_rows(db, "SELECT count(*) FROM resource_version")[0][0]
    assert "SHA-256 of versions" in r.stdout
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("all types")][0]
    assert line.split()[2:4] == [str(versions), str(versions)], line

    # every row came over as it was
    assert target.scalar("SELECT count(*) FROM resource_version") == versions
    assert sqlite_rows(db, "SELECT patient, when_us, risk FROM risk_work") == [
        (f"Patient/{ids['patients'][0]}", 1709251200000000, 0.625)]
    assert target.scalar("SELECT count(*) FROM risk_work") == 1
    assert target.scalar("SELECT count(*) FROM care_member WHERE role = 'urn:r|self'") == 1
    assert target.scalar("SELECT count(*) FROM risk_work WHERE patient = 'Patient/%s' AND "
                         "when_us = 1709251200000000 AND risk = 0.625" % ids["patients"][0]) == 1
    assert target.scalar("SELECT count(*) FROM outbox WHERE dead = " +
                         ("true" if target_kind == "postgresql" else "1")) == 1
    assert target.scalar("SELECT attempts FROM job WHERE kind = 'task-escalation'") == 1
    assert target.scalar("SELECT revision FROM job WHERE kind = 'task-escalation'") == 3
    # the audit trail came over whole: the same records, whose chain verifies on the copy to
    # the same last hash
    records = sqlite_rows(db, "SELECT count(*) FROM audit")[0][0]
    assert records > 0
    assert target.scalar("SELECT count(*) FROM audit") == records
    src = run_cli("audit", "verify", "--db", str(db))
    dst = run_cli("audit", "verify", "--db", target.location)
    assert src.returncode == 0 and dst.returncode == 0, src.stderr + dst.stderr
    assert src.stdout == dst.stdout

    # the answers mean something: every read and search found what it looks for
    empty = [q for q, (status, _, _, body) in before.items()
             if ("?" not in q and not q.endswith("_history") and status not in (200, 410))
             or (("?" in q or q.endswith("_history")) and q != "Practitioner?family=gone"
                 and (status != 200 or not body.get("entry")))]
    assert not empty, empty

    # the copy answers as the source did (debug: the worker logs each event it handles)
    srv = make_server(db=target.location, args=["--log-level", "debug"])
    after = answers(srv, ids)
    for q in before:
        assert after[q] == before[q], f"{q}:\nsource {before[q]}\ntarget {after[q]}"
    # the custom parameter is in force for new writes too
    c = srv.client
    query = "Patient?mothers-maiden-name=Smith"
    smiths = [e["resource"]["id"] for e in before[query][3]["entry"]]
    assert smiths == [ids["patients"][2]]  # Smithers; Ames is Brown since version 3
    new = create(c, {"resourceType": "Patient", "name": [{"family": "Dunn"}],
                     "extension": [{"url": MMN, "valueString": "Smith"}]})
    r = c.get(query)
    assert sorted(e["resource"]["id"] for e in r.json["entry"]) == sorted(smiths + [new["id"]])
    # keys go on after the source's: versions, resources, and outbox events (the last one
    # was acknowledged, so its id is gone but was handed out)
    r = c.put(f"Patient/{ids['patients'][1]}", {"resourceType": "Patient",
                                                "id": ids["patients"][1],
                                                "name": [{"family": "Baker-Moved"}]})
    assert r.status == 200, r
    assert r.json["meta"]["versionId"] == "2"
    assert target.scalar("SELECT min(seq) FROM resource_version WHERE id = '%s'" % new["id"]) \
        == versions + 1
    handled = {}
    deadline = time.monotonic() + 20
    while len(handled) < 2 and time.monotonic() < deadline:
        handled = {int(m.group(1)): m.group(2) for m in re.finditer(
            r"outbox event (\d+) \((?:create|update) (Patient/[^ ]+)\) handled",
            srv.stderr()) if m.group(2) in (f"Patient/{new['id']}/_history/1",
                                             f"Patient/{ids['patients'][1]}/_history/2")}
        time.sleep(0.05)
    assert handled == {last_event + 1: f"Patient/{new['id']}/_history/1",
                       last_event + 2: f"Patient/{ids['patients'][1]}/_history/2"}, \
        srv.stderr()[-3000:]
    hist = c.get(f"Patient/{ids['patients'][1]}/_history").json
    assert [e["resource"]["meta"]["versionId"] for e in hist["entry"]] == ["2", "1"]
    # the trail goes on after the copied records, in the same chain
    assert srv.stop() == 0
    assert target.scalar("SELECT count(*) FROM audit") > records
    r = run_cli("audit", "verify", "--db", target.location)
    assert r.returncode == 0, r.stderr


def test_refuses_a_target_that_is_not_empty(source_db, target_kind, tmp_dir):
    db, _, _, _ = source_db
    target = Target(target_kind, tmp_dir)
    r = migrate(db, target.location)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = target.rows()
    r = migrate(db, target.location)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is not empty: it holds" in r.stderr, r.stderr
    assert "resource versions" in r.stderr and "outbox events" in r.stderr, r.stderr
    assert target.rows() == rows  # nothing written


def test_refuses_a_source_in_use(source_db, make_server, tmp_dir):
    db, _, _, _ = source_db
    target = Target("sqlite", tmp_dir)
    srv = make_server(db=db)
    r = migrate(db, target.location)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is in use by another process" in r.stderr, r.stderr
    assert target.rows() == 0
    assert srv.stop() == 0
    r = migrate(db, target.location)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_failed_copy_leaves_the_target_empty(source_db, target_kind, tmp_dir):
    db, _, _, _ = source_db
    target = Target(target_kind, tmp_dir)
    # the schema first, then something that refuses the last thing the copy writes (the job),
    # after every version was written in the same transaction
    r = run_cli("init", "--db", target.location, "--no-protocols")
    assert r.returncode == 0, r.stdout + r.stderr
    if target_kind == "postgresql":
        target.execute("ALTER TABLE job ADD CONSTRAINT no_escalations "
                       "CHECK (kind <> 'task-escalation')")
    else:
        target.execute("CREATE TRIGGER no_escalations BEFORE INSERT ON job "
                       "BEGIN SELECT RAISE(ABORT, 'no escalations'); END;")
    r = migrate(db, target.location)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the copy failed: the target holds nothing of it" in r.stderr, r.stderr
    assert target.rows() == 0
    # once the obstacle is gone the same target takes the copy
    if target_kind == "postgresql":
        target.execute("ALTER TABLE job DROP CONSTRAINT no_escalations")
    else:
        target.execute("DROP TRIGGER no_escalations;")
    r = migrate(db, target.location)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_copy_that_differs_is_reported(source_db, target_kind, tmp_dir):
    """The verification reads the target back: a trigger that changes what is written (the
    lastUpdated of Encounter versions) makes the checksums differ, and the command fails."""
    db, _, _, _ = source_db
    target = Target(target_kind, tmp_dir)
    r = run_cli("init", "--db", target.location, "--no-protocols")
    assert r.returncode == 0, r.stdout + r.stderr
    if target_kind == "postgresql":
        target.execute("CREATE FUNCTION garble() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN NEW.last_updated := '1999-01-01T00:00:00.000000Z'; "
                       "RETURN NEW; END $$; "
                       "CREATE TRIGGER garble BEFORE INSERT ON resource_version FOR EACH ROW "
                       "WHEN (NEW.type = 'Encounter') EXECUTE FUNCTION garble()")
    else:
        target.execute("CREATE TRIGGER garble AFTER INSERT ON resource_version "
                       "WHEN NEW.type = 'Encounter' BEGIN UPDATE resource_version SET "
                       "last_updated = '1999-01-01T00:00:00.000000Z' WHERE seq = NEW.seq; END;")
    r = migrate(db, target.location)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the versions of the target differ from the source's" in r.stderr, r.stderr
    assert "the target does not match the source" in r.stderr, r.stderr
    sums = [ln for ln in r.stdout.splitlines() if "DIFFERENT" in ln]
    assert len(sums) == 1 and "target" in sums[0], r.stdout  # the versions' checksum only


def test_an_interrupted_copy_leaves_the_target_empty(make_server, target_kind, tmp_dir):
    """Ctrl-C in the middle of the copy: it stops, rolls back, and says so."""
    target = Target(target_kind, tmp_dir)
    source = tmp_dir / "big.db"
    ndjson = tmp_dir / "patients.ndjson"
    with open(ndjson, "w") as f:
        for i in range(20000):
            f.write('{"resourceType":"Patient","id":"p%d","name":[{"family":"F%d"}]}\n' % (i, i))
    r = run_cli("import", "--db", str(source), str(ndjson), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # one version per batch: the copy takes a while
    proc = subprocess.Popen([str(concerto_bin()), "migrate-data", "--from", str(source), "--to",
                             target.location, "--batch", "1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server_env())
    seen = b""
    deadline = time.monotonic() + 120
    while b"0 of 20000 versions (0%)" not in seen and time.monotonic() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert b"0 of 20000 versions (0%)" in seen, seen
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = (seen + err).decode()
    assert not sanitizer_lines(err), err
    assert proc.returncode == 1, out.decode() + err
    assert "was interrupted: the target holds nothing of it" in err, err
    assert "interrupted (Ctrl-C)" in err, err
    assert target.rows() == 0


def test_help_and_usage_errors(tmp_dir):
    r = run_cli("migrate-data", "--help")
    assert r.returncode == 0, r
    for text in ("--from", "--to", "--batch", "--config", "CONCERTO_FROM", "CONCERTO_TO",
                 "one transaction", "SHA-256", "must hold no resources", "in use"):
        assert text in r.stdout, f"{text} is not in `concerto migrate-data --help`"
    r = run_cli("--help")
    assert "migrate-data" in r.stdout
    source = str(tmp_dir / "s.db")
    for args, message in [
            ((), "name the database to copy"),
            (("--from", source), "name the database to copy"),
            (("--from", source, "--to", source), "name the same database"),
            (("--from", source, "--to", str(tmp_dir / "t.db"), "--batch", "0"), "--batch"),
            (("--from", source, "--to", str(tmp_dir / "t.db"), "extra"), "unexpected argument"),
            (("--from", source, "--bogus", "1"), "--bogus")]:
        r = run_cli("migrate-data", *args)
        assert r.returncode == 2, (args, r.stdout + r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert not sanitizer_lines(r.stderr), r.stderr
    # a source that does not exist is not created
    r = run_cli("migrate-data", "--from", source, "--to", str(tmp_dir / "t.db"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "could not open the source" in r.stderr, r.stderr
    assert not os.path.exists(source)
