"""
Fixtures for the integration tests: start the real `concerto serve` binary on a free port with
a throw-away database, talk to it over HTTP, and stop it cleanly, failing the test when the
server did not exit with status 0 or its stderr holds a sanitizer report.

The binary is $CONCERTO_BIN, or build/san/concerto when it exists, else build/concerto
(relative to the repository root).

With CONCERTO_TEST_DB=postgresql each server whose test names no database of its own gets a
fresh database in the PostgreSQL cluster of directory $CONCERTO_TEST_PG_CLUSTER (tools/pg-cluster
start; `tools/check` starts one), created with `tools/pg-cluster createdb`. Tests of what only
SQLite has skip then (`sqlite_only`).

Every request under /fhir needs an access token. For each server it starts, the harness
registers a confidential client (HARNESS_CLIENT, once per database, with `concerto client add`)
and gets a token with client_credentials at /oauth2/token once the server answers; Client and
Session then send `Authorization: Bearer TOKEN` unless the request carries its own
Authorization header or passes auth=None (no token) or auth="TOKEN" (that one). Raw requests
add `server.auth_line()`. The servers share one signing key (made once per run), so that each
does not spend its start-up generating an RSA key; a test of the default key passes
shared_signing_key=False.
"""
import atexit
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path

import pytest

sys.dont_write_bytecode = True

ROOT = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"

# Generous bounds: the sanitizer build on a busy 2-core machine is slow to start and stop.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0

SANITIZER_PATTERNS = [
    re.compile(r"ERROR: AddressSanitizer"),
    re.compile(r"ERROR: LeakSanitizer"),
    re.compile(r"runtime error:"),
    re.compile(r"WARNING: ThreadSanitizer"),
    re.compile(r"ERROR: UndefinedBehaviorSanitizer"),
]


ON_POSTGRES = os.environ.get("CONCERTO_TEST_DB") == "postgresql"
_pg_databases = 0


def fresh_database():
    """A new PostgreSQL database for one server (CONCERTO_TEST_DB=postgresql): its URI."""
    global _pg_databases
    cluster = os.environ.get("CONCERTO_TEST_PG_CLUSTER")
    assert cluster, "CONCERTO_TEST_DB=postgresql needs CONCERTO_TEST_PG_CLUSTER"
    _pg_databases += 1
    name = f"it_{os.getpid()}_{_pg_databases}"
    out = subprocess.run([str(ROOT / "tools/pg-cluster"), "createdb", cluster, name],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"pg-cluster createdb failed: {out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def sqlite_only(reason):
    """Marks a test of what only the SQLite driver has: skipped on the PostgreSQL pass."""
    return pytest.mark.skipif(ON_POSTGRES, reason=f"SQLite only: {reason}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "examples: round trip of every official R4 example (slow; select with -m examples)")
    config.addinivalue_line("markers", "slow: takes several seconds (durability, shutdown)")


def concerto_bin():
    env = os.environ.get("CONCERTO_BIN")
    if env:
        path = Path(env)
        if not path.is_absolute():
            path = ROOT / path
        return path
    san = ROOT / "build/san/concerto"
    return san if san.exists() else ROOT / "build/concerto"


def server_env(extra=None):
    """The environment for a child concerto: ours without CONCERTO_* settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCERTO_")}
    # the same sanitizer settings as tools/check when run directly
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:strict_string_checks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    suppressions = ROOT / "tools/lsan.supp"
    if suppressions.exists():
        env.setdefault("LSAN_OPTIONS", f"suppressions={suppressions}:print_suppressions=0")
    if extra:
        env.update(extra)
    return env


def run_cli(*args, env=None, timeout=60, cwd=None, input=None):
    """Runs `concerto ARGS...` to completion, input (text) on its stdin; returns the
    CompletedProcess (text)."""
    return subprocess.run([str(concerto_bin()), *args], env=server_env(env), cwd=cwd,
                          input=input, capture_output=True, text=True, timeout=timeout)


def sanitizer_lines(text):
    return [line for line in text.splitlines() if any(p.search(line) for p in SANITIZER_PATTERNS)]


def sqlite_integrity(db_path):
    """Runs PRAGMA integrity_check with the sqlite3 command-line tool; returns its output."""
    sqlite3 = shutil.which("sqlite3")
    if not sqlite3:
        pytest.skip("the sqlite3 command-line tool is not installed")
    out = subprocess.run([sqlite3, str(db_path), "PRAGMA integrity_check;"], capture_output=True,
                         text=True, timeout=120)
    return (out.stdout + out.stderr).strip()


# ---- JSON helpers ------------------------------------------------------------------------

def loads(data):
    """Parses JSON keeping decimals exact (as Decimal)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=Decimal)


def dumps(value):
    """Serializes like json.dumps but writes Decimal values as they are (1.50 stays 1.50)."""
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def member_names(body):
    """The member names of the top-level JSON object in body, in order."""
    pairs = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body,
                       object_pairs_hook=lambda p: p, parse_float=Decimal)
    return [k for k, _ in pairs]


