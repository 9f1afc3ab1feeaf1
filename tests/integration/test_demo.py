"""
`concerto demo`: the synthetic population. The same seed and as-of date give the same files,
another seed others; the population has the ages, sexes, conditions and codes of a
care-management panel; everything loaded reads back and is searchable; the staff sign in with
the generated passwords and a coordinator's $worklist has work in several buckets; a recent
discharge gets its TCM report; a database that holds resources is refused; bad arguments are
usage errors. On SQLite (a database file) and on PostgreSQL (a fresh database of the test
cluster for each demo database).
"""
import collections
import datetime
import json
import glob
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ON_POSTGRES, Server, fresh_database, loads, run_cli
from test_login import APP_URI, Authenticator, Browser, authorize_path, pkce, redirect_params

AS_OF = "2026-06-15"
# the served population is current today (the default as-of date, UTC), so that its work
# falls in every bucket of the server's worklist
TODAY = datetime.datetime.now(datetime.timezone.utc).date()
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
STAFF_ROLES = ["admin", "coordinator", "nurse", "physician", "pharmacist", "social-worker",
               "community-health-worker"]


_databases = {}  # PostgreSQL: the database of each demo database's name


def demo(tmp, name, *args):
    """Runs concerto demo on the database called name (a file in tmp, or on PostgreSQL a
    fresh database of the cluster, the same one for the same name): (its location, result)."""
    if ON_POSTGRES:
        if str(tmp / name) not in _databases:
            _databases[str(tmp / name)] = fresh_database()
        db = _databases[str(tmp / name)]
    else:
        db = str(tmp / f"{name}.db")
    r = run_cli("demo", "--db", db, *args, timeout=600)
    return db, r


