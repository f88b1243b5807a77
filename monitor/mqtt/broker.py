"""An embedded Eclipse Mosquitto for the demo and the tests (DESIGN §4).

A real broker, not a mock: the tests then exercise the same MQTT 5 behaviour (expiry, retained
state, wills, ACL refusals) that production meets. Mosquitto runs as a child process on a free
loopback port with a config in a temp dir this object owns and deletes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from monitor.errors import BrokerError
from monitor.mqtt.client import BrokerAddress
from monitor.mqtt.topics import DEFAULT_ROOT, validate_root

__all__ = [
    "EmbeddedBroker",
    "acl_for_runners",
    "hash_password",
    "password_file_text",
]

HOST: Final = "127.0.0.1"
PASSWORD_ITERATIONS: Final = 101  # mosquitto_passwd's default for $7$ in Mosquitto 2.0
_SALT_BYTES: Final = 12  # as mosquitto_passwd
_FALLBACK_BINARY: Final = "/usr/sbin/mosquitto"  # Debian's path; /usr/sbin is often off PATH
_INSTALL_HINT: Final = "install the Debian package `mosquitto` (apt-get install mosquitto)"
_PORT_ATTEMPTS: Final = 5
_READY_MARKER: Final = re.compile(rb"mosquitto version \S+ running")
# Without the log line (another Mosquitto version), an open port held this long counts as ready.
_READY_GRACE_S: Final = 0.5
_POLL_S: Final = 0.02
_LOG_TAIL_CHARS: Final = 4000


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto 2 ``$7$`` hash (PBKDF2-HMAC-SHA512), as ``mosquitto_passwd`` writes it."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PASSWORD_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PASSWORD_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def _check_config_token(what: str, value: str) -> None:
    """Mosquitto's files are line- and colon/space-separated: a stray one rewrites the policy."""
    if not value or any(ch in value for ch in ":\n\r\x00") or value != value.strip():
        raise BrokerError(f"{what} {value!r} cannot go into a Mosquitto file")


def password_file_text(users: Mapping[str, str]) -> str:
    """A Mosquitto password file: one ``user:$7$...`` line per user."""
    lines = []
    for username, password in users.items():
        _check_config_token("user name", username)
        lines.append(f"{username}:{hash_password(password)}\n")
    return "".join(lines)


def acl_for_runners(root: str = DEFAULT_ROOT, service_user: str = "runmon-service") -> str:
    """ACL text: the service owns ``root/#``; each runner (username = runner id) only its own.

    Runners may also read service status, so an app can tell "no cues" from "service down".
    """
    validate_root(root)
    _check_config_token("service user", service_user)
    if " " in service_user:
        raise BrokerError(f"service user {service_user!r} cannot contain spaces")
    return (
        "# runmon ACL (generated). Patterns apply to every authenticated client;\n"
        "# %u is the username, which for an app is its runner id.\n"
        f"pattern readwrite {root}/runners/%u/#\n"
        f"pattern read {root}/service/+/status\n"
        "\n"
        f"user {service_user}\n"
        f"topic readwrite {root}/#\n"
    )


