# tocsin — SPDX-License-Identifier: MIT
#
# The deploy files (deploy/) held to the code and to each other, on a machine
# with no container engine and no cluster. The sample config validates
# against the schema AND tocsind --check-config accepts it; it covers every
# key of the config table but the secrets, which live only in the env file
# and the Secret. The systemd unit passes systemd-analyze verify (ExecStart
# pointed at a built binary) and its security rating. A real redis-server
# loads tocsin-redis.conf (alone and included from Debian's redis.conf) with
# the three durability settings, and tocsind runs on it with the sample
# config. The Containerfile's runtime packages are the runtime halves of
# install-deps.sh's -dev packages (asked of dpkg) and cover tocsind's NEEDED
# libraries; its build stage's sources build tocsind. Compose and Kubernetes
# YAML parse, and their ports, probes, paths, grace periods, services,
# healthchecks and TOCSIN_* variables agree with tocsin.json and tocsind.

import base64
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile

import pytest
import yaml  # Debian's python3-yaml
from jsonschema import Draft202012Validator

from helpers import HarnessError, binary, free_port, http_get, run_tocsind, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")
SAMPLE = os.path.join(DEPLOY, "tocsin.json")
UNIT = os.path.join(DEPLOY, "systemd", "tocsind.service")
# One process per core: tocsind@.service (a copy of UNIT) with this drop-in.
REUSE_PORT_DROPIN = os.path.join(DEPLOY, "systemd", "tocsind@.service.d", "reuse-port.conf")
ENV_EXAMPLE = os.path.join(DEPLOY, "systemd", "tocsind.env.example")
REDIS_CONF = os.path.join(DEPLOY, "redis", "tocsin-redis.conf")
CONTAINERFILE = os.path.join(DEPLOY, "container", "Containerfile")
COMPOSE = os.path.join(DEPLOY, "container", "compose.yaml")
K8S = os.path.join(DEPLOY, "kubernetes")
INSTALL_DEPS = os.path.join(DEPLOY, "install-deps.sh")

# Keys the sample deliberately leaves out, each with its reason. A key added
# to the config table must land in deploy/tocsin.json or here.
OMITTED = {
    "kafka.partitions": "only shapes the embedded Kafka, which production does not run",
}
# writeOnly keys of the schema that hold an address, not a credential:
# redis.url refuses passwords, SMTP credentials are keys of their own.
ADDRESS_NOT_SECRET = {"redis.url", "smtp.url"}

# install-deps.sh packages by role in the image.
BUILD_TOOLS = {"build-essential", "cmake", "pkg-config"}
# libclang-rt-14-dev: libFuzzer and clang's sanitizer runtimes (tests/run.sh --fuzz).
TEST_ONLY_DEV = {"libcmocka-dev", "libclang-rt-14-dev"}
# lib* packages that are not tocsind's: the benchmark's nchan peer.
BENCH_ONLY_LIBS = {"libnginx-mod-nchan"}
# Runtime packages the image adds of its own, each for a reason.
RUNTIME_EXTRAS = {
    "ca-certificates": "https webhooks and smtps verify their peers",
    "curl": "the HEALTHCHECK",
}
SANITIZER_LIBS = ("libasan", "libubsan", "liblsan", "libtsan")


# ------------------------------------------------------------------ helpers


def duration_ms(v):
    """A tocsin duration (DESIGN §7): 250ms, 10s, 5m, 2h, 7d, a bare number
    of seconds, or an integer of seconds."""
    if isinstance(v, int):
        return v * 1000
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)?", v.strip())
    assert m, f"not a duration: {v!r}"
    return int(m.group(1)) * {"ms": 1, "s": 1000, None: 1000, "m": 60000, "h": 3600000,
                              "d": 86400000}[m.group(2)]


def systemd_span_ms(v):
    """A systemd time span as used here: "20s", "2min", "1min 30s", bare seconds."""
    total = 0
    for num, unit in re.findall(r"([0-9]+)\s*(ms|s|sec|min|m|h)?", v):
        total += int(num) * {"ms": 1, "s": 1000, "sec": 1000, None: 1000, "min": 60000,
                             "m": 60000, "h": 3600000}[unit or None]
    assert total > 0, f"not a time span: {v!r}"
    return total


def load_sample():
    with open(SAMPLE) as f:
        return json.load(f)


