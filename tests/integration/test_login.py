"""
Signing in to an app (SMART on FHIR's authorization code flow) through Concerto's own pages:
/oauth2/authorize checks the app's request, the person signs in (password, then a TOTP or
recovery code, or enrolment for staff), staff choose a patient, and the browser returns to
the app with a code. Also the refusals, the CSRF checks, the session cookie, single sign-on,
the idle timeout, sign-out and the pages' security headers. On SQLite and PostgreSQL.

TOTP codes are computed here per RFC 6238 (HMAC-SHA1, 6 digits, 30 s).
"""
import base64
import functools
import hashlib
import hmac
import html.parser
import http.client
import json
import os
import re
import socket
import struct
import threading
import time
import urllib.parse

import pytest

from conftest import ON_POSTGRES, Server, fresh_database, run_cli

PASSWORD = "violet cactus under the harbour"
APP_URI = "http://127.0.0.1:9/callback"
APP_ORIGIN = "http://127.0.0.1:9"
SCOPES = "openid fhirUser launch/patient patient/*.rs user/*.rs offline_access"
INVALID_USER = "invalid user name or password"
INVALID_CODE = "invalid code"


# ---- TOTP ------------------------------------------------------------------------------------

def totp_at(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1000000:06d}"


class Authenticator:
    """An authenticator app: a code per 30 s step, each step used once (the server refuses a
    step it accepted before, and accepts the step after the current one)."""

    def __init__(self, secret):
        self.secret = secret
        self.last = -1

    def code(self):
        now = int(time.time()) // 30
        step = max(now, self.last + 1)
        while step > int(time.time()) // 30 + 1:
            time.sleep(1)
        self.last = step
        return totp_at(self.secret, step)


