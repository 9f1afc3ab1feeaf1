"""
The HL7 v2 ADT feed end to end: messages sent over MLLP (by Debian's `mllp_send`, a peer
written elsewhere, and by a socket of our own for what it cannot do) to `concerto serve
--mllp`, each stored before it is processed, applied to the record (Patient, Encounter,
diagnoses, merges) and acknowledged; redelivery, out-of-order arrival, unknown patients,
cancellations, enhanced acknowledgment, bad messages, framing, the admin API and the CLI.
On SQLite and PostgreSQL.
"""
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Server, assert_outcome, fresh_database, ON_POSTGRES, run_cli

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
OID = "2.16.840.1.113883.19.5"
MRN_SYSTEM = "urn:oid:" + OID
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


# ---- messages ----------------------------------------------------------------------------

def msh(event, control, version="2.5.1", extra=""):
    structure = f"ADT_{event}" if version != "2.3" else ""
    return (f"MSH|^~\\&|EPIC|GENHOSP|CONCERTO|CLINIC|20261120101500-0500||ADT^{event}"
            f"{'^' + structure if structure else ''}|{control}|P|{version}{extra}")


def pid(mrn="MRN-500100", name="Rivera^Ana^M", birth="19480312", sex="F", more=""):
    return (f"PID|1||{mrn}^^^GENHOSP&{OID}&ISO^MR||{name}||{birth}|{sex}|||"
            f"12 Elm St^^Springfield^IL^62701^USA^H||^PRN^PH^^^217^5550142{more}")


def pv1(visit="V9001", pclass="I", admit="202611181430", discharge="", disposition="",
        admission_type="E", location="4N^412^B^GENHOSP"):
    fields = [""] * 46
    fields[1] = "1"
    fields[2] = pclass
    fields[3] = location
    fields[4] = admission_type
    fields[7] = "1234^Okafor^Grace^^^Dr"
    fields[19] = visit
    fields[36] = disposition
    fields[44] = admit
    fields[45] = discharge
    return "PV1|" + "|".join(fields[1:]).rstrip("|")


def message(*segments):
    return "\r".join(segments) + "\r"


def a01(control, **kw):
    return message(msh("A01", control), "EVN|A01|20261118143000", pid(**kw.pop("pid", {})),
                   pv1(**kw))


def a03(control, discharge="202611201100", disposition="01", event_time="20261120110000", **kw):
    return message(msh("A03", control), f"EVN|A03|{event_time}", pid(**kw.pop("pid", {})),
                   pv1(discharge=discharge, disposition=disposition, **kw),
                   "DG1|1||I50.9^Heart failure, unspecified^I10||20261118|F|||||||||1",
                   "DG1|2||E11.9^Type 2 diabetes mellitus without complications^I10||"
                   "20261118|A|||||||||2")


# ---- the peer ----------------------------------------------------------------------------