def flatten(obj, prefix=""):
    """{"http": {"listen": x}} -> {"http.listen": x}; $schema/$comment dropped."""
    out = {}
    for k, v in obj.items():
        if k.startswith("$"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def listen_port(listen):
    return int(listen.rsplit(":", 1)[1])


def sample_port():
    return listen_port(load_sample()["http"]["listen"])


def sample_shutdown_ms():
    return duration_ms(load_sample().get("shutdown", {}).get("timeout", "10s"))


def config_table():
    """(key, variable) of every row of tocsind's key table (--help-config)."""
    p = run_tocsind(["--help-config"])
    assert p.returncode == 0, p.stderr
    rows = []
    for line in p.stdout.decode().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("TOCSIN_"):
            rows.append((parts[0], parts[1]))
    assert len(rows) > 10, p.stdout
    return rows


def schema():
    with open(os.path.join(REPO, "schemas", "config.schema.json")) as f:
        return json.load(f)


def secret_keys():
    """Keys whose values are credentials: the schema's writeOnly keys less
    the ones that only hold an address."""
    out = set()
    for section, spec in schema()["properties"].items():
        if spec.get("type") == "object":
            for name, prop in spec.get("properties", {}).items():
                if prop.get("writeOnly"):
                    out.add(f"{section}.{name}")
        elif spec.get("writeOnly"):
            out.add(section)
    return out - ADDRESS_NOT_SECRET


def env_of(key):
    return dict(config_table())[key]


def check_config(path=SAMPLE, env=None):
    """tocsind --check-config: (exit code, effective config or None, stderr)."""
    p = run_tocsind(["--check-config", "-c", path], env=env)
    eff = json.loads(p.stdout) if p.returncode == 0 else None
    return p.returncode, eff, p.stderr.decode(errors="replace")


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_objects():
    """{(kind, name): object} of every manifest under deploy/kubernetes."""
    out = {}
    for path in sorted(glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True)):
        for doc in load_yaml_docs(path):
            if doc.get("kind") == "Kustomization":
                continue
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def k8s_deployment():
    return k8s_objects()[("Deployment", "tocsind")]


def tocsind_container(dep=None):
    dep = dep or k8s_deployment()
    (c,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "tocsind"]
    return c


def resolve_port(container, port):
    """A probe's or Service's port: a number, or the name of a containerPort."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"port {port!r} is not a named port of {container['name']}")


def parse_unit(path):
    """{section: {key: [values in order]}} of a systemd unit file."""
    out, section = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return out


def redis_directives(path):
    """[(directive, args)] of a redis.conf, in order."""
    out = []
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if line and not line.startswith("#"):
                parts = shlex.split(line)
                out.append((parts[0].lower(), parts[1:]))
    return out


def install_deps_packages():
    with open(INSTALL_DEPS) as f:
        text = f.read()
    m = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M)
    assert m, "install-deps.sh has no packages=( ... ) array"
    body = "\n".join(line.split("#", 1)[0] for line in m.group(1).splitlines())
    return body.split()


def containerfile_stages():
    """[{"base", "name", "lines": [(instruction, text)]}] with continuation
    lines joined and comments dropped."""
    with open(CONTAINERFILE) as f:
        raw = f.read()
    logical, cur = [], ""
    for line in raw.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue  # a comment inside a continued instruction
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        logical.append(cur + s)
        cur = ""
    stages = []
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"base": parts[0], "name": name, "lines": []})
        else:
            assert stages, "instruction before FROM"
            stages[-1]["lines"].append((instr, rest.strip()))
    return stages


def apt_packages(stage):
    """Packages named by apt-get install in a stage's RUN instructions."""
    pkgs = []
    for instr, text in stage["lines"]:
        if instr != "RUN":
            continue
        for cmd in re.split(r"&&|;", text):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def dpkg_owner(path):
    """The package owning a file, under any of its names: dpkg may list it
    as /lib/... while the merged /usr makes realpath say /usr/lib/..."""
    names = []
    for n in (path, os.path.realpath(path)):
        names.append(n)
        if n.startswith("/usr/lib/"):
            names.append(n[len("/usr"):])
        elif n.startswith("/lib/"):
            names.append("/usr" + n)
    for n in names:
        p = subprocess.run(["dpkg-query", "-S", n], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":", 1)[0].strip()
    return None


def dependency_closure(pkgs):
    """pkgs and everything they depend on, as apt would install them (read
    from the installed packages' Depends and Pre-Depends)."""
    seen, todo = set(), list(pkgs)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        p = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                           capture_output=True, text=True)
        for alt in re.split(r"[,|]", p.stdout if p.returncode == 0 else ""):
            name = alt.strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    return seen


def runtime_packages_of(dev):
    """The packages that own the shared libraries a -dev package's .so
    symlinks point to (librdkafka-dev -> librdkafka1, librdkafka++1)."""
    p = subprocess.run(["dpkg-query", "-L", dev], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"{dev} is not installed here (bash deploy/install-deps.sh)")
    owners = set()
    for path in p.stdout.split():
        if path.endswith(".so") and os.path.islink(path):
            owner = dpkg_owner(path)
            if owner == dev:
                owner = dpkg_owner(os.path.realpath(path))
            if owner and owner != dev:
                owners.add(owner)
    return owners


