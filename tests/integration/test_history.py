"""History: instance, type and system; entries; paging that stays stable under writes; _since."""
import datetime
import urllib.parse

from conftest import (INSTANT_RE, assert_nothing_written, assert_outcome, create, observation,
                      patient)


def entry_key(e):
    return (e["fullUrl"], e["response"]["etag"])


def link(bundle, relation):
    urls = [l["url"] for l in bundle.get("link", []) if l["relation"] == relation]
    assert len(urls) <= 1, bundle["link"]
    return urls[0] if urls else None


def assert_newest_first(entries):
    times = [e["response"]["lastModified"] for e in entries]
    assert times == sorted(times, reverse=True), times
    assert len(set(times)) == len(times), "two versions share a lastModified"


def test_instance_history_lists_every_version_newest_first(client):
    body = create(client, patient())
    pid = body["id"]
    v2 = client.put(f"Patient/{pid}", dict(body, active=False)).json
    assert client.delete(f"Patient/{pid}").status == 204
    r = client.put(f"Patient/{pid}", body)
    assert r.status == 201
    v4 = r.json

    r = client.get(f"Patient/{pid}/_history")
    assert r.status == 200, r
    b = r.json
    assert b["resourceType"] == "Bundle"
    assert b["type"] == "history"
    assert b["total"] == 4
    assert link(b, "self").startswith(f"{client.base}/Patient/{pid}/_history")
    entries = b["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    for e in entries:
        assert e["fullUrl"] == f"{client.base}/Patient/{pid}"
        assert INSTANT_RE.match(e["response"]["lastModified"]), e
    assert_newest_first(entries)

    assert entries[0]["resource"] == v4
    assert entries[0]["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    # the recreate after the delete was answered 201
    assert entries[0]["response"]["status"] == "201"

    assert "resource" not in entries[1], "a deletion has no resource"
    assert entries[1]["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert entries[1]["response"]["status"] == "204"

    assert entries[2]["resource"] == v2
    assert entries[2]["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    assert entries[2]["response"]["status"] == "200"
    assert entries[2]["response"]["lastModified"] == v2["meta"]["lastUpdated"]

    assert entries[3]["resource"] == body
    assert entries[3]["request"] == {"method": "POST", "url": "Patient"}
    assert entries[3]["response"]["status"] == "201"
    assert entries[3]["response"]["lastModified"] == body["meta"]["lastUpdated"]


def test_history_of_a_deleted_resource_is_still_available(client):
    pid = create(client, patient())["id"]
    assert client.delete(f"Patient/{pid}").status == 204
    r = client.get(f"Patient/{pid}/_history")
    assert r.status == 200, r
    assert r.json["total"] == 2


def test_history_of_an_unknown_resource_is_404(client):
    assert_outcome(client.get("Patient/nobody-here/_history"), 404, "not-found")
    assert_outcome(client.get("Foo/_history"), 404, "not-found", '"Foo"')


def test_type_and_system_history(client):
    p = create(client, patient())
    o = create(client, observation())
    p2 = create(client, patient())

    t = client.get("Patient/_history")
    assert t.status == 200, t
    assert t.json["type"] == "history"
    entries = t.json["entry"]
    assert all(e["fullUrl"].startswith(f"{client.base}/Patient/") for e in entries)
    assert [e["resource"]["id"] for e in entries[:2]] == [p2["id"], p["id"]]
    assert_newest_first(entries)

    s = client.get("_history")
    assert s.status == 200, s
    entries = s.json["entry"]
    assert [e["fullUrl"] for e in entries[:3]] == [
        f"{client.base}/Patient/{p2['id']}", f"{client.base}/Observation/{o['id']}",
        f"{client.base}/Patient/{p['id']}"]
    assert entries[1]["resource"] == o
    assert entries[1]["request"] == {"method": "POST", "url": "Observation"}
    assert_newest_first(entries)


def walk(client, url, relation, write=None):
    """Follows `relation` links from url; calls write() between page fetches. Returns the
    pages' entries in order of the walk and the last page."""
    pages = []
    while True:
        r = client.get(url)
        assert r.status == 200, r
        page = r.json.get("entry", [])
        assert_newest_first(page)
        pages.append(page)
        url = link(r.json, relation)
        if url is None:
            return pages, r.json
        if write:
            write()


def test_paging_is_stable_while_writes_happen(make_server):
    srv = make_server()
    c = srv.client
    ids = [create(c, patient())["id"] for _ in range(17)]
    for pid in ids[:5]:
        assert c.put(f"Patient/{pid}", patient(id=pid, active=False)).status == 200
    for pid in ids[5:8]:
        assert c.delete(f"Patient/{pid}").status == 204
    for _ in range(4):
        create(c, observation())
    snapshot = c.get("Patient/_history?_count=1000").json["entry"]
    assert len(snapshot) == 25

    extra = []

    def write():
        extra.append(create(c, patient()))

    # older: from the first page along `next`
    first = c.get("Patient/_history?_count=4")
    assert first.status == 200
    assert link(first.json, "previous") is None, "the first page has no previous page"
    pages, last = walk(c, "Patient/_history?_count=4", "next", write)
    assert all(len(p) <= 4 for p in pages)
    forward = [e for p in pages for e in p]
    assert [entry_key(e) for e in forward] == [entry_key(e) for e in snapshot], \
        "walking `next` must visit every version once, newest first, and nothing written later"
    assert link(last, "next") is None
    assert link(last, "previous") is not None

    # newer: from the last page along `previous`, writing between pages
    back_url = link(last, "previous")
    pages, top = walk(c, back_url, "previous", write)
    backward = [entry_key(e) for p in [last["entry"]] + pages for e in p]
    assert len(backward) == len(set(backward)), "a version appeared on two pages"
    everything = c.get("Patient/_history?_count=1000").json["entry"]
    assert sorted(backward) == sorted(entry_key(e) for e in everything), \
        "walking `previous` must visit every version once, including the ones written meanwhile"
    assert link(top, "previous") is None
    assert len(extra) >= 7


def test_system_history_paging(make_server):
    srv = make_server()
    c = srv.client
    for i in range(6):
        create(c, patient())
        create(c, observation())
    pages, last = walk(c, "_history?_count=5", "next", lambda: create(c, observation()))
    assert [len(p) for p in pages] == [5, 5, 2]
    keys = [entry_key(e) for p in pages for e in p]
    assert len(set(keys)) == 12
    assert {k[0].split("/")[-2] for k in keys} == {"Patient", "Observation"}


def test_count_limits_the_page_and_total_counts_everything(client):
    body = create(client, patient())
    pid = body["id"]
    for _ in range(4):
        assert client.put(f"Patient/{pid}", body).status == 200
    r = client.get(f"Patient/{pid}/_history?_count=2")
    assert r.status == 200, r
    assert r.json["total"] == 5
    assert [e["response"]["etag"] for e in r.json["entry"]] == ['W/"5"', 'W/"4"']
    assert link(r.json, "next") is not None
    entries = client.history_entries(f"Patient/{pid}/_history?_count=2")
    assert [e["response"]["etag"] for e in entries] == [f'W/"{n}"' for n in range(5, 0, -1)]


def test_since_filters_by_last_updated(client):
    first = create(client, patient())
    pid = first["id"]
    second = client.put(f"Patient/{pid}", dict(first, active=False)).json
    third = client.put(f"Patient/{pid}", first).json
    since = second["meta"]["lastUpdated"]

    def versions(query):
        r = client.get(f"Patient/{pid}/_history?{query}")
        assert r.status == 200, r
        return [e["response"]["etag"] for e in r.json.get("entry", [])], r.json["total"]

    assert versions("_since=" + since) == (['W/"3"', 'W/"2"'], 2)
    assert versions("_since=" + third["meta"]["lastUpdated"]) == (['W/"3"'], 1)

    # the same instant written with a +02:00 offset (the + encoded as %2B)
    utc = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    plus2 = utc.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    text = plus2.isoformat(timespec="microseconds")
    assert text.endswith("+02:00")
    assert versions("_since=" + urllib.parse.quote(text, safe=":")) == (['W/"3"', 'W/"2"'], 2)
    # and with -05:00
    minus5 = utc.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    assert versions("_since=" + minus5.isoformat(timespec="microseconds")) == \
        (['W/"3"', 'W/"2"'], 2)

    assert versions("_since=2000-01-01") == (['W/"3"', 'W/"2"', 'W/"1"'], 3)
    assert versions("_since=2999-01-01T00:00:00Z") == ([], 0)


def test_since_is_kept_in_paging_links(client):
    first = create(client, patient())
    pid = first["id"]
    for _ in range(5):
        client.put(f"Patient/{pid}", first)
    since = client.get(f"Patient/{pid}/_history/2").json["meta"]["lastUpdated"]
    utc = datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    text = utc.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat(
        timespec="microseconds")
    entries = client.history_entries(
        f"Patient/{pid}/_history?_count=2&_since={urllib.parse.quote(text, safe=':')}")
    assert [e["response"]["etag"] for e in entries] == [f'W/"{n}"' for n in range(6, 1, -1)]


def test_bad_history_parameters_are_400(client):
    pid = create(client, patient())["id"]
    before = client.last_change()
    for bad in ("yesterday", "2024-01-01T10:00:00", "2024-13-01", "2024-01-01T25:00:00Z",
                "2024-01-01T10:00:00+2", ""):
        assert_outcome(client.get(f"Patient/{pid}/_history?_since={urllib.parse.quote(bad)}"),
                       400, "invalid", "_since")
    for bad in ("-1", "abc", "1.5", ""):
        assert_outcome(client.get(f"Patient/_history?_count={bad}"), 400, "invalid", "_count")
    assert_outcome(client.get("_history?_sort=_lastUpdated"), 400, "invalid", '"_sort"')
    assert_outcome(client.get(f"Patient/{pid}/_history?foo=bar"), 400, "invalid", '"foo"')
    assert_outcome(client.get("Patient/_history?_at=2020-01-01"), 400, "invalid", '"_at"')
    assert_nothing_written(client, before)


def test_history_answers_get_only(client):
    r = client.post("Patient/_history", patient())
    assert_outcome(r, 405, "not-supported")
    assert "GET" in r.header("Allow")
    r = client.delete("_history")
    assert_outcome(r, 405, "not-supported")
    assert r.header("Allow") == "GET"
