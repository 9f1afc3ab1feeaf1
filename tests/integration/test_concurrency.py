"""Many clients at once: creates do not collide, and If-Match lets exactly one writer win."""
import threading

from conftest import patient, run_threads

THREADS = 64
PER_THREAD = 50


def test_concurrent_creates(server):
    results = [[] for _ in range(THREADS)]

    def work(i):
        s = server.client.session()
        try:
            for n in range(PER_THREAD):
                body = patient(name=[{"family": f"T{i}", "given": [f"N{n}"]}])
                r = s.request("POST", "/fhir/Patient", body)
                assert r.status == 201, r
                assert r.header("ETag") == 'W/"1"'
                results[i].append((r.json["id"], r.body))
        finally:
            s.close()

    run_threads(THREADS, work)
    created = [item for rs in results for item in rs]
    assert len(created) == THREADS * PER_THREAD
    ids = [pid for pid, _ in created]
    assert len(set(ids)) == len(ids), "two creates got the same id"

    def check(i):
        s = server.client.session()
        try:
            for pid, body in created[i::8]:
                r = s.request("GET", f"/fhir/Patient/{pid}")
                assert r.status == 200, r
                assert r.body == body
                assert r.header("ETag") == 'W/"1"'
        finally:
            s.close()

    run_threads(8, check)
    # every create is in the type history exactly once
    seen = set()
    for e in server.client.history_entries("Patient/_history?_count=1000"):
        seen.add(e["fullUrl"].rsplit("/", 1)[1])
    assert set(ids) <= seen


def test_concurrent_updates_of_one_resource_keep_every_version(server):
    r = server.client.post("Patient", patient())
    pid = r.json["id"]
    writers, each = 16, 10

    def work(i):
        s = server.client.session()
        try:
            for n in range(each):
                r = s.request("PUT", f"/fhir/Patient/{pid}",
                              patient(id=pid, name=[{"family": f"W{i}-{n}"}]))
                assert r.status == 200, r
        finally:
            s.close()

    run_threads(writers, work)
    h = server.client.get(f"Patient/{pid}/_history?_count=1000").json
    assert h["total"] == 1 + writers * each
    versions = [int(e["resource"]["meta"]["versionId"]) for e in h["entry"]]
    assert versions == list(range(1 + writers * each, 0, -1))


def test_if_match_race_has_exactly_one_winner(server):
    r = server.client.post("Patient", patient())
    pid = r.json["id"]
    for version in range(1, 6):
        statuses = [None] * 16
        lock = threading.Lock()

        def work(i):
            body = patient(id=pid, name=[{"family": f"racer {i}"}])
            r = server.client.put(f"Patient/{pid}", body, headers={"If-Match": f'W/"{version}"'})
            with lock:
                statuses[i] = (r.status, r.json["issue"][0]["code"] if r.status == 412
                               else r.json["name"][0]["family"])

        run_threads(16, work)
        codes = sorted(s[0] for s in statuses)
        assert codes == [200] + [412] * 15, statuses
        assert all(s[1] == "conflict" for s in statuses if s[0] == 412)
        winner = next(s[1] for s in statuses if s[0] == 200)
        current = server.client.get(f"Patient/{pid}")
        assert current.header("ETag") == f'W/"{version + 1}"'
        assert current.json["name"][0]["family"] == winner


def test_reads_during_writes_see_whole_versions(server):
    r = server.client.post("Patient", patient(name=[{"family": "v1"}]))
    pid = r.json["id"]
    stop = threading.Event()
    problems = []

    def writer():
        s = server.client.session()
        try:
            for n in range(2, 120):
                r = s.request("PUT", f"/fhir/Patient/{pid}",
                              patient(id=pid, name=[{"family": f"v{n}"}]))
                assert r.status == 200, r
        finally:
            stop.set()
            s.close()

    def reader(i):
        s = server.client.session()
        try:
            while not stop.is_set():
                r = s.request("GET", f"/fhir/Patient/{pid}")
                if r.status != 200:
                    problems.append(r)
                    return
                body = r.json
                etag = r.header("ETag")
                if etag != f'W/"{body["meta"]["versionId"]}"' or \
                        body["name"][0]["family"] != "v" + body["meta"]["versionId"]:
                    problems.append((etag, body))
        finally:
            s.close()

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    writer()
    for t in threads:
        t.join(60)
    assert not problems, problems[:3]