def needs_dpkg():
    if shutil.which("dpkg-query") is None:
        pytest.skip("no dpkg-query here")


# ---------------------------------------------------------- sample config


def test_sample_config_validates_against_schema():
    errors = sorted(Draft202012Validator(schema()).iter_errors(load_sample()), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_sample_config_accepted_by_tocsind():
    rc, eff, err = check_config()
    assert rc == 0, err
    sample = flatten(load_sample())
    assert eff["http.listen"] == sample["http.listen"]
    assert eff["kafka.brokers"] == sample["kafka.brokers"]
    assert eff["ws.allowed_origins"] == sample["ws.allowed_origins"]


def test_sample_config_is_for_production():
    s = flatten(load_sample())
    assert s["kafka.brokers"], "an empty kafka.brokers runs the embedded (in-memory) Kafka"
    assert s["webhook.allow_private"] is False
    assert s["public_url"].startswith("https://")
    assert s["ws.allowed_origins"], "production names the browser origins allowed"


def test_sample_covers_every_key_but_secrets():
    table = [k for k, _ in config_table()]
    secrets = secret_keys()
    sample = set(flatten(load_sample()))
    for key in OMITTED:
        assert key in table, f"OMITTED names {key}, which the config table no longer has"
    missing = set(table) - sample - secrets - set(OMITTED)
    assert not missing, (f"deploy/tocsin.json lacks {sorted(missing)}: add them (or, with a "
                         f"reason, to OMITTED in this test)")
    leaked = sample & secrets
    assert not leaked, f"secrets belong in the environment, not the sample: {sorted(leaked)}"


def test_secrets_are_provided_through_the_environment():
    want = {env_of(k) for k in secret_keys()}
    assert "TOCSIN_ADMIN_TOKEN" in want
    with open(ENV_EXAMPLE) as f:
        env_text = f.read()
    in_env = set(re.findall(r"^#?\s*(TOCSIN_[A-Z0-9_]+)=", env_text, re.M))
    assert want <= in_env, f"{sorted(want - in_env)} missing from {ENV_EXAMPLE}"
    secret = k8s_objects()[("Secret", "tocsind-secrets")]
    assert set(secret["stringData"]) == want


def test_every_tocsin_variable_in_deploy_files_is_a_config_key():
    known = {env for _, env in config_table()}
    own = [UNIT, REUSE_PORT_DROPIN, ENV_EXAMPLE, CONTAINERFILE, COMPOSE]
    own += glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True)
    for path in own:
        with open(path) as f:
            used = set(re.findall(r"\bTOCSIN_[A-Z0-9_]*[A-Z0-9]\b", f.read()))
        unknown = used - known
        assert not unknown, f"{os.path.relpath(path, REPO)}: {sorted(unknown)} are not keys"


def test_deploy_readme_indexes_every_file():
    with open(os.path.join(DEPLOY, "README.md")) as f:
        readme = f.read()
    for path in glob.glob(os.path.join(DEPLOY, "**", "*"), recursive=True):
        rel = os.path.relpath(path, DEPLOY)
        if os.path.isdir(path) or rel == "README.md":
            continue
        assert rel in readme, f"deploy/README.md does not mention {rel}"


# ------------------------------------------------------------------ systemd


@pytest.fixture
def unit_with_built_binary(tmp_path):
    """The unit with ExecStart at a copy of the built tocsind (systemd-analyze
    verify insists the binary exists)."""
    exe = tmp_path / "tocsind"
    shutil.copy(binary("tocsind"), exe)
    with open(UNIT) as f:
        text = f.read()
    assert "/usr/local/bin/tocsind" in text
    unit = tmp_path / "tocsind.service"
    unit.write_text(text.replace("/usr/local/bin/tocsind", str(exe)))
    return unit


