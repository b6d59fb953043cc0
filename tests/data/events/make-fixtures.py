#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# Writes the incident event fixtures in valid/ and invalid/ (DESIGN §2). Run
# once after changing a rule; the generated files are committed, and
# tests/e2e/test_schema_diff.py judges each with the C validator and with
# jsonschema. Every invalid fixture breaks exactly one rule, named in its file.
import copy
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = {
    "event_id": "evt-0001",
    "incident_id": "INC-2026-11-25:playback",
    "version": 1,
    "title": "Playback errors in Europe",
    "occurred_at": "2026-11-25T12:00:00Z",
    "status": "investigating",
    "impact": "major",
    "components": ["playback"],
}


def ev(**changes):
    e = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is DROP:
            e.pop(k)
        else:
            e[k] = v
    return e


DROP = object()


def ids(n, prefix="c"):
    return [f"{prefix}{i}" for i in range(n)]


def padded(size):
    """BASE plus an unknown field, compact, exactly size bytes."""
    e = ev(pad="")
    n = size - len(json.dumps(e, separators=(",", ":")).encode())
    e["pad"] = "p" * n
    text = json.dumps(e, separators=(",", ":"))
    assert len(text.encode()) == size
    return text


# 200 code points of mixed width: 1-byte, 2-byte, 3-byte and 4-byte UTF-8.
TITLE_200 = ("Störung " + "日本語 " + "\U0001F525" * 3 + " ") * 10
TITLE_200 = (TITLE_200 + "x" * 200)[:200]
assert len(TITLE_200) == 200

VALID = {
    "minimal": ev(),
    "full": ev(kind="incident", status="identified", impact="critical",
               message="Some users cannot start videos.",
               components=["playback", "search"], regions=["eu-west", "eu-central"],
               component_status={"playback": "major_outage", "search": "degraded_performance"},
               affected_users=12000,
               links={"status_page": "https://status.example.com/i/1"}),
    "maintenance": ev(kind="maintenance", status="scheduled", impact="none",
                      title="Database upgrade", components=["db"]),
    "maintenance-completed": ev(kind="maintenance", status="completed", impact="none"),
    "resolved": ev(status="resolved", impact="minor"),
    "title-200-code-points-unicode": ev(title=TITLE_200),
    "message-4096-chars": ev(message="m" * 4096),
    "message-empty": ev(message=""),
    "unknown-fields": ev(team={"oncall": ["alice"], "page": True}, severity=4, tags=None),
    "links": ev(links={"status_page": "https://status.example.com",
                       "postmortem": "https://example.com/" + "p" * (2048 - 20)}),
    "component-status": ev(component_status={
        "playback": "operational", "a": "degraded_performance", "b": "partial_outage",
        "c": "major_outage", "d": "under_maintenance"}),
    "regions-empty": ev(regions=[]),
    "regions-64": ev(regions=ids(64, "r")),
    "components-64": ev(components=ids(64)),
    "component-id-64-chars": ev(components=["a" * 64]),
    "incident-id-128-chars": ev(incident_id="A:b.c_d-" * 16),
    "event-id-128-code-points": ev(event_id="é" * 128),
    "version-integral-real": ev(version=2.0),
    "version-2-53-minus-1": ev(version=9007199254740991),
    "affected-users-zero": ev(affected_users=0),
    "occurred-at-fraction": ev(occurred_at="2026-11-25T12:00:00.123456789Z"),
    "occurred-at-leap-second": ev(occurred_at="2026-12-31T23:59:60Z"),
}