# ---- the harness's OAuth client -------------------------------------------------------------

HARNESS_CLIENT = "test-harness"
HARNESS_SECRET = "integration-tests-harness-secret-0123456789"
HARNESS_SCOPES = "system/*.cruds"
AUDITOR_CLIENT = "test-auditor"
AUDITOR_SECRET = "integration-tests-auditor-secret-0123456789"
_registered = set()  # databases (as the harness names them) that have the harness client
# auth= of a request: the client's token unless the request says otherwise
DEFAULT = object()
_shared_key = None


def shared_signing_key():
    """A signing key file (RSA, mode 0600) for every server of this run."""
    global _shared_key
    if _shared_key is None:
        d = Path(tempfile.mkdtemp(prefix="concerto-it-key-"))
        key = d / "signing.pem"
        out = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                              "rsa_keygen_bits:2048", "-out", str(key)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        key.chmod(0o600)
        atexit.register(shutil.rmtree, d, True)
        _shared_key = key
    return _shared_key


def basic_auth(client_id, secret):
    """The Authorization value of client_secret_basic (RFC 6749 section 2.3.1)."""
    pair = urllib.parse.quote_plus(client_id) + ":" + urllib.parse.quote_plus(secret)
    return "Basic " + base64.b64encode(pair.encode()).decode()


def form(**fields):
    """An application/x-www-form-urlencoded body and its headers."""
    return (urllib.parse.urlencode(fields),
            {"Content-Type": "application/x-www-form-urlencoded"})


# ---- HTTP client ---------------------------------------------------------------------------

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive
        self.body = body
        self._json = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def json(self):
        if self._json is None:
            try:
                self._json = loads(self.body)
            except ValueError as e:
                raise AssertionError(f"response body is not JSON ({e}): {self.body[:300]!r}")
        return self._json

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    def __repr__(self):
        return f"<Response {self.status} {self.body[:400]!r}>"


def encode_body(body, headers):
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        headers.setdefault("Content-Type", FHIR_JSON)
        return dumps(body).encode("utf-8")
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


class Session:
    """One keep-alive HTTP/1.1 connection (for a single thread)."""

    def __init__(self, host, port, timeout=REQUEST_TIMEOUT, token=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token  # sent as a bearer token by default
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def connect(self):
        """A new connection (not yet open) to the server."""
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=None, headers=None, auth=DEFAULT):
        headers = dict(headers or {})
        token = self.token if auth is DEFAULT else auth
        if token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {token}"
        data = encode_body(body, headers)
        # A kept-alive connection the server closed while it was idle (the server's idle
        # timeout) fails as soon as it is used; like any HTTP client, send again once on a new
        # connection. Only failures before a response can be a stale connection, and only
        # idempotent requests are sent again after the request went out.
        for attempt in (0, 1):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self.connect()
            sent = False
            try:
                self.conn.request(method, path, body=data, headers=headers)
                sent = True
                r = self.conn.getresponse()
                payload = r.read()
                break
            except (BrokenPipeError, ConnectionResetError,
                    http.client.RemoteDisconnected):
                self.close()
                idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
                if attempt or not reused or (sent and not idempotent):
                    raise
            except Exception:
                self.close()
                raise
        if r.will_close:
            self.close()
        return Response(r.status, r.reason, r.headers, payload)