def test_systemd_unit_verifies(unit_with_built_binary):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    p = subprocess.run(["systemd-analyze", "verify", str(unit_with_built_binary)],
                       capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 0 and out == "", out


def test_systemd_unit_verifies_but_for_the_binary_path():
    """The unit as shipped: the one complaint allowed is that
    /usr/local/bin/tocsind is not installed on this machine."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    p = subprocess.run(["systemd-analyze", "verify", UNIT], capture_output=True, text=True,
                       timeout=60)
    lines = [x for x in (p.stdout + p.stderr).splitlines() if x.strip()]
    if os.access("/usr/local/bin/tocsind", os.X_OK):
        assert p.returncode == 0 and not lines, lines
    else:
        allowed = ("tocsind.service: Command /usr/local/bin/tocsind is not executable: "
                   "No such file or directory")
        assert lines == [allowed], lines


def test_systemd_security_exposure(unit_with_built_binary):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                        str(unit_with_built_binary)], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= 2.0, p.stdout


def test_systemd_template_with_the_reuse_port_dropin(unit_with_built_binary, tmp_path):
    """Installed as deploy/systemd/README.md says (the unit copied to
    tocsind@.service, the drop-in beside it), an instance loads the drop-in
    without a complaint, keeps the sandbox's rating and sets reuse_port for
    one shared user (SO_REUSEPORT shares a port within one UID only)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    shutil.copy(unit_with_built_binary, tmp_path / "tocsind@.service")
    (tmp_path / "tocsind@.service.d").mkdir()
    shutil.copy(REUSE_PORT_DROPIN, tmp_path / "tocsind@.service.d" / "reuse-port.conf")
    instance = str(tmp_path / "tocsind@1.service")
    p = subprocess.run(["systemd-analyze", "verify", instance], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", instance],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert "reuse-port.conf" not in out, out  # a drop-in line it could not take
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m and float(m.group(1)) <= 2.0, out
    svc = parse_unit(REUSE_PORT_DROPIN)["Service"]
    assert svc["Environment"] == ["TOCSIN_HTTP_REUSE_PORT=true"]
    assert svc["User"] == ["tocsind"]


def test_systemd_unit_settings():
    u = parse_unit(UNIT)
    svc = u["Service"]

    def one(key):
        assert key in svc, f"[Service] has no {key}="
        return svc[key][-1]

    assert one("Type") == "simple", "tocsind does not call sd_notify"
    assert one("ExecStart") == "/usr/local/bin/tocsind -c /etc/tocsin/tocsin.json"
    assert one("EnvironmentFile") == "-/etc/tocsin/tocsind.env"
    assert one("Restart") == "on-failure"
    assert "2" in one("RestartPreventExitStatus").split(), "exit 2 = bad config, not retried"
    assert int(one("LimitNOFILE")) >= 65536
    assert systemd_span_ms(one("TimeoutStopSec")) > sample_shutdown_ms(), \
        "systemd must not SIGKILL before tocsind's own shutdown.timeout"
    assert one("DynamicUser") == "yes" or "User" in svc
    assert one("CapabilityBoundingSet") == "", "listening on 8080 needs no capability"
    assert listen_port(load_sample()["http"]["listen"]) >= 1024
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "RestrictNamespaces", "LockPersonality",
                "MemoryDenyWriteExecute"):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in svc["SystemCallFilter"]
    assert one("SystemCallArchitectures") == "native"
    assert re.fullmatch(r"0[0-7]{3}", one("UMask"))
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


# -------------------------------------------------------------------- redis

REQUIRED_REDIS = {
    "appendonly": "yes",
    "appendfsync": "always",
    "maxmemory-policy": "noeviction",
    "no-appendfsync-on-rewrite": "no",
}


def test_redis_conf_has_the_durability_settings():
    d = dict((k, v) for k, v in redis_directives(REDIS_CONF))
    for key, want in REQUIRED_REDIS.items():
        assert d.get(key) == [want], f"{key} is {d.get(key)}, must be {want}"
    assert d.get("protected-mode") == ["yes"]
    assert d.get("bind") and all(a.lstrip("-") in ("127.0.0.1", "::1") for a in d["bind"])
    for path_key in ("dir", "logfile", "pidfile", "daemonize"):
        assert path_key not in d, f"{path_key} belongs to whoever runs Redis, not this file"


class ConfRedis:
    """redis-server started from a config file, with the port and paths
    overridden on the command line (as the Debian unit and containers do)."""

    def __init__(self, conf, workdir):
        self.conf = conf
        self.dir = str(workdir)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        args = ["redis-server", self.conf, "--port", str(self.port), "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.log_path,
                "--pidfile", os.path.join(self.dir, "redis.pid")]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: self.proc.poll() is not None or self._ping(), 10,
                       what=f"redis-server on port {self.port}")
        except HarnessError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise HarnessError(f"redis-server exited {self.proc.returncode}: {self.log()}")
        return self

    def _ping(self):
        try:
            return self.client().ping()
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5,
                           decode_responses=True)

    def config(self, name):
        return self.client().config_get(name)[name]

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def conf_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server here")
    made = []

    def start(conf):
        workdir = tempfile.mkdtemp(prefix="redis-", dir=tmp_path)
        r = ConfRedis(conf, workdir).start()
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


