"""Settings from flags, CONCERTO_* environment variables and a config file; the command line
interface of `concerto serve` and `concerto init`."""
import re
import subprocess

import pytest

from conftest import FHIR_JSON, assert_outcome, dumps, patient, run_cli, sanitizer_lines

SERVE_FLAGS = ["--db", "--listen", "--threads", "--max-body", "--base-url", "--synchronous",
               "--log-level", "--port-file", "--config"]
# init takes the settings it documents: the database, how it is synced, and the config file
INIT_FLAGS = ["--db", "--synchronous", "--config"]


def assert_no_sanitizer_report(out):
    lines = sanitizer_lines(out.stderr)
    assert not lines, out.stderr


def big_patient(size):
    return dumps(patient(name=[{"family": "x" * size}])).encode()


# ---- where settings come from -------------------------------------------------------------

def test_settings_from_the_environment(make_server, tmp_dir):
    port_file = tmp_dir / "env.port"
    db = tmp_dir / "env.db"
    srv = make_server(env={"CONCERTO_DB": str(db), "CONCERTO_LISTEN": "127.0.0.1:0",
                           "CONCERTO_PORT_FILE": str(port_file), "CONCERTO_THREADS": "1",
                           "CONCERTO_MAX_BODY": "2048", "CONCERTO_BASE_URL":
                           "https://env.example/fhir"},
                      port_file=port_file, workdir=tmp_dir)
    assert db.exists()
    r = srv.client.post("Patient", patient())
    assert r.status == 201, r
    assert r.header("Location").startswith("https://env.example/fhir/Patient/")
    assert_outcome(srv.client.post("Patient", big_patient(3000),
                                   headers={"Content-Type": FHIR_JSON}), 413, "too-costly", "2048")


def test_settings_from_a_config_file(make_server, tmp_dir):
    port_file = tmp_dir / "file.port"
    db = tmp_dir / "file.db"
    config = tmp_dir / "concerto.conf"
    config.write_text(f"""# a comment
db = {db}
listen = 127.0.0.1:0

port-file={port_file}
   threads = 1
max-body = 2048
base-url = https://file.example/fhir
log-level = warning
""")
    srv = make_server(args=["--config", str(config)], port_file=port_file, workdir=tmp_dir)
    assert db.exists()
    r = srv.client.post("Patient", patient())
    assert r.status == 201, r
    assert r.header("Location").startswith("https://file.example/fhir/Patient/")
    assert srv.client.post("Patient", big_patient(3000),
                           headers={"Content-Type": FHIR_JSON}).status == 413
    assert " info: " not in srv.stderr(), "log-level = warning still logs info lines"


def test_config_file_named_by_the_environment(make_server, tmp_dir):
    port_file = tmp_dir / "cfg-env.port"
    config = tmp_dir / "c.conf"
    config.write_text(f"db = {tmp_dir / 'c.db'}\nlisten = 127.0.0.1:0\nport-file = {port_file}\n")
    srv = make_server(env={"CONCERTO_CONFIG": str(config)}, port_file=port_file, workdir=tmp_dir)
    assert srv.client.healthy()
    assert (tmp_dir / "c.db").exists()


def test_a_flag_beats_the_environment_which_beats_the_file(make_server, tmp_dir):
    config = tmp_dir / "c.conf"
    config.write_text(f"listen = 127.0.0.1:0\nport-file = {tmp_dir / 'from-file'}\n"
                      f"db = {tmp_dir / 'file.db'}\n")
    env = {"CONCERTO_PORT_FILE": str(tmp_dir / "from-env"), "CONCERTO_DB": str(tmp_dir / "env.db")}

    # flag > env > file
    srv = make_server(args=["--config", str(config), "--port-file", str(tmp_dir / "from-flag"),
                            "--db", str(tmp_dir / "flag.db")],
                      env=env, port_file=tmp_dir / "from-flag", workdir=tmp_dir)
    assert srv.client.healthy()
    assert (tmp_dir / "flag.db").exists()
    assert not (tmp_dir / "from-env").exists() and not (tmp_dir / "from-file").exists()
    assert not (tmp_dir / "env.db").exists() and not (tmp_dir / "file.db").exists()
    assert srv.stop() == 0

    # env > file
    srv = make_server(args=["--config", str(config)], env=env, port_file=tmp_dir / "from-env",
                      workdir=tmp_dir)
    assert srv.client.healthy()
    assert (tmp_dir / "env.db").exists()
    assert not (tmp_dir / "from-file").exists() and not (tmp_dir / "file.db").exists()
    assert srv.stop() == 0

    # the file alone
    srv = make_server(args=["--config", str(config)], port_file=tmp_dir / "from-file",
                      workdir=tmp_dir)
    assert srv.client.healthy()
    assert (tmp_dir / "file.db").exists()


