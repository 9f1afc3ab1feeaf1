"""Durability: SIGKILL in the middle of a stream of concurrent creates loses nothing that was
acknowledged, and the database stays intact. Runs three kill/restart rounds on one database."""
import http.client
import threading
import time

import pytest

from conftest import ON_POSTGRES, patient, sqlite_integrity

WRITERS = 16
ROUNDS = 3


def write_until_refused(client, acked, problems, lock, stop, i):
    """Creates Patients until the server goes away; records every acknowledged one."""
    s = client.session(timeout=30)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            body = patient(name=[{"family": f"writer{i}", "given": [f"n{n}"]}])
            try:
                r = s.request("POST", "/fhir/Patient", body)
            except (OSError, http.client.HTTPException):
                return  # the server was killed: this create was not acknowledged
            if r.status == 201:
                with lock:
                    acked[r.json["id"]] = r.body
            elif r.status != 503:  # 503: refused while going down, not acknowledged
                with lock:
                    problems.append(r)
                return
    finally:
        s.close()


@pytest.mark.slow
def test_kill9_loses_no_acknowledged_write(make_server):
    srv = make_server()  # default --synchronous full
    acked = {}
    problems = []
    lock = threading.Lock()
    for round_ in range(ROUNDS):
        stop = threading.Event()
        count_before = len(acked)
        threads = [threading.Thread(target=write_until_refused,
                                    args=(srv.client, acked, problems, lock, stop, i), daemon=True)
                   for i in range(WRITERS)]
        for t in threads:
            t.start()
        # let writes flow, then kill in the middle of them
        deadline = time.monotonic() + 30
        time.sleep(1.5)
        while len(acked) < count_before + 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        srv.kill()
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert not problems, problems[:3]
        assert len(acked) > count_before, f"round {round_}: no create was acknowledged"

        if not ON_POSTGRES:  # the file's own check; PostgreSQL recovers by its WAL
            assert sqlite_integrity(srv.db) == "ok"

        srv.stopped_by_test = False
        srv.start()  # same database
        missing, changed = [], []
        s = srv.client.session()
        try:
            for pid, body in acked.items():
                r = s.request("GET", f"/fhir/Patient/{pid}")
                if r.status != 200:
                    missing.append((pid, r.status))
                elif r.body != body:
                    changed.append(pid)
        finally:
            s.close()
        assert not missing, f"round {round_}: {len(missing)} acknowledged creates lost: " \
                            f"{missing[:5]}"
        assert not changed, f"round {round_}: {len(changed)} resources read back differently"
    # a last clean stop, then the database is still intact
    assert srv.stop() == 0
    assert not srv.sanitizer_report()
    if not ON_POSTGRES:
        assert sqlite_integrity(srv.db) == "ok"