def query(db, sql):
    """The first column of the first row of sql on db, or None when db has no schema yet."""
    if ON_POSTGRES:
        exe = shutil.which("psql") or (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
                                       or [None])[-1]
        assert exe, "psql is not installed"
        out = subprocess.run([exe, "-v", "ON_ERROR_STOP=1", "-qtA", db, "-c",
                              "SELECT to_regclass('public.resource') IS NOT NULL"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if out.stdout.strip() != "t":
            return None
        out = subprocess.run([exe, "-v", "ON_ERROR_STOP=1", "-qtA", db, "-c", sql],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip())
    if not os.path.exists(db):
        return None
    with sqlite3.connect(db) as c:
        if not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'resource'").fetchone():
            return None
        return c.execute(sql).fetchone()[0]


def read_ndjson(directory):
    out = collections.defaultdict(list)
    for path in sorted(Path(directory).glob("*.ndjson")):
        for line in path.read_text().splitlines():
            resource = loads(line)
            out[resource["resourceType"]].append(resource)
    return out


def file_bytes(directory):
    return {p.name: p.read_bytes() for p in sorted(Path(directory).glob("*.ndjson"))}


# ---- determinism ------------------------------------------------------------------------------

def test_same_seed_gives_the_same_files_and_another_seed_others(tmp_dir):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        _, r = demo(tmp_dir, name, "--patients", "40", "--seed", seed, "--as-of", AS_OF,
                    "--ndjson", str(tmp_dir / name))
        assert r.returncode == 0, r.stderr
        runs[name] = file_bytes(tmp_dir / name)
    assert runs["a"] == runs["b"]
    assert "Patient.ndjson" in runs["a"] and "Task.ndjson" in runs["a"]
    assert runs["a"]["Patient.ndjson"] != runs["c"]["Patient.ndjson"]
    assert runs["a"]["Task.ndjson"] != runs["c"]["Task.ndjson"]
    # the same ids: patient i does not depend on the seed's other draws
    ids = [json.loads(line)["id"] for line in runs["c"]["Patient.ndjson"].splitlines()]
    assert ids[:3] == ["maria-gonzalez", "james-carter", "patient-000002"]


def test_dates_follow_the_as_of_date(tmp_dir):
    _, r = demo(tmp_dir, "later", "--patients", "20", "--seed", "7", "--as-of", "2027-06-15",
                "--ndjson", str(tmp_dir / "later"))
    assert r.returncode == 0, r.stderr
    _, r = demo(tmp_dir, "now", "--patients", "20", "--seed", "7", "--as-of", AS_OF,
                "--ndjson", str(tmp_dir / "now"))
    assert r.returncode == 0, r.stderr
    later = {t["id"]: t for t in read_ndjson(tmp_dir / "later")["Task"]}
    now = {t["id"]: t for t in read_ndjson(tmp_dir / "now")["Task"]}
    shift = datetime.timedelta(days=365)
    compared = 0
    for id_, task in now.items():
        # the two patients with fixed birth dates are a year older at the later date
        if task["for"]["reference"] in ("Patient/maria-gonzalez", "Patient/james-carter"):
            continue
        due_now = datetime.date.fromisoformat(task["restriction"]["period"]["end"])
        due_later = datetime.date.fromisoformat(later[id_]["restriction"]["period"]["end"])
        assert due_later - due_now == shift
        compared += 1
    assert compared > 20


# ---- the population --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def population(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    db, r = demo(tmp, "pop", "--patients", "600", "--seed", "3",
                 "--ndjson", str(tmp / "nd"), "--credentials", str(tmp / "credentials"))
    assert r.returncode == 0, r.stderr
    return {"db": db, "dir": tmp, "data": read_ndjson(tmp / "nd"), "stdout": r.stdout,
            "stderr": r.stderr}


def conditions_by_patient(data):
    by = collections.defaultdict(set)
    for c in data["Condition"]:
        by[c["subject"]["reference"]].add(c["code"]["coding"][0]["code"].split(".")[0])
    return by


def test_ages_sexes_and_conditions_are_those_of_a_care_management_panel(population):
    data = population["data"]
    patients = data["Patient"]
    assert len(patients) == 600
    as_of = TODAY

    def age(p):
        b = datetime.date.fromisoformat(p["birthDate"])
        return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))
    ages = [age(p) for p in patients]
    share = lambda pred: sum(1 for a in ages if pred(a)) / len(ages)
    assert 0.7 <= share(lambda a: 50 <= a <= 90) <= 0.95
    assert 0.03 <= share(lambda a: a < 50) <= 0.25
    assert min(ages) >= 18
    female = sum(p["gender"] == "female" for p in patients) / len(patients)
    assert 0.45 <= female <= 0.65

    by = conditions_by_patient(data)
    assert len(by) == len(patients)  # everyone has a chronic condition
    prevalence = {k: sum(k in s for s in by.values()) / len(patients)
                  for k in ("E11", "I10", "I50", "J44", "N18")}
    assert 0.3 <= prevalence["E11"] <= 0.55
    assert 0.45 <= prevalence["I10"] <= 0.8
    assert 0.05 <= prevalence["I50"] <= 0.3
    assert 0.05 <= prevalence["J44"] <= 0.3
    depression = sum(("F32" in s or "F33" in s) for s in by.values()) / len(patients)
    assert 0.12 <= depression <= 0.35
    diabetic = [s for s in by.values() if "E11" in s]
    other = [s for s in by.values() if "E11" not in s]
    ckd_diabetic = sum("N18" in s for s in diabetic) / len(diabetic)
    ckd_other = sum("N18" in s for s in other) / len(other)
    assert ckd_diabetic > 2 * ckd_other