def test_flag_with_equals_sign(make_server, tmp_dir):
    port_file = tmp_dir / "eq.port"
    srv = make_server(args=[f"--db={tmp_dir / 'eq.db'}", "--listen=127.0.0.1:0",
                            f"--port-file={port_file}", "--threads=1"],
                      port_file=port_file, workdir=tmp_dir)
    assert srv.client.healthy()
    assert (tmp_dir / "eq.db").exists()


def test_base_url_flag(make_server):
    srv = make_server(args=["--base-url", "https://fhir.example.org/r4"])
    r = srv.client.post("Patient", patient())
    assert r.status == 201, r
    pid = r.json["id"]
    assert r.header("Location") == f"https://fhir.example.org/r4/Patient/{pid}/_history/1"
    h = srv.client.get(f"Patient/{pid}/_history").json
    assert h["entry"][0]["fullUrl"] == f"https://fhir.example.org/r4/Patient/{pid}"
    assert all(l["url"].startswith("https://fhir.example.org/r4/") for l in h["link"])
    cs = srv.client.get("metadata").json
    assert cs["implementation"]["url"] == "https://fhir.example.org/r4"


@pytest.mark.parametrize("mode", ["full", "normal", "off"])
def test_synchronous_modes(make_server, mode):
    srv = make_server(args=["--synchronous", mode])
    r = srv.client.post("Patient", patient())
    assert r.status == 201, r
    srv.restart()
    assert srv.client.get(f"Patient/{r.json['id']}").body == r.body


# ---- help and errors ---------------------------------------------------------------------

def test_serve_help_mentions_every_flag():
    out = run_cli("serve", "--help")
    assert out.returncode == 0, out
    for flag in SERVE_FLAGS:
        assert flag in out.stdout, f"{flag} is not in `concerto serve --help`"
    assert "CONCERTO_" in out.stdout


def test_init_help_mentions_every_flag():
    out = run_cli("init", "--help")
    assert out.returncode == 0, out
    for flag in INIT_FLAGS:
        assert flag in out.stdout, f"{flag} is not in `concerto init --help`"


def test_every_flag_in_help_is_accepted(tmp_dir):
    """Each flag `init --help` documents is accepted by init (and the reverse, above)."""
    out = run_cli("init", "--db", str(tmp_dir / "s.db"), "--synchronous", "normal")
    assert out.returncode == 0, out.stderr


def test_main_help_and_version():
    out = run_cli("--help")
    assert out.returncode == 0
    assert "serve" in out.stdout and "init" in out.stdout
    out = run_cli("version")
    assert out.returncode == 0
    assert re.match(r"concerto \S+", out.stdout)
    out = run_cli()
    assert out.returncode == 2
    out = run_cli("frobnicate")
    assert out.returncode == 2
    assert "frobnicate" in out.stderr


@pytest.mark.parametrize("command", ["serve", "init"])
def test_unknown_flag_exits_2(command, tmp_dir):
    out = run_cli(command, "--db", str(tmp_dir / "x.db"), "--bogus", "1")
    assert out.returncode == 2, out
    assert "--bogus" in out.stderr
    assert not (tmp_dir / "x.db").exists(), "nothing is created when the command line is wrong"
    assert_no_sanitizer_report(out)


@pytest.mark.parametrize("command", ["serve", "init"])
def test_unexpected_argument_and_missing_value_exit_2(command, tmp_dir):
    out = run_cli(command, "--db", str(tmp_dir / "x.db"), "stray")
    assert out.returncode == 2, out
    assert "stray" in out.stderr
    out = run_cli(command, "--db")
    assert out.returncode == 2, out
    assert "--db" in out.stderr
    assert_no_sanitizer_report(out)


