"""The built-in protocols (data/protocols): `concerto init` loads the PlanDefinitions and
ActivityDefinitions a database does not hold yet, and leaves alone what an administrator
changed, retired or deleted."""
from conftest import ON_POSTGRES, Server, fresh_database, run_cli

# protocol: (actions, ActivityDefinitions; Questionnaires)
PROTOCOLS = {"new-patient-intake": (7, 7), "periodic-care-plan-review": (1, 1),
             "specialist-referral": (4, 4), "missed-appointment-outreach": (1, 1),
             "ed-visit-follow-up": (1, 1), "routine-follow-up": (2, 2),
             "hospital-admission": (5, 3), "transitional-care": (8, 8)}
QUESTIONNAIRES = ["post-discharge-call"]
BASE = "http://concerto.dev/fhir/"


def init(db, *args):
    r = run_cli("init", "--db", db, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def new_db(tmp_path):
    return fresh_database() if ON_POSTGRES else str(tmp_path / "p.db")


def test_init_loads_each_protocol_once_and_keeps_changes(tmp_path, make_server):
    db = new_db(tmp_path)
    total = len(PROTOCOLS) + sum(n for _, n in PROTOCOLS.values()) + len(QUESTIONNAIRES)
    assert f"built-in protocols: {total} definitions loaded, 0 already there" in init(db)
    srv = make_server(db=db)
    c = srv.client
    plans = c.get("PlanDefinition?_count=50").json
    assert sorted(e["resource"]["id"] for e in plans["entry"]) == sorted(PROTOCOLS)
    for name, (nactions, nactivities) in PROTOCOLS.items():
        plan = c.get(f"PlanDefinition/{name}").json
        assert plan["url"] == BASE + "PlanDefinition/" + name and plan["status"] == "active"
        assert len(plan["action"]) == nactions
        assert len({a["definitionCanonical"] for a in plan["action"]}) == nactivities
        for action in plan["action"]:
            url, version = action["definitionCanonical"].split("|")
            found = c.get(f"ActivityDefinition?url={url}").json
            assert len(found["entry"]) == 1, url
            activity = found["entry"][0]["resource"]
            assert activity["version"] == version
            if activity["kind"] == "Task":  # a Task has a deadline; a notice goes at once
                assert any(e["url"] == BASE + "StructureDefinition/due"
                           for e in activity["extension"]), url
            else:
                assert activity["kind"] == "CommunicationRequest", url
    for name in QUESTIONNAIRES:
        q = c.get(f"Questionnaire/{name}").json
        assert q["url"] == BASE + "Questionnaire/" + name and q["status"] == "active"
    # the deadlines of transitional care management
    contact = c.get("ActivityDefinition/tcm-interactive-contact").json
    assert {"url": BASE + "StructureDefinition/due", "valueString": "2 business days"} \
        in contact["extension"]
    assert {"url": BASE + "StructureDefinition/due-from",
            "valueString": "iif(period.end.exists(), period.end, now())"} in contact["extension"]
    # the deadlines the domain rules set
    referral = c.get("ActivityDefinition/referral-confirm-receipt").json
    assert {"url": BASE + "StructureDefinition/due", "valueString": "2 business days"} \
        in referral["extension"]
    noshow = c.get("ActivityDefinition/noshow-outreach").json
    assert {"url": BASE + "StructureDefinition/due", "valueString": "1 business day"} \
        in noshow["extension"]
    ed = c.get("ActivityDefinition/ed-follow-up").json
    assert {"url": BASE + "StructureDefinition/due", "valueString": "7 days"} in ed["extension"]
    # an administrator retires one protocol and deletes another activity
    intake = c.get("PlanDefinition/new-patient-intake").json
    intake["status"] = "retired"
    intake.pop("meta")
    assert c.put("PlanDefinition/new-patient-intake", intake).status == 200
    assert c.delete("ActivityDefinition/ed-follow-up").status in (200, 204)
    srv.stop()
    assert f"0 definitions loaded, {total} already there" in init(db)
    srv.start()
    assert srv.client.get("PlanDefinition/new-patient-intake").json["status"] == "retired"
    assert srv.client.get("ActivityDefinition/ed-follow-up").status == 410


def test_no_protocols_leaves_the_database_empty(tmp_path):
    db = new_db(tmp_path)
    out = init(db, "--no-protocols")
    assert "built-in protocols" not in out
    srv = Server(db=db).start()
    try:
        assert "entry" not in srv.client.get("PlanDefinition").json
    finally:
        srv.stop()
        srv.cleanup()
