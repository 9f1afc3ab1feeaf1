"""Task writes follow the state machine of DOMAIN.md and are version-checked: an illegal move is
a 422 that names the allowed moves, a change of status or owner needs If-Match, and of two
people taking the same Task the second is refused. On every write path: PUT, PATCH and
transaction Bundles."""
import threading

from conftest import assert_outcome, create, patient


def task(pid, status="ready", **extra):
    t = {"resourceType": "Task", "status": status, "intent": "order", "priority": "routine",
         "for": {"reference": f"Patient/{pid}"},
         "description": "Call the patient after discharge"}
    t.update(extra)
    return t


def put(client, t, version=None):
    headers = {"If-Match": f'W/"{version}"'} if version else None
    return client.put(f"Task/{t['id']}", t, headers=headers)


def moved(client, t, status, **extra):
    """PUTs t with a new status (and members), with If-Match of its version."""
    body = dict(t, status=status, **extra)
    body.pop("meta", None)
    return put(client, body, t["meta"]["versionId"])


def test_the_happy_path_of_internal_work(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "draft"))
    for status in ("ready", "in-progress", "on-hold", "in-progress", "completed"):
        r = moved(client, t, status)
        assert r.status == 200, r.body
        t = r.json
        assert t["status"] == status
    assert t["meta"]["versionId"] == "6"


def test_the_negotiation_states_of_a_referral(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "requested"))
    for status in ("received", "accepted", "in-progress", "failed"):
        r = moved(client, t, status)
        assert r.status == 200, r.body
        t = r.json


def test_an_illegal_move_names_the_allowed_ones(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "ready"))
    before = client.last_change()
    r = moved(client, t, "completed")
    assert_outcome(r, 422, "business-rule",
                   f"Task/{t['id']} cannot go from ready to completed; from ready it may go to "
                   "cancelled, in-progress or entered-in-error", expression="Task.status")
    assert client.last_change() == before
    # requested cannot skip received
    t2 = create(client, task(pid, "requested"))
    assert_outcome(moved(client, t2, "accepted"), 422, "business-rule",
                   "from requested it may go to received, rejected, cancelled or "
                   "entered-in-error")


def test_final_statuses_stay_final(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "in-progress"))
    t = moved(client, t, "completed").json
    for status in ("in-progress", "ready", "cancelled", "on-hold"):
        assert_outcome(moved(client, t, status), 422, "business-rule",
                       "only entered-in-error (completed is final)")
    # a mistake is still marked as one
    t = moved(client, t, "entered-in-error").json
    assert_outcome(moved(client, t, "completed"), 422, "business-rule",
                   "none (entered-in-error is final)")


def test_cancel_from_anything_unfinished(client):
    pid = create(client, patient())["id"]
    for status in ("draft", "requested", "received", "accepted", "ready", "in-progress",
                   "on-hold"):
        t = create(client, task(pid, status))
        assert moved(client, t, "cancelled").status == 200, status
    t = create(client, task(pid, "failed"))
    assert moved(client, t, "cancelled").status == 422


def test_status_or_owner_changes_need_if_match(client):
    pid = create(client, patient())["id"]
    nurse = create(client, {"resourceType": "Practitioner", "name": [{"family": "Lind"}]})
    t = create(client, task(pid, "ready"))
    body = dict(t, status="in-progress")
    body.pop("meta")
    before = client.last_change()
    assert_outcome(put(client, body), 428, "conflict",
                   f"changing the status of Task/{t['id']} needs If-Match")
    body = dict(t, owner={"reference": f"Practitioner/{nurse['id']}"})
    body.pop("meta")
    assert_outcome(put(client, body), 428, "conflict", "changing the owner of Task")
    assert client.last_change() == before
    # other edits need no header
    body = dict(t, description="Call the patient and her daughter")
    body.pop("meta")
    r = put(client, body)
    assert r.status == 200, r.body
    # with a stale version: 412
    body = dict(t, status="in-progress")
    body.pop("meta")
    assert put(client, body, t["meta"]["versionId"]).status == 412


def test_two_people_cannot_take_the_same_task(client):
    pid = create(client, patient())["id"]
    a = create(client, {"resourceType": "Practitioner", "name": [{"family": "A"}]})
    b = create(client, {"resourceType": "Practitioner", "name": [{"family": "B"}]})
    t = create(client, task(pid, "ready"))
    results = {}
    barrier = threading.Barrier(2)

    def claim(who):
        barrier.wait()
        results[who] = moved(client, t, "in-progress",
                             owner={"reference": f"Practitioner/{who}"})

    threads = [threading.Thread(target=claim, args=(p["id"],)) for p in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    statuses = sorted(r.status for r in results.values())
    assert statuses == [200, 412], {k: (r.status, r.body[:200]) for k, r in results.items()}
    winner = next(k for k, r in results.items() if r.status == 200)
    now = client.get(f"Task/{t['id']}").json
    assert now["owner"]["reference"] == f"Practitioner/{winner}"
    assert now["meta"]["versionId"] == "2"


def test_patches_follow_the_same_rules(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "ready"))
    ops = [{"op": "replace", "path": "/status", "value": "completed"}]
    headers = {"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'}
    r = client.request("PATCH", f"Task/{t['id']}", ops, headers=headers)
    assert_outcome(r, 422, "business-rule", "cannot go from ready to completed")
    ops = [{"op": "replace", "path": "/status", "value": "in-progress"}]
    r = client.request("PATCH", f"Task/{t['id']}", ops,
                       headers={"Content-Type": "application/json-patch+json"})
    assert_outcome(r, 428, "conflict", "needs If-Match")
    r = client.request("PATCH", f"Task/{t['id']}", ops, headers=headers)
    assert r.status == 200, r.body
    assert r.json["status"] == "in-progress"


def test_transactions_follow_the_same_rules(client):
    pid = create(client, patient())["id"]
    t = create(client, task(pid, "ready"))
    other = create(client, task(pid, "ready"))
    before = client.last_change()

    def entry(res, status, version=None):
        body = dict(res, status=status)
        body.pop("meta")
        request = {"method": "PUT", "url": f"Task/{res['id']}"}
        if version:
            request["ifMatch"] = f'W/"{version}"'
        return {"resource": body, "request": request}

    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [entry(t, "in-progress", 1), entry(other, "completed", 1)]}
    r = client.post("", bundle)
    assert r.status == 422, r.body
    assert "cannot go from ready to completed" in r.body.decode()
    assert client.last_change() == before, "a refused transaction wrote part of itself"
    bundle["entry"] = [entry(t, "in-progress")]
    r = client.post("", bundle)
    assert r.status == 428, r.body
    bundle["entry"] = [entry(t, "in-progress", 1), entry(other, "in-progress", 1)]
    r = client.post("", bundle)
    assert r.status == 200, r.body
    assert client.get(f"Task/{other['id']}").json["status"] == "in-progress"
