# tocsin — SPDX-License-Identifier: MIT
#
# The command line and configuration contract (DESIGN §7, §8.5): --help,
# --version and --help-config exit 0; a bad flag, a bad config file or a bad
# environment value exits 2 with a message naming the problem. None of these
# needs Redis or Kafka: tocsind must fail before it connects anywhere.

import json

from helpers import run_tocsind


def _stderr(proc):
    return proc.stderr.decode(errors="replace")


def test_help_exits_zero_and_shows_usage():
    p = run_tocsind(["--help"])
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "usage" in out.lower(), out
    assert "-c" in out, out


def test_version_exits_zero_and_prints_version():
    p = run_tocsind(["--version"])
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "0.1.0" in out, out


def test_help_config_lists_keys_and_variables():
    p = run_tocsind(["--help-config"])
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    for needle in ("http.listen", "TOCSIN_HTTP_LISTEN", "redis.prefix", "ws.replay_cap"):
        assert needle in out, f"{needle} missing from --help-config"


def test_unknown_flag_exits_2_naming_it():
    p = run_tocsind(["--no-such-flag"])
    assert p.returncode == 2, _stderr(p)
    assert "no-such-flag" in _stderr(p)


def test_missing_config_file_exits_2(tmp_path):
    path = tmp_path / "absent.json"
    p = run_tocsind(["-c", str(path)])
    assert p.returncode == 2, _stderr(p)
    assert "absent.json" in _stderr(p)


def test_unknown_config_key_exits_2_naming_it(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"http": {"listen": "127.0.0.1:1", "lisen": "x"}}))
    p = run_tocsind(["-c", str(path)])
    assert p.returncode == 2, _stderr(p)
    assert "http.lisen" in _stderr(p)


def test_wrong_type_in_config_exits_2_naming_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"ws": {"send_queue": "lots"}}))
    p = run_tocsind(["-c", str(path)])
    assert p.returncode == 2, _stderr(p)
    assert "ws.send_queue" in _stderr(p)


def test_config_file_not_json_exits_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"http": {"listen": ')
    p = run_tocsind(["-c", str(path)])
    assert p.returncode == 2, _stderr(p)
    assert "bad.json" in _stderr(p)


def test_bad_env_value_exits_2_naming_variable():
    p = run_tocsind([], env={"TOCSIN_WS_REPLAY_CAP": "many"})
    assert p.returncode == 2, _stderr(p)
    assert "TOCSIN_WS_REPLAY_CAP" in _stderr(p)


def test_out_of_range_env_value_exits_2():
    p = run_tocsind([], env={"TOCSIN_WS_SEND_QUEUE": "0"})
    assert p.returncode == 2, _stderr(p)
    assert "TOCSIN_WS_SEND_QUEUE" in _stderr(p)


def test_bad_listen_address_exits_2():
    p = run_tocsind([], env={"TOCSIN_HTTP_LISTEN": "nowhere"})
    assert p.returncode == 2, _stderr(p)
    assert "TOCSIN_HTTP_LISTEN" in _stderr(p) or "http.listen" in _stderr(p)
