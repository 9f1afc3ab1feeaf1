"""HTTPS: `concerto serve --tls-cert FILE --tls-key FILE` with a throw-away self-signed
certificate made by the openssl command; the protocols and ciphers offered, ALPN, start-up
errors; and the security headers of every response, over TLS and over plain HTTP."""
import http.client
import shutil
import socket
import ssl
import subprocess
import warnings

import pytest

from conftest import (FHIR_JSON, HTTP_DATE_RE, Client, Server, Session, assert_outcome, create,
                      patient, raw_request, run_cli)

# What every response carries, over TLS or not.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"
# TLS 1.2 suites the server may choose: forward secret key exchange, AEAD only
TLS12_SUITES = {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256"}


def openssl(*args, cwd):
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, f"openssl {' '.join(args)} failed: {out.stderr}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and its key, and a key of another certificate:
    a dict of paths (cert, key, other_key)."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed (tools/install-deps installs it)")
    d = tmp_path_factory.mktemp("tls")
    for name in ("server", "other"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                cwd=d)
        (d / f"{name}.key").chmod(0o600)
    return {"cert": d / "server.pem", "key": d / "server.key", "other_key": d / "other.key"}


def client_context(certs, alpn=None):
    """A client context that trusts only the test certificate and checks the host name."""
    ctx = ssl.create_default_context(cafile=str(certs["cert"]))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TlsSession(Session):
    context = None

    def connect(self):
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                           context=self.context)


class TlsClient(Client):
    scheme = "https"

    def __init__(self, host, port, context):
        super().__init__(host, port)
        self.context = context

    def session(self, timeout=60.0):
        s = TlsSession(self.host, self.port, timeout, token=self.token)
        s.context = self.context
        return s


def tls_server_class(certs):
    class TlsServer(Server):
        def make_client(self, port):
            return TlsClient("127.0.0.1", port, client_context(certs))
    return TlsServer