def assert_durable(r):
    for key, want in REQUIRED_REDIS.items():
        assert r.config(key) == want, f"{key} = {r.config(key)!r}\n{r.log()}"
    assert r.config("save") == ""


def test_redis_server_accepts_the_conf(conf_redis):
    r = conf_redis(REDIS_CONF)
    assert_durable(r)
    assert r.config("protected-mode") == "yes"
    assert r.config("bind").split() == ["127.0.0.1", "-::1"]
    assert r.config("timeout") == "0"
    r.client().set("tocsin:deploy-test", "1")
    assert r.client().info("persistence")["aof_enabled"] == 1


def test_redis_conf_included_from_debian_conf(conf_redis, tmp_path):
    """deploy/systemd/README.md appends `include tocsin-redis.conf` to the
    packaged /etc/redis/redis.conf: the settings must win over it."""
    debian = "/etc/redis/redis.conf"
    if not os.access(debian, os.R_OK):
        pytest.skip(f"no readable {debian} here")
    with open(debian) as f:
        text = f.read()
    main = tmp_path / "redis.conf"
    main.write_text(text + f"\ninclude {REDIS_CONF}\n")
    r = conf_redis(str(main))
    assert_durable(r)


def test_tocsind_runs_with_the_sample_config_on_the_conf_redis(conf_redis, tocsind_factory):
    """The deployment, shrunk: Redis from tocsin-redis.conf, tocsind from the
    sample with the addresses overridden by TOCSIN_* as compose and
    Kubernetes do. Ready, healthy, and a clean exit 0 on SIGTERM."""
    r = conf_redis(REDIS_CONF)
    t = tocsind_factory(config=load_sample(), redis=r)
    status, _, body = http_get(t.url + "/healthz")
    assert status == 200, body
    status, _, body = http_get(t.url + "/readyz")
    assert status == 200, body
    rc = t.stop(signal.SIGTERM, timeout=sample_shutdown_ms() / 1000 + 5)
    assert rc == 0, t.log_tail()
    assert r.client().exists(f"{t.prefix}history") or r.client().keys(f"{t.prefix}*"), \
        "tocsind wrote nothing under its prefix"


# --------------------------------------------------------------- container


def test_containerfile_stages():
    stages = containerfile_stages()
    assert [s["name"] for s in stages] == ["build", "runtime"]
    assert stages[0]["base"] == "debian:12"
    assert stages[1]["base"] in ("debian:12", "debian:12-slim"), \
        "the runtime must be the Debian release the build stage linked against"


def test_containerfile_build_stage_has_install_deps_build_packages():
    wanted = {p for p in install_deps_packages()
              if p in BUILD_TOOLS or (p.startswith("lib") and p not in TEST_ONLY_DEV | BENCH_ONLY_LIBS)}
    build = set(apt_packages(containerfile_stages()[0]))
    assert wanted <= build, f"build stage lacks {sorted(wanted - build)}"


def test_containerfile_runtime_packages_are_runtime_versions_of_install_deps():
    needs_dpkg()
    runtime = set(apt_packages(containerfile_stages()[1]))
    devs = [p for p in install_deps_packages() if p.endswith("-dev") and p not in TEST_ONLY_DEV]
    plugins = [p for p in install_deps_packages()
               if p.startswith("lib") and not p.endswith("-dev") and p not in BENCH_ONLY_LIBS]
    derived = set()
    for dev in devs:
        owners = runtime_packages_of(dev)
        assert owners, f"dpkg knows no shared library of {dev}"
        assert owners & runtime, f"runtime stage has none of {sorted(owners)} (for {dev})"
        derived |= owners & runtime
    for plugin in plugins:
        assert plugin in runtime, f"{plugin} (loaded at run time) is missing from the runtime"
    dev_in_runtime = {p for p in runtime if p.endswith("-dev") or p in BUILD_TOOLS}
    assert not dev_in_runtime, f"build-only packages in the runtime: {sorted(dev_in_runtime)}"
    extra = runtime - derived - set(plugins)
    assert extra <= set(RUNTIME_EXTRAS), f"unexplained runtime packages: {sorted(extra)}"


def image_binaries():
    """Names of the programs the runtime stage copies from the build stage."""
    names = []
    for instr, text in containerfile_stages()[1]["lines"]:
        if instr == "COPY" and text.startswith("--from=build "):
            names += [os.path.basename(s) for s in text.split()[1:-1]]
    return names


def build_targets():
    """The targets the build stage's cmake --build makes."""
    for instr, text in containerfile_stages()[0]["lines"]:
        m = re.search(r"cmake --build .*?--target ((?:[A-Za-z0-9_-]+ ?)+)", text)
        if instr == "RUN" and m:
            return m.group(1).split()
    raise AssertionError("the build stage runs no cmake --build --target")


