"""Every official R4 example resource (npm package hl7.fhir.r4.examples) is accepted and reads
back as it was sent, apart from meta.versionId, meta.lastUpdated and the version-author
extension the server puts first in meta.extension. Examples listed in
tests/data/invalid-examples.txt ("FILENAME reason" per line) are invalid R4 and must be refused
with 400 or 422 instead. The SearchParameter examples that define no parameter this server can
use (UNUSABLE_SEARCH_PARAMETERS: valid R4, but outside the rules of docs/api.md "Custom search
parameters") must be refused with 422 and that reason.

The package is read from $CONCERTO_FHIR_PACKAGE (default build/fhir/hl7.fhir.r4.examples/package,
which tools/install-deps fetches); the test is skipped when it is not there."""
import collections
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import FHIR_JSON, ROOT

WORKERS = 4
INVALID_LIST = ROOT / "tests/data/invalid-examples.txt"
UNUSABLE_SEARCH_PARAMETERS = {
    "SearchParameter-example.json": 'code "_id" is not a valid parameter name',
    "SearchParameter-patient-extensions-Patient-age.json": "it has no expression",
    "SearchParameter-patient-extensions-Patient-birthOrderBoolean.json": "it has no expression",
}


def package_dir():
    env = os.environ.get("CONCERTO_FHIR_PACKAGE")
    path = Path(env) if env else Path("build/fhir/hl7.fhir.r4.examples/package")
    return path if path.is_absolute() else ROOT / path


def invalid_examples():
    """{filename: reason} from tests/data/invalid-examples.txt (missing file: none)."""
    out = {}
    if not INVALID_LIST.exists():
        return out
    for line in INVALID_LIST.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        out[name] = reason.strip()
    return out


def normalize(value):
    """Parsed JSON with decimals kept exactly as written (1.50 is not 1.5)."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    return value


VERSION_AUTHOR = "http://concerto.dev/fhir/StructureDefinition/version-author"


def comparable(text):
    resource = json.loads(text, parse_float=Decimal)
    meta = resource.get("meta")
    if isinstance(meta, dict):
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        extensions = [e for e in meta.get("extension", []) if e.get("url") != VERSION_AUTHOR]
        if extensions:
            meta["extension"] = extensions
        else:
            meta.pop("extension", None)
        if not meta:
            del resource["meta"]
    return normalize(resource)


def first_difference(a, b, path="$"):
    if type(a) != type(b):
        return f"{path}: sent {a!r:.80} got {b!r:.80}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                return f"{path}.{k}: missing in the stored resource"
            if k not in a:
                return f"{path}.{k}: added by the server"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items sent, {len(b)} stored"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: sent {a!r:.80} got {b!r:.80}"


@pytest.mark.examples
def test_official_examples_round_trip(make_server, request):
    pkg = package_dir()
    if not pkg.is_dir():
        pytest.skip(f"the R4 examples package is not at {pkg} (set CONCERTO_FHIR_PACKAGE or run "
                    "tools/install-deps)")
    files = sorted(p for p in pkg.iterdir()
                   if p.is_file() and p.name != "package.json" and not p.name.startswith("."))
    assert files, f"no examples in {pkg}"
    invalid = invalid_examples()
    unknown = sorted(set(invalid) - {p.name for p in files})
    assert not unknown, f"{INVALID_LIST} names files that are not in the package: {unknown[:10]}"

    # examples with the same type and id go to one worker, in order
    groups = collections.OrderedDict()
    audit_events = 0
    for path in files:
        text = path.read_bytes()
        head = json.loads(text)
        key = (head.get("resourceType"), head.get("id") or path.name)
        if key[0] == "AuditEvent":
            audit_events += 1  # the audit trail is read-only: AuditEvents are the server's own
            continue
        groups.setdefault(key, []).append(path)

    srv = make_server(args=["--max-body", str(64 * 1024 * 1024)])
    local = threading.local()
    failures = []
    counts = collections.Counter()
    lock = threading.Lock()

    def session():
        if not hasattr(local, "session"):
            local.session = srv.client.session(timeout=300)
        return local.session

    def one(path):
        text = path.read_bytes()
        resource = json.loads(text)
        rtype = resource["resourceType"]
        rid = resource.get("id")
        s = session()
        headers = {"Content-Type": FHIR_JSON}
        if rid:
            r = s.request("PUT", f"/fhir/{rtype}/{rid}", text, headers)
        else:
            r = s.request("POST", f"/fhir/{rtype}", text, headers)
        if path.name in UNUSABLE_SEARCH_PARAMETERS:
            reason = UNUSABLE_SEARCH_PARAMETERS[path.name]
            if r.status == 422 and reason in json.loads(r.body)["issue"][0]["diagnostics"]:
                return "refused", None
            return "failed", f"a SearchParameter to refuse ({reason}) but answered {r.status}"
        if path.name in invalid:
            if r.status in (400, 422):
                return "refused", None
            return "failed", f"listed as invalid ({invalid[path.name]}) but answered {r.status}"
        if r.status not in (200, 201):
            return "failed", f"{r.status}: {r.body[:300].decode('utf-8', 'replace')}"
        stored_id = rid or json.loads(r.body)["id"]
        back = s.request("GET", f"/fhir/{rtype}/{stored_id}")
        if back.status != 200:
            return "failed", f"read back {back.status}"
        diff = first_difference(comparable(text), comparable(back.body))
        if diff:
            return "failed", f"read back differently: {diff}"
        return "accepted", None

    def group(paths):
        for path in paths:
            try:
                outcome, problem = one(path)
            except Exception as e:  # noqa: BLE001 - reported with the file name
                local.__dict__.pop("session", None)
                outcome, problem = "failed", f"{type(e).__name__}: {e}"
            with lock:
                counts[outcome] += 1
                if problem:
                    failures.append(f"{path.name}: {problem}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(group, groups.values()))

    summary = (f"R4 examples: {len(files)} files, {counts['accepted']} accepted and read back "
               f"equal, {counts['refused']} refused as listed invalid or unusable, "
               f"{counts['failed']} failed")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line("")
        reporter.write_line(summary)
    else:
        print(summary)
    assert srv.client.healthy()
    assert not failures, summary + "\n" + "\n".join(sorted(failures)[:40])
    assert counts["accepted"] + counts["refused"] + audit_events == len(files)