INVALID = {
    "not-an-object": [ev()],
    "string-root": "evt",
    "event-id-missing": ev(event_id=DROP),
    "event-id-empty": ev(event_id=""),
    "event-id-129-chars": ev(event_id="e" * 129),
    "event-id-number": ev(event_id=1),
    "incident-id-missing": ev(incident_id=DROP),
    "incident-id-empty": ev(incident_id=""),
    "incident-id-129-chars": ev(incident_id="I" * 129),
    "incident-id-bad-char": ev(incident_id="INC 1"),
    "incident-id-non-ascii": ev(incident_id="INC-é"),
    "version-missing": ev(version=DROP),
    "version-zero": ev(version=0),
    "version-negative": ev(version=-3),
    "version-string": ev(version="1"),
    "version-fraction": ev(version=1.5),
    "version-bool": ev(version=True),
    "version-2-53": ev(version=9007199254740992),
    "title-missing": ev(title=DROP),
    "title-empty": ev(title=""),
    "title-201-chars": ev(title=TITLE_200 + "!"),
    "title-null": ev(title=None),
    "occurred-at-missing": ev(occurred_at=DROP),
    "occurred-at-offset": ev(occurred_at="2026-11-25T12:00:00+01:00"),
    "occurred-at-lowercase-z": ev(occurred_at="2026-11-25T12:00:00z"),
    "occurred-at-lowercase-t": ev(occurred_at="2026-11-25t12:00:00Z"),
    "occurred-at-no-zone": ev(occurred_at="2026-11-25T12:00:00"),
    "occurred-at-month-13": ev(occurred_at="2026-13-01T12:00:00Z"),
    "occurred-at-month-00": ev(occurred_at="2026-00-01T12:00:00Z"),
    "occurred-at-day-32": ev(occurred_at="2026-11-32T12:00:00Z"),
    "occurred-at-day-00": ev(occurred_at="2026-11-00T12:00:00Z"),
    "occurred-at-hour-24": ev(occurred_at="2026-11-25T24:00:00Z"),
    "occurred-at-minute-60": ev(occurred_at="2026-11-25T12:60:00Z"),
    "occurred-at-second-61": ev(occurred_at="2026-11-25T12:00:61Z"),
    "occurred-at-empty-fraction": ev(occurred_at="2026-11-25T12:00:00.Z"),
    "occurred-at-trailing-newline": ev(occurred_at="2026-11-25T12:00:00Z\n"),
    "occurred-at-unix-seconds": ev(occurred_at=1764072000),
    "kind-unknown": ev(kind="outage"),
    "kind-number": ev(kind=1),
    "status-wrong-for-kind": ev(kind="maintenance", status="resolved"),
    "status-maintenance-on-incident": ev(status="scheduled"),
    "status-missing": ev(status=DROP),
    "status-unknown": ev(status="down"),
    "impact-missing": ev(impact=DROP),
    "impact-unknown": ev(impact="severe"),
    "message-4097-chars": ev(message="m" * 4097),
    "message-not-string": ev(message=["a"]),
    "components-missing": ev(components=DROP),
    "components-empty": ev(components=[]),
    "components-65-items": ev(components=ids(65)),
    "components-not-array": ev(components="playback"),
    "component-id-uppercase": ev(components=["Playback"]),
    "component-id-65-chars": ev(components=["a" * 65]),
    "component-id-empty": ev(components=[""]),
    "component-id-trailing-newline": ev(components=["playback\n"]),
    "regions-65-items": ev(regions=ids(65, "r")),
    "region-id-bad-char": ev(regions=["eu west"]),
    "regions-not-array": ev(regions="eu-west"),
    "component-status-bad-key": ev(component_status={"Playback": "operational"}),
    "component-status-bad-value": ev(component_status={"playback": "down"}),
    "component-status-not-object": ev(component_status=["playback"]),
    "affected-users-negative": ev(affected_users=-1),
    "affected-users-fraction": ev(affected_users=0.5),
    "links-http": ev(links={"status_page": "http://status.example.com"}),
    "links-2049-chars": ev(links={"postmortem": "https://example.com/" + "p" * (2049 - 20)}),
    "links-not-string": ev(links={"status_page": 1}),
    "links-not-object": ev(links=["https://example.com"]),
}

# Texts json.dumps cannot write: each is valid JSON text that breaks a rule.
BASE_TEXT = json.dumps(BASE, indent=2)
RAW_INVALID = {
    "duplicate-keys": BASE_TEXT.replace('"version": 1,', '"version": 1,\n  "version": 2,'),
    "nul-in-unknown-field": BASE_TEXT[:-2] + ',\n  "note": "a\\u0000b"\n}',
    "nul-in-key": BASE_TEXT[:-2] + ',\n  "a\\u0000b": 1\n}',
    "title-lone-surrogate": BASE_TEXT.replace('"Playback errors in Europe"', '"\\ud83d oops"'),
    "too-big-65537-bytes": padded(65537),
    "unknown-field-integer-over-int64": BASE_TEXT[:-2] + ',\n  "count": 9223372036854775808\n}',
}
RAW_VALID = {
    "size-65536-bytes": padded(65536),
}


def write(folder, name, text):
    with open(os.path.join(HERE, folder, name + ".json"), "w", encoding="utf-8") as f:
        f.write(text)


def main():
    for folder in ("valid", "invalid"):
        shutil.rmtree(os.path.join(HERE, folder), ignore_errors=True)
        os.makedirs(os.path.join(HERE, folder))
    for name, e in VALID.items():
        write("valid", name, json.dumps(e, indent=2, ensure_ascii=False) + "\n")
    for name, text in RAW_VALID.items():
        write("valid", name, text)
    for name, e in INVALID.items():
        write("invalid", name, json.dumps(e, indent=2, ensure_ascii=False) + "\n")
    for name, text in RAW_INVALID.items():
        write("invalid", name, text)


if __name__ == "__main__":
    main()
