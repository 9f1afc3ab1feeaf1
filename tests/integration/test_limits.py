"""Limits and hostile clients: oversized bodies, slow or vanishing clients, many idle
connections. The server refuses what is too large with 413 and keeps serving everyone else."""
import socket
import struct
import threading
import time

from conftest import (FHIR_JSON, assert_nothing_written, assert_outcome, dumps, parse_raw_response,
                      patient, raw_request)

MAX_BODY = 65536
SERVER_ARGS = ["--max-body", str(MAX_BODY)]


def body_of_size(n):
    """A valid Patient serialized to exactly n bytes."""
    base = dumps(patient(name=[{"family": ""}]))
    pad = n - len(base)
    assert pad > 0
    return base.replace('"family":""', '"family":"' + "x" * pad + '"').encode()


def post_request(server, length, extra_headers=b""):
    return (b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + FHIR_JSON.encode()
            + b"\r\nContent-Length: %d\r\n" % length + server.auth_line() + extra_headers
            + b"\r\n")


def read_response(sock, timeout=10.0):
    """Reads one response from sock; returns (status, headers, body) or None if the connection
    closed or timed out first."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parsed = parse_raw_response(data)
        if parsed:
            return parsed
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return parse_raw_response(data)


def rst_close(sock):
    """Closes with a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_body_at_the_limit_is_accepted(client):
    r = client.post("Patient", body_of_size(MAX_BODY), headers={"Content-Type": FHIR_JSON})
    assert r.status == 201, r


def test_body_over_the_limit_is_413(client):
    before = client.last_change()
    r = client.post("Patient", body_of_size(MAX_BODY + 1), headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 413, "too-costly", str(MAX_BODY))
    r = client.put("Patient/too-big", body_of_size(MAX_BODY * 10).replace(
        b'"resourceType":"Patient"', b'"resourceType":"Patient","id":"too-big"'),
        headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 413, "too-costly", "max-body")
    assert_nothing_written(client, before)


def test_chunked_body_over_the_limit_is_413(server):
    before = server.client.last_change()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  + FHIR_JSON.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
                  + server.auth_line() + b"\r\n")
        data = body_of_size(MAX_BODY + 5000)
        for i in range(0, len(data), 7000):
            piece = data[i:i + 7000]
            s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        status, headers, body = read_response(s)
    finally:
        s.close()
    assert status == 413
    assert b"too-costly" in body
    assert_nothing_written(server.client, before)


def test_a_huge_body_is_refused_without_reading_it(server):
    """Far over the limit (40x): 413 (possibly h2o's own plain-text answer), and the server is
    unharmed."""
    before = server.client.last_change()
    size = MAX_BODY * 40
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(post_request(server, size))
        resp = read_response(s, timeout=3.0)  # refused on the Content-Length alone, or ...
        if resp is None:
            try:  # ... after the body
                chunk = b"x" * 65536
                for _ in range(size // len(chunk)):
                    s.sendall(chunk)
            except OSError:
                pass
            resp = read_response(s)
    finally:
        s.close()
    assert resp is not None, "no response to an oversized body"
    assert resp[0] == 413, resp
    assert server.client.healthy()
    assert_nothing_written(server.client, before)


def test_expect_100_continue(server):
    data = dumps(patient()).encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(post_request(server, len(data), b"Expect: 100-continue\r\n"))
        s.settimeout(10)
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        rest = interim.partition(b"\r\n\r\n")[2]
        s.sendall(data)
        buf = rest
        while parse_raw_response(buf) is None:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the response"
            buf += chunk
        assert parse_raw_response(buf)[0] == 201
    finally:
        s.close()


def test_pipelined_requests_are_answered_in_order(server):
    data = dumps(patient()).encode()
    one = post_request(server, len(data)) + data
    health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(one + health + one + health)
        buf = b""
        statuses = []
        while len(statuses) < 4:
            parsed = parse_raw_response(buf)
            if parsed is None:
                chunk = s.recv(65536)
                assert chunk, f"connection closed after {statuses}"
                buf += chunk
                continue
            statuses.append(parsed[0])
            head_len = buf.index(b"\r\n\r\n") + 4
            buf = buf[head_len + len(parsed[2]):]
    finally:
        s.close()
    assert statuses == [201, 200, 201, 200]


def test_an_enormous_header_does_no_harm(server):
    """A 200 kB header: refused with a 4xx or served, but never a server error."""
    req = (b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: " + b"a" * 200000
           + b"\r\n\r\n")
    try:
        resp = raw_request(server.port, req)
    except OSError:
        resp = b""
    if resp:
        status = int(resp.split(b" ", 2)[1])
        assert status < 500, resp[:200]
    assert server.client.healthy()


def test_slow_headers_do_not_block_other_clients(server):
    """Twenty clients trickle their request line and headers a byte at a time; meanwhile the
    server answers everyone else, and in the end the slow ones are answered too."""
    request = b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
    stop = threading.Event()
    errors = []

    def trickle():
        try:
            step = max(1, len(request) // 30)  # about 3 s for the whole request
            for i in range(0, len(request), step):
                for s in socks:
                    s.sendall(request[i:i + step])
                time.sleep(0.1)
        except OSError as e:
            errors.append(e)
        finally:
            stop.set()

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    served = 0
    try:
        while not stop.is_set():
            r = server.client.post("Patient", patient())
            assert r.status == 201, r
            assert server.client.get(f"Patient/{r.json['id']}").status == 200
            served += 1
        t.join(30)
        assert not errors, errors
        for s in socks:
            resp = read_response(s)
            assert resp is not None and resp[0] == 200, resp
    finally:
        for s in socks:
            s.close()
    assert served > 0


def test_clients_that_send_half_a_body_and_leave(server):
    before = server.client.last_change()
    data = dumps(patient()).encode()
    for i in range(40):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(post_request(server, len(data) + 1000) + data[: len(data) // 2])
        if i % 2:
            rst_close(s)
        else:
            s.close()
    # the server may still be holding some of them; it answers others all the same
    assert server.client.healthy()
    r = server.client.post("Patient", patient())
    assert r.status == 201, r
    assert server.client.get(f"Patient/{r.json['id']}").status == 200
    # none of the halves became a resource
    entries = server.client.get("_history?_count=5").json["entry"]
    newest = [(e["fullUrl"], e["response"]["etag"], e["response"]["lastModified"])
              for e in entries]
    assert newest[0][0].endswith(r.json["id"])
    assert before is None or newest[1] == before


def test_clients_that_connect_and_vanish(server):
    for i in range(150):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if i % 3 == 0:
            s.close()
        elif i % 3 == 1:
            rst_close(s)
        else:
            s.sendall(b"GET /fhir/Pat")
            rst_close(s)
    assert server.client.healthy()
    assert server.client.post("Patient", patient()).status == 201


def test_many_idle_connections(server):
    """200 connections sit idle; the server keeps answering new clients, and then answers a
    request on each of the idle connections."""
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        for _ in range(20):
            assert server.client.post("Patient", patient()).status == 201
            assert server.client.healthy()
        req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for s in socks:
            s.sendall(req)
        for s in socks:
            resp = read_response(s)
            assert resp is not None and resp[0] == 200 and resp[2] == b"ok\n", resp
    finally:
        for s in socks:
            s.close()
    assert server.client.healthy()