def test_codes_come_from_their_systems_and_fit_the_conditions(population):
    data = population["data"]
    for c in data["Condition"]:
        coding = c["code"]["coding"][0]
        assert coding["system"] == ICD10
        assert coding["code"][:3] in {"E11", "I10", "I50", "J44", "N18", "F32", "F33"}
    by = conditions_by_patient(data)
    for m in data["MedicationRequest"]:
        coding = m["medicationCodeableConcept"]["coding"][0]
        assert coding["system"] == RXNORM and coding["code"].isdigit()
        conditions = by[m["subject"]["reference"]]
        if coding["display"] == "metformin":
            assert "E11" in conditions
        if coding["display"] == "furosemide":
            assert "I50" in conditions
        if coding["display"] == "tiotropium":
            assert "J44" in conditions
        if coding["display"] in ("sertraline", "escitalopram"):
            assert "F32" in conditions or "F33" in conditions
    seen = collections.Counter()
    for o in data["Observation"]:
        coding = o["code"]["coding"][0]
        assert coding["system"] == LOINC
        seen[coding["code"]] += 1
        if coding["code"] == "85354-9":
            parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
                     for c in o["component"]}
            assert set(parts) == {"8480-6", "8462-4"}
            assert 70 <= parts["8480-6"] <= 230 and 35 <= parts["8462-4"] <= 140
        if coding["code"] == "4548-4":
            assert "E11" in by[o["subject"]["reference"]]
    for code in ("85354-9", "29463-7", "8867-4", "4548-4", "62238-1"):
        assert seen[code] > 0, code
    # diabetics' HbA1c runs higher than the normal range; CKD patients' eGFR is below 60
    a1c = [o["valueQuantity"]["value"] for o in data["Observation"]
           if o["code"]["coding"][0]["code"] == "4548-4"]
    assert 6.5 <= sum(a1c) / len(a1c) <= 9.5
    ckd = {ref for ref, s in by.items() if "N18" in s}
    egfr_ckd = [o["valueQuantity"]["value"] for o in data["Observation"]
                if o["code"]["coding"][0]["code"] == "62238-1" and o["subject"]["reference"] in ckd]
    assert egfr_ckd and max(egfr_ckd) < 70


def test_encounters_tasks_appointments_and_teams_have_the_expected_shapes(population):
    data = population["data"]
    classes = collections.Counter(e["class"]["code"] for e in data["Encounter"])
    assert classes["AMB"] and classes["IMP"] and classes["EMER"]
    for e in data["Encounter"]:
        if e["class"]["code"] == "IMP" and e["status"] == "finished":
            disposition = e["hospitalization"]["dischargeDisposition"]["coding"][0]
            assert disposition["system"] == \
                "http://terminology.hl7.org/CodeSystem/discharge-disposition"
    as_of = TODAY
    statuses = collections.Counter(t["status"] for t in data["Task"])
    for s in ("requested", "accepted", "in-progress", "on-hold", "completed", "cancelled"):
        assert statuses[s] > 0, s
    due = collections.Counter()
    for t in data["Task"]:
        assert "owner" in t or "performerType" in t
        if t["status"] not in ("completed", "cancelled"):
            d = datetime.date.fromisoformat(t["restriction"]["period"]["end"])
            due["before" if d < as_of else "on" if d == as_of else "after"] += 1
    assert due["before"] and due["on"] and due["after"]
    assert len({a["status"] for a in data["Appointment"]}) >= 4
    assert data["ServiceRequest"] and data["Communication"] and data["AllergyIntolerance"]
    assert len(data["CareTeam"]) == len(data["Patient"])
    for team in data["CareTeam"]:
        coordinators = [p for p in team["participant"]
                        if p["role"][0].get("coding", [{}])[0].get("code") == "768820003"]
        assert len(coordinators) == 1
        assert team["category"][0]["coding"][0]["code"] == "LA28865-6"
    assert len(data["CarePlan"]) == len(data["Patient"]) and data["Goal"]


def test_summary_and_sign_ins_keep_passwords_off_stdout(population):
    path = population["dir"] / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in path.read_text().splitlines())
    for role in STAFF_ROLES:
        assert role in lines
    assert "maria" in lines
    for password in lines.values():
        assert len(password) >= 12
        assert password not in population["stdout"] and password not in population["stderr"]
    assert "600 patients" in population["stdout"]
    # the progress goes to stderr as percentage lines when it is not a terminal
    assert "concerto demo: 100%" in population["stderr"]
    r = run_cli("user", "list", "--db", str(population["db"]))
    assert r.returncode == 0, r.stderr
    for name in lines:
        assert name in r.stdout


