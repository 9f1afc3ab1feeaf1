"""The coordinators' web app as the server serves it: index.html for the app's routes, the
bundled assets with long caching and gzip, 404 for anything else, the API's paths untouched,
and the built-in OAuth client concerto-web registered for the server's own address."""
import gzip
import re

from conftest import assert_outcome, run_cli

APP_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def assets_of(index):
    """The script and style sheet index.html loads."""
    html = index.body.decode("utf-8")
    script = re.search(r'<script type="module" src="(/assets/main-[A-Za-z0-9]+\.js)"></script>', html)
    style = re.search(r'<link rel="stylesheet" href="(/assets/app-[A-Za-z0-9]+\.css)">', html)
    assert script and style, html
    return script.group(1), style.group(1)


def test_app_routes_get_index_html(client):
    first = None
    for path in ("/", "/worklist", "/patients", "/patients/p1", "/tasks/t1?x=1"):
        r = client.get(path, auth=None)
        assert r.status == 200, (path, r)
        assert r.content_type == "text/html; charset=utf-8"
        assert r.header("Cache-Control") == "no-cache"
        assert r.header("Content-Security-Policy") == APP_CSP
        assert r.header("X-Frame-Options") == "DENY"
        assert r.header("X-Content-Type-Options") == "nosniff"
        assert b'<div id="app">' in r.body
        # no inline script: every script comes from a file of this origin
        assert re.findall(rb"<script[^>]*>", r.body) == [re.search(rb"<script[^>]*>", r.body).group(0)]
        assert b"src=\"/assets/" in r.body
        first = first or r.body
        assert r.body == first
    etag = client.get("/", auth=None).header("ETag")
    assert etag
    r = client.get("/", auth=None, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""


def test_assets_are_cached_for_a_year_with_their_type(client):
    script, style = assets_of(client.get("/", auth=None))
    for path, kind in ((script, "text/javascript; charset=utf-8"), (style, "text/css; charset=utf-8")):
        r = client.get(path, auth=None)
        assert r.status == 200, r
        assert r.content_type == kind
        assert r.header("Cache-Control") == "public, max-age=31536000, immutable"
        assert r.header("Content-Encoding") is None
        assert r.header("ETag")
        assert int(r.header("Content-Length")) == len(r.body) > 100
        z = client.get(path, auth=None, headers={"Accept-Encoding": "gzip, deflate"})
        assert z.status == 200
        assert z.header("Content-Encoding") == "gzip"
        assert z.header("Vary") == "Accept-Encoding"
        assert len(z.body) < len(r.body)
        assert gzip.decompress(z.body) == r.body
        r = client.get(path, auth=None, headers={"If-None-Match": r.header("ETag")})
        assert r.status == 304
    h = client.head(script, auth=None)
    assert h.status == 200 and h.body == b""


def test_unknown_files_are_404(client):
    for path in ("/assets/main-NOPE.js", "/assets/", "/favicon.ico", "/robots.txt",
                 "/patients/report.pdf"):
        r = client.get(path, auth=None)
        assert r.status == 404, (path, r)
        assert r.header("Cache-Control") == "no-store"
        assert b"<html" not in r.body


def test_api_paths_are_untouched(client):
    r = client.get("/fhir/metadata", auth=None)
    assert r.status == 200 and r.json["resourceType"] == "CapabilityStatement"
    assert r.header("Cache-Control") == "no-store"
    # the API still asks for a token and still answers its own 404s
    r = client.get("/fhir/Patient", auth=None)
    assert r.status == 401
    for path in ("/fhirx", "/fhir/Patient/1/foo", "/healthz/x", "/oauth2/nothing", "/admin/nothing"):
        assert_outcome(client.get(path), 404, "not-found", "no such endpoint")
    assert client.get("/healthz").body == b"ok\n"
    # other methods on the app's paths are not the app's
    r = client.post("/worklist", "x", headers={"Content-Type": "text/plain"})
    assert r.status == 404, r


def test_the_builtin_client_names_the_server_address(server):
    r = run_cli("client", "list", "--db", str(server.db))
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("concerto-web "))
    assert "public" in line
    assert f"http://localhost:{server.port}/ http://127.0.0.1:{server.port}/" in line
    assert "user/*.rs user/Task.u" in line


def test_the_builtin_client_follows_base_url(make_server):
    srv = make_server(args=["--base-url", "https://care.example.org/fhir"])
    r = run_cli("client", "list", "--db", str(srv.db))
    line = next(l for l in r.stdout.splitlines() if l.startswith("concerto-web "))
    assert line.rstrip().endswith(" https://care.example.org/"), line
    # the next start on another address replaces the redirect URIs
    srv.args = []
    srv.restart()
    r = run_cli("client", "list", "--db", str(srv.db))
    line = next(l for l in r.stdout.splitlines() if l.startswith("concerto-web "))
    assert line.rstrip().endswith(f" http://localhost:{srv.port}/ http://127.0.0.1:{srv.port}/"), line
