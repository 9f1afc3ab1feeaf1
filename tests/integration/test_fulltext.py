"""Full-text search over HTTP: _content (every string of a resource) and _text (the
narrative), with words, phrases, OR, AND, parentheses and prefixes, ignoring case and accents;
malformed queries are a 400 naming the query (strict) or left out (lenient), never a 500;
updates and deletes change what is found, and `concerto reindex` rebuilds the full text.
Expected results are worked out by hand from the resources below.
"""
import sqlite3
import urllib.parse

from conftest import assert_outcome, run_cli, sqlite_only

STRICT = {"Prefer": "handling=strict"}
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">{}</div>'

CONDITIONS = {
    "ft-1": {"code": {"text": "Bone metastases"},
             "div": "<p>Bone &amp; <b>liver</b> metastases</p><p>Patient: Zoë Müller</p>"},
    "ft-2": {"code": {"text": "Heart failure"},
             "div": "Chronic heart failure, NYHA&#160;III"},
    "ft-3": {"code": {"text": "Liver cirrhosis"}, "div": None},
}


def condition(cid, spec, tag):
    r = {"resourceType": "Condition", "id": cid, "code": spec["code"],
         "subject": {"reference": "Patient/ft-p"},
         "meta": {"tag": [{"system": "urn:concerto:test", "code": tag}]}}
    if spec["div"]:
        r["text"] = {"status": "generated", "div": DIV.format(spec["div"])}
    return r


def load(client, tag="fulltext"):
    for cid, spec in CONDITIONS.items():
        r = client.put(f"Condition/{cid}", condition(cid, spec, tag))
        assert r.status in (200, 201), r


def ids(client, name, value, headers=None):
    q = urllib.parse.urlencode([(name, value), ("_tag", "urn:concerto:test|fulltext")])
    r = client.get(f"Condition?{q}", headers=headers)
    assert r.status == 200, r
    return sorted(e["resource"]["id"] for e in r.json.get("entry", [])
                  if e["search"]["mode"] == "match")


def test_words_phrases_operators_case_and_accents(client):
    load(client)
    assert ids(client, "_content", "liver") == ["ft-1", "ft-3"]
    assert ids(client, "_text", "liver") == ["ft-1"]
    assert ids(client, "_text", "LIVER") == ["ft-1"]
    assert ids(client, "_text", "zoe muller") == ["ft-1"]
    assert ids(client, "_text", "MÜLL*") == ["ft-1"]
    assert ids(client, "_text", "müll") == []
    assert ids(client, "_content", "cirrhosis OR nyha") == ["ft-2", "ft-3"]
    assert ids(client, "_content", "(bone OR heart) and failure") == ["ft-2"]
    assert ids(client, "_content", '"liver metastases"') == ["ft-1"]
    assert ids(client, "_content", '"metastases liver"') == []
    assert ids(client, "_content", "liver,heart") == ["ft-1", "ft-2", "ft-3"]
    assert ids(client, "_content", "liver heart") == []
    assert ids(client, "_text", "cirrhosis") == []
    # the markup is not text: neither tags nor the namespace are found
    assert ids(client, "_content", "xhtml") == []
    assert ids(client, "_text", "p") == []
    # FTS5 syntax in a term is just text
    assert ids(client, "_content", '"NEAR(liver bone)"') == []
    assert ids(client, "_content", "liver*  AND  NOT") == []
    assert ids(client, "_content", 'heart" OR "x') == []


def test_malformed_queries(client):
    load(client)
    for value, message in [
            ('"', 'cannot read the _content query "?": a quote is not closed'),
            ("AND(", 'cannot read the _content query "AND(": a term is missing before "AND"'),
            ("(liver", 'cannot read the _content query "(liver": a "(" is not closed'),
            ("liver)", 'a ")" has no "("'),
            ("liver OR", "a term is missing at the end"),
            (" ", "a term is missing at the end")]:
        q = urllib.parse.urlencode([("_content", value)])
        r = client.get(f"Condition?{q}", headers=STRICT)
        assert_outcome(r, 400, "invalid", message)
        # lenient: left out, and said so
        r = client.get(f"Condition?{q}&_tag=urn:concerto:test|fulltext")
        assert r.status == 200, r
        entries = r.json["entry"]
        assert sorted(e["resource"]["id"] for e in entries if e["search"]["mode"] == "match") \
            == ["ft-1", "ft-2", "ft-3"]
        outcome = [e for e in entries if e["search"]["mode"] == "outcome"][0]["resource"]
        assert message in outcome["issue"][0]["diagnostics"]
    r = client.get("Condition?_text:exact=liver", headers=STRICT)
    assert_outcome(r, 400, "invalid", 'modifier ":exact" does not apply to "_text"')


@sqlite_only("edits the FTS5 table of a database file")
def test_updates_deletes_and_reindex(make_server, tmp_dir):
    db = tmp_dir / "ft.db"
    srv = make_server(db=db)
    client = srv.client
    load(client)
    r = client.put("Condition/ft-1", condition("ft-1", {"code": {"text": "Fracture"},
                                                        "div": "Closed fracture"}, "fulltext"))
    assert r.status == 200
    assert ids(client, "_content", "liver") == ["ft-3"]
    assert ids(client, "_text", "fracture") == ["ft-1"]
    assert client.delete("Condition/ft-3").status in (200, 204)
    assert ids(client, "_content", "liver") == []
    assert srv.stop() == 0
    # the full text gone (as in a database from before it existed): reindex rebuilds it
    con = sqlite3.connect(db)
    con.execute("DELETE FROM ix_text")
    con.commit()
    con.close()
    srv.start()
    assert ids(srv.client, "_text", "fracture") == []
    assert srv.stop() == 0
    r = run_cli("reindex", "--db", str(db))
    assert r.returncode == 0, r.stderr
    srv.start()
    assert ids(srv.client, "_text", "fracture") == ["ft-1"]
    assert ids(srv.client, "_content", "heart") == ["ft-2"]
