"""`concerto import`: the Synthea population (read from ../shared/synthea-10, never copied),
Bundles with urn:uuid references, invalid resources reported by file and line."""
import json
import os
import pathlib

import pytest

from conftest import ROOT, run_cli, sanitizer_lines, sqlite_integrity, sqlite_only

SYNTHEA = pathlib.Path(os.environ.get("CONCERTO_SYNTHEA", ROOT.parent / "shared/synthea-10"))


def synthea_files():
    if not SYNTHEA.is_dir():
        pytest.skip(f"synthetic population not found at {SYNTHEA}")
    return sorted(str(p) for p in SYNTHEA.glob("*.ndjson"))


def count_by_type(files):
    counts = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    t = json.loads(line)["resourceType"]
                    counts[t] = counts.get(t, 0) + 1
    return counts


def db_counts(db):
    import sqlite3
    con = sqlite3.connect(db)
    try:
        return dict(con.execute(
            "SELECT type, count(*) FROM resource WHERE deleted = 0 GROUP BY type").fetchall())
    finally:
        con.close()


@sqlite_only("a bulk import into a database file, its deferred index builds and rows")
def test_synthea_imports_completely_and_every_reference_resolves(tmp_path):
    files = synthea_files()
    expected = count_by_type(files)
    assert sum(expected.values()) == 7160
    db = tmp_path / "synthea.db"
    # files in reverse order: references resolve whatever the order
    r = run_cli("import", "--db", str(db), "--batch", "500", *reversed(files), timeout=600)
    assert not sanitizer_lines(r.stderr), r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert "imported 7160 resources" in r.stdout
    assert "refused 0" in r.stdout and "unresolved 0 (conditional 0)" in r.stdout, r.stdout
    assert db_counts(db) == expected
    # conditional references were rewritten to ids
    import sqlite3
    con = sqlite3.connect(db)
    leftover = con.execute(
        "SELECT count(*) FROM resource r JOIN resource_version v ON v.seq = r.seq "
        "WHERE v.json LIKE '%\"reference\":\"Practitioner?identifier%'").fetchone()[0]
    con.close()
    assert leftover == 0
    # importing again makes new versions, not duplicates
    r = run_cli("import", "--db", str(db), *files, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert db_counts(db) == expected
    assert sqlite_integrity(db) == "ok"


def test_a_bundle_file_with_urn_uuid_references(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0d4b0b1e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Bundled"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0d4b0b1e-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "urn:uuid:0d4b0b1e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    db = tmp_path / "b.db"
    r = run_cli("import", "--db", str(db), str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert db_counts(db) == {"Patient": 1, "Observation": 1}
    assert "unresolved 0" in r.stdout


def test_invalid_resources_are_reported_and_left_out(tmp_path):
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        '{"resourceType":"Patient","id":"good","active":true}\n'
        '{"resourceType":"Patient","id":"bad","birthDate":"1999-02-30"}\n'
        '\n'
        '{"resourceType":"Patient","id":"broken"\n'
        '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},'
        '"subject":{"reference":"Patient/nowhere"}}\n')
    db = tmp_path / "m.db"
    r = run_cli("import", "--db", str(db), str(path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{path}:2: could not parse Patient.birthDate" in r.stderr
    assert f"{path}:4: could not parse JSON" in r.stderr
    assert 'reference "Patient/nowhere" does not resolve' in r.stderr
    assert "refused 1; unreadable 1" in r.stdout
    assert db_counts(db) == {"Patient": 1, "Observation": 1}


def test_usage_errors():
    r = run_cli("import")
    assert r.returncode == 2 and "name at least one file" in r.stderr
    r = run_cli("import", "--batch", "0", "x.ndjson")
    assert r.returncode == 2 and "--batch" in r.stderr
    r = run_cli("import", "--help")
    assert r.returncode == 0 and "--batch" in r.stdout and "NDJSON" in r.stdout


def test_an_upgrade_gives_tasks_stored_before_their_work_rows(tmp_path):
    """Schema 15 adds the work rows of open Tasks (docs/internals/store.md, "Task work
    rows") and reindexes Task where there are Tasks, so that worklists see those stored
    before; a closed Task gets none."""
    import sqlite3
    db = tmp_path / "old.db"
    path = tmp_path / "tasks.ndjson"
    tasks = [{"resourceType": "Task", "id": tid, "status": status, "intent": "order",
              "owner": {"reference": "Practitioner/c1"}}
             for tid, status in (("open", "ready"), ("held", "on-hold"), ("done", "completed"))]
    practitioner = {"resourceType": "Practitioner", "id": "c1"}
    path.write_text("".join(json.dumps(t) + "\n" for t in [practitioner] + tasks))
    assert run_cli("import", "--db", str(db), str(path)).returncode == 0

    def rows():
        with sqlite3.connect(db) as c:
            return sorted(r[0] for r in c.execute("SELECT id FROM task_work"))

    assert rows() == ["held", "open"]
    # as a database of schema 14: no work rows
    with sqlite3.connect(db) as c:
        c.execute("DROP TABLE task_work")
        c.execute("DROP TABLE task_work_pool")
        c.execute("DROP TABLE risk_work")
        c.execute("DROP TABLE care_member")
        c.execute("DROP TABLE hl7_message")
        c.execute("DROP TABLE server_key")
        c.execute("ALTER TABLE resource_version DROP COLUMN author")
        c.execute("DELETE FROM schema_migration WHERE version >= 15")
    r = run_cli("init", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "reindex of Task after the work rows of Tasks, schema 15: done" in r.stderr
    assert rows() == ["held", "open"]


def test_an_upgrade_gives_risk_assessments_stored_before_their_risk_rows(tmp_path):
    """Schema 16 adds the risk rows of RiskAssessments and the member rows of CareTeams
    (docs/internals/store.md) and reindexes those types where there are any, so that
    worklists rank the patients assessed before and see the teams made before; a withdrawn
    assessment gets none."""
    import sqlite3
    db = tmp_path / "old.db"
    path = tmp_path / "risks.ndjson"
    risks = [{"resourceType": "RiskAssessment", "id": rid, "status": status,
              "subject": {"reference": "Patient/p1"},
              "prediction": [{"probabilityDecimal": 0.4}]}
             for rid, status in (("now", "final"), ("wrong", "entered-in-error"))]
    patient = {"resourceType": "Patient", "id": "p1"}
    team = {"resourceType": "CareTeam", "id": "t1", "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "Patient/p1"},
                             "role": [{"coding": [{"system": "urn:r", "code": "self"}]}]}]}
    path.write_text("".join(json.dumps(r) + "\n" for r in [patient, team] + risks))
    assert run_cli("import", "--db", str(db), str(path)).returncode == 0

    def rows():
        with sqlite3.connect(db) as c:
            return (c.execute("SELECT patient, risk FROM risk_work").fetchall(),
                    c.execute("SELECT member, patient, role FROM care_member").fetchall())

    assert rows() == ([("Patient/p1", 0.4)], [("Patient/p1", "Patient/p1", "urn:r|self")])
    # as a database of schema 15: no risk rows
    with sqlite3.connect(db) as c:
        c.execute("DROP TABLE risk_work")
        c.execute("DROP TABLE care_member")
        c.execute("DROP TABLE hl7_message")
        c.execute("DROP TABLE server_key")
        c.execute("ALTER TABLE resource_version DROP COLUMN author")
        c.execute("DELETE FROM schema_migration WHERE version >= 16")
    r = run_cli("init", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "reindex of RiskAssessment after the risk rows of RiskAssessments, schema 16: done" \
        in r.stderr
    assert "reindex of CareTeam after the member rows of CareTeams, schema 16: done" in r.stderr
    assert rows() == ([("Patient/p1", 0.4)], [("Patient/p1", "Patient/p1", "urn:r|self")])


def test_an_upgrade_marks_resources_stored_before_the_unlinked_mark(tmp_path):
    """Schema 14 reindexes a database that holds resources, so that one stored before
    resources linked to no patient were marked (an Observation about a Group) gets its mark,
    which the access policy needs to show it to staff."""
    import sqlite3
    db = tmp_path / "old.db"
    path = tmp_path / "obs.ndjson"
    path.write_text(json.dumps({"resourceType": "Group", "id": "g1", "type": "person",
                                "actual": True}) + "\n" + json.dumps({
        "resourceType": "Observation", "id": "group-obs", "status": "final",
        "code": {"text": "Visits"}, "subject": {"reference": "Group/g1"}}) + "\n")
    assert run_cli("import", "--db", str(db), str(path)).returncode == 0

    def marks():
        with sqlite3.connect(db) as c:
            return c.execute("SELECT count(*) FROM ix_reference WHERE param = '_unlinked'"
                             ).fetchone()[0]

    assert marks() == 2  # the Group (no member) and the Observation about it
    # as a database written before the mark existed: no mark, schema version 13
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM ix_reference WHERE param = '_unlinked'")
        c.execute("DELETE FROM schema_migration WHERE version >= 14")
        # and without the tables of later schemas
        c.execute("DROP TABLE task_work")
        c.execute("DROP TABLE task_work_pool")
        c.execute("DROP TABLE risk_work")
        c.execute("DROP TABLE care_member")
        c.execute("DROP TABLE hl7_message")
        c.execute("DROP TABLE server_key")
        c.execute("ALTER TABLE resource_version DROP COLUMN author")
    assert marks() == 0
    r = run_cli("init", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "reindex of every type after the upgrade of the index to schema 14: done" in r.stderr
    assert marks() == 2
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT max(version) FROM schema_migration").fetchone()[0] >= 14
        assert c.execute("SELECT count(*) FROM job WHERE kind = 'reindex'").fetchone()[0] == 0
