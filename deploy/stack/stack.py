#!/usr/bin/env python3
"""The local stack: PostgreSQL 15, MariaDB 10.11 and Apache Kafka (KRaft), run natively.

Usage: python3 deploy/stack/stack.py up|down|env|status|install

Standard library only: it runs before the project's virtualenv exists.

* ``up`` installs what is missing (Debian packages through apt-get, the Kafka
  broker jars from Maven Central through ``mvn``), creates data directories under
  ``.stack/`` and starts each server. A server that already runs is left alone, so
  a second ``up`` is a no-op that returns in about a second.
* ``down`` stops exactly the processes whose pid files ``up`` wrote, after
  checking that each pid still belongs to this stack's data directory.
* ``env`` prints ``export`` lines for CDC_MYSQL_URL, CDC_PG_URL and CDC_KAFKA_BOOTSTRAP.
* ``install`` installs what ``up`` needs and starts nothing: the servers' packages, the Kafka
  jars, and Prometheus' ``prometheus`` and ``promtool`` (the tests check the alert rules with
  promtool and scrape cdc with a Prometheus of their own). ``up`` runs it first. No system
  service is started by an install (a temporary policy-rc.d refuses them).
* ``status`` says what runs.

Ports avoid the usual defaults (3306, 5432, 9092) so that servers a user already
runs do not collide; each can be moved with an environment variable
(CDC_STACK_PG_PORT, CDC_STACK_MYSQL_PORT, CDC_STACK_KAFKA_PORT,
CDC_STACK_KAFKA_CONTROLLER_PORT). Every failure names the step that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = Path(os.environ.get("CDC_STACK_DIR", ROOT / ".stack")).resolve()

PG_MAJOR = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_VERSION = "1.7.36"

PG_PORT = int(os.environ.get("CDC_STACK_PG_PORT", "25432"))
MYSQL_PORT = int(os.environ.get("CDC_STACK_MYSQL_PORT", "23306"))
KAFKA_PORT = int(os.environ.get("CDC_STACK_KAFKA_PORT", "29092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("CDC_STACK_KAFKA_CONTROLLER_PORT", "29093"))

PG_DIR = STACK / "postgres"
MYSQL_DIR = STACK / "mariadb"
KAFKA_DIR = STACK / "kafka"
RUN_DIR = STACK / "run"
# unix socket paths are limited to 107 bytes; a deep checkout gets its socket in /tmp
MYSQL_SOCKET = RUN_DIR / "mariadb.sock"
if len(str(MYSQL_SOCKET)) > 100:
    MYSQL_SOCKET = Path("/tmp") / f"cdc-stack-{hashlib.sha1(str(STACK).encode()).hexdigest()[:12]}-mariadb.sock"
LOG_DIR = STACK / "logs"


class StepFailed(Exception):
    """A step of the stack failed; the message says which and why."""

    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"stack: step '{step}' failed: {why}")


def say(msg: str) -> None:
    print(f"stack: {msg}", flush=True)


# --------------------------------------------------------------------------- helpers


def run(step: str, cmd: list[str], *, user: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 600, quiet: bool = True) -> str:
    if user is not None and os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=quiet, text=True, env=env, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise StepFailed(step, f"command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(step, f"{' '.join(cmd[:3])} took longer than {timeout:.0f}s") from exc
    if proc.returncode != 0:
        out = ((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()
        tail = "\n    ".join(out[-15:])
        raise StepFailed(step, f"`{' '.join(cmd)}` exited {proc.returncode}:\n    {tail}")
    return proc.stdout or ""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_port(step: str, port: int, timeout: float, pid: int | None, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if pid is not None and not pid_alive(pid):
            raise StepFailed(step, f"the server exited during start-up; last log lines:\n{log_tail(log)}")
        time.sleep(0.25)
    raise StepFailed(step, f"port {port} did not open within {timeout:.0f}s; last log lines:\n{log_tail(log)}")


def log_tail(log: Path, n: int = 15) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in lines)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is not alive
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def owned_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and is ours (its command line names ``marker``)."""
    pid = read_pid(pidfile)
    if pid is None or not pid_alive(pid):
        return None
    if marker not in cmdline(pid):
        return None
    return pid


