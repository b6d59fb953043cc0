# tocsin — SPDX-License-Identifier: MIT
#
# Differential test of the incident event contract (DESIGN §2): every fixture
# in tests/data/events/{valid,invalid} is judged by the C validator
# (tc-validate-event, linked with tocsin_core) and by python jsonschema
# (Draft 2020-12) against schemas/incident-event.schema.json; the two verdicts
# and the fixture's folder must agree. Needs only a build, no servers.
#
# The rules JSON Schema cannot state (size in bytes, strict JSON, duplicate
# keys, lone surrogates, integers that fit in 64 bits) are checked here by the
# loader before the schema, as every reader of the topic must.

import glob
import json
import os
import subprocess

import pytest
from jsonschema import Draft202012Validator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(REPO, "schemas", "incident-event.schema.json")
FIXTURES = os.path.join(REPO, "tests", "data", "events")
MAX_BYTES = 65536


def build_dir():
    d = os.environ.get("TOCSIN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    return d if os.path.isabs(d) else os.path.join(REPO, d)


def fixtures():
    files = sorted(glob.glob(os.path.join(FIXTURES, "valid", "*.json")))
    files += sorted(glob.glob(os.path.join(FIXTURES, "invalid", "*.json")))
    return files


def fixture_id(path):
    return os.path.relpath(path, FIXTURES)


class LoadError(Exception):
    pass


def _reject_constant(name):
    raise LoadError(f"not strict JSON: {name}")


def _int64(literal):
    # jansson (json_int_t) holds signed 64-bit integers and refuses bigger
    # literals outright; a real such as 1e30 is fine for both.
    value = int(literal)
    if not -2**63 <= value < 2**63:
        raise LoadError(f"integer {literal} does not fit in 64 bits")
    return value


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise LoadError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def load_event(path):
    """The python reader: bytes -> strict JSON value, or LoadError."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) > MAX_BYTES:
        raise LoadError(f"{len(raw)} bytes, over {MAX_BYTES}")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates,
                           parse_constant=_reject_constant, parse_int=_int64)
        # Lone surrogates decode in python but are not Unicode text.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError) as e:
        raise LoadError(str(e)) from e
    return value


def python_verdict(validator, path):
    try:
        value = load_event(path)
    except LoadError as e:
        return "invalid", f"loader: {e}"
    errors = list(validator.iter_errors(value))
    if errors:
        return "invalid", "; ".join(e.message[:200] for e in errors)
    return "valid", ""


@pytest.fixture(scope="module")
def validator():
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def c_verdicts():
    tool = os.path.join(build_dir(), "tests", "tc-validate-event")
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool} is not built (set TOCSIN_BUILD_DIR)")
    files = fixtures()
    out = subprocess.run([tool] + files, check=True, capture_output=True, text=True,
                         timeout=60).stdout
    verdicts = {}
    for line in out.splitlines():
        parts = line.split("\t")
        assert len(parts) in (2, 3), f"bad tool output line: {line!r}"
        verdicts[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else "")
    assert set(verdicts) == set(files)
    return verdicts


def test_fixture_counts():
    files = fixtures()
    valid = [f for f in files if os.sep + "valid" + os.sep in f]
    invalid = [f for f in files if os.sep + "invalid" + os.sep in f]
    assert len(valid) >= 8
    assert len(invalid) >= 25


@pytest.mark.parametrize("path", fixtures(), ids=fixture_id)
def test_verdicts_agree(path, validator, c_verdicts):
    folder = os.path.basename(os.path.dirname(path))
    c_verdict, c_error = c_verdicts[path]
    py_verdict, py_error = python_verdict(validator, path)
    assert (c_verdict, py_verdict) == (folder, folder), (
        f"{fixture_id(path)}: C says {c_verdict} ({c_error}), "
        f"jsonschema says {py_verdict} ({py_error}), folder says {folder}")


@pytest.mark.parametrize("path", [p for p in fixtures() if "/invalid/" in p], ids=fixture_id)
def test_c_error_names_a_field(path, c_verdicts):
    """The C error text starts with the field name or (root), and for a
    fixture named after a field, with that field."""
    _, error = c_verdicts[path]
    field = error.split(":", 1)[0]
    assert field == "(root)" or field.split("[")[0].split(".")[0] in {
        "event_id", "incident_id", "version", "title", "occurred_at", "kind", "status",
        "impact", "message", "components", "regions", "component_status", "affected_users",
        "links"}, error
    name = os.path.basename(path)
    for prefix in ("event-id", "incident-id", "version", "title", "occurred-at", "kind",
                   "impact", "message", "components", "component-status", "affected-users",
                   "links", "regions"):
        if name.startswith(prefix + "-") and "surrogate" not in name:
            assert error.startswith(prefix.replace("-", "_")), error
