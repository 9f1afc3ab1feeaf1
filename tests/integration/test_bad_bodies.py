"""Bodies that are not a FHIR resource: each is refused with an OperationOutcome, nothing is
written and the server keeps answering."""
import re

import pytest

from conftest import FHIR_JSON, assert_nothing_written, assert_outcome, dumps, patient

LINE_COLUMN = re.compile(r"line \d+, column \d+")

GOOD = dumps(patient())

MALFORMED = {
    "truncated": GOOD[: len(GOOD) // 2],
    "truncated in a string": '{"resourceType":"Pat',
    "only an opening brace": "{",
    "trailing comma in an object": '{"resourceType":"Patient","active":true,}',
    "trailing comma in an array": '{"resourceType":"Patient","name":[{"family":"x"},]}',
    "single quotes": "{'resourceType':'Patient'}",
    "unquoted member name": '{resourceType:"Patient"}',
    "duplicate member": '{"resourceType":"Patient","active":true,"active":false}',
    "duplicate member nested": '{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}',
    "lone high surrogate": '{"resourceType":"Patient","name":[{"family":"\\ud800"}]}',
    "lone low surrogate": '{"resourceType":"Patient","name":[{"family":"\\udc00x"}]}',
    "NUL escape": '{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}',
    "raw control character": '{"resourceType":"Patient","name":[{"family":"a\x01b"}]}',
    "bad escape": '{"resourceType":"Patient","name":[{"family":"\\x41"}]}',
    "leading zero": '{"resourceType":"Patient","multipleBirthInteger":01}',
    "NaN": '{"resourceType":"Patient","multipleBirthInteger":NaN}',
    "comment": '{"resourceType":"Patient" /* hi */}',
    "trailing garbage": GOOD + "x",
    "two documents": GOOD + GOOD,
    "nesting depth 1000": '{"resourceType":"Patient","extension":' + "[" * 1000 + "]" * 1000 + "}",
    "objects nested 1000 deep": '{"resourceType":"Patient","a":' + '{"a":' * 1000 + "1"
                                + "}" * 1000 + "}",
}

INVALID_UTF8 = {
    "invalid UTF-8 byte": b'{"resourceType":"Patient","name":[{"family":"\xff"}]}',
    "truncated UTF-8 sequence": b'{"resourceType":"Patient","name":[{"family":"\xc3"}]}',
    "overlong UTF-8": b'{"resourceType":"Patient","name":[{"family":"\xc0\xaf"}]}',
    "UTF-8 encoded surrogate": b'{"resourceType":"Patient","name":[{"family":"\xed\xa0\x80"}]}',
    "Latin-1 text": '{"resourceType":"Patient","name":[{"family":"Müller"}]}'.encode("latin-1"),
    "UTF-16": GOOD.encode("utf-16"),
}


@pytest.fixture
def before(client):
    return client.last_change()


def post(client, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return client.post("Patient", data, headers={"Content-Type": FHIR_JSON})


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_json_is_400_with_a_position(client, before, name):
    r = post(client, MALFORMED[name])
    assert_outcome(r, 400, "structure", LINE_COLUMN)
    r = client.put("Patient/bad-body", MALFORMED[name].encode(),
                   headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "structure", LINE_COLUMN)
    assert_nothing_written(client, before)


@pytest.mark.parametrize("name", list(INVALID_UTF8))
def test_invalid_utf8_is_400(client, before, name):
    r = post(client, INVALID_UTF8[name])
    assert_outcome(r, 400, "structure", LINE_COLUMN)
    assert_nothing_written(client, before)


def test_the_position_names_the_line_and_column(client, before):
    body = '{\n  "resourceType": "Patient",\n  "active": true,\n  "gender": "male",,\n}'
    r = post(client, body)
    assert_outcome(r, 400, "structure", "line 4, column 20")
    body = '{\n  "resourceType": "Patient",\n  "name": [ { "family": "x" ]\n}'
    assert_outcome(post(client, body), 400, "structure", "line 3, column")
    assert_nothing_written(client, before)


def test_empty_body_is_400(client, before):
    assert_outcome(post(client, b""), 400, "structure", "no body")
    r = client.put("Patient/empty", b"", headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "structure", "no body")
    assert_outcome(client.post("Patient"), 400, "structure", "no body")
    assert_nothing_written(client, before)


@pytest.mark.parametrize("body", [" ", "\n\t ", "null"])
def test_whitespace_or_null_body_is_400(client, before, body):
    r = post(client, body)
    assert r.status == 400, r
    assert r.json["issue"][0]["code"] == "structure"
    assert_nothing_written(client, before)


@pytest.mark.parametrize("body", ["[]", '[{"resourceType":"Patient"}]', '"Patient"', "42", "1.5",
                                  "true"])
def test_json_that_is_not_an_object_is_400(client, before, body):
    assert_outcome(post(client, body), 400, "structure", "JSON object")
    assert_nothing_written(client, before)


def test_missing_resource_type_is_400(client, before):
    assert_outcome(post(client, '{"active":true}'), 400, "structure", "resourceType")
    assert_outcome(post(client, "{}"), 400, "structure", "resourceType")
    r = client.put("Patient/no-rt", b'{"id":"no-rt"}', headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400, "structure", "resourceType")
    assert_nothing_written(client, before)


def test_resource_type_that_is_not_a_string_is_400(client, before):
    for value in ("1", "null", '["Patient"]', '{"x":1}', "true"):
        r = post(client, '{"resourceType":%s}' % value)
        assert r.status == 400, r
        assert r.json["issue"][0]["code"] == "structure", r
    assert_nothing_written(client, before)


def test_unknown_resource_type_is_400(client, before):
    assert_outcome(post(client, '{"resourceType":"Foo"}'), 400, "invalid", "Foo")
    assert_outcome(post(client, '{"resourceType":"patient"}'), 400, "invalid", "patient")
    assert_outcome(post(client, '{"resourceType":""}'), 400, "invalid")
    assert_nothing_written(client, before)


def test_server_keeps_serving_after_bad_bodies(client):
    r = client.post("Patient", patient())
    assert r.status == 201, r
    assert client.get(f"Patient/{r.json['id']}").status == 200