def spawn(cmd: list[str], log: Path, *, user: str | None = None, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start a daemon in its own session, detached from this process; return its pid."""
    demote: dict[str, object] = {}
    if user is not None and os.geteuid() == 0 and user != "root":
        demote = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, stdin=devnull, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env, cwd=cwd, **demote)  # type: ignore[call-overload]
    return proc.pid


def have_apt() -> bool:
    return shutil.which("apt-get") is not None


_apt_updated = False


def apt_install(step: str, packages: list[str]) -> None:
    """Install Debian packages without starting their services (the stack runs its own instances)."""
    global _apt_updated
    if not have_apt():
        raise StepFailed(step, f"apt-get is not available; install {', '.join(packages)} by other means")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise StepFailed(step, f"need root (or sudo) to install {', '.join(packages)}")
        sudo = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    say(f"installing {' '.join(packages)} (apt-get)")
    if not _apt_updated:
        run(step, [*sudo, "apt-get", "update", "-qq"], env=env, timeout=600)
        _apt_updated = True
    # policy-rc.d 101 keeps postinst scripts from starting system-wide services on their default ports.
    policy = Path("/usr/sbin/policy-rc.d")
    created = False
    if os.geteuid() == 0 and not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created = True
    try:
        run(step, [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            env=env, timeout=900)
    finally:
        if created:
            policy.unlink(missing_ok=True)


# --------------------------------------------------------------------------- PostgreSQL


def pg_user() -> str | None:
    """PostgreSQL refuses to run as root: as root we run it as the Debian 'postgres' user."""
    return "postgres" if os.geteuid() == 0 else None


def pg_home(create: bool = False) -> Path:
    """The directory that holds PostgreSQL's data, socket and log: normally ``.stack/postgres``.

    As root, PostgreSQL runs as 'postgres', which must be able to reach its files. When the
    checkout lies under a directory 'postgres' cannot traverse (a private temp dir, say), the
    files go to /var/lib/cdc-stack/<hash of the stack dir>/postgres and ``.stack/postgres`` is a
    symlink to it; ``stack-down`` and the pid checks follow the link.
    """
    if PG_DIR.is_symlink():
        return PG_DIR.resolve()
    user = pg_user()
    if not create:
        return PG_DIR
    STACK.mkdir(parents=True, exist_ok=True)
    if user is None:
        PG_DIR.mkdir(exist_ok=True)
        return PG_DIR
    pw = pwd.getpwnam(user)
    STACK.chmod(STACK.stat().st_mode | 0o011)  # our own directory: let 'postgres' traverse it
    reach = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(STACK)], check=False)
    if reach.returncode == 0:
        home = PG_DIR
    else:
        digest = hashlib.sha1(str(STACK).encode()).hexdigest()[:12]
        home = Path("/var/lib/cdc-stack") / digest / "postgres"
        say(f"'{user}' cannot reach {STACK}; PostgreSQL's files go to {home} (linked from {PG_DIR})")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    if home != PG_DIR:
        if PG_DIR.exists():
            shutil.rmtree(PG_DIR)
        PG_DIR.symlink_to(home, target_is_directory=True)
    return home


def pg_install() -> None:
    step = "postgres: install"
    if not (PG_BIN / "postgres").exists() or not (PG_BIN / "pg_recvlogical").exists():
        apt_install(step, [f"postgresql-{PG_MAJOR}", f"postgresql-client-{PG_MAJOR}"])
        if not (PG_BIN / "postgres").exists():
            raise StepFailed(step, f"{PG_BIN / 'postgres'} missing after installing postgresql-{PG_MAJOR}")


def pg_up() -> None:
    step = "postgres"
    pg_install()
    data = pg_home() / "data"
    # postmaster.pid's first line is the pid; the command line of postgres names -D <data>
    pid = owned_pid(data / "postmaster.pid", str(data))
    if pid is not None and port_open(PG_PORT):
        say(f"postgres already running (pid {pid}, port {PG_PORT})")
        return
    if port_open(PG_PORT):
        raise StepFailed(f"{step}: start", f"port {PG_PORT} is taken by another process; set CDC_STACK_PG_PORT")
    user = pg_user()
    home = pg_home(create=True)
    data = home / "data"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").exists():
        say("initialising PostgreSQL data directory")
        if data.exists():
            shutil.rmtree(data)
        run(f"{step}: initdb", [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                                "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], user=user)
        conf = data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# --- cdc local stack ---\n"
                f"port = {PG_PORT}\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''  # TCP only: socket paths are limited to 107 bytes\n"
                "wal_level = logical\n"
                "max_replication_slots = 64\n"
                "max_wal_senders = 64\n"
                "max_connections = 300\n"
                "shared_buffers = 256MB\n"
                "max_wal_size = 2GB\n"
                "wal_sender_timeout = 60s\n"
                "timezone = 'UTC'\n"
                "log_min_messages = warning\n"
            )
        hba = data / "pg_hba.conf"
        hba.write_text(
            "# cdc local stack: the admin user 'postgres' needs no password on loopback;\n"
            "# every other user authenticates with a password.\n"
            "local   all             all                                     trust\n"
            "local   replication     all                                     trust\n"
            "host    all             postgres        127.0.0.1/32            trust\n"
            "host    replication     postgres        127.0.0.1/32            trust\n"
            "host    all             all             127.0.0.1/32            scram-sha-256\n"
            "host    replication     all             127.0.0.1/32            scram-sha-256\n"
        )
    log = home / "postgres.log"
    link = LOG_DIR / "postgres.log"
    if home != PG_DIR and not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(log)
    say(f"starting PostgreSQL {PG_MAJOR} on 127.0.0.1:{PG_PORT}")
    run(f"{step}: start", [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"],
        user=user, timeout=90)
    wait_port(f"{step}: start", PG_PORT, 30, None, log)


def pg_down() -> None:
    data = pg_home() / "data"
    pid = owned_pid(data / "postmaster.pid", str(data))
    if pid is None:
        return
    say(f"stopping PostgreSQL (pid {pid})")
    try:
        run("postgres: stop", [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"],
            user=pg_user(), timeout=45)
    except StepFailed:
        terminate(pid, "postgres")


# --------------------------------------------------------------------------- MariaDB


def mysql_install() -> None:
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None or shutil.which("mariadb") is None:
        apt_install("mariadb: install", ["mariadb-server-core", "mariadb-client"])


def mysql_up() -> None:
    step = "mariadb"
    mysql_install()
    mariadbd = shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or "/usr/sbin/mariadbd"
    data = MYSQL_DIR / "data"
    cnf = MYSQL_DIR / "my.cnf"
    pidfile = RUN_DIR / "mariadb.pid"
    pid = owned_pid(pidfile, str(cnf))
    if pid is not None and port_open(MYSQL_PORT):
        say(f"mariadb already running (pid {pid}, port {MYSQL_PORT})")
        return
    if port_open(MYSQL_PORT):
        raise StepFailed(f"{step}: start", f"port {MYSQL_PORT} is taken by another process; set CDC_STACK_MYSQL_PORT")
    for d in (MYSQL_DIR, RUN_DIR, LOG_DIR):
        d.mkdir(parents=True, exist_ok=True)
    user = "root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    cnf.write_text(
        "# cdc local stack (written by deploy/stack/stack.py; edits are overwritten)\n"
        "[mariadbd]\n"
        f"user = {user}\n"
        f"datadir = {data}\n"
        f"socket = {MYSQL_SOCKET}\n"
        f"pid-file = {pidfile}\n"
        f"port = {MYSQL_PORT}\n"
        "bind-address = 127.0.0.1\n"
        "skip-name-resolve\n"
        f"log-error = {LOG_DIR / 'mariadb.err'}\n"
        "server_id = 1\n"
        f"log_bin = {data / 'mariadb-bin'}\n"
        "binlog_format = ROW\n"
        "binlog_row_image = FULL\n"
        "binlog_row_metadata = FULL\n"
        "gtid_strict_mode = 1\n"
        "gtid_domain_id = 0\n"
        "sync_binlog = 1\n"
        "binlog_expire_logs_seconds = 604800\n"
        "character_set_server = utf8mb4\n"
        "collation_server = utf8mb4_unicode_ci\n"
        "default_time_zone = '+00:00'\n"
        "max_connections = 300\n"
        "innodb_buffer_pool_size = 256M\n"
        "innodb_log_file_size = 256M\n"
        "max_allowed_packet = 256M\n"
        "[client]\n"
        f"socket = {MYSQL_SOCKET}\n"
        f"port = {MYSQL_PORT}\n"
    )
    if not (data / "mysql").exists():
        say("initialising MariaDB data directory")
        if data.exists():
            shutil.rmtree(data)
        run(f"{step}: install-db", ["mariadb-install-db", f"--defaults-file={cnf}",
                                    "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=300)
    log = LOG_DIR / "mariadb.err"
    say(f"starting MariaDB on 127.0.0.1:{MYSQL_PORT}")
    pid = spawn([mariadbd, f"--defaults-file={cnf}"], LOG_DIR / "mariadb.out")
    wait_port(f"{step}: start", MYSQL_PORT, 60, pid, log)
    # root@127.0.0.1 without a password is the admin URL the contract prints.
    run(f"{step}: grants", ["mariadb", f"--defaults-file={cnf}", "-uroot", "-e",
                            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';"
                            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
                            "FLUSH PRIVILEGES;"])


def mysql_down() -> None:
    cnf = MYSQL_DIR / "my.cnf"
    pid = owned_pid(RUN_DIR / "mariadb.pid", str(cnf))
    if pid is None:
        return
    say(f"stopping MariaDB (pid {pid})")
    terminate(pid, "mariadb", grace=60)


# --------------------------------------------------------------------------- Kafka


KAFKA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cdc.stack</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""


def kafka_libs() -> Path:
    return KAFKA_DIR / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}" / "libs"


def kafka_install() -> None:
    step = "kafka: fetch jars"
    libs = kafka_libs()
    stamp = libs / ".complete"
    if stamp.exists():
        return
    if shutil.which("java") is None or shutil.which("mvn") is None:
        apt_install(step, ["default-jre-headless", "maven"])
    say(f"fetching Apache Kafka {KAFKA_VERSION} broker jars from Maven Central (mvn)")
    build = libs.parent / "build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "pom.xml").write_text(KAFKA_POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION))
    if libs.exists():
        shutil.rmtree(libs)
    run(step, ["mvn", "-B", "-q", "-f", str(build / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={libs}", "-DincludeScope=runtime"], timeout=900)
    if not (libs / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar").exists():
        raise StepFailed(step, f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar is missing after mvn")
    stamp.write_text(KAFKA_VERSION + "\n")


def kafka_classpath() -> str:
    return str(kafka_libs()) + "/*"


def kafka_up() -> None:
    step = "kafka"
    kafka_install()
    cfg = KAFKA_DIR / "server.properties"
    pidfile = RUN_DIR / "kafka.pid"
    pid = owned_pid(pidfile, str(cfg))
    if pid is not None and port_open(KAFKA_PORT):
        say(f"kafka already running (pid {pid}, port {KAFKA_PORT})")
        return
    for port, var in ((KAFKA_PORT, "CDC_STACK_KAFKA_PORT"), (KAFKA_CONTROLLER_PORT, "CDC_STACK_KAFKA_CONTROLLER_PORT")):
        if port_open(port):
            raise StepFailed(f"{step}: start", f"port {port} is taken by another process; set {var}")
    data = KAFKA_DIR / "data"
    for d in (KAFKA_DIR, RUN_DIR, LOG_DIR):
        d.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        "# cdc local stack: single-node KRaft (written by deploy/stack/stack.py)\n"
        "process.roles=broker,controller\n"
        "node.id=1\n"
        f"controller.quorum.voters=1@127.0.0.1:{KAFKA_CONTROLLER_PORT}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT},CONTROLLER://127.0.0.1:{KAFKA_CONTROLLER_PORT}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT}\n"
        "controller.listener.names=CONTROLLER\n"
        "inter.broker.listener.name=PLAINTEXT\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
        f"log.dirs={data}\n"
        "num.partitions=1\n"
        "default.replication.factor=1\n"
        "min.insync.replicas=1\n"
        "offsets.topic.replication.factor=1\n"
        "offsets.topic.num.partitions=10\n"
        "transaction.state.log.replication.factor=1\n"
        "transaction.state.log.min.isr=1\n"
        "transaction.state.log.num.partitions=4\n"
        "group.initial.rebalance.delay.ms=0\n"
        "auto.create.topics.enable=true\n"
        "delete.topic.enable=true\n"
        "log.retention.hours=168\n"
        "message.max.bytes=16777216\n"
    )
    l4j = KAFKA_DIR / "log4j.properties"
    l4j.write_text(
        "log4j.rootLogger=WARN, file\n"
        "log4j.logger.kafka=INFO\n"
        "log4j.logger.org.apache.kafka=INFO\n"
        "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
        f"log4j.appender.file.File={LOG_DIR / 'kafka.log'}\n"
        "log4j.appender.file.MaxFileSize=20MB\n"
        "log4j.appender.file.MaxBackupIndex=2\n"
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
    )
    jvm = ["java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
           f"-Dlog4j.configuration=file:{l4j}", "-cp", kafka_classpath()]
    if not (data / "meta.properties").exists():
        say("formatting Kafka KRaft storage")
        cluster_id = str(uuid.uuid4())
        # Kafka wants a base64 uuid; random-uuid prints one.
        cluster_id = run(f"{step}: format", [*jvm, "kafka.tools.StorageTool", "random-uuid"]).strip() or cluster_id
        run(f"{step}: format", [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(cfg),
                                "--ignore-formatted"], timeout=120)
    say(f"starting Apache Kafka {KAFKA_VERSION} (KRaft) on 127.0.0.1:{KAFKA_PORT}")
    pid = spawn([*jvm, "kafka.Kafka", str(cfg)], LOG_DIR / "kafka.out")
    pidfile.write_text(f"{pid}\n")
    wait_port(f"{step}: start", KAFKA_PORT, 90, pid, LOG_DIR / "kafka.out")
    kafka_wait_ready(step, pid)


def kafka_wait_ready(step: str, pid: int) -> None:
    """The port opens before the broker has registered with the controller; wait for that."""
    log = LOG_DIR / "kafka.log"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        if "Kafka Server started" in text.rsplit("Kafka version:", 1)[-1]:
            return
        if not pid_alive(pid):
            raise StepFailed(f"{step}: start", f"the broker exited; last log lines:\n{log_tail(log)}")
        time.sleep(0.25)
    raise StepFailed(f"{step}: start", f"the broker did not report ready within 90s:\n{log_tail(log)}")


def kafka_down() -> None:
    pid = owned_pid(RUN_DIR / "kafka.pid", str(KAFKA_DIR / "server.properties"))
    if pid is None:
        return
    say(f"stopping Kafka (pid {pid})")
    terminate(pid, "kafka", grace=30)


# --------------------------------------------------------------------------- Prometheus


PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")


def prometheus_install() -> None:
    """Install Debian's ``prometheus`` package for its two binaries; the stack runs no Prometheus.

    The package's service is neither started (policy-rc.d, see :func:`apt_install`) nor, where
    systemd runs, left enabled for the next boot: the tests start their own Prometheus on
    free ports, and nothing of ours may sit on 9090.
    """
    step = "prometheus: install"
    if PROMETHEUS_BIN.exists() and PROMTOOL_BIN.exists():
        return
    apt_install(step, ["prometheus"])
    for binary in (PROMETHEUS_BIN, PROMTOOL_BIN):
        if not binary.exists():
            raise StepFailed(step, f"{binary} missing after installing prometheus")
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        run(step, [*sudo, "systemctl", "disable", "--now", "prometheus.service"], timeout=60)


# --------------------------------------------------------------------------- common


def terminate(pid: int, name: str, grace: float = 30) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.2)
    say(f"{name} did not stop within {grace:.0f}s; killing it")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def urls() -> dict[str, str]:
    return {
        "CDC_MYSQL_URL": f"mysql://root@127.0.0.1:{MYSQL_PORT}/",
        "CDC_PG_URL": f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres",
        "CDC_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
    }


def write_env() -> None:
    STACK.mkdir(parents=True, exist_ok=True)
    (STACK / "env.json").write_text(json.dumps(urls(), indent=2) + "\n")


def cmd_up() -> None:
    started = time.monotonic()
    STACK.mkdir(parents=True, exist_ok=True)
    gitignore = STACK / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    cmd_install()
    pg_up()
    mysql_up()
    kafka_up()
    write_env()
    say(f"up in {time.monotonic() - started:.1f}s; `make stack-env` prints the URLs")


def cmd_install() -> None:
    """Install everything the stack and the tests use; start nothing. Cheap when all is there."""
    pg_install()
    mysql_install()
    kafka_install()
    prometheus_install()


def cmd_down() -> None:
    kafka_down()
    mysql_down()
    pg_down()
    say("down")


def cmd_env() -> None:
    for k, v in urls().items():
        print(f"export {k}={v}")


def cmd_status() -> int:
    rows = [
        ("postgres", owned_pid(pg_home() / "data" / "postmaster.pid", str(pg_home() / "data")), PG_PORT),
        ("mariadb", owned_pid(RUN_DIR / "mariadb.pid", str(MYSQL_DIR / "my.cnf")), MYSQL_PORT),
        ("kafka", owned_pid(RUN_DIR / "kafka.pid", str(KAFKA_DIR / "server.properties")), KAFKA_PORT),
    ]
    down = 0
    for name, pid, port in rows:
        state = f"running (pid {pid}, port {port})" if pid and port_open(port) else "stopped"
        down += state == "stopped"
        print(f"{name:9} {state}")
    return 1 if down else 0


def main(argv: list[str]) -> int:
    verb = argv[1] if len(argv) > 1 else "status"
    try:
        if verb == "up":
            cmd_up()
        elif verb == "down":
            cmd_down()
        elif verb == "env":
            cmd_env()
        elif verb == "status":
            return cmd_status()
        elif verb == "install":
            cmd_install()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StepFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