@pytest.fixture
def tls_server(make_server, certs):
    return make_server(args=["--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])],
                       server_class=tls_server_class(certs))


def handshake(port, ctx, server_hostname="127.0.0.1"):
    """A TLS connection to the server (the caller closes it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        return ctx.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def assert_security_headers(r, tls):
    for name, value in SECURITY_HEADERS.items():
        assert r.header(name) == value, f"{name}: {r.header(name)!r} in {dict(r.headers)}"
    if tls:
        assert r.header("Strict-Transport-Security") == HSTS, dict(r.headers)
    else:
        assert r.header("Strict-Transport-Security") is None, dict(r.headers)


# ---- the API over TLS ----------------------------------------------------------------------

def test_create_and_read_over_tls(tls_server):
    client = tls_server.client
    r = client.post("Patient", patient())
    assert r.status == 201, r
    location = r.header("Location")
    assert location.startswith(f"https://127.0.0.1:{tls_server.port}/fhir/Patient/"), location
    pid = r.json["id"]
    r = client.get(f"Patient/{pid}")
    assert r.status == 200, r
    assert r.json["id"] == pid and r.json["name"] == patient()["name"]
    assert r.header("ETag") == 'W/"1"'
    assert_security_headers(r, tls=True)
    # a keep-alive connection carries several requests
    s = client.session()
    try:
        for _ in range(3):
            assert client.get(f"Patient/{pid}", session=s).status == 200
    finally:
        s.close()


def test_negotiates_tls_1_2_or_newer(tls_server, certs):
    with handshake(tls_server.port, client_context(certs)) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()


def test_tls_1_2_uses_forward_secret_aead_suites_in_the_servers_order(tls_server, certs):
    ctx = client_context(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    # the client prefers AES-128; the server's order puts AES-256 first
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    with handshake(tls_server.port, ctx) as tls:
        assert tls.version() == "TLSv1.2"
        assert tls.cipher()[0] in TLS12_SUITES, tls.cipher()
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384", tls.cipher()
        assert tls.compression() is None


def test_tls_1_2_without_an_aead_suite_is_refused(tls_server, certs):
    ctx = client_context(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(tls_server.port, ctx).close()
    assert tls_server.client.healthy()


def test_tls_1_0_and_1_1_are_refused(tls_server, certs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            pytest.skip(f"this Python/OpenSSL cannot offer TLS 1.0 or 1.1: {e}")
    # Can this client even say hello in TLS 1.1? Try it on memory, without the server.
    probe = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    try:
        probe.do_handshake()
    except ssl.SSLWantReadError:
        pass  # a ClientHello went out: the client can try
    except ssl.SSLError as e:
        pytest.skip(f"this OpenSSL refuses TLS 1.0 and 1.1 on the client side: {e}")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(tls_server.port, ctx).close()
    # the same client allowed TLS 1.2 gets in: the refusal was the protocol version
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with handshake(tls_server.port, ctx) as tls:
        assert tls.version() == "TLSv1.2"


def test_alpn_offers_h2_then_http_1_1(tls_server, certs):
    with handshake(tls_server.port, client_context(certs, ["h2", "http/1.1"])) as tls:
        assert tls.selected_alpn_protocol() == "h2"
        # the server speaks HTTP/2 on it: the connection preface and an empty SETTINGS frame
        # are answered with the server's SETTINGS frame (type 4, stream 0)
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        head = b""
        while len(head) < 9:
            chunk = tls.recv(9 - len(head))
            assert chunk, "the server closed the HTTP/2 connection"
            head += chunk
        assert head[3] == 4 and head[5:9] == b"\0\0\0\0", head
    with handshake(tls_server.port, client_context(certs, ["http/1.1"])) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_fhir_over_http2(tls_server, certs):
    """A create and a read through curl's HTTP/2 client: status, headers and body."""
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed (tools/install-deps installs it)")
    base = f"https://127.0.0.1:{tls_server.port}/fhir"

    def run(*args):
        out = subprocess.run([curl, "-sS", "--http2", "--cacert", str(certs["cert"]), "-D", "-",
                              "-H", f"Authorization: Bearer {tls_server.token}", *args],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        return lines[0], headers, body

    status, headers, body = run("-X", "POST", "-H", f"Content-Type: {FHIR_JSON}", "--data-binary",
                                '{"resourceType":"Patient","active":true}', f"{base}/Patient")
    assert status.startswith("HTTP/2 201"), (status, body)
    assert headers["location"].startswith(f"{base}/Patient/"), headers
    pid = headers["location"].split("/")[-3]
    status, headers, body = run(f"{base}/Patient/{pid}")
    assert status.startswith("HTTP/2 200"), (status, body)
    assert b'"active":true' in body and headers["etag"] == 'W/"1"'
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, headers
    assert headers["strict-transport-security"] == HSTS


def test_plain_http_to_the_tls_port_does_not_harm_the_server(tls_server):
    out = raw_request(tls_server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert not out.startswith(b"HTTP/1.1 200"), out
    raw_request(tls_server.port, b"\x16\x03\x01\x00\x05garbage" * 10, timeout=5)
    raw_request(tls_server.port, b"\x16\x03", read=False)
    assert tls_server.client.healthy()
    r = tls_server.client.post("Patient", patient())
    assert r.status == 201, r


def test_tls_settings_from_the_environment(make_server, certs):
    srv = make_server(env={"CONCERTO_TLS_CERT": str(certs["cert"]),
                           "CONCERTO_TLS_KEY": str(certs["key"])},
                      server_class=tls_server_class(certs))
    r = srv.client.get("/healthz")
    assert r.status == 200 and r.body == b"ok\n"
    assert r.header("Strict-Transport-Security") == HSTS
    assert f"https://127.0.0.1:{srv.port}/fhir" in srv.stderr()


# ---- start-up errors ------------------------------------------------------------------------

def serve_fails(tmp_dir, *args):
    """Runs serve with args; asserts it exits 2 before opening the database; its stderr."""
    db = tmp_dir / "never.db"
    out = run_cli("serve", "--db", str(db), "--listen", "127.0.0.1:0", *args, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert not db.exists(), "the database was opened although the TLS settings are wrong"
    return out.stderr


def test_a_key_of_another_certificate_is_refused(tmp_dir, certs):
    err = serve_fails(tmp_dir, "--tls-cert", str(certs["cert"]), "--tls-key",
                      str(certs["other_key"]))
    assert (f'the TLS key "{certs["other_key"]}" does not belong to the certificate '
            f'"{certs["cert"]}"') in err, err


def test_missing_or_unreadable_files_are_refused(tmp_dir, certs):
    missing = tmp_dir / "missing.pem"
    err = serve_fails(tmp_dir, "--tls-cert", str(missing), "--tls-key", str(certs["key"]))
    assert f'cannot read the TLS certificate "{missing}": No such file or directory' in err, err
    err = serve_fails(tmp_dir, "--tls-cert", str(certs["cert"]), "--tls-key", str(missing))
    assert f'cannot read the TLS key "{missing}": No such file or directory' in err, err
    err = serve_fails(tmp_dir, "--tls-cert", str(tmp_dir), "--tls-key", str(certs["key"]))
    assert f'cannot read the TLS certificate "{tmp_dir}"' in err, err
    # a key where the certificate belongs, and the reverse
    err = serve_fails(tmp_dir, "--tls-cert", str(certs["key"]), "--tls-key", str(certs["key"]))
    assert f'cannot load the TLS certificate "{certs["key"]}"' in err, err
    err = serve_fails(tmp_dir, "--tls-cert", str(certs["cert"]), "--tls-key", str(certs["cert"]))
    assert f'cannot load the TLS key "{certs["cert"]}"' in err, err


def test_one_of_cert_and_key_alone_is_refused(tmp_dir, certs):
    err = serve_fails(tmp_dir, "--tls-cert", str(certs["cert"]))
    assert "--tls-cert and --tls-key go together: --tls-key is missing" in err, err
    err = serve_fails(tmp_dir, "--tls-key", str(certs["key"]))
    assert "--tls-cert and --tls-key go together: --tls-cert is missing" in err, err


def test_help_describes_the_tls_settings():
    out = run_cli("serve", "--help")
    assert out.returncode == 0
    assert "--tls-cert FILE" in out.stdout and "--tls-key FILE" in out.stdout, out.stdout


# ---- security headers over plain HTTP (the module's server) ---------------------------------

def test_security_headers_on_every_kind_of_response(client):
    created = create(client, patient())
    r = client.get(f"Patient/{created['id']}")
    assert r.status == 200, r
    assert_security_headers(r, tls=False)
    # no-store does not take the version headers away
    assert r.header("ETag") == 'W/"1"'
    assert HTTP_DATE_RE.match(r.header("Last-Modified", ""))

    r = client.get("Patient?_count=1")
    assert r.status == 200 and r.json["resourceType"] == "Bundle", r
    assert_security_headers(r, tls=False)

    r = client.get("Patient/no-such-patient")
    assert_outcome(r, 404, "not-found")
    assert_security_headers(r, tls=False)

    r = client.get("/healthz")
    assert r.status == 200 and r.body == b"ok\n"
    assert_security_headers(r, tls=False)

    r = client.head(f"Patient/{created['id']}")
    assert r.status == 200
    assert_security_headers(r, tls=False)

    r = client.post("Patient", patient(), headers={"Prefer": "return=minimal"})
    assert r.status == 201 and r.body == b""
    assert_security_headers(r, tls=False)

    r = client.get("/no/such/path")
    assert r.status == 404
    assert_security_headers(r, tls=False)


def test_security_headers_on_errors_h2o_answers_itself(make_server):
    # a body far over max-body: h2o answers 413 before the handler sees the request
    srv = make_server(args=["--max-body", "1024"])
    body = b"x" * (4 * 1024 * 1024)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        s.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: " + FHIR_JSON.encode()
                  + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        try:
            s.sendall(body)
        except OSError:
            pass  # the server may answer and close before reading it all
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    finally:
        s.close()
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 413"), head
    assert "x-content-type-options: nosniff" in head, head
    assert "cache-control: no-store" in head, head