def test_containerfile_copies_what_it_builds():
    assert "tocsind" in image_binaries()
    assert sorted(image_binaries()) == sorted(build_targets())


@pytest.mark.parametrize("program", ["tocsind", "tocsinctl"])
def test_containerfile_runtime_covers_needed_libraries(program):
    needs_dpkg()
    if shutil.which("readelf") is None:
        pytest.skip("no readelf here")
    if program not in image_binaries():
        pytest.skip(f"the image has no {program}")
    runtime = set(apt_packages(containerfile_stages()[1]))
    installed = dependency_closure(runtime)
    exe = binary(program)
    dyn = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True, check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn.stdout)
    assert needed, dyn.stdout
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    for soname in needed:
        if soname.startswith(SANITIZER_LIBS):
            continue  # a TOCSIN_SANITIZE build; the image is built without
        owner = dpkg_owner(paths[soname])
        assert owner, f"no package owns {paths[soname]}"
        # Direct, or pulled in by one (libcap2 by libwebsockets17 when the
        # linker keeps a transitive -lcap, as the sanitizer build does).
        assert owner in installed, (f"{soname} comes from {owner}, which the runtime stage "
                                    f"neither installs nor depends on")


def test_containerfile_runtime_stage_settings():
    lines = containerfile_stages()[1]["lines"]
    by = {}
    for instr, text in lines:
        by.setdefault(instr, []).append(text)
    port = sample_port()
    (user,) = by["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (runAsNonRoot checks it)"
    assert by["EXPOSE"] == [str(port)]
    (health,) = by["HEALTHCHECK"]
    assert f"http://127.0.0.1:{port}/healthz" in health
    if "curl" in health:
        assert "curl" in apt_packages(containerfile_stages()[1])
    assert json.loads(by["ENTRYPOINT"][0]) == ["/usr/local/bin/tocsind"]
    assert json.loads(by["CMD"][0]) == ["-c", "/etc/tocsin/tocsin.json"]
    assert "deploy/tocsin.json /etc/tocsin/tocsin.json" in by["COPY"]
    assert any(c.startswith("--from=build ") and "/tocsind " in c and
               c.endswith(" /usr/local/bin/") for c in by["COPY"])
    assert by.get("STOPSIGNAL", ["SIGTERM"]) == ["SIGTERM"]
    assert str(uid) == str(k8s_deployment()["spec"]["template"]["spec"]["securityContext"]
                           ["runAsUser"])


@pytest.mark.timeout(300)
def test_containerfile_build_stage_sources_build_the_image_programs(tmp_path):
    """The build stage copies only some of the repository: those files must
    be enough to configure and build the programs the image ships."""
    copies = [text.split() for instr, text in containerfile_stages()[0]["lines"]
              if instr == "COPY" and not text.startswith("--from")]
    src = tmp_path / "src"
    src.mkdir()
    for args in copies:
        *sources, _dest = args
        for s in sources:
            path = os.path.join(REPO, s.rstrip("/"))
            assert os.path.exists(path), f"COPY {s}: no such file in the repository"
            if os.path.isdir(path):
                shutil.copytree(path, src / s.rstrip("/"), ignore=shutil.ignore_patterns(".*"))
            else:
                shutil.copy(path, src / s)
    build = tmp_path / "build"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = subprocess.run(["cmake", "-S", str(src), "-B", str(build), *gen,
                          "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DTOCSIN_TESTS=OFF"],
                         capture_output=True, text=True, timeout=120)
    assert cfg.returncode == 0, cfg.stdout[-3000:] + cfg.stderr[-3000:]
    b = subprocess.run(["cmake", "--build", str(build), "--target", *build_targets(), "-j",
                        str(os.cpu_count() or 2)], capture_output=True, text=True, timeout=280)
    assert b.returncode == 0, b.stdout[-4000:] + b.stderr[-3000:]
    v = subprocess.run([str(build / "tocsind"), "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("tocsind "), v


# ------------------------------------------------------------------ compose


def compose():
    (doc,) = load_yaml_docs(COMPOSE)
    return doc


def compose_env(service):
    """A service's environment with ${VAR:-default} and ${VAR} resolved as
    compose does with nothing set in the shell."""
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    out = {}
    for k, v in env.items():
        v = "" if v is None else str(v)
        out[k] = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}",
                        lambda m: m.group(1) or "", v)
    return out


def test_compose_services_healthchecks_and_dependencies():
    services = compose()["services"]
    assert {"kafka", "redis", "tocsind"} <= set(services)
    for name, svc in services.items():
        if svc.get("restart") == "no":
            continue  # a one-shot job
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name} has no healthcheck"
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            cond = spec["condition"]
            assert cond in ("service_healthy", "service_completed_successfully"), (name, dep)
            if cond == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} cannot become healthy"
    deps = services["tocsind"]["depends_on"]
    assert deps["redis"]["condition"] == "service_healthy"
    # Kafka is waited for, directly or through the job that makes the topics.
    seen, todo = set(), list(deps)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo += list(services[d].get("depends_on") or {})
    assert "kafka" in seen, "tocsind starts without waiting for Kafka"