class Mllp:
    """One MLLP connection of our own."""

    def __init__(self, port, timeout=20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(VT + data + FS + CR)

    def receive(self, timeout=20.0):
        """The next framed answer (its text), or None when the peer closed."""
        self.sock.settimeout(timeout)
        while True:
            start = self.buffer.find(VT)
            end = self.buffer.find(FS + CR, start + 1) if start >= 0 else -1
            if start >= 0 and end > start:
                frame = self.buffer[start + 1:end]
                self.buffer = self.buffer[end + 2:]
                return frame.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk

    def exchange(self, text):
        self.send(text)
        return self.receive()


def segments(ack):
    return {s.split("|")[0]: s.split("|") for s in ack.strip("\r").split("\r")}


def msa(ack):
    return segments(ack)["MSA"]


# ---- the server --------------------------------------------------------------------------

def feed_server(make_server, extra=()):
    srv = make_server(args=["--test-clock", "--token-ttl", "86400", *extra], start=False)
    srv.mllp_port_file = srv.dir / "mllp.port"
    srv.args += ["--mllp", "127.0.0.1:0", "--mllp-port-file", str(srv.mllp_port_file)]
    srv.start()
    srv.mllp_port = int(srv.mllp_port_file.read_text())
    return srv


@pytest.fixture
def feed(make_server):
    return feed_server(make_server)


def search(client, query):
    r = client.get(query)
    assert r.status == 200, r
    return [e["resource"] for e in r.json.get("entry", [])]


def one(client, query):
    found = search(client, query)
    assert len(found) == 1, found
    return found[0]


def send_with_mllp_send(port, texts, tmp_path):
    """Sends the messages with Debian's mllp_send (one file, one message after another) and
    returns its output: the answers, one after the other."""
    path = tmp_path / "batch.hl7"
    path.write_bytes(b"".join(VT + t.encode() + FS + CR for t in texts))
    r = subprocess.run(["mllp_send", "--file", str(path), "--port", str(port), "127.0.0.1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


# ---- the tests ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("mllp_send") is None, reason="python3-hl7 is not installed")
def test_admission_and_discharge_through_mllp_send(feed, tmp_path):
    out = send_with_mllp_send(feed.mllp_port, [a01("C-1"), a03("C-2")], tmp_path)
    acks = [a for a in out.replace("\n", "\r").split("MSH|")[1:]]
    assert len(acks) == 2, out
    for control, ack in zip(("C-1", "C-2"), acks):
        fields = segments("MSH|" + ack)
        assert fields["MSA"][1:3] == ["AA", control], ack
        # the ACK answers the message: sender and receiver swapped, same version
        assert fields["MSH"][2:6] == ["CONCERTO", "CLINIC", "EPIC", "GENHOSP"], ack
        assert fields["MSH"][8].startswith("ACK^A0"), ack
        assert fields["MSH"][11] == "2.5.1"

    client = feed.client
    p = one(client, f"Patient?identifier={MRN_SYSTEM}|MRN-500100")
    assert p["name"][0] == {"use": "official", "family": "Rivera", "given": ["Ana", "M"]}
    assert p["birthDate"] == "1948-03-12"
    assert p["gender"] == "female"
    assert p["address"][0]["city"] == "Springfield"
    assert p["telecom"][0]["value"] == "(217) 5550142"
    e = one(client, f"Encounter?subject=Patient/{p['id']}")
    assert e["status"] == "finished"
    assert e["class"]["code"] == "IMP" and e["class"]["system"] == ACT
    assert e["period"] == {"start": "2026-11-18T14:30:00-05:00",
                           "end": "2026-11-20T11:00:00-05:00"}
    codes = {c["system"]: c["code"] for c in e["hospitalization"]["dischargeDisposition"]["coding"]}
    assert codes["http://terminology.hl7.org/CodeSystem/discharge-disposition"] == "home"
    assert e["identifier"][0]["value"] == "V9001"
    assert "412" in e["location"][0]["location"]["display"]
    assert e["priority"]["coding"][0]["code"] == "EM"
    conditions = search(client, f"Condition?encounter=Encounter/{e['id']}")
    assert sorted(c["code"]["coding"][0]["code"] for c in conditions) == ["E11.9", "I50.9"]
    uses = sorted(d["use"]["coding"][0]["code"] for d in e["diagnosis"])
    assert uses == ["AD", "DD"]
    # each message is stored with what became of it
    r = run_cli("hl7", "list", "--db", str(feed.db))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2, r.stdout
    assert all(" processed ADT^A0" in line for line in lines), r.stdout
    assert f"Patient/{p['id']}" in lines[0]


def test_redelivery_is_answered_the_same_and_changes_nothing(feed):
    peer = Mllp(feed.mllp_port)
    first = peer.exchange(a03("R-1"))
    assert msa(first)[1:3] == ["AA", "R-1"]
    client = feed.client
    enc = one(client, "Encounter?identifier=V9001")
    again = peer.exchange(a03("R-1"))
    assert again == first  # byte for byte: the stored ACK
    # on a new connection too
    other = Mllp(feed.mllp_port)
    assert other.exchange(a03("R-1")) == first
    assert one(client, "Encounter?identifier=V9001")["meta"]["versionId"] == enc["meta"]["versionId"]
    assert len(search(client, "Patient?identifier=MRN-500100")) == 1
    r = run_cli("hl7", "list", "--db", str(feed.db))
    assert len(r.stdout.strip().splitlines()) == 1, r.stdout
    peer.close()
    other.close()


def test_discharge_before_its_admission(feed):
    peer = Mllp(feed.mllp_port)
    assert msa(peer.exchange(a03("O-2", location="5W^501^A^GENHOSP")))[1] == "AA"
    client = feed.client
    e = one(client, "Encounter?identifier=V9001")
    assert e["status"] == "finished"
    # the admission arrives late: it does not reopen the stay nor move it back
    assert msa(peer.exchange(a01("O-1", location="4N^412^B^GENHOSP")))[1] == "AA"
    e = one(client, "Encounter?identifier=V9001")
    assert e["status"] == "finished"
    assert e["period"]["end"] == "2026-11-20T11:00:00-05:00"
    assert "501" in e["location"][0]["location"]["display"]
    peer.close()


def test_unknown_patient_is_created_and_known_one_is_updated(feed):
    peer = Mllp(feed.mllp_port)
    client = feed.client
    r = client.post("Patient", {"resourceType": "Patient", "identifier": [
        {"system": MRN_SYSTEM, "value": "MRN-777"}], "name": [{"family": "Old", "given": ["Name"]}],
        "telecom": [{"system": "phone", "value": "555-0000", "use": "mobile"}]})
    assert r.status == 201, r
    known = r.json
    ack = peer.exchange(a01("U-1", pid={"mrn": "MRN-777", "name": "Newname^Jo"}))
    assert msa(ack)[1] == "AA"
    p = client.get(f"Patient/{known['id']}").json
    assert p["name"][0]["family"] == "Newname"
    # what the feed does not send stays: the mobile number a coordinator added
    assert {"system": "phone", "value": "555-0000", "use": "mobile"} in p["telecom"]
    assert msa(peer.exchange(a01("U-2", visit="V2", pid={"mrn": "MRN-NEW"})))[1] == "AA"
    created = one(client, "Patient?identifier=MRN-NEW")
    assert created["active"] is True
    peer.close()


def test_cancellations(feed):
    peer = Mllp(feed.mllp_port)
    client = feed.client
    assert msa(peer.exchange(a01("X-1")))[1] == "AA"
    cancel = message(msh("A11", "X-2"), "EVN|A11|20261118150000", pid(), pv1())
    assert msa(peer.exchange(cancel))[1] == "AA"
    assert one(client, "Encounter?identifier=V9001")["status"] == "cancelled"

    assert msa(peer.exchange(a01("X-3", visit="V2")))[1] == "AA"
    assert msa(peer.exchange(a03("X-4", visit="V2")))[1] == "AA"
    undo = message(msh("A13", "X-5"), "EVN|A13|20261120120000", pid(), pv1(visit="V2"))
    assert msa(peer.exchange(undo))[1] == "AA"
    e = one(client, "Encounter?identifier=V2")
    assert e["status"] == "in-progress"
    assert "end" not in e["period"]
    assert "dischargeDisposition" not in e.get("hospitalization", {})
    peer.close()


def test_merge(feed):
    peer = Mllp(feed.mllp_port)
    client = feed.client
    assert msa(peer.exchange(a01("M-1", visit="V1", pid={"mrn": "MRN-OLD"})))[1] == "AA"
    assert msa(peer.exchange(a01("M-2", visit="V2", pid={"mrn": "MRN-KEEP"})))[1] == "AA"
    old = one(client, "Patient?identifier=MRN-OLD")
    keep = one(client, "Patient?identifier=MRN-KEEP")
    merge = message(msh("A40", "M-3"), "EVN|A40|20261119090000", pid(mrn="MRN-KEEP"),
                    f"MRG|MRN-OLD^^^GENHOSP&{OID}&ISO^MR")
    assert msa(peer.exchange(merge))[1] == "AA"
    old = client.get(f"Patient/{old['id']}").json
    keep = client.get(f"Patient/{keep['id']}").json
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{keep['id']}"}, "type": "replaced-by"}]
    assert keep["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    # both care teams see it: a flag on each record
    flags = {f["subject"]["reference"]: f["code"]["text"] for f in search(client, "Flag")}
    assert f"merged Patient/{old['id']} into this record" in flags[f"Patient/{keep['id']}"]
    assert f"into Patient/{keep['id']}" in flags[f"Patient/{old['id']}"]
    # the same merge again changes nothing
    assert msa(peer.exchange(merge.replace("M-3", "M-3b")))[1] == "AA"
    assert len(search(client, "Flag")) == 2
    assert client.get(f"Patient/{keep['id']}").json["meta"]["versionId"] == keep["meta"]["versionId"]
    # a later message with the old number reaches the surviving record
    assert msa(peer.exchange(a03("M-4", visit="V1", pid={"mrn": "MRN-OLD"})))[1] == "AA"
    e = one(client, "Encounter?identifier=V1")
    assert e["subject"]["reference"] == f"Patient/{keep['id']}"
    peer.close()


def test_bad_messages_are_refused_precisely_and_kept(feed):
    peer = Mllp(feed.mllp_port)
    # not HL7 at all: rejected, and the connection keeps working
    ack = peer.exchange("hello there")
    assert msa(ack)[1] == "AR", ack
    # a version not read here
    ack = peer.exchange(message(msh("A01", "B-1", version="2.2"), pid(), pv1()))
    assert msa(ack)[1:3] == ["AR", "B-1"]
    assert segments(ack)["ERR"][3].startswith("203^"), ack
    # a message type not read here
    oru = message("MSH|^~\\&|LAB|GENHOSP|CONCERTO|CLINIC|20261120||ORU^R01^ORU_R01|B-2|P|2.5.1",
                  pid())
    ack = peer.exchange(oru)
    assert msa(ack)[1:3] == ["AR", "B-2"] and segments(ack)["ERR"][3].startswith("200^"), ack
    # no patient identifier: the application refuses it, saying where
    ack = peer.exchange(message(msh("A01", "B-3"), "PID|1||||Nobody^Jo", pv1()))
    err = segments(ack)["ERR"]
    assert msa(ack)[1:3] == ["AE", "B-3"], ack
    assert err[2] == "PID^3^3" or err[2].startswith("PID^"), ack
    assert err[3].startswith("101^"), ack
    assert "PID-3" in err[8], ack
    # an unreadable admission time
    ack = peer.exchange(a01("B-4", admit="2026-11-18"))
    assert msa(ack)[1] == "AE" and segments(ack)["ERR"][3].startswith("102^"), ack
    assert "PV1-44" in segments(ack)["ERR"][8]
    # nothing of the refused messages reached the record
    assert search(feed.client, "Encounter") == []
    # an old version: the error in ERR-1 and MSA-3
    old = message(msh("A01", "B-5", version="2.3"), "PID|1||||Nobody^Jo", pv1())
    ack = peer.exchange(old)
    assert msa(ack)[1] == "AE" and "PID-3" in msa(ack)[3], ack
    r = run_cli("hl7", "list", "--db", str(feed.db), "--status", "rejected")
    assert len(r.stdout.strip().splitlines()) == 3, r.stdout
    r = run_cli("hl7", "list", "--db", str(feed.db), "--status", "error")
    assert len(r.stdout.strip().splitlines()) == 3, r.stdout
    assert "PID-3 has no patient identifier" in r.stdout
    peer.close()


def test_enhanced_acknowledgment(feed):
    peer = Mllp(feed.mllp_port)
    # accept acknowledgment always: CA once stored
    ack = peer.exchange(message(msh("A01", "E-1", extra="|||AL|NE"), pid(), pv1()))
    assert msa(ack)[1:3] == ["CA", "E-1"], ack
    # application acknowledgment only
    ack = peer.exchange(message(msh("A03", "E-2", extra="|||NE|AL"), pid(),
                                pv1(discharge="202611201100")))
    assert msa(ack)[1:3] == ["AA", "E-2"], ack
    # rejected: CR
    ack = peer.exchange(message(msh("A01", "E-3", version="2.1", extra="|||AL|NE"), pid(), pv1()))
    assert msa(ack)[1] == "CR", ack
    # errors only, and it went well: no answer at all; the connection goes on
    peer.send(message(msh("A08", "E-4", extra="|||ER|ER"), pid(), pv1()))
    with pytest.raises(socket.timeout):
        peer.receive(timeout=1.0)
    ack = peer.exchange(message(msh("A08", "E-5", extra="|||ER|ER"), "PID|1", pv1()))
    assert msa(ack)[1:3] == ["AE", "E-5"], ack  # an error: the application acknowledgment
    peer.close()


def test_framing_garbage_and_size(make_server):
    srv = feed_server(make_server, ["--mllp-max-message", "4096", "--mllp-idle", "1"])
    peer = Mllp(srv.mllp_port)
    data = VT + a01("F-1").encode() + FS + CR
    for b in data:  # a byte at a time
        peer.send_raw(bytes([b]))
    assert msa(peer.receive())[1:3] == ["AA", "F-1"]
    # two frames in one write, with garbage before
    peer.send_raw(b"noise" + VT + a01("F-2").encode() + FS + CR + VT + a01("F-3").encode() + FS + CR)
    assert msa(peer.receive())[2] == "F-2"
    assert msa(peer.receive())[2] == "F-3"
    # over the size limit: refused, kept in part, and the connection goes on
    big = message(msh("A08", "F-4"), pid(), pv1(), *["ZXX|" + "x" * 200] * 40)
    ack = peer.exchange(big)
    assert msa(ack)[1:3] == ["AR", "F-4"], ack
    assert msa(peer.exchange(a01("F-5")))[1] == "AA"
    # a peer that vanishes mid-frame loses nothing of the others
    half = Mllp(srv.mllp_port)
    half.send_raw(VT + a01("F-6").encode()[:40])
    half.close()
    assert msa(peer.exchange(a01("F-7")))[1] == "AA"
    # an idle connection is closed
    idle = Mllp(srv.mllp_port)
    time.sleep(2.5)
    assert idle.receive(timeout=5) is None
    r = run_cli("hl7", "list", "--db", str(srv.db))
    controls = [line.split()[5] for line in r.stdout.strip().splitlines()]
    assert "F-6" not in controls and "F-4" in controls
    peer.close()


def test_latin1_message(feed):
    peer = Mllp(feed.mllp_port)
    text = message(msh("A28", "L-1", extra="||||||8859/1"), pid(mrn="MRN-LAT",
                   name="M\xfcller^J\xf6rg"))
    peer.send(text.encode("latin-1"))
    assert msa(peer.receive())[1] == "AA"
    p = one(feed.client, "Patient?identifier=MRN-LAT")
    assert p["name"][0]["family"] == "M\u00fcller"
    assert p["name"][0]["given"] == ["J\u00f6rg"]
    # stored as it came, byte for byte
    r = run_cli("hl7", "show", "--db", str(feed.db), "1")
    assert r.returncode == 0 and "L-1" in r.stdout, r.stdout
    peer.close()


def test_reprocess_after_a_fix(feed):
    peer = Mllp(feed.mllp_port)
    client = feed.client
    assert msa(peer.exchange(a01("P-1", visit="V5", pid={"mrn": "MRN-A"})))[1] == "AA"
    # the hospital reuses the visit number for another patient: refused
    ack = peer.exchange(a03("P-2", visit="V5", pid={"mrn": "MRN-B"}))
    assert msa(ack)[1] == "AE" and "V5" in segments(ack)["ERR"][8], ack
    # an admin corrects the record (the visit was indeed MRN-B's), then reprocesses
    b = client.post("Patient", {"resourceType": "Patient", "identifier": [
        {"system": MRN_SYSTEM, "value": "MRN-B"}]}).json
    enc = one(client, "Encounter?identifier=V5")
    enc["subject"] = {"reference": f"Patient/{b['id']}"}
    assert client.put(f"Encounter/{enc['id']}", enc).status == 200
    r = run_cli("hl7", "list", "--db", str(feed.db), "--status", "error")
    msg_id = r.stdout.split()[0]
    r = run_cli("hl7", "reprocess", "--db", str(feed.db), msg_id)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " processed " in r.stdout
    assert one(client, "Encounter?identifier=V5")["status"] == "finished"
    # a redelivery now gets the new answer
    assert msa(peer.exchange(a03("P-2", visit="V5", pid={"mrn": "MRN-B"})))[1] == "AA"
    r = run_cli("hl7", "reprocess", "--db", str(feed.db), "999999")
    assert r.returncode == 1 and "no HL7 message 999999" in r.stderr
    peer.close()


def test_stored_before_processing_survives_a_crash(make_server):
    """A message is acknowledged only once stored and applied; a server killed mid-flight
    loses nothing it acknowledged."""
    srv = feed_server(make_server)
    peer = Mllp(srv.mllp_port)
    for i in range(20):
        assert msa(peer.exchange(a01(f"K-{i}", visit=f"K{i}")))[1] == "AA"
    srv.kill()
    srv.stopped_by_test = True
    srv.stopped_by_test = False
    srv.start()
    assert len(search(srv.client, "Encounter?_count=100")) == 20
    r = run_cli("hl7", "list", "--db", str(srv.db), "--status", "processed")
    assert len(r.stdout.strip().splitlines()) == 20


DATA = Path(__file__).resolve().parent.parent / "data" / "hl7"
# a storyline through every golden message: a person, an admission in three versions of the
# standard and with declared delimiters, an update, a discharge and its cancellation, the
# admission's cancellation, an emergency registration, a merge
STORY = ["adt_a28_v28", "adt_a01_v251", "adt_a01_v23", "adt_a08_v251", "adt_a03_v251",
         "adt_a13_v251", "adt_a11_v251", "adt_a04_v28", "adt_a01_v28_truncation",
         "adt_a01_custom_delims", "adt_a40_v251"]
GOODHEALTH = "urn:concerto:hl7:authority:GOODHEALTH"


@pytest.mark.skipif(shutil.which("mllp_send") is None, reason="python3-hl7 is not installed")
def test_every_golden_message_through_mllp_send(feed, tmp_path):
    texts = [(DATA / f"{name}.hl7").read_bytes().decode() for name in STORY]
    out = send_with_mllp_send(feed.mllp_port, texts, tmp_path)
    answers = [("MSH" + a) for a in out.replace("\n", "\r").split("MSH")[1:]]
    assert len(answers) == len(STORY), out
    for name, text, answer in zip(STORY, texts, answers):
        fields = text.split("\r")[0]
        control = fields.split(fields[3])[9]
        # each asks for an accept acknowledgment (MSH-15 AL): CA once stored; declared
        # delimiters are answered in kind
        sep = answer[3]
        msa_fields = [s for s in answer.split("\r") if s.startswith("MSA")][0].split(sep)
        assert msa_fields[1:3] == ["CA", control], (name, answer)
    client = feed.client
    # A28: a person without a visit
    mary = one(client, f"Patient?identifier={GOODHEALTH}|445566")
    assert mary["name"][0]["family"] == "O'Neil"
    assert {"system": "email", "value": "mary@example.org", "use": "home"} in mary["telecom"] \
        or any(t["system"] == "email" for t in mary["telecom"])
    assert search(client, f"Encounter?subject=Patient/{mary['id']}") == []
    # the storyline of visit V1001: admitted, updated, discharged, discharge cancelled, then
    # the admission cancelled
    peter = one(client, f"Patient?identifier={GOODHEALTH}|123456")
    assert peter["name"][0]["family"] == "Chalmers"
    assert any(n.get("use") == "nickname" and n["given"] == ["Pete"] for n in peter["name"])
    # the address of the newest message that carries one (the A03's)
    assert [a["line"] for a in peter["address"]] == [["534 Erewhon St", "Apt 2"]]
    # the Social Security number is neither kept nor used
    assert all("987-65-4320" != i["value"] for i in peter["identifier"])
    # the merge (A40): the prior number now reaches Peter's record too
    assert any(i["value"] == "654321" and i.get("use") == "old" for i in peter["identifier"])
    v1001 = one(client, f"Encounter?identifier={GOODHEALTH}|V1001")
    assert v1001["status"] == "cancelled"
    assert "end" not in v1001["period"]  # the discharge was cancelled before
    assert len(search(client, f"Condition?encounter=Encounter/{v1001['id']}")) == 3
    # the emergency registration
    ed = one(client, f"Encounter?identifier={GOODHEALTH}|V2001")
    assert ed["class"]["code"] == "EMER" and ed["status"] == "in-progress"
    # declared delimiters (MSH#$*!@): read as declared
    smith = one(client, f"Patient?identifier={GOODHEALTH}|334455")
    # "Smith!T!Sons": an escaped sub-component separator, which is @ in that message
    assert smith["name"][0]["family"] == "Smith@Sons" and smith["name"][0]["given"] == ["Anna"]
    r = run_cli("hl7", "list", "--db", str(feed.db), "--status", "processed")
    assert len(r.stdout.strip().splitlines()) == len(STORY), r.stdout + r.stderr


def test_admin_api(make_server):
    from test_access import PASSWORD, sign_in
    srv = make_server(args=["--test-clock", "--token-ttl", "86400"], start=False)
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.mllp_port_file = srv.dir / "mllp.port"
    srv.args += ["--secrets-key", str(key), "--mllp", "127.0.0.1:0", "--mllp-port-file",
                 str(srv.mllp_port_file)]
    db = str(srv.db)
    assert run_cli("init", "--db", db).returncode == 0
    people = srv.dir / "people.ndjson"
    people.write_text(json.dumps({"resourceType": "Practitioner", "id": "p1"}) + "\n")
    assert run_cli("import", "--db", db, str(people)).returncode == 0
    for name, role, *link in (("admin1", "admin"), ("nurse1", "nurse", "--practitioner", "p1")):
        r = run_cli("user", "add", "--db", db, "--username", name, "--role", role, *link,
                    "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                "openid fhirUser user/*.cruds", "--redirect-uri", "http://127.0.0.1:9/callback")
    assert r.returncode == 0, r.stderr
    srv.start()
    port = int(srv.mllp_port_file.read_text())
    admin = sign_in(srv, "admin1", "openid fhirUser user/*.cruds")["access_token"]
    nurse = sign_in(srv, "nurse1", "openid fhirUser user/*.cruds")["access_token"]

    def get(url, token=admin, method="GET"):
        return srv.client.request(method, url, auth=token)

    peer = Mllp(port)
    assert msa(peer.exchange(a01("A-1")))[1] == "AA"
    assert msa(peer.exchange(message(msh("A01", "A-2"), "PID|1", pv1())))[1] == "AE"
    assert msa(peer.exchange(message(msh("A01", "A-3", version="2.1"), pid(), pv1())))[1] == "AR"
    peer.close()

    r = get("/admin/hl7")
    assert r.status == 200, r
    assert r.json["messages"] == {"received": 0, "processed": 1, "error": 1, "rejected": 1}
    assert r.json["listener"]["port"] == port and r.json["listener"]["messages"] == 3
    r = get("/admin/hl7/messages")
    assert [m["controlId"] for m in r.json["messages"]] == ["A-3", "A-2", "A-1"]
    assert "message" not in r.json["messages"][0]
    r = get("/admin/hl7/messages?status=error")
    (error,) = r.json["messages"]
    assert error["controlId"] == "A-2" and "PID-3" in error["reason"]
    r = get("/admin/hl7/messages?type=ADT^A01&count=1")
    assert len(r.json["messages"]) == 1 and "before=" in r.json["next"]
    assert get(r.json["next"]).json["messages"][0]["controlId"] == "A-2"
    r = get(f"/admin/hl7/messages/{error['id']}")
    assert r.json["message"].startswith("MSH|^~\\&|EPIC") and "MSA|AE|A-2" in r.json["ack"]
    r = get(f"/admin/hl7/messages/{error['id']}/reprocess", method="POST")
    assert r.status == 200 and r.json["status"] == "error" and r.json["attempts"] == 2, r
    rejected = get("/admin/hl7/messages?status=rejected").json["messages"][0]
    assert_outcome(get(f"/admin/hl7/messages/{rejected['id']}/reprocess", method="POST"), 409,
                   "conflict", "cannot be processed")
    assert_outcome(get("/admin/hl7/messages/999999"), 404, "not-found")
    assert_outcome(get("/admin/hl7/messages?status=odd"), 400, "invalid", "status must be")
    assert_outcome(get("/admin/hl7/messages?colour=red"), 400, "invalid", "unknown parameter")
    assert_outcome(get("/admin/hl7/messages/1", method="DELETE"), 405, "not-supported")
    assert_outcome(get("/admin/hl7", token=nurse), 403, "forbidden", "only administrators")
    assert_outcome(srv.client.request("GET", "/admin/hl7", auth=None), 401, "login")


def test_every_other_event_step_by_step(feed):
    """A05, A04, A06, A02, A12, A07, A31 of one stay, as Concerto applies each."""
    peer = Mllp(feed.mllp_port)
    client = feed.client

    def send(name):
        ack = peer.exchange((DATA / f"{name}.hl7").read_bytes().decode())
        assert msa(ack)[1] == "AA", (name, ack)
        return one(client, f"Encounter?identifier={GOODHEALTH}|V5001")

    e = send("adt_a05_v251")  # pre-admission
    assert e["status"] == "planned" and e["class"]["code"] == "PRENC"
    assert e["period"]["start"] == "2026-03-18T07:00:00-05:00"
    e = send("adt_a04_outpatient_v251")  # registered for outpatient surgery
    assert e["status"] == "in-progress" and e["class"]["code"] == "AMB"
    e = send("adt_a06_v251")  # outpatient to inpatient
    assert e["status"] == "in-progress" and e["class"]["code"] == "IMP"
    assert "3EAST" in e["location"][0]["location"]["display"]
    e = send("adt_a02_v251")  # transfer to intensive care
    assert "ICU" in e["location"][0]["location"]["display"]
    e = send("adt_a12_v251")  # the transfer cancelled: back where it was
    assert "3EAST" in e["location"][0]["location"]["display"]
    assert e["class"]["code"] == "IMP" and e["status"] == "in-progress"
    e = send("adt_a07_v251")  # inpatient to outpatient
    assert e["class"]["code"] == "AMB"
    rosa = one(client, f"Patient?identifier={GOODHEALTH}|556677")
    assert rosa["address"][0]["line"] == ["22 Oak Ave"]
    ack = peer.exchange((DATA / "adt_a31_v251.hl7").read_bytes().decode())
    assert msa(ack)[1] == "AA", ack
    rosa = one(client, f"Patient?identifier={GOODHEALTH}|556677")
    assert rosa["address"][0]["line"] == ["9 Pine Ct"]
    assert {"system": "phone", "value": "(217) 5550999", "use": "home"} in rosa["telecom"]
    # A31 (update person) touches no visit
    assert one(client, f"Encounter?identifier={GOODHEALTH}|V5001")["meta"]["versionId"] == \
        e["meta"]["versionId"]
    peer.close()