def test_totp_matches_rfc_6238_appendix_b():
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_at(secret, 59 // 30) == "287082"
    assert totp_at(secret, 1111111109 // 30) == "081804"


# ---- a browser ---------------------------------------------------------------------------

class Form:
    def __init__(self, action):
        self.action = action
        self.fields = {}


class PageParser(html.parser.HTMLParser):
    """The forms of a page (action and hidden fields), its alert and the text of elements with
    an id."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.alerts = []
        self.by_id = {}
        self.items = []
        self._stack = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(Form(a.get("action")))
        elif tag == "input" and self.forms and a.get("type") == "hidden":
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        if tag not in ("input", "meta", "link", "br"):
            self._stack.append((tag, a.get("id"), a.get("role")))
            if a.get("id"):
                self.by_id[a["id"]] = ""
            if a.get("role") == "alert":
                self.alerts.append("")

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for tag, ident, role in self._stack:
            if ident:
                self.by_id[ident] += data
            if role == "alert":
                self.alerts[-1] += data


class Page:
    def __init__(self, response):
        self.status = response.status
        self.headers = response.headers
        self.text = response.read().decode("utf-8")
        self.parser = PageParser()
        self.parser.feed(self.text)

    @property
    def location(self):
        return self.headers.get("Location")

    def form(self, action):
        for f in self.parser.forms:
            if f.action == action:
                return f
        raise AssertionError(f"no form for {action} in {self.text[:2000]}")

    def alert(self):
        return " ".join(a.strip() for a in self.parser.alerts)

    def __repr__(self):
        return f"<Page {self.status} {self.location or self.text[:600]!r}>"


class Browser:
    """Keeps the session cookie like a browser does, follows no redirect."""

    def __init__(self, host, port, context=None):
        self.host, self.port, self.context = host, port, context
        self.cookies = {}

    def request(self, method, path, form=None, headers=None):
        if self.context:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=60,
                                               context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=headers)
            page = Page(conn.getresponse())
        finally:
            conn.close()
        for value in page.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            val = rest.split(";")[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = val
        return page

    def get(self, path):
        return self.request("GET", path)

    def submit(self, page, action, **fields):
        form = page.form(action)
        data = dict(form.fields)
        data.update(fields)
        return self.request("POST", action, form=data)


def pkce():
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_path(client_id="app", redirect_uri=APP_URI, scope=SCOPES, state="st-1",
                   method="S256", challenge=None, **extra):
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": state, "code_challenge_method": method,
              "code_challenge": challenge or pkce()[1]}
    params.update(extra)
    return "/oauth2/authorize?" + urllib.parse.urlencode(
        {k: v for k, v in params.items() if v is not None})


def redirect_params(page):
    assert page.status in (302, 303), page
    assert page.location.startswith(APP_URI + "?"), page.location
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.location).query))


# ---- the server --------------------------------------------------------------------------

def prepare(srv):
    """Resources, accounts and the app, made with the CLI before the server starts."""
    db = str(srv.db)
    r = run_cli("init", "--db", db)
    assert r.returncode == 0, r.stderr
    people = srv.dir / "people.ndjson"
    people.write_text(
        '{"resourceType":"Practitioner","id":"p1"}\n'
        '{"resourceType":"Patient","id":"pat1","name":[{"given":["Jane"],"family":"Ames"}],'
        '"birthDate":"1950-02-03"}\n'
        '{"resourceType":"Patient","id":"pat2","name":[{"given":["Peter"],"family":"Brook"}]}\n'
        # the nurses (Practitioner p1) care for Jane Ames, not for Otto Ames
        '{"resourceType":"Patient","id":"pat3","name":[{"given":["Otto"],"family":"Ames"}]}\n'
        '{"resourceType":"CareTeam","id":"ct1","status":"active",'
        '"subject":{"reference":"Patient/pat1"},'
        '"participant":[{"member":{"reference":"Practitioner/p1"}}]}\n')
    r = run_cli("import", "--db", db, str(people))
    assert r.returncode == 0, r.stderr
    for name in ("nurse1", "nurse2", "nurse3", "nurse4"):
        r = run_cli("user", "add", "--db", db, "--username", name, "--role", "nurse",
                    "--practitioner", "p1", "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    for name in ("jane", "locked", "idle"):
        r = run_cli("user", "add", "--db", db, "--username", name, "--role", "patient",
                    "--patient", "pat1", "--password-stdin", input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "app", "--public", "--scopes",
                SCOPES, "--redirect-uri", APP_URI, "--name", "Care <App>")
    assert r.returncode == 0, r.stderr
    r = run_cli("client", "add", "--db", db, "--client-id", "narrow", "--public", "--scopes",
                "patient/Observation.rs", "--redirect-uri", APP_URI)
    assert r.returncode == 0, r.stderr


def make_login_server(args=(), server_class=Server):
    db = fresh_database() if ON_POSTGRES else None
    srv = server_class(args=list(args), db=db)
    key = srv.dir / "secrets.key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o600)
    srv.args += ["--secrets-key", str(key)]
    prepare(srv)
    return srv.start()


@pytest.fixture(scope="module")
def login_server():
    srv = make_login_server()
    yield srv
    problems = srv.stop_checked()
    srv.cleanup()
    assert not problems, "\n".join(problems)


@pytest.fixture
def browser(login_server):
    return Browser("127.0.0.1", login_server.port)


def sign_in_with_password(browser, username, path=None):
    page = browser.get(path or authorize_path())
    assert page.status == 200, page
    return browser.submit(page, "/oauth2/login", username=username, password=PASSWORD)


def enrol(browser, username):
    """A staff member's first sign-in: enrolment; returns (authenticator, recovery codes,
    the page after continuing)."""
    page = sign_in_with_password(browser, username)
    assert page.status == 200, page
    secret = page.parser.by_id["totp-secret"].strip()
    uri = page.parser.by_id["totp-uri"].strip()
    assert uri.startswith("otpauth://totp/Concerto:" + username + "?")
    assert f"secret={secret}" in uri
    app = Authenticator(secret)
    page = browser.submit(page, "/oauth2/login/enroll", code=app.code())
    assert page.status == 200, page
    codes = [li.strip() for li in re.findall(r"<li><code>([^<]+)</code></li>", page.text)]
    assert len(codes) == 10
    return app, codes, page


# ---- the flows ---------------------------------------------------------------------------

def test_patient_signs_in_and_the_app_gets_a_code_and_its_state(browser):
    page = browser.get(authorize_path(state="s/1 2"))
    assert page.status == 200, page
    # the app's name (escaped) and the access asked for, in words
    assert "Care &lt;App&gt;" in page.text
    assert "Read and search every kind of record" in page.text
    assert 'autocomplete="username"' in page.text and "autofocus" in page.text
    assert 'autocomplete="current-password"' in page.text
    assert '<label for="username">' in page.text and '<label for="password">' in page.text
    page = browser.submit(page, "/oauth2/login", username="jane", password=PASSWORD)
    params = redirect_params(page)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code"])
    assert params["state"] == "s/1 2"
    assert params["iss"] == f"http://127.0.0.1:{browser.port}/fhir"


def exchange_code(srv, code, verifier):
    """The app's side: the code for tokens at the token endpoint (a public client)."""
    r = srv.client.token_request({"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": APP_URI, "code_verifier": verifier,
                                  "client_id": "app"}, client_id=None)
    assert r.status == 200, r
    return r.json


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_id_token_carries_the_nonce_of_the_request(browser, login_server):
    verifier, challenge = pkce()
    page = sign_in_with_password(
        browser, "jane", authorize_path(challenge=challenge, nonce="n-0S6_WzA2Mj"))
    tokens = exchange_code(login_server, redirect_params(page)["code"], verifier)
    claims = jwt_claims(tokens["id_token"])
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["aud"] == "app" and claims["fhirUser"].endswith("/Patient/pat1")
    # the id_token of a refresh carries none (OpenID Connect Core 12.2)
    r = login_server.client.token_request({"grant_type": "refresh_token", "client_id": "app",
                                           "refresh_token": tokens["refresh_token"]},
                                          client_id=None)
    assert r.status == 200, r
    assert "nonce" not in jwt_claims(r.json["id_token"])
    # a request without a nonce: an id_token without one
    verifier, challenge = pkce()
    page = browser.get(authorize_path(challenge=challenge))  # signed in already
    tokens = exchange_code(login_server, redirect_params(page)["code"], verifier)
    assert "nonce" not in jwt_claims(tokens["id_token"])


def test_staff_enrol_at_first_sign_in_then_sign_in_with_a_totp_code(login_server):
    browser = Browser("127.0.0.1", login_server.port)
    app, codes, page = enrol(browser, "nurse1")
    # continuing after the codes: staff with launch/patient choose a patient
    page = browser.submit(page, "/oauth2/continue")
    assert page.status == 200 and "Choose a patient" in page.text, page
    page = browser.submit(page, "/oauth2/patient", q="ames")
    # the picker lists only the patients of the nurse's care teams
    assert "Jane Ames, born 1950-02-03" in page.text and "Brook" not in page.text
    assert "Otto" not in page.text
    page = browser.submit(page, "/oauth2/patient", patient="pat1")
    assert page.parser.by_id["patient"].startswith("Jane Ames"), page
    page = browser.submit(page, "/oauth2/patient", patient="pat1", confirm="1")
    params = redirect_params(page)
    assert params["state"] == "st-1" and params["code"]

    # a second sign-in in a new browser: password, then a code from the app
    browser = Browser("127.0.0.1", login_server.port)
    page = sign_in_with_password(browser, "nurse1", authorize_path(scope="openid user/*.rs"))
    assert page.status == 200 and 'autocomplete="one-time-code"' in page.text, page
    page = browser.submit(page, "/oauth2/login/code", code=app.code())
    assert redirect_params(page)["code"]
    # the sign-in was logged with no password
    log = login_server.stderr()
    assert PASSWORD not in log


def test_a_wrong_totp_code_and_a_recovery_code_that_works_once(login_server):
    browser = Browser("127.0.0.1", login_server.port)
    app, codes, page = enrol(browser, "nurse2")
    browser = Browser("127.0.0.1", login_server.port)
    page = sign_in_with_password(browser, "nurse2", authorize_path(scope="user/*.rs"))
    wrong = "000000" if app.code() != "000000" else "111111"
    page = browser.submit(page, "/oauth2/login/code", code=wrong)
    assert page.status == 200 and page.alert() == INVALID_CODE, page
    assert "sign-in failed for nurse2 from 127.0.0.1: wrong code" in login_server.stderr()
    page = browser.submit(page, "/oauth2/login/code", code=codes[0])
    assert redirect_params(page)["code"]
    # the same recovery code again: refused
    browser = Browser("127.0.0.1", login_server.port)
    page = sign_in_with_password(browser, "nurse2", authorize_path(scope="user/*.rs"))
    page = browser.submit(page, "/oauth2/login/code", code=codes[0])
    assert page.alert() == INVALID_CODE, page
    page = browser.submit(page, "/oauth2/login/code", code=codes[1])
    assert redirect_params(page)["code"]


def test_the_session_id_is_renewed_at_each_sign_in_step(login_server):
    # someone who knows (or planted) the cookie of a session before the sign-in gets nothing
    browser = Browser("127.0.0.1", login_server.port)
    page = browser.get(authorize_path())
    planted = dict(browser.cookies)
    assert planted["concerto_session"]
    page = browser.submit(page, "/oauth2/login", username="jane", password=PASSWORD)
    redirect_params(page)
    assert browser.cookies["concerto_session"] != planted["concerto_session"]
    attacker = Browser("127.0.0.1", login_server.port)
    attacker.cookies = dict(planted)
    page = attacker.get(authorize_path())
    assert page.status == 200 and page.form("/oauth2/login"), page  # asked for the password
    assert attacker.cookies["concerto_session"] != browser.cookies["concerto_session"]
    # the new value is the signed-in session (single sign-on)
    redirect_params(browser.get(authorize_path()))

    # staff: renewed after the password and again after the second factor, and the pending
    # authorization request follows the session
    browser = Browser("127.0.0.1", login_server.port)
    page = browser.get(authorize_path(scope="openid user/*.rs"))
    first = browser.cookies["concerto_session"]
    page = browser.submit(page, "/oauth2/login", username="nurse4", password=PASSWORD)
    assert page.status == 200, page
    second = browser.cookies["concerto_session"]
    assert second != first
    app = Authenticator(page.parser.by_id["totp-secret"].strip())
    page = browser.submit(page, "/oauth2/login/enroll", code=app.code())
    assert page.status == 200, page
    third = browser.cookies["concerto_session"]
    assert third not in (first, second)
    page = browser.submit(page, "/oauth2/continue")
    assert redirect_params(page)["code"]
    # the value of the middle step does not reach the signed-in session either
    attacker = Browser("127.0.0.1", login_server.port)
    attacker.cookies = {"concerto_session": second}
    page = attacker.get(authorize_path(scope="openid user/*.rs"))
    assert page.status == 200 and page.form("/oauth2/login"), page


def test_password_checks_do_not_hold_up_other_requests():
    # one event loop; password checks (argon2id, tens of milliseconds each) run on the
    # server's workers, so /fhir/metadata is answered while sign-ins are still being checked
    srv = make_login_server(server_class=functools.partial(Server, threads=1))
    try:
        n = 6
        browsers = [Browser("127.0.0.1", srv.port) for _ in range(n)]
        pages = [b.get(authorize_path()) for b in browsers]
        order, lock = [], threading.Lock()
        sent = threading.Barrier(n + 1)

        def sign_in(i):
            b, page = browsers[i], pages[i]
            form = dict(page.form("/oauth2/login").fields, username="jane", password=PASSWORD)
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            conn.request("POST", "/oauth2/login", body=urllib.parse.urlencode(form), headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": "; ".join(f"{k}={v}" for k, v in b.cookies.items())})
            sent.wait()
            response = conn.getresponse()
            response.read()
            conn.close()
            with lock:
                order.append(("sign-in", response.status))

        threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        sent.wait()
        time.sleep(0.005)  # the sign-ins reach the server first
        r = srv.client.get("/fhir/metadata", auth=None)
        with lock:
            order.append(("metadata", r.status))
        for t in threads:
            t.join()
        assert sorted(order) == sorted([("metadata", 200)] + [("sign-in", 303)] * n), order
        # n checks on two workers take at least three rounds: the metadata comes back while
        # some are still running (on the loop, it would wait for every one read before it)
        assert order.index(("metadata", 200)) <= n - 2, order

        # a client that leaves while its password is being checked: nothing is answered, the
        # server goes on
        b = Browser("127.0.0.1", srv.port)
        page = b.get(authorize_path())
        form = dict(page.form("/oauth2/login").fields, username="jane", password=PASSWORD)
        for _ in range(3):
            body = urllib.parse.urlencode(form).encode()
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
                sock.sendall(b"POST /oauth2/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/x-www-form-urlencoded\r\n"
                             + f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n"
                             .encode() + body)
        time.sleep(0.5)
        assert srv.client.get("/fhir/metadata", auth=None).status == 200
    finally:
        problems = srv.stop_checked()
        srv.cleanup()
    assert not problems, "\n".join(problems)


def test_a_wrong_password_gets_the_one_message(browser, login_server):
    page = sign_in_with_password(browser, "jane")
    assert "code" in redirect_params(page)
    browser.cookies.clear()
    page = browser.get(authorize_path())
    for username, password in (("jane", "wrong password here"), ("nobody", PASSWORD)):
        page = browser.submit(page, "/oauth2/login", username=username, password=password)
        assert page.status == 200
        assert page.alert() == INVALID_USER, page
        assert 'role="alert"' in page.text
    log = login_server.stderr()
    assert "sign-in failed for jane from 127.0.0.1: wrong password" in log
    assert "sign-in failed for nobody from 127.0.0.1: unknown user" in log
    assert "wrong password here" not in log


def test_lockout_after_five_failures_refuses_the_right_password(browser, login_server):
    page = browser.get(authorize_path())
    for _ in range(5):
        page = browser.submit(page, "/oauth2/login", username="locked", password="not it at all")
        assert page.alert() == INVALID_USER
    page = browser.submit(page, "/oauth2/login", username="locked", password=PASSWORD)
    assert page.status == 200 and page.alert() == INVALID_USER, page
    assert "sign-in failed for locked from 127.0.0.1: account locked" in login_server.stderr()


# ---- refusals ----------------------------------------------------------------------------

def test_pkce_missing_or_plain_goes_back_with_invalid_request(browser):
    for method, challenge in ((None, None), ("plain", "x" * 43), ("S256", None)):
        path = authorize_path(method=method, challenge=challenge)
        if challenge is None:
            path = re.sub(r"&code_challenge=[^&]*", "", path)
        page = browser.get(path)
        params = redirect_params(page)
        assert params["error"] == "invalid_request", params
        assert "S256" in params["error_description"] or "code_challenge" in params[
            "error_description"]
        assert params["state"] == "st-1"
        assert "code" not in params


def test_other_refusals_go_back_to_the_app(browser):
    cases = [
        (authorize_path(response_type="token"), "unsupported_response_type"),
        (authorize_path(launch="xyz"), "invalid_request"),
        (authorize_path(aud="https://elsewhere.example/fhir"), "invalid_request"),
        (authorize_path(client_id="narrow", scope="patient/Patient.rs"), "invalid_scope"),
        (authorize_path(prompt="none"), "login_required"),
    ]
    for path, error in cases:
        params = redirect_params(browser.get(path))
        assert params["error"] == error, (path, params)
    params = redirect_params(browser.get(authorize_path(launch="xyz")))
    assert "EHR launch" in params["error_description"]
    # aud equal to the FHIR base is accepted
    page = browser.get(authorize_path(aud=f"http://127.0.0.1:{browser.port}/fhir"))
    assert page.status == 200, page


def test_scopes_with_a_query_are_refused_by_name(browser):
    # SMART v2 granular scopes (a query after the permissions) are not applied: refused when
    # asked for, with the scope named, rather than granted and failing on every request
    scope = "openid patient/Patient.rs patient/Observation.rs?category=laboratory"
    params = redirect_params(browser.get(authorize_path(scope=scope, state="q-1")))
    assert params["error"] == "invalid_scope"
    assert "patient/Observation.rs?category=laboratory" in params["error_description"]
    assert "not supported" in params["error_description"]
    assert params["state"] == "q-1" and "code" not in params


def test_a_wrong_redirect_uri_or_an_unknown_client_gets_a_page_not_a_redirect(browser):
    for path in (authorize_path(redirect_uri="http://127.0.0.1:9/other"),
                 authorize_path(redirect_uri="https://evil.example/cb"),
                 authorize_path(redirect_uri=None),
                 authorize_path(client_id="nobody"),
                 authorize_path(client_id=None)):
        page = browser.get(path)
        assert page.status == 400, (path, page)
        assert page.location is None
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.alert()


def test_csrf_token_missing_or_wrong_is_refused(browser, login_server):
    page = browser.get(authorize_path())
    form = page.form("/oauth2/login")
    good = dict(form.fields, username="jane", password=PASSWORD)
    for csrf in (None, "wrong" + form.fields["csrf"][5:], ""):
        data = dict(good)
        if csrf is None:
            del data["csrf"]
        else:
            data["csrf"] = csrf
        r = browser.request("POST", "/oauth2/login", form=data)
        assert r.status == 403, r
        assert r.location is None
    # without the session cookie, the right token is refused too
    other = Browser("127.0.0.1", login_server.port)
    assert other.request("POST", "/oauth2/login", form=good).status == 403
    # nothing happened: the session is not signed in (the app still gets the login page)
    assert browser.get(authorize_path()).status == 200
    # and the form with its token works
    assert redirect_params(browser.request("POST", "/oauth2/login", form=good))["code"]


def test_cookie_flags_over_plain_http(browser):
    page = browser.get(authorize_path())
    cookie = page.headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    assert name == "concerto_session"
    value = rest.split(";")[0]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    attrs = [a.strip() for a in cookie.split(";")[1:]]
    assert "HttpOnly" in attrs and "SameSite=Lax" in attrs and "Path=/" in attrs
    assert "Secure" not in attrs


def test_single_sign_on_skips_the_password_unless_prompt_login(browser):
    page = sign_in_with_password(browser, "jane")
    assert redirect_params(page)["code"]
    # another authorization in the same browser: straight back with a code
    page = browser.get(authorize_path(state="again"))
    assert page.status == 302, page
    params = redirect_params(page)
    assert params["state"] == "again" and params["code"]
    # prompt=login asks for the password again
    page = browser.get(authorize_path(prompt="login"))
    assert page.status == 200 and page.form("/oauth2/login"), page


def test_logout_ends_the_session(browser):
    page = sign_in_with_password(browser, "jane")
    assert redirect_params(page)["code"]
    page = browser.get("/oauth2/logout")
    assert page.status == 200 and "jane" in page.text
    # without the CSRF token: refused, still signed in
    r = browser.request("POST", "/oauth2/logout", form={})
    assert r.status == 403
    assert browser.get(authorize_path()).status == 302
    page = browser.get("/oauth2/logout")
    r = browser.submit(page, "/oauth2/logout")
    assert r.status == 200 and "signed out" in r.text
    assert "concerto_session" not in browser.cookies
    # the old cookie is worth nothing now
    page = browser.get(authorize_path())
    assert page.status == 200 and page.form("/oauth2/login")


def test_the_pages_security_headers(browser):
    page = browser.get(authorize_path())
    csp = page.headers["Content-Security-Policy"]
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";")}
    assert directives["default-src"] == "default-src 'none'"
    assert directives["style-src"] == "style-src 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    # forms may go to us and to the app the browser returns to after them
    assert directives["form-action"] == f"form-action 'self' {APP_ORIGIN}"
    assert "script-src" not in csp and "<script" not in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # the only asset is our style sheet
    assert re.findall(r'(?:href|src)="([^"]+)"', page.text) == ["/oauth2/login.css"]
    css = browser.get("/oauth2/login.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    # the methods a page does not take
    assert browser.request("DELETE", "/oauth2/authorize").status == 405
    assert browser.get("/oauth2/login").status == 405


def test_authorize_by_post_form(browser):
    _, challenge = pkce()
    page = browser.request("POST", "/oauth2/authorize", form={
        "response_type": "code", "client_id": "app", "redirect_uri": APP_URI, "scope": SCOPES,
        "state": "posted", "code_challenge_method": "S256", "code_challenge": challenge})
    assert page.status == 200, page
    page = browser.submit(page, "/oauth2/login", username="jane", password=PASSWORD)
    assert redirect_params(page)["state"] == "posted"


# ---- servers of their own ----------------------------------------------------------------

def test_idle_session_asks_for_the_password_again():
    srv = make_login_server(["--session-idle", "2"])
    try:
        browser = Browser("127.0.0.1", srv.port)
        assert redirect_params(sign_in_with_password(browser, "idle"))["code"]
        assert browser.get(authorize_path()).status == 302
        time.sleep(3)
        page = browser.get(authorize_path())
        assert page.status == 200 and page.form("/oauth2/login"), page
    finally:
        problems = srv.stop_checked()
        srv.cleanup()
    assert not problems, "\n".join(problems)


def test_cookie_over_tls_is_secure_with_the_host_prefix(tmp_path):
    import shutil
    import ssl
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out",
                    "server.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    (tmp_path / "server.key").chmod(0o600)
    srv = make_login_server(["--tls-cert", str(tmp_path / "server.pem"),
                             "--tls-key", str(tmp_path / "server.key")],
                            server_class=TlsServer.with_cert(tmp_path / "server.pem"))
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "server.pem"))
        browser = Browser("127.0.0.1", srv.port, context=ctx)
        page = browser.get(authorize_path())
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("__Host-concerto_session=")
        attrs = [a.strip() for a in cookie.split(";")[1:]]
        assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(attrs)
        assert not any(a.startswith("Domain") for a in attrs)
        page = browser.submit(page, "/oauth2/login", username="jane", password=PASSWORD)
        params = redirect_params(page)
        assert params["iss"] == f"https://127.0.0.1:{srv.port}/fhir"
    finally:
        problems = srv.stop_checked()
        srv.cleanup()
    assert not problems, "\n".join(problems)


class TlsServer(Server):
    cert = None

    @classmethod
    def with_cert(cls, cert):
        return type("TlsServerWithCert", (cls,), {"cert": cert})

    def make_client(self, port):
        import ssl
        from test_tls import TlsClient
        return TlsClient("127.0.0.1", port, ssl.create_default_context(cafile=str(self.cert)))