def _current_user() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def _read_tail(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return "(no output)"
    text = text.strip() or "(no output)"
    return text if len(text) <= _LOG_TAIL_CHARS else "..." + text[-_LOG_TAIL_CHARS:]


def _reap(
    proc: subprocess.Popen[bytes], log: IO[bytes] | None, workdir: Path | None, stop_s: float
) -> None:
    """Terminate, then kill, then wait, then delete: shared by stop() and the GC/exit net."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=stop_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if log is not None:
        log.close()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


class _PortTakenError(Exception):
    """Another process bound our 'free' port between our probe and Mosquitto's bind."""


class EmbeddedBroker:
    """Mosquitto as a child process on a loopback port; sync and async context manager.

    ``users`` switches authentication on (``allow_anonymous false``); ``acl`` is ACL file text,
    e.g. from :func:`acl_for_runners`. ``stop()`` is idempotent; a broker that is garbage
    collected or still running at interpreter exit is stopped too (``weakref.finalize``).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        port: int | None = None,
        mosquitto_path: str | None = None,
        startup_timeout_s: float = 10.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self._users = dict(users) if users is not None else None
        self._acl = acl
        self._requested_port = port
        self._mosquitto_path = mosquitto_path
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize[..., EmbeddedBroker] | None = None

    # -- addresses

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the embedded broker is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def address(self, username: str | None = None, password: str | None = None) -> BrokerAddress:
        """Where clients connect, with optional credentials."""
        return BrokerAddress(HOST, self.port, username=username, password=password)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def config_path(self) -> Path | None:
        return self._workdir / "mosquitto.conf" if self._workdir is not None else None

    def log_text(self) -> str:
        """Mosquitto's own log so far (stdout and stderr), for error messages and debugging."""
        if self._workdir is None:
            return ""
        return _read_tail(self._workdir / "mosquitto.log")

    def ensure_running(self) -> None:
        """Raise BrokerError, with Mosquitto's output, if the broker has died since start()."""
        proc = self._proc
        if proc is None:
            raise BrokerError("the embedded broker is not started")
        if proc.poll() is not None:
            raise BrokerError(
                f"mosquitto (pid {proc.pid}) exited with code {proc.returncode}; "
                f"its output:\n{self.log_text()}"
            )

    # -- lifecycle

    def _binary(self) -> str:
        if self._mosquitto_path is not None:
            path = self._mosquitto_path
        else:
            path = shutil.which("mosquitto") or _FALLBACK_BINARY
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BrokerError(f"no mosquitto executable at {path!r}: {_INSTALL_HINT}")
        return path

    def _write_config(self, workdir: Path, port: int) -> Path:
        lines = [
            "# runmon embedded broker (generated; deleted on stop)",
            "per_listener_settings false",
            "persistence false",
            f"listener {port} {HOST}",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        # Started as root, Mosquitto drops to user `mosquitto`, which cannot read our 0600
        # files; naming the current user keeps it as is (ignored when not root).
        user = _current_user()
        if user is not None:
            lines.append(f"user {user}")
        if self._users is not None:
            passwd = workdir / "passwd"
            passwd.write_text(password_file_text(self._users), encoding="utf-8")
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self._acl is not None:
            acl = workdir / "acl"
            acl.write_text(self._acl, encoding="utf-8")
            acl.chmod(0o600)
            lines.append(f"acl_file {acl}")
        config = workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        config.chmod(0o600)
        return config

    def start(self) -> None:
        """Start Mosquitto and wait until it accepts connections; a no-op if already running."""
        with self._lock:
            if self._proc is not None:
                return
            binary = self._binary()
            workdir = Path(tempfile.mkdtemp(prefix="runmon-mosquitto-"))
            attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
            try:
                for attempt in range(1, attempts + 1):
                    port = self._requested_port or _free_port()
                    try:
                        self._launch(binary, workdir, port)
                    except _PortTakenError:
                        if attempt == attempts:
                            raise BrokerError(
                                f"mosquitto found its port taken {attempts} times in a row; "
                                f"last output:\n{_read_tail(workdir / 'mosquitto.log')}"
                            ) from None
                        continue
                    return
            except BaseException:
                shutil.rmtree(workdir, ignore_errors=True)
                raise

    def _launch(self, binary: str, workdir: Path, port: int) -> None:
        config = self._write_config(workdir, port)
        log_path = workdir / "mosquitto.log"
        log = log_path.open("wb")  # a file, not a pipe: a pipe nobody drains blocks Mosquitto
        try:
            proc = subprocess.Popen(
                [binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        except OSError as exc:
            log.close()
            raise BrokerError(f"could not run {binary!r} ({exc}): {_INSTALL_HINT}") from exc
        try:
            self._wait_ready(proc, port, log_path)
        except BaseException:
            _reap(proc, log, None, self._stop_timeout_s)
            raise
        self._proc, self._workdir, self._port = proc, workdir, port
        self._finalizer = weakref.finalize(self, _reap, proc, log, workdir, self._stop_timeout_s)

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        accepting_since: float | None = None
        while True:
            code = proc.poll()
            if code is not None:
                output = _read_tail(log_path)
                if "Address already in use" in output and self._requested_port is None:
                    raise _PortTakenError
                raise BrokerError(
                    f"mosquitto exited with code {code} while starting on {HOST}:{port}; "
                    f"its output:\n{output}"
                )
            now = time.monotonic()
            if _port_accepts(port):
                # Something else may hold the port (Mosquitto is then about to exit), so the
                # open port alone is not proof: wait for Mosquitto's own "running" line.
                accepting_since = accepting_since if accepting_since is not None else now
                if _READY_MARKER.search(log_path.read_bytes()) or (
                    now - accepting_since >= _READY_GRACE_S
                ):
                    return
            else:
                accepting_since = None
            if now >= deadline:
                raise BrokerError(
                    f"mosquitto did not accept connections on {HOST}:{port} within "
                    f"{self._startup_timeout_s} s; its output:\n{_read_tail(log_path)}"
                )
            time.sleep(_POLL_S)

    def stop(self) -> None:
        """Terminate (then kill) Mosquitto, reap it, delete the temp dir; safe to repeat."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self._proc = None
            self._workdir = None
            self._port = None
            if finalizer is not None:
                finalizer()

    # -- context managers

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