# ---- served ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(population):
    srv = Server(db=population["db"])
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key), "--calendar-timezone", "UTC"]
    db = str(population["db"])
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser launch/patient offline_access patient/*.rs user/*.cruds",
                "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def sign_in(srv, username, password, scope):
    browser = Browser("127.0.0.1", srv.port)
    verifier, challenge = pkce()
    page = browser.get(authorize_path(scope=scope, challenge=challenge))
    assert page.status == 200, page
    page = browser.submit(page, "/oauth2/login", username=username, password=password)
    if page.status == 200 and "totp-secret" in page.parser.by_id:
        app = Authenticator(page.parser.by_id["totp-secret"].strip())
        page = browser.submit(page, "/oauth2/login/enroll", code=app.code())
        assert page.status == 200, page
        page = browser.submit(page, "/oauth2/continue")
    params = redirect_params(page)
    r = srv.client.token_request({"grant_type": "authorization_code", "code": params["code"],
                                  "redirect_uri": APP_URI, "code_verifier": verifier,
                                  "client_id": "app"}, client_id=None)
    assert r.status == 200, r
    return r.json["access_token"]


def total(client, query):
    r = client.get(f"/fhir/{query}{'&' if '?' in query else '?'}_summary=count")
    assert r.status == 200, r
    return r.json["total"]


def strip_meta(resource):
    return {k: v for k, v in resource.items() if k != "meta"}


def test_every_resource_reads_back_and_is_searchable(population, served):
    client = served.client
    data = population["data"]
    for type_, resources in data.items():
        assert total(client, type_) >= len(resources), type_
        for resource in resources[:: max(1, len(resources) // 15)]:
            r = client.get(f"/fhir/{type_}/{resource['id']}")
            assert r.status == 200, r
            assert strip_meta(r.json) == strip_meta(resource)
    hypertension = sum(1 for c in data["Condition"] if c["code"]["coding"][0]["code"] == "I10")
    assert total(client, f"Condition?code={ICD10}|I10") == hypertension
    on_hold = sum(1 for t in data["Task"] if t["status"] == "on-hold")
    assert total(client, "Task?status=on-hold") == on_hold
    r = client.get("/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.19.5|MRN-100234")
    assert [e["resource"]["id"] for e in r.json["entry"]] == ["maria-gonzalez"]
    r = client.get("/fhir/Observation?patient=maria-gonzalez&code=http://loinc.org|85354-9")
    assert r.status == 200 and r.json["entry"]


def test_a_coordinator_signs_in_and_works_a_worklist_in_several_buckets(population, served):
    lines = dict(line.split("=", 1)
                 for line in (population["dir"] / "credentials").read_text().splitlines())
    token = sign_in(served, "coordinator", lines["coordinator"], "openid fhirUser user/*.cruds")
    r = served.client.get("/fhir/Task/$worklist?_count=5",
                          headers={"Authorization": f"Bearer {token}"}, auth=None)
    assert r.status == 200, r
    totals = {}
    for entry in r.json["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "List":
            code = resource["code"]["coding"][0]["code"]
            totals[code] = resource["extension"][0]["valueInteger"]
    assert set(totals) == {"on-hold", "unassigned", "overdue", "due-today", "upcoming"}
    for bucket in ("on-hold", "overdue", "due-today", "upcoming"):
        assert totals[bucket] > 0, totals


def test_a_recent_discharge_gets_its_tcm_report(population, served):
    discharges = [e for e in population["data"]["Encounter"]
                  if e["class"]["code"] == "IMP" and e["status"] == "finished"
                  and datetime.date.fromisoformat(e["period"]["end"][:10])
                  >= TODAY - datetime.timedelta(days=10)]
    assert discharges
    home = [e for e in discharges
            if e["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "home"]
    assert home
    encounter = home[0]
    r = served.client.get(f"/fhir/Encounter/{encounter['id']}/$tcm")
    assert r.status == 200, r
    params = {p["name"]: p for p in r.json["parameter"]}
    assert params["eligible"]["valueBoolean"] is True
    # the engine acts on the recent discharge: the transitional care Tasks of the protocol
    patient = encounter["subject"]["reference"]
    query = (f"Task?patient={patient}"
             "&code=http://concerto.dev/fhir/CodeSystem/task|tcm-interactive-contact")
    deadline = time.monotonic() + 30
    while total(served.client, query) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total(served.client, query) == 1
    # while the history's stays made no work: no TCM Task for a discharge of months ago
    old = [e for e in population["data"]["Encounter"]
           if e["class"]["code"] == "IMP" and e["status"] == "finished"
           and datetime.date.fromisoformat(e["period"]["end"][:10])
           < TODAY - datetime.timedelta(days=30)]
    assert old
    r = served.client.get(
        "/fhir/Task?code=http://concerto.dev/fhir/CodeSystem/task|tcm-interactive-contact"
        "&_count=1000")
    assert r.status == 200, r
    recent_patients = {e["subject"]["reference"] for e in discharges}
    for entry in r.json["entry"]:
        assert entry["resource"]["for"]["reference"] in recent_patients


# ---- refusals --------------------------------------------------------------------------------

def test_a_database_holding_resources_is_refused_without_force(population, tmp_dir):
    db, r = demo(tmp_dir, "twice", "--patients", "5", "--as-of", AS_OF)
    assert r.returncode == 0, r.stderr
    before = query(db, "SELECT count(*) FROM resource_version")
    _, r = demo(tmp_dir, "twice", "--patients", "5", "--as-of", AS_OF)
    assert r.returncode == 2
    assert "already holds" in r.stderr and "--force" in r.stderr
    _, r = demo(tmp_dir, "twice", "--patients", "5", "--as-of", AS_OF, "--force")
    assert r.returncode == 0, r.stderr
    assert query(db, "SELECT count(*) FROM resource_version") >= before


def test_credentials_go_to_stdout_only_when_asked(tmp_dir):
    _, r = demo(tmp_dir, "printed", "--patients", "3", "--print-credentials")
    assert r.returncode == 0, r.stderr
    printed = dict(line.split("=", 1) for line in r.stdout.splitlines()
                   if "=" in line and " " not in line)
    assert set(STAFF_ROLES) <= set(printed) and "maria" in printed
    _, r = demo(tmp_dir, "unprinted", "--patients", "3")
    assert r.returncode == 0, r.stderr
    assert "reset-password" in r.stdout
    assert not [line for line in r.stdout.splitlines() if "=" in line and " " not in line]


@pytest.mark.parametrize("args, message", [
    (["--patients", "0"], "--patients must be a number from 1 to 1000000"),
    (["--patients", "many"], "--patients must be a number"),
    (["--patients", "2000000"], "--patients must be a number"),
    (["--seed", "-4"], "--seed must be a non-negative number"),
    (["--as-of", "2026-02-30"], "--as-of must be a date YYYY-MM-DD"),
    (["--as-of", "tomorrow"], "--as-of must be a date"),
    (["--colour", "blue"], "colour"),
    (["extra"], "unexpected argument"),
])
def test_bad_arguments_are_usage_errors(tmp_dir, args, message):
    db, r = demo(tmp_dir, "bad", *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert query(db, "SELECT count(*) FROM resource") is None  # nothing made


def test_help_describes_the_options():
    r = run_cli("demo", "--help")
    assert r.returncode == 0
    for option in ("--patients", "--seed", "--as-of", "--credentials", "--ndjson", "--force"):
        assert option in r.stdout
    assert "postgresql://" in r.stdout  # --db takes a PostgreSQL URI too