def test_compose_kafka_is_kraft_with_tocsin_topics():
    services = compose()["services"]
    env = compose_env(services["kafka"])
    roles = set(env["KAFKA_PROCESS_ROLES"].split(","))
    assert roles == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env)
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID is a UUID"
    advertised = dict(reversed(a.split("://", 1)) for a in env["KAFKA_ADVERTISED_LISTENERS"]
                      .split(","))
    brokers = compose_env(services["tocsind"])["TOCSIN_KAFKA_BROKERS"]
    assert brokers in advertised, f"tocsind's {brokers} is not advertised: {advertised}"
    # Topics are not auto-created, so the init job must make both of tocsin's.
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"
    script = " ".join(services["kafka-init"]["command"])
    sample = load_sample()["kafka"]
    for topic in (sample["topic"], sample["dlq_topic"]):
        assert topic in script, f"kafka-init does not create {topic}"


def test_compose_redis_uses_the_conf():
    redis = compose()["services"]["redis"]
    mounts = {}
    for v in redis["volumes"]:
        src, dst = v.split(":")[:2]
        mounts[dst] = src
    conf_in = [dst for dst, src in mounts.items()
               if os.path.normpath(os.path.join(os.path.dirname(COMPOSE), src)) == REDIS_CONF]
    assert conf_in, f"deploy/redis/tocsin-redis.conf is not mounted: {mounts}"
    cmd = redis["command"]
    assert cmd[0] == "redis-server" and cmd[1] == conf_in[0]
    assert "ports" not in redis, "Redis has no password: its port stays on the compose network"
    assert "/data" in mounts, "the AOF must live on a volume"


def test_compose_tocsind_ports_probes_and_env():
    services = compose()["services"]
    t = services["tocsind"]
    port = sample_port()
    build = t["build"]
    ctx = os.path.normpath(os.path.join(os.path.dirname(COMPOSE), build["context"]))
    assert ctx == REPO, "the build context is the repository root (deploy/container/README.md)"
    assert os.path.normpath(os.path.join(ctx, build["dockerfile"])) == CONTAINERFILE
    assert any(str(p).rsplit(":", 1)[-1] == str(port) for p in t["ports"])
    test = " ".join(t["healthcheck"]["test"])
    assert re.search(rf"http://127\.0\.0\.1:{port}/(readyz|healthz)\b", test), test
    assert systemd_span_ms(t["stop_grace_period"]) > sample_shutdown_ms()
    env = compose_env(t)
    assert env["TOCSIN_REDIS_URL"].startswith("redis://redis:")
    rc, eff, err = check_config(env=env)
    assert rc == 0, err
    assert eff["ws.allowed_origins"] == [], "compose opens tocsind to a browser on localhost"


# --------------------------------------------------------------- kubernetes


def test_kubernetes_yaml_parses_and_kustomizations_list_files():
    for kdir in (K8S, os.path.join(K8S, "redis")):
        (kust,) = load_yaml_docs(os.path.join(kdir, "kustomization.yaml"))
        listed = set(kust["resources"])
        here = {os.path.basename(p) for p in glob.glob(os.path.join(kdir, "*.yaml"))}
        for r in listed:
            assert r in here, f"{kdir}: kustomization lists missing {r}"
        unlisted = here - listed - {"kustomization.yaml", "secret.example.yaml"}
        assert not unlisted, f"{kdir}: not in kustomization.yaml: {sorted(unlisted)}"
        assert "secret.example.yaml" not in listed, "a placeholder secret must never be applied"
        for name in here:
            for doc in load_yaml_docs(os.path.join(kdir, name)):
                assert doc.get("apiVersion") and doc.get("kind"), name
                if doc["kind"] != "Kustomization":
                    assert doc["metadata"]["name"], name


