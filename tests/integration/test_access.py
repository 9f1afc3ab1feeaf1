"""
The access policy over HTTP, with tokens people get by signing in (authorization code with
PKCE through Concerto's pages, then the token endpoint): what each role and scope may reach and
what is refused, including attempts to reach another patient's data through search parameters,
chains, _has, _include, _revinclude, Bundles, history and $everything; emergency access with
its review Flag and audit record; and a revoked token. On SQLite and PostgreSQL.

The people: nurse1 is on Jane Ames's care team (Practitioner p1); nurse3 reaches Peter Brook
through her organization (PractitionerRole pr3 of org1, a participant of his care team);
nurse2 is on no team; admin1 manages; jane is the patient Jane Ames.
"""
import json
import os
import time

import pytest

from conftest import ON_POSTGRES, Server, fresh_database, run_cli
from test_login import (APP_URI, PASSWORD, Authenticator, Browser, authorize_path, pkce,
                        redirect_params)

STAFF_SCOPES = "openid fhirUser user/*.cruds"
PEOPLE = [
    {"resourceType": "Organization", "id": "org1", "name": "Riverside"},
    {"resourceType": "Practitioner", "id": "p1"},
    {"resourceType": "Practitioner", "id": "p2"},
    {"resourceType": "Practitioner", "id": "p3"},
    {"resourceType": "PractitionerRole", "id": "pr3", "practitioner": {"reference": "Practitioner/p3"},
     "organization": {"reference": "Organization/org1"}},
    {"resourceType": "Patient", "id": "pat1", "name": [{"family": "Ames", "given": ["Jane"]}]},
    {"resourceType": "Patient", "id": "pat2", "name": [{"family": "Brook", "given": ["Peter"]}]},
    {"resourceType": "Patient", "id": "pat3", "name": [{"family": "Cole", "given": ["Ida"]}]},
    {"resourceType": "CareTeam", "id": "ct1", "status": "active",
     "subject": {"reference": "Patient/pat1"},
     "participant": [{"member": {"reference": "Practitioner/p1"}}]},
    {"resourceType": "CareTeam", "id": "ct2", "status": "active",
     "subject": {"reference": "Patient/pat2"},
     "participant": [{"member": {"reference": "Organization/org1"}}]},
] + [
    {"resourceType": "Observation", "id": f"obs{n}", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
     "subject": {"reference": f"Patient/pat{n}"},
     "performer": [{"reference": "Practitioner/p1"}]}
    for n in (1, 2, 3)
] + [
    {"resourceType": "Task", "id": f"task{n}", "status": "requested", "intent": "order",
     "for": {"reference": f"Patient/pat{n}"}}
    for n in (1, 2)
]


def sign_in(srv, username, scope, client_id="app"):
    """An access token of username for client_id, through the sign-in pages (staff enrol in a
    second factor on their first sign-in) and the token endpoint."""
    browser = Browser("127.0.0.1", srv.port)
    verifier, challenge = pkce()
    page = browser.get(authorize_path(client_id=client_id, scope=scope, challenge=challenge))
    assert page.status == 200, page
    page = browser.submit(page, "/oauth2/login", username=username, password=PASSWORD)
    if page.status == 200 and "totp-secret" in page.parser.by_id:
        app = Authenticator(page.parser.by_id["totp-secret"].strip())
        page = browser.submit(page, "/oauth2/login/enroll", code=app.code())
        assert page.status == 200, page
        page = browser.submit(page, "/oauth2/continue")
    params = redirect_params(page)
    r = srv.client.token_request({"grant_type": "authorization_code", "code": params["code"],
                                  "redirect_uri": APP_URI, "code_verifier": verifier,
                                  "client_id": client_id}, client_id=None)
    assert r.status == 200, r
    return r.json