@pytest.mark.parametrize("flag,value", [
    ("--listen", "nonsense"), ("--listen", "127.0.0.1:99999"), ("--listen", "127.0.0.1:"),
    ("--threads", "abc"), ("--threads", "-1"), ("--max-body", "10"), ("--max-body", "1e6"),
    ("--log-level", "loud"), ("--synchronous", "sometimes"),
])
def test_bad_setting_values_exit_2(flag, value, tmp_dir):
    out = run_cli("serve", "--db", str(tmp_dir / "x.db"), flag, value, timeout=30)
    assert out.returncode == 2, f"{flag} {value}: exit {out.returncode}, {out.stderr}"
    assert out.stderr.startswith("concerto serve: error: "), out.stderr
    assert (value.rpartition(":")[2] or '""') in out.stderr or flag in out.stderr, \
        "the message names the setting or the bad value"
    assert_no_sanitizer_report(out)


def test_bad_setting_value_for_init_exits_2(tmp_dir):
    out = run_cli("init", "--db", str(tmp_dir / "x.db"), "--synchronous", "sometimes")
    assert out.returncode == 2, f"exit {out.returncode}: {out.stderr}"
    assert "sometimes" in out.stderr
    assert not (tmp_dir / "x.db").exists()


def test_unreadable_config_file_fails(tmp_dir):
    out = run_cli("serve", "--config", str(tmp_dir / "missing.conf"))
    assert out.returncode == 2, out
    assert "missing.conf" in out.stderr
    bad = tmp_dir / "bad.conf"
    bad.write_text("db /tmp/x.db\n")
    out = run_cli("serve", "--config", str(bad))
    assert out.returncode == 2, out
    assert "bad.conf:1" in out.stderr


# ---- init ----------------------------------------------------------------------------------

def test_init_twice_is_harmless(tmp_dir):
    db = tmp_dir / "init.db"
    first = run_cli("init", "--db", str(db))
    assert first.returncode == 0, first.stderr
    m = re.search(r"schema version (\d+)", first.stdout)
    assert m, first.stdout
    assert str(db) in first.stdout
    second = run_cli("init", "--db", str(db))
    assert second.returncode == 0, second.stderr
    assert f"schema version {m.group(1)}" in second.stdout
    assert_no_sanitizer_report(first)
    assert_no_sanitizer_report(second)


def test_init_then_serve_uses_the_database(make_server, tmp_dir):
    db = tmp_dir / "pre.db"
    assert run_cli("init", "--db", str(db)).returncode == 0
    srv = make_server(db=db)
    assert srv.client.post("Patient", patient()).status == 201


def test_init_from_environment(tmp_dir):
    out = run_cli("init", env={"CONCERTO_DB": str(tmp_dir / "e.db")})
    assert out.returncode == 0, out.stderr
    assert (tmp_dir / "e.db").exists()


# ---- databases that cannot be used ---------------------------------------------------------

def unusable_paths(tmp_dir):
    not_a_dir = tmp_dir / "plain-file"
    not_a_dir.write_text("x")
    garbage = tmp_dir / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 200)
    directory = tmp_dir / "a-directory.db"
    directory.mkdir()
    return [(not_a_dir / "x.db", "could not open"),
            (tmp_dir / "no/such/dir/x.db", "could not open"),
            (garbage, "not a Concerto database"),
            (directory, "")]


@pytest.mark.parametrize("command", ["serve", "init"])
def test_unusable_database_fails_with_a_clear_message(command, tmp_dir):
    for path, message in unusable_paths(tmp_dir):
        args = [command, "--db", str(path)]
        if command == "serve":
            args += ["--listen", "127.0.0.1:0", "--port-file", str(tmp_dir / "port")]
        try:
            out = run_cli(*args, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`concerto {command}` kept running on the unusable database {path}")
        assert out.returncode == 1, f"{path}: exit {out.returncode}: {out.stderr}"
        assert out.stderr.startswith(f"concerto {command}: error: "), out.stderr
        assert message in out.stderr, out.stderr
        if "could not open" in message:
            assert str(path) in out.stderr, out.stderr
        assert "sqlite" not in out.stderr.split("detail:")[0].lower() or "detail:" in out.stderr
        assert_no_sanitizer_report(out)
    assert not (tmp_dir / "port").exists()


def test_serve_on_a_port_in_use_fails(make_server, tmp_dir):
    first = make_server()
    try:
        out = run_cli("serve", "--db", str(tmp_dir / "second.db"), "--listen",
                      f"127.0.0.1:{first.port}", "--port-file", str(tmp_dir / "port"), timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second server started on port {first.port}, which is in use")
    assert out.returncode == 1, out
    assert "could not listen" in out.stderr
    assert first.client.healthy()