class Client:
    """Requests to one server; each call uses a new connection unless a session is given."""

    scheme = "http"

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.origin = f"{self.scheme}://{host}:{port}"
        self.base = f"{self.origin}/fhir"
        self.token = None  # the harness's access token, sent unless a request says otherwise

    def path(self, url):
        """A request target from a path ("/fhir/Patient", "Patient/1") or an absolute URL."""
        if url.startswith("http://") or url.startswith("https://"):
            parts = urllib.parse.urlsplit(url)
            return parts.path + ("?" + parts.query if parts.query else "")
        if not url.startswith("/"):
            url = "/fhir/" + url
        return url

    def session(self, timeout=REQUEST_TIMEOUT):
        return Session(self.host, self.port, timeout, token=self.token)

    def request(self, method, url, body=None, headers=None, session=None, auth=DEFAULT):
        """auth: DEFAULT (the client's token), None (no Authorization header) or a token."""
        s = session or self.session()
        if auth is DEFAULT:
            auth = self.token
        try:
            return s.request(method, self.path(url), body, headers, auth=auth)
        finally:
            if session is None:
                s.close()

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def head(self, url, **kw):
        return self.request("HEAD", url, **kw)

    def post(self, url, body=None, **kw):
        return self.request("POST", url, body, **kw)

    def put(self, url, body=None, **kw):
        return self.request("PUT", url, body, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)

    def token_request(self, fields, client_id=HARNESS_CLIENT, secret=HARNESS_SECRET,
                      path="/oauth2/token"):
        """POSTs a form to an OAuth endpoint with client_secret_basic (client_id None: no
        client authentication)."""
        body, headers = form(**fields)
        if client_id is not None:
            headers["Authorization"] = basic_auth(client_id, secret)
        return self.post(path, body, headers=headers, auth=None)

    def healthy(self):
        try:
            r = self.get("/healthz", auth=None)
            return r.status == 200 and r.body == b"ok\n"
        except OSError:
            return False

    def last_change(self):
        """The newest entry of the system history (fullUrl, etag, lastModified), or None."""
        r = self.get("_history?_count=1")
        assert r.status == 200, r
        entries = r.json.get("entry", [])
        if not entries:
            return None
        e = entries[0]
        return (e["fullUrl"], e["response"]["etag"], e["response"]["lastModified"])

    def history_entries(self, url):
        """Every entry of a history, following `next` links."""
        out = []
        r = self.get(url)
        while True:
            assert r.status == 200, r
            out.extend(r.json.get("entry", []))
            nxt = [link["url"] for link in r.json.get("link", []) if link["relation"] == "next"]
            if not nxt:
                return out
            r = self.get(nxt[0])


# ---- the server --------------------------------------------------------------------------