@pytest.fixture(scope="module")
def world():
    db = fresh_database() if ON_POSTGRES else None
    srv = Server(db=db)
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    dbname = str(srv.db)
    assert run_cli("init", "--db", dbname).returncode == 0
    data = srv.dir / "people.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in PEOPLE))
    r = run_cli("import", "--db", dbname, str(data))
    assert r.returncode == 0, r.stderr
    accounts = [("nurse1", "nurse", "--practitioner", "p1"),
                ("nurse2", "nurse", "--practitioner", "p2"),
                ("nurse3", "nurse", "--practitioner", "p3"),
                ("jane", "patient", "--patient", "pat1")]
    for name, role, flag, link in accounts:
        r = run_cli("user", "add", "--db", dbname, "--username", name, "--role", role, flag, link,
                    "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "--db", dbname, "--username", "admin1", "--role", "admin",
                "--password-stdin", input=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser launch/patient offline_access patient/*.rs user/*.cruds",
                "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", dbname, "--client-id", "narrow", "--public", "--scopes",
                "launch/patient patient/Observation.rs", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr
    srv.start()
    tokens = {name: sign_in(srv, name, STAFF_SCOPES)["access_token"]
              for name in ("nurse1", "nurse2", "nurse3", "admin1")}
    jane = sign_in(srv, "jane", "launch/patient patient/*.rs")
    assert jane["patient"] == "pat1"
    tokens["jane"] = jane["access_token"]
    tokens["narrow"] = sign_in(srv, "jane", "launch/patient patient/Observation.rs",
                               client_id="narrow")["access_token"]
    srv.tokens = tokens
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


def as_(srv, who):
    """A function making requests with who's token."""
    def request(method, url, body=None, headers=None):
        return srv.client.request(method, url, body, headers=headers, auth=srv.tokens[who])
    return request


def ids(r):
    assert r.status == 200, r
    return sorted(f'{e["resource"]["resourceType"]}/{e["resource"]["id"]}'
                  for e in r.json.get("entry", []))


def test_staff_reach_the_patients_of_their_care_teams(world):
    get = lambda url, **kw: as_(world, "nurse1")("GET", url, **kw)
    assert get("Patient/pat1").status == 200
    assert get("Observation/obs1").status == 200
    r = get("Patient/pat2")
    assert r.status == 403, r
    assert "X-Emergency-Access" in r.body.decode()
    assert get("Observation/obs2").status == 403
    # searches, totals and counts only show hers
    assert ids(get("Observation?code=29463-7")) == ["Observation/obs1"]
    assert get("Observation?code=29463-7&_summary=count").json["total"] == 1
    assert get("Observation?code=29463-7&_total=accurate").json["total"] == 1
    assert ids(get("Patient")) == ["Patient/pat1"]
    # shared resources are there for everyone
    assert get("Practitioner/p2").status == 200
    # Tasks are about one patient too
    assert ids(get("Task")) == ["Task/task1"]


def test_searches_never_reach_another_patient(world):
    get = lambda url: as_(world, "nurse1")("GET", url)
    assert ids(get("Observation?subject=Patient/pat2")) == []
    assert ids(get("Observation?subject:Patient.family=Brook")) == []
    assert ids(get("Patient?_has:Observation:subject:code=29463-7")) == ["Patient/pat1"]
    assert ids(get("Observation?_include=Observation:subject")) == ["Observation/obs1",
                                                                   "Patient/pat1"]
    # the Practitioner is shared; the Observations of other patients are not revincluded
    assert ids(get("Practitioner?_id=p1&_revinclude=Observation:performer")) == [
        "Observation/obs1", "Practitioner/p1"]
    assert ids(get("Patient?_revinclude=Observation:subject")) == ["Observation/obs1",
                                                                  "Patient/pat1"]
    assert ids(get("Patient/pat2/Observation")) == []
    assert ids(get("?_type=Patient,Observation")) == ["Observation/obs1", "Patient/pat1"]
    # history and $everything
    r = get("Observation/_history")
    assert r.status == 200
    assert {e["resource"]["id"] for e in r.json.get("entry", [])} == {"obs1"}
    assert get("Observation/obs2/_history").status == 403
    assert get("Patient/pat2/$everything").status == 403
    everything = ids(get("Patient/pat1/$everything"))
    assert "Patient/pat1" in everything and "Observation/obs2" not in everything


def test_staff_writes_stay_within_their_patients(world):
    req = as_(world, "nurse1")
    ok = req("POST", "Observation", {"resourceType": "Observation", "status": "final",
                                     "code": {"text": "weight"},
                                     "subject": {"reference": "Patient/pat1"}})
    assert ok.status == 201, ok
    r = req("POST", "Observation", {"resourceType": "Observation", "status": "final",
                                    "code": {"text": "weight"},
                                    "subject": {"reference": "Patient/pat2"}})
    assert r.status == 403, r
    # moving her Observation to another patient is refused too
    obs = dict(ok.json, subject={"reference": "Patient/pat3"})
    assert req("PUT", f"Observation/{ok.json['id']}", obs).status == 403
    # a transaction with one entry for another patient fails whole; nothing is written
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t1"},
                      "subject": {"reference": "Patient/pat1"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t1"},
                      "subject": {"reference": "Patient/pat2"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    r = req("POST", "", bundle)
    assert r.status == 403, r
    assert world.client.get("Observation?code:text=t1&_summary=count").json["total"] == 0
    # a batch answers the denied entries alone
    bundle["type"] = "batch"
    bundle["entry"].append({"request": {"method": "GET", "url": "Patient/pat3"}})
    r = req("POST", "", bundle)
    assert r.status == 200, r
    assert [e["response"]["status"][:3] for e in r.json["entry"]] == ["201", "403", "403"]
    # a conditional update does not reach the other patient's resource: it creates instead
    r = req("PUT", "Observation?_id=obs2", {"resourceType": "Observation", "status": "final",
                                            "code": {"text": "cond"},
                                            "subject": {"reference": "Patient/pat1"}})
    assert r.status == 201, r
    assert world.client.get("Observation/obs2").json["subject"]["reference"] == "Patient/pat2"


def test_a_conditional_update_does_not_confirm_an_id_the_caller_may_not_see(world):
    def cond_put(who, body_id, subject):
        return as_(world, who)("PUT", "Observation?code:text=matches-nothing", {
            "resourceType": "Observation", "id": body_id, "status": "final",
            "code": {"text": "probe"}, "subject": {"reference": f"Patient/{subject}"}})

    # obs2 (Patient/pat2) is outside nurse1's care teams: answered as a read of it is, 403,
    # not with the 409 that would say it exists
    r = cond_put("nurse1", "obs2", "pat1")
    assert r.status == 403, r
    assert as_(world, "nurse1")("GET", "Observation/obs2").status == 403
    assert "outside your care teams" in r.json["issue"][0]["diagnostics"]
    assert "Patient/pat1" not in json.dumps(r.json)
    # an id she may see: the conflict, as before
    r = cond_put("nurse1", "obs1", "pat1")
    assert r.status == 409, r
    # a patient is told "not known", as when she reads another's record
    token = sign_in(world, "jane", STAFF_SCOPES)["access_token"]
    r = world.client.request("PUT", "Observation?code:text=matches-nothing", {
        "resourceType": "Observation", "id": "obs2", "status": "final", "code": {"text": "probe"},
        "subject": {"reference": "Patient/pat1"}}, auth=token)
    assert r.status == 404, r
    assert world.client.get("Observation/obs2", auth=token).status == 404
    # nothing was written
    assert world.client.get("Observation?code:text=probe&_summary=count").json["total"] == 0
    assert world.client.get("Observation/obs2").json["subject"]["reference"] == "Patient/pat2"


def test_staff_reach_through_their_organization(world):
    get = lambda url: as_(world, "nurse3")("GET", url)
    assert get("Patient/pat2").status == 200
    assert get("Patient/pat1").status == 403
    assert ids(get("Observation?code=29463-7")) == ["Observation/obs2"]


def test_staff_on_no_team_see_nothing_but_may_break_the_glass(world):
    req = as_(world, "nurse2")
    assert ids(req("GET", "Observation")) == []
    assert req("GET", "Patient/pat3").status == 403
    reason = "patient unconscious in the emergency department"
    r = req("GET", "Patient/pat3", headers={"X-Emergency-Access": reason})
    assert r.status == 200, r
    # a Flag on the patient for review, once however many times
    assert req("GET", "Patient/pat3", headers={"X-Emergency-Access": reason}).status == 200
    flags = world.client.get("Flag?patient=pat3").json.get("entry", [])
    assert len(flags) == 1
    assert reason in flags[0]["resource"]["code"]["text"]
    assert "nurse2" in flags[0]["resource"]["code"]["text"]
    # and the audit trail has the reason
    deadline = time.monotonic() + 5
    while True:
        r = world.client.get("AuditEvent?patient=pat3&agent=nurse2",
                             auth=world.auditor_token())
        assert r.status == 200, r
        details = json.dumps(r.json)
        if reason in details or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert reason in details
    # an empty reason is refused
    assert req("GET", "Patient/pat3", headers={"X-Emergency-Access": " "}).status == 400


def test_admins_manage_but_do_not_read_clinical_data(world):
    req = as_(world, "admin1")
    assert req("GET", "Patient/pat2").status == 200
    assert req("GET", "CareTeam/ct2").status == 200
    assert req("GET", "Observation/obs2").status == 403
    assert ids(req("GET", "Observation")) == []
    r = req("POST", "Practitioner", {"resourceType": "Practitioner", "name": [{"family": "New"}]})
    assert r.status == 201, r
    # the audit trail is theirs to read
    assert req("GET", "AuditEvent?_count=1").status == 200
    assert as_(world, "nurse1")("GET", "AuditEvent?_count=1").status == 403


def test_a_patient_reaches_her_own_record_only(world):
    req = as_(world, "jane")
    assert req("GET", "Patient/pat1").status == 200
    # another patient's record is not even confirmed to exist
    assert req("GET", "Patient/pat2").status == 404
    assert req("GET", "Observation/obs2").status == 404
    assert ids(req("GET", "Observation?code=29463-7")) == ["Observation/obs1"]
    assert ids(req("GET", "Task")) == ["Task/task1"]
    assert ids(req("GET", "Patient?name=Brook")) == []
    assert req("GET", "Patient/pat2/$everything").status in (403, 404)
    # patient/*.rs reads: no writes
    r = req("POST", "Observation", {"resourceType": "Observation", "status": "final",
                                    "code": {"text": "x"}, "subject": {"reference": "Patient/pat1"}})
    assert r.status == 403, r
    assert req("GET", "Practitioner/p1").status == 200


def test_scopes_narrow_further(world):
    req = as_(world, "narrow")
    assert req("GET", "Observation/obs1").status == 200
    r = req("GET", "Task/task1")
    assert r.status == 403, r
    assert req("GET", "Task").status == 403
    assert req("GET", "Patient/pat1").status == 403


def test_a_revoked_token_stops_working(world):
    token = sign_in(world, "jane", "launch/patient patient/*.rs")["access_token"]
    assert world.client.get("Patient/pat1", auth=token).status == 200
    r = world.client.token_request({"token": token, "client_id": "app"}, client_id=None,
                                   path="/oauth2/revoke")
    assert r.status == 200, r
    r = world.client.get("Patient/pat1", auth=token)
    assert r.status == 401, r
    assert "invalid_token" in r.header("WWW-Authenticate")


def audit_events(srv, query, want):
    """The AuditEvents of query, waiting a moment for queued records to be stored."""
    deadline = time.monotonic() + 5
    while True:
        r = srv.client.get("AuditEvent?" + query, auth=srv.auditor_token())
        assert r.status == 200, r
        found = [e["resource"] for e in r.json.get("entry", [])]
        if len(found) >= want or time.monotonic() > deadline:
            return found


def test_sign_ins_tokens_and_failures_are_audited(world):
    # the sign-ins of the module's people, and the tokens they got
    logins = audit_events(world, "subtype=login&agent=nurse1", 1)
    assert logins and logins[0]["type"]["code"] == "110114"
    issued = audit_events(world, "subtype=token-issued&agent=jane", 2)
    assert len(issued) >= 2
    # a wrong password, with the user named and the password nowhere
    browser = Browser("127.0.0.1", world.port)
    page = browser.get(authorize_path(client_id="app", scope="launch/patient patient/*.rs"))
    page = browser.submit(page, "/oauth2/login", username="nurse2", password="not the password")
    assert page.status in (200, 401), page
    failed = audit_events(world, "subtype=login-failed&agent=nurse2", 1)
    assert failed and failed[0]["outcome"] != "0"
    assert "not the password" not in json.dumps(failed)
    # a revocation
    token = sign_in(world, "jane", "launch/patient patient/*.rs")["access_token"]
    r = world.client.token_request({"token": token, "client_id": "app"}, client_id=None,
                                   path="/oauth2/revoke")
    assert r.status == 200, r
    assert audit_events(world, "subtype=token-revoked&agent=jane", 1)
    # a policy denial is recorded with its status
    assert as_(world, "nurse1")("GET", "Observation/obs3").status == 403
    denied = audit_events(world, "agent=nurse1&patient=pat3", 1)
    assert any(e["outcome"] == "4" for e in denied), denied


def test_resources_naming_no_patient_follow_their_current_references(world):
    """Staff see a patient-linked resource naming no patient (an Observation about a Group);
    once an update names a patient, only that patient's staff do, in every kind of search."""
    nurse1, nurse3 = as_(world, "nurse1"), as_(world, "nurse3")
    ward = {"resourceType": "Observation", "id": "ward-obs", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Group/ward3"}}
    r = nurse1("PUT", "Observation/ward-obs", ward)
    assert r.status == 201, r
    searches = ["Observation?code=8867-4", "Observation?_count=50",
                "Observation?code=8867-4&_total=accurate", "Observation?_lastUpdated=gt2000-01-01"]
    for who in (nurse1, nurse3):
        for url in searches:
            assert "Observation/ward-obs" in ids(who("GET", url)), url
    # a patient account does not see it
    assert "Observation/ward-obs" not in ids(as_(world, "jane")("GET", "Observation"))
    ward["subject"] = {"reference": "Patient/pat1"}
    assert nurse1("PUT", "Observation/ward-obs", ward).status == 200
    for url in searches:
        assert "Observation/ward-obs" in ids(nurse1("GET", url)), url
        assert "Observation/ward-obs" not in ids(nurse3("GET", url)), url
    assert nurse3("GET", "Observation?code=8867-4&_summary=count").json["total"] == 0
    history = nurse3("GET", "Observation/_history")
    assert "ward-obs" not in {e["resource"]["id"] for e in history.json.get("entry", [])}
    assert nurse3("GET", "Observation/ward-obs").status == 403
    # back to naming no patient: visible to staff again
    ward["subject"] = {"reference": "Group/ward3"}
    assert nurse1("PUT", "Observation/ward-obs", ward).status == 200
    assert "Observation/ward-obs" in ids(nurse3("GET", "Observation?code=8867-4"))
    assert nurse1("DELETE", "Observation/ward-obs").status in (200, 204)
    assert "Observation/ward-obs" not in ids(nurse3("GET", "Observation?_count=50"))