def test_kubernetes_kustomize_builds():
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl here")
    for kdir in (K8S, os.path.join(K8S, "redis")):
        p = subprocess.run(["kubectl", "kustomize", kdir], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        kinds = {d["kind"] for d in yaml.safe_load_all(p.stdout) if d}
        assert kinds, p.stdout


def test_kubernetes_configmap_is_the_sample():
    cm = k8s_objects()[("ConfigMap", "tocsind-config")]
    with open(SAMPLE) as f:
        assert cm["data"]["tocsin.json"] == f.read(), "ConfigMap drifted from deploy/tocsin.json"


def test_kubernetes_deployment_probes_ports_and_security():
    dep = k8s_deployment()
    pod = dep["spec"]["template"]["spec"]
    c = tocsind_container(dep)
    port = sample_port()
    assert dep["spec"]["replicas"] == 2
    assert [p["containerPort"] for p in c["ports"]] == [port]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert resolve_port(c, c[probe]["httpGet"]["port"]) == port, probe
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # Security.
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod.get("automountServiceAccountToken") is False
    assert pod.get("enableServiceLinks") is False, "service links inject *_PORT variables"
    # Resources.
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # Shutdown: preStop, then SIGTERM, then shutdown.timeout, within the grace.
    pre = c.get("lifecycle", {}).get("preStop", {})
    pre_ms = 0
    if "exec" in pre:
        cmd = pre["exec"]["command"]
        assert cmd[0] == "sleep", cmd
        pre_ms = int(cmd[1]) * 1000
    elif "sleep" in pre:
        pre_ms = int(pre["sleep"]["seconds"]) * 1000
    assert pod["terminationGracePeriodSeconds"] * 1000 > pre_ms + sample_shutdown_ms()


def test_kubernetes_deployment_config_and_secret_wiring():
    objs = k8s_objects()
    pod = k8s_deployment()["spec"]["template"]["spec"]
    c = tocsind_container()
    args = c["args"]
    config_path = args[args.index("-c") + 1]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in mounts.values() if m["mountPath"] == os.path.dirname(config_path)]
    assert mount.get("readOnly") is True
    cm_name = vols[mount["name"]]["configMap"]["name"]
    assert os.path.basename(config_path) in objs[("ConfigMap", cm_name)]["data"]
    (secret_ref,) = [e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e]
    assert ("Secret", secret_ref) in objs, "secret.example.yaml shows the Secret it reads"
    env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tocsin.json")
        with open(path, "w") as f:
            f.write(objs[("ConfigMap", cm_name)]["data"]["tocsin.json"])
        rc, eff, err = check_config(path, env=env)
    assert rc == 0, err
    assert eff["kafka.brokers"] == env["TOCSIN_KAFKA_BROKERS"]


def test_kubernetes_service_and_pdb_select_the_pods():
    objs = k8s_objects()
    dep = k8s_deployment()
    labels = dep["spec"]["template"]["metadata"]["labels"]
    c = tocsind_container(dep)
    svc = objs[("Service", "tocsind")]
    assert svc["spec"]["selector"].items() <= labels.items()
    for p in svc["spec"]["ports"]:
        assert resolve_port(c, p["targetPort"]) == sample_port()
    pdbs = [o for (kind, _), o in objs.items() if kind == "PodDisruptionBudget"]
    assert len(pdbs) == 1
    pdb = pdbs[0]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    if "minAvailable" in pdb:
        assert 0 < pdb["minAvailable"] < dep["spec"]["replicas"], "a drain must be possible"
    else:
        assert pdb["maxUnavailable"] >= 1


def test_kubernetes_redis_example():
    objs = k8s_objects()
    cm = objs[("ConfigMap", "tocsin-redis-config")]
    with open(REDIS_CONF) as f:
        assert cm["data"]["tocsin-redis.conf"] == f.read(), "redis ConfigMap drifted"
    sts = objs[("StatefulSet", "tocsin-redis")]
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    conf_mount = [mounts[n] for n, v in vols.items()
                  if v.get("configMap", {}).get("name") == "tocsin-redis-config"]
    assert c["args"][:2] == ["redis-server", f"{conf_mount[0]}/tocsin-redis.conf"]
    assert c["args"][c["args"].index("--dir") + 1] == mounts["data"], "AOF on the volume"
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    # tocsind's TOCSIN_REDIS_URL names this Service and port.
    url = {e["name"]: e["value"] for e in tocsind_container()["env"]}["TOCSIN_REDIS_URL"]
    m = re.fullmatch(r"redis://([^:/]+):([0-9]+)/[0-9]+", url)
    svc = objs[("Service", m.group(1))]
    assert int(m.group(2)) in [p["port"] for p in svc["spec"]["ports"]]
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    # Only tocsind reaches the password-less Redis.
    np = objs[("NetworkPolicy", "tocsin-redis")]["spec"]
    assert np["podSelector"]["matchLabels"].items() <= \
        sts["spec"]["template"]["metadata"]["labels"].items()
    tocsind_labels = k8s_deployment()["spec"]["template"]["metadata"]["labels"]
    (rule,) = np["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= tocsind_labels.items()
