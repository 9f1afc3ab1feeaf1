"""Graceful shutdown: SIGTERM (or SIGINT) finishes what is in flight, answers completely or not
at all, exits 0 and leaves a clean database."""
import http.client
import signal
import socket
import threading
import time

import pytest

from conftest import ON_POSTGRES, loads, patient, sqlite_integrity


def assert_clean_exit(srv, sig=signal.SIGTERM):
    status = srv.stop(sig)
    assert status == 0, f"exit status {status} after {sig.name}:\n{srv.stderr()[-4000:]}"
    report = srv.sanitizer_report()
    assert not report, report


@pytest.mark.slow
def test_sigterm_while_creates_are_in_flight(make_server):
    srv = make_server()
    acked = {}
    problems = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i):
        s = srv.client.session(timeout=30)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                try:
                    r = s.request("POST", "/fhir/Patient",
                                  patient(name=[{"family": f"w{i}", "given": [str(n)]}]))
                except http.client.IncompleteRead as e:
                    with lock:
                        problems.append(f"incomplete response: {e!r}")
                    return
                except (OSError, http.client.HTTPException):
                    # no response at all (connection closed or refused): not acknowledged
                    if stop.is_set() or not srv.running():
                        return
                    time.sleep(0.01)
                    continue
                if r.status == 201:
                    try:
                        body = loads(r.body)
                        assert body["resourceType"] == "Patient"
                    except Exception as e:  # noqa: BLE001 - recorded
                        with lock:
                            problems.append(f"201 with a broken body: {r.body[:200]!r} ({e})")
                        return
                    with lock:
                        acked[body["id"]] = r.body
                elif r.status == 503:
                    if r.json["issue"][0]["code"] != "transient":
                        problems.append(f"503 without code transient: {r.body!r}")
                else:
                    with lock:
                        problems.append(f"unexpected {r.status}: {r.body[:200]!r}")
                    return
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    time.sleep(1.0)
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.stopped_by_test = True
    srv.proc.send_signal(signal.SIGTERM)
    try:
        status = srv.proc.wait(60)
    except Exception:  # noqa: BLE001
        status = None
    stop.set()
    for t in threads:
        t.join(60)
    assert status == 0, f"exit status {status} after SIGTERM:\n{srv.stderr()[-4000:]}"
    assert not srv.sanitizer_report(), srv.sanitizer_report()
    assert not problems, problems[:5]
    assert acked
    assert "stopped; the database is closed" in srv.stderr()
    if not ON_POSTGRES:
        assert sqlite_integrity(srv.db) == "ok"

    srv.stopped_by_test = False
    srv.start()
    missing = [pid for pid, body in acked.items()
               if srv.client.get(f"Patient/{pid}").body != body]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged creates are missing"


def test_sigterm_with_idle_keep_alive_connections(make_server):
    srv = make_server()
    socks = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        socks.append(s)  # left open and idle
    try:
        assert_clean_exit(srv)
    finally:
        for s in socks:
            s.close()


def test_sigterm_with_a_request_half_sent(make_server):
    srv = make_server()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{")
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # never sends
    try:
        time.sleep(0.2)
        assert_clean_exit(srv)
    finally:
        s.close()
        idle.close()


def test_sigint_stops_cleanly(make_server):
    srv = make_server()
    assert srv.client.post("Patient", patient()).status == 201
    assert_clean_exit(srv, signal.SIGINT)
    assert "received SIGINT" in srv.stderr()


def test_stop_and_restart_keeps_everything(make_server):
    srv = make_server()
    r = srv.client.post("Patient", patient())
    pid = r.json["id"]
    srv.client.put(f"Patient/{pid}", patient(id=pid, active=False))
    srv.client.delete(f"Patient/{pid}")
    srv.restart()
    assert srv.client.get(f"Patient/{pid}").status == 410
    assert srv.client.get(f"Patient/{pid}/_history/1").body == r.body
    assert srv.client.get(f"Patient/{pid}/_history").json["total"] == 3
    # new versions continue the numbering
    r = srv.client.put(f"Patient/{pid}", patient(id=pid))
    assert r.status == 201 and r.header("ETag") == 'W/"4"'