class Server:
    """One `concerto serve` process on a throw-away directory."""

    def __init__(self, args=(), env=None, db=None, workdir=None, threads=2, port_file=None,
                 shared_signing_key=True, harness_token=True):
        self.owns_dir = workdir is None
        self.shared_signing_key = shared_signing_key
        self.harness_token = harness_token
        self.token = None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="concerto-it-"))
        # a file, or a database URI (postgresql://...) passed as it is
        if db is None and ON_POSTGRES:
            db = fresh_database()
        self.db = db if isinstance(db, str) and "://" in db else Path(db) if db else self.dir / "x.db"
        self.args = list(args)
        self.env = dict(env or {})
        self.threads = threads
        # port_file given: the settings come from args, env or a config file (none are added
        # here) and the port is read from that file
        self.fixed_port_file = Path(port_file) if port_file else None
        self.proc = None
        self.port = None
        self.client = None
        self.runs = 0
        self.stderr_path = None
        self.stderr_paths = []  # of every run, for sanitizer reports
        self.stopped_by_test = False

    # -- lifecycle --

    def command(self):
        cmd = [str(concerto_bin()), "serve"]
        if not self.fixed_port_file:
            cmd += ["--db", str(self.db), "--listen", "127.0.0.1:0", "--port-file",
                    str(self.port_file)]
            if self.threads:
                cmd += ["--threads", str(self.threads)]
        return cmd + self.args

    def start(self):
        self.runs += 1
        self.port_file = self.fixed_port_file or self.dir / f"port.{self.runs}"
        self.stderr_path = self.dir / f"stderr.{self.runs}"
        self.stderr_paths.append(self.stderr_path)
        self.port_file.unlink(missing_ok=True)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=server_env(self.run_env()),
                                         cwd=self.dir)
        deadline = time.monotonic() + START_TIMEOUT
        port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"concerto serve exited with {self.proc.returncode} while starting:\n"
                    + self.stderr())
            try:
                text = self.port_file.read_text()
                if text.endswith("\n") and text.strip().isdigit():
                    port = int(text)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        if port is None:
            self.kill()
            raise AssertionError("concerto serve wrote no port file within "
                                 f"{START_TIMEOUT:.0f} s:\n" + self.stderr())
        self.port = port
        self.client = self.make_client(port)
        while time.monotonic() < deadline:
            if self.client.healthy():
                if self.harness_token:
                    self.client.token = self.token = self.get_token()
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError("concerto serve did not answer /healthz:\n" + self.stderr())

    def run_env(self):
        env = dict(self.env)
        mentioned = (any(a.startswith("--signing-key") for a in self.args)
                     or "CONCERTO_SIGNING_KEY" in env)
        if self.shared_signing_key and not mentioned:
            env["CONCERTO_SIGNING_KEY"] = str(shared_signing_key())
        return env

    def database(self):
        """The database the server runs on, as it resolves its settings: --db, CONCERTO_DB,
        the config file's db, else concerto.db (relative names from the server's directory)."""
        if not self.fixed_port_file:
            return str(self.db)

        def flag(name):
            for i, a in enumerate(self.args):
                if a == f"--{name}" and i + 1 < len(self.args):
                    return self.args[i + 1]
                if a.startswith(f"--{name}="):
                    return a.split("=", 1)[1]
            return None
        db = flag("db") or self.env.get("CONCERTO_DB")
        config = flag("config") or self.env.get("CONCERTO_CONFIG")
        if not db and config:
            for line in (self.dir / config).read_text().splitlines():
                name, sep, value = line.partition("=")
                if sep and name.strip() == "db":
                    db = value.strip()
        db = db or "concerto.db"
        return db if "://" in db else str(self.dir / db)

    def auditor_token(self):
        """A token of a backend service granted system/AuditEvent.rs (registered once per
        database): the harness's own system/*.cruds does not read the audit trail."""
        db = self.database()
        if (db, "auditor") not in _registered:
            r = run_cli("client", "add", "--db", db, "--client-id", AUDITOR_CLIENT,
                        "--secret-stdin", "--scopes", "system/AuditEvent.rs",
                        input=AUDITOR_SECRET + "\n", cwd=self.dir)
            assert r.returncode == 0 or "already" in r.stderr, r.stderr
            _registered.add((db, "auditor"))
        r = self.client.token_request({"grant_type": "client_credentials",
                                       "scope": "system/AuditEvent.rs"},
                                      client_id=AUDITOR_CLIENT, secret=AUDITOR_SECRET)
        assert r.status == 200, r
        return r.json["access_token"]

    def register_harness_client(self, db):
        r = run_cli("client", "add", "--db", db, "--client-id", HARNESS_CLIENT,
                    "--secret-stdin", "--scopes", HARNESS_SCOPES, input=HARNESS_SECRET + "\n",
                    cwd=self.dir)
        assert r.returncode == 0 or "taken" in r.stderr, \
            f"could not register the harness's client: {r.stderr}"
        _registered.add(db)

    def get_token(self):
        """An access token of the harness's client (registered first when needed)."""
        db = self.database()
        if self.token and db in _registered:
            return self.token  # tokens are kept in the database: a restart keeps them
        if db not in _registered:
            self.register_harness_client(db)
        r = self.client.token_request({"grant_type": "client_credentials",
                                       "scope": HARNESS_SCOPES})
        if r.status == 401:  # a database made again under the same name
            self.register_harness_client(db)
            r = self.client.token_request({"grant_type": "client_credentials",
                                           "scope": HARNESS_SCOPES})
        assert r.status == 200, f"no token for the harness: {r}"
        return r.json["access_token"]

    def auth_line(self):
        """The Authorization header line of the harness's token, for raw requests."""
        return f"Authorization: Bearer {self.token}\r\n".encode()

    def make_client(self, port):
        """The client of a server listening on port (a subclass may speak TLS)."""
        return Client("127.0.0.1", port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, path=None):
        """The stderr of the current run (or of the run that wrote path)."""
        path = path or self.stderr_path
        if not path or not path.exists():
            return ""
        return path.read_bytes().decode("utf-8", "replace")

    def sanitizer_report(self):
        """The stderr of the first run (since start or restarts) with a sanitizer report."""
        for path in self.stderr_paths:
            text = self.stderr(path)
            if sanitizer_lines(text):
                return f"sanitizer report in the server's stderr ({path.name}):\n" + text[-6000:]
        return None

    def _terminate(self, sig):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
            return None

    def stop(self, sig=signal.SIGTERM):
        """Stops with sig and returns the exit status (None: it had to be killed after
        STOP_TIMEOUT). The caller checks the status; teardown then checks only stderr."""
        self.stopped_by_test = True
        if not self.running():
            return self.proc.returncode if self.proc else None
        return self._terminate(sig)

    def kill(self):
        """SIGKILL (for crash tests); waits for the process to go."""
        self.stopped_by_test = True
        if self.running():
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def stop_checked(self):
        """SIGTERM; returns a list of problems (empty when it stopped cleanly)."""
        if self.proc is None:
            return []
        problems = []
        if self.running():
            status = self._terminate(signal.SIGTERM)
            if status is None:
                problems.append(f"the server did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            elif status != 0:
                problems.append(f"the server exited with status {status} after SIGTERM")
        elif not self.stopped_by_test:
            problems.append(f"the server exited on its own with status {self.proc.returncode}")
        report = self.sanitizer_report()
        if report:
            problems.append(report)
        elif problems:
            problems.append("stderr:\n" + self.stderr()[-4000:])
        return problems

    def restart(self):
        """SIGTERM (asserting a clean exit) and start again on the same database."""
        problems = self.stop_checked()
        assert not problems, "\n".join(problems)
        self.stopped_by_test = False
        return self.start()

    def cleanup(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        if self.owns_dir and not os.environ.get("CONCERTO_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- conveniences --

    @property
    def base(self):
        return self.client.base


class _Holder:
    def __init__(self, factory):
        self.factory = factory
        self.current = factory()


@pytest.fixture(scope="module")
def _module_server(request):
    args = getattr(request.module, "SERVER_ARGS", ())
    holder = _Holder(lambda: Server(args=args).start())
    yield holder
    srv = holder.current
    problems = srv.stop_checked()
    srv.cleanup()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(_module_server):
    """The module's server (shared by the tests of one file; SERVER_ARGS adds flags). After
    each test it must still be running without sanitizer reports; otherwise the test fails and
    the next test gets a fresh server."""
    srv = _module_server.current
    yield srv
    problem = None
    if not srv.running():
        problem = (f"the server died during this test (status {srv.proc.returncode}):\n"
                   + srv.stderr()[-6000:])
    else:
        problem = srv.sanitizer_report()
    if problem:
        srv.kill()
        srv.cleanup()
        _module_server.current = _module_server.factory()
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def client(server):
    return server.client


@pytest.fixture
def make_server():
    """A factory for servers of this test only: make_server(args=[...], env={...}, db=...;
    server_class= a subclass of Server). Every server still running at the end is stopped with
    SIGTERM and checked."""
    servers = []

    def make(args=(), env=None, db=None, workdir=None, threads=2, port_file=None, start=True,
             server_class=None, **options):
        srv = (server_class or Server)(args=args, env=env, db=db, workdir=workdir,
                                       threads=threads, port_file=port_file, **options)
        servers.append(srv)
        return srv.start() if start else srv

    yield make
    problems = []
    for srv in servers:
        if srv.proc is not None:
            problems.extend(srv.stop_checked())
        srv.cleanup()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="concerto-it-"))
    yield d
    if not os.environ.get("CONCERTO_TEST_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


# ---- the engine's work --------------------------------------------------------------------

SETTLE_TIMEOUT = 30.0


def settle(client, timeout=SETTLE_TIMEOUT):
    """Waits until the work queues of client's server (started with --test-clock) hold nothing
    due: every outbox event handled (or dead) and no job due at the server's clock, so that
    what the engine does for the writes and clock moves so far is done. Fails the test when
    that takes over timeout seconds (the worker is stuck, or a handler keeps failing)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/admin/clock")
        assert r.status == 200, f"settle needs a server with --test-clock: {r}"
        work = r.json["work"]
        if work["events"] == 0 and work["jobsDue"] == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the work queues still hold {work['events']} events and "
                        f"{work['jobsDue']} due jobs after {timeout:.0f} s", pytrace=False)
        time.sleep(0.02)


# ---- assertions --------------------------------------------------------------------------

INSTANT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
HTTP_DATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT$")


def assert_outcome(r, status, code, diagnostics=None, expression=None, severity="error"):
    """r is an OperationOutcome with that status whose first issue has that severity and code,
    diagnostics containing the given text (or matching it, when it is a compiled regex) and,
    when given, that expression."""
    assert r.status == status, f"expected {status}, got {r.status}: {r.body[:600]!r}"
    assert r.content_type.startswith(FHIR_JSON) or r.content_type.startswith("application/json"), \
        f"an OperationOutcome must be JSON, got Content-Type {r.content_type!r}"
    oo = r.json
    assert oo.get("resourceType") == "OperationOutcome", oo
    assert oo.get("issue"), oo
    issue = oo["issue"][0]
    assert issue.get("severity") == severity, oo
    assert issue.get("code") == code, oo
    if diagnostics is not None:
        text = issue.get("diagnostics", "")
        if isinstance(diagnostics, re.Pattern):
            assert diagnostics.search(text), f"{diagnostics.pattern!r} not in {text!r}"
        else:
            assert diagnostics in text, f"{diagnostics!r} not in {text!r}"
    if expression is not None:
        assert issue.get("expression") == [expression], \
            f"expected expression [{expression!r}], got {issue.get('expression')!r} in {oo}"
    return oo


def assert_nothing_written(client, before):
    """The system history's newest entry is still `before` and the server answers."""
    assert client.last_change() == before, "a rejected request changed the history"
    assert client.healthy(), "the server stopped answering /healthz"


def patient(**extra):
    """A small valid Patient."""
    p = {"resourceType": "Patient", "active": True,
         "name": [{"family": "Test", "given": ["Integration"]}], "gender": "female",
         "birthDate": "1980-02-29"}
    p.update(extra)
    return p


def observation(**extra):
    """A small valid Observation."""
    o = {"resourceType": "Observation", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                              "display": "Body weight"}]},
         "valueQuantity": {"value": Decimal("72.50"), "unit": "kg",
                           "system": "http://unitsofmeasure.org", "code": "kg"}}
    o.update(extra)
    return o


def create(client, resource, **kw):
    """POSTs resource to its type and returns the stored resource (asserts 201)."""
    r = client.post(resource["resourceType"], resource, **kw)
    assert r.status == 201, r
    return r.json


def raw_request(port, data, read=True, timeout=10.0):
    """Sends raw bytes on a new connection and returns what came back (until close or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if parse_raw_response(b"".join(chunks)) is not None:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)
    finally:
        s.close()


def parse_raw_response(data):
    """(status, headers dict lower-case, body) of a complete HTTP/1.1 response, or None."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    if len(rest) < n:
        return None
    return status, headers, rest[:n]


def run_threads(n, target, *args):
    """Runs target(i, *args) on n threads started together; re-raises the first exception."""
    errors = []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait(timeout=60)
            target(i, *args)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "threads did not finish within 300 s"
    if errors:
        raise errors[0]
