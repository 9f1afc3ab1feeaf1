"""
A hospital stay that arrives over MLLP starts the transition workflow: the admission (A01)
tells the coordinator and the primary care physician and starts discharge planning; the
discharge (A03) the day before Thanksgiving starts transitional care management with exact
deadlines; its cancellation (A13) cancels that work, and the discharge sent again starts it
anew; `$tcm` reports the episode. On SQLite and PostgreSQL.
"""
from conftest import create
from test_hl7_feed import Mllp, message, msa
from test_tcm import report
from test_transitions import (COORDINATION, ROLES, drained, due, initialised_server, made,
                              one_each, owner, set_clock)

OID = "2.16.840.1.113883.19.5"
MRN_SYSTEM = "urn:oid:" + OID


def adt(event, control, when, discharge="", disposition=""):
    fields = [""] * 46
    fields[1], fields[2], fields[3], fields[4] = "1", "I", "4N^412^B^GENHOSP", "R"
    fields[19] = "V-TG-1"
    fields[36], fields[44], fields[45] = disposition, "203111240800", discharge
    pv1 = "PV1|" + "|".join(fields[1:]).rstrip("|")
    return message(
        f"MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|{when}-0500||ADT^{event}^ADT_A01|{control}|P|2.5.1",
        f"EVN|{event}|{when}-0500",
        f"PID|1||MRN-TG^^^GENHOSP&{OID}&ISO^MR||Rivera^Ana||19480312|F",
        pv1,
        "DG1|1||I50.9^Heart failure, unspecified^I10||20311124|A")


def test_discharge_over_mllp_starts_transitional_care(make_server, tmp_path):
    port_file = tmp_path / "mllp.port"
    srv = initialised_server(make_server, extra=["--mllp", "127.0.0.1:0", "--mllp-port-file",
                                                 str(port_file)])
    c = srv.client
    pid = create(c, {"resourceType": "Patient", "identifier": [
        {"system": MRN_SYSTEM, "value": "MRN-TG"}], "name": [{"family": "Rivera"}]})["id"]
    people = {role: create(c, {"resourceType": "Practitioner",
                               "name": [{"family": role.title()}]})["id"]
              for role in ("coordinator", "pcp", "nurse")}
    create(c, {"resourceType": "CareTeam", "status": "active", "category": COORDINATION,
               "subject": {"reference": f"Patient/{pid}"},
               "participant": [{"role": [ROLES[role]],
                                "member": {"reference": f"Practitioner/{who}"}}
                               for role, who in people.items()]})
    coordinator, pcp, nurse = (f"Practitioner/{people[r]}" for r in ("coordinator", "pcp", "nurse"))
    peer = Mllp(int(port_file.read_text()))

    # admitted on Monday 24 November 2031 at 8:00
    set_clock(srv, "2031-11-24T10:00:00-05:00")
    assert msa(peer.exchange(adt("A01", "TG-1", "20311124100000")))[1] == "AA"
    drained(srv)
    notices = one_each(made(c, pid, "hospital-admission", "CommunicationRequest"))
    assert notices["notify-coordinator"]["recipient"] == [{"reference": coordinator}]
    assert notices["notify-pcp"]["recipient"] == [{"reference": pcp}]
    [planning] = made(c, pid, "hospital-admission")["discharge-planning"]
    assert owner(planning) == coordinator
    assert due(planning) == "2031-11-25T23:59:59.999-05:00"

    # discharged home on Wednesday 26 November at 15:00, the day before Thanksgiving: a stay
    # of two days, a routine admission, one diagnosis: moderate complexity
    set_clock(srv, "2031-11-26T15:20:00-05:00")
    discharge = adt("A03", "TG-2", "20311126152000", discharge="203111261500", disposition="01")
    assert msa(peer.exchange(discharge))[1] == "AA"
    drained(srv)
    [enc] = [e for e in c.get(f"Encounter?subject=Patient/{pid}").json["entry"]]
    enc = enc["resource"]
    assert enc["period"]["end"] == "2031-11-26T15:00:00-05:00"
    tcm = one_each(made(c, pid, "transitional-care"))
    assert sorted(tcm) == ["education", "face-to-face-14", "interactive-contact",
                           "medication-reconciliation-14", "post-discharge-call"]
    # Thursday is Thanksgiving: Friday and Monday are the two business days
    assert due(tcm["interactive-contact"]) == "2031-12-01T23:59:59.999-05:00"
    assert due(tcm["post-discharge-call"]) == "2031-12-01T23:59:59.999-05:00"
    assert due(tcm["face-to-face-14"]) == "2031-12-10T15:00:00.000-05:00"
    assert due(tcm["medication-reconciliation-14"]) == "2031-12-10T15:00:00.000-05:00"
    assert due(tcm["education"]) == "2031-12-03T15:00:00.000-05:00"
    assert owner(tcm["interactive-contact"]) == coordinator
    assert owner(tcm["medication-reconciliation-14"]) == nurse
    for task in tcm.values():
        assert task["focus"] == {"reference": f"Encounter/{enc['id']}"}

    # the TCM report: the contact pending until the end of Monday
    tcm_report = report(c.get(f"Encounter/{enc['id']}/$tcm"))
    contact = tcm_report["interactive-contact"]
    assert contact["status"] == "pending", tcm_report
    assert contact["deadline"] == "2031-12-01T23:59:59.999-05:00"
    assert tcm_report["complexity"] == "moderate"

    # the discharge is cancelled (A13): its work is cancelled, discharge planning goes on
    set_clock(srv, "2031-11-26T17:00:00-05:00")
    undo = message(
        "MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|20311126170000-0500||ADT^A13^ADT_A01|TG-3|P|2.5.1",
        "EVN|A13|20311126170000-0500",
        f"PID|1||MRN-TG^^^GENHOSP&{OID}&ISO^MR||Rivera^Ana||19480312|F",
        "PV1|1|I|4N^412^B^GENHOSP|R|||||||||||||||V-TG-1")
    assert msa(peer.exchange(undo))[1] == "AA"
    drained(srv)
    for task in one_each(made(c, pid, "transitional-care")).values():
        assert c.get(f"Task/{task['id']}").json["status"] == "cancelled"
    assert c.get(f"Task/{planning['id']}").json["status"] == "ready"

    # discharged again on Friday 28 November: the work starts anew from that discharge
    set_clock(srv, "2031-11-28T11:20:00-05:00")
    again = adt("A03", "TG-4", "20311128112000", discharge="203111281100", disposition="01")
    assert msa(peer.exchange(again))[1] == "AA"
    drained(srv)
    fresh = [t for t in made(c, pid, "transitional-care")["interactive-contact"]
             if t["status"] == "ready"]
    assert len(fresh) == 1
    assert due(fresh[0]) == "2031-12-02T23:59:59.999-05:00"  # Monday, Tuesday
    peer.close()
