"""The embedded Mosquitto: lifecycle, failure messages, password hashes, ACL text."""

from __future__ import annotations

import base64
import gc
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import monitor.mqtt.broker as broker_module
from monitor.errors import BrokerError, ConfigError
from monitor.mqtt.broker import EmbeddedBroker, acl_for_runners, hash_password, password_file_text
from monitor.mqtt.client import MqttLink


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


async def test_broker_accepts_mqtt5_and_stops_without_leftovers() -> None:
    async with EmbeddedBroker() as broker:
        pid = broker.pid
        config = broker.config_path
        assert pid is not None
        assert config is not None
        assert broker.running
        assert broker.host == "127.0.0.1"
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        async with MqttLink(broker.address(), client_id="lifecycle-check") as link:
            assert await link.subscribe("lifecycle/#") == 1
        # Mosquitto logs the protocol of each client: p5 = MQTT 5.
        assert "as lifecycle-check (p5," in broker.log_text()
    assert not _pid_alive(pid)
    assert not config.parent.exists()
    assert not broker.running
    broker.stop()  # idempotent
    with pytest.raises(BrokerError, match="not started"):
        _ = broker.port


def test_sync_context_manager_and_repeated_start() -> None:
    with EmbeddedBroker() as broker:
        pid = broker.pid
        broker.start()  # already running: a no-op, same process
        assert broker.pid == pid
        broker.ensure_running()
    assert pid is not None
    assert not _pid_alive(pid)


def test_generated_config_keeps_current_user_and_authentication() -> None:
    with EmbeddedBroker(users={"u1": "pw"}, acl=acl_for_runners()) as broker:
        assert broker.config_path is not None
        config = broker.config_path.read_text()
        passwd = (broker.config_path.parent / "passwd").read_text()
        port = broker.port
    assert f"user {pwd.getpwuid(os.getuid()).pw_name}\n" in config
    assert "allow_anonymous false" in config
    assert "persistence false" in config
    assert f"listener {port} 127.0.0.1\n" in config
    assert "acl_file " in config
    assert passwd.startswith("u1:$7$101$")


def test_missing_binary_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="Debian package `mosquitto`"):
        EmbeddedBroker(mosquitto_path=str(tmp_path / "no-such-mosquitto")).start()
    not_executable = tmp_path / "mosquitto"
    not_executable.write_text("")
    with pytest.raises(BrokerError, match="Debian package `mosquitto`"):
        EmbeddedBroker(mosquitto_path=str(not_executable)).start()


def test_default_binary_lookup_failure_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(broker_module, "_FALLBACK_BINARY", str(tmp_path / "mosquitto"))
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        EmbeddedBroker().start()


def test_mosquitto_exit_reports_its_output(listening_socket: socket.socket) -> None:
    port = listening_socket.getsockname()[1]
    broker = EmbeddedBroker(port=port)
    with pytest.raises(BrokerError) as caught:
        broker.start()
    message = str(caught.value)
    assert "exited with code" in message
    assert "Address already in use" in message
    assert not broker.running
    broker.stop()


def test_port_race_retries_on_another_port(
    monkeypatch: pytest.MonkeyPatch, listening_socket: socket.socket
) -> None:
    taken = listening_socket.getsockname()[1]
    real_free_port = broker_module._free_port
    ports = iter([taken])
    monkeypatch.setattr(broker_module, "_free_port", lambda: next(ports, None) or real_free_port())
    with EmbeddedBroker() as broker:
        assert broker.port != taken
        broker.ensure_running()


def test_garbage_collected_broker_is_stopped() -> None:
    broker = EmbeddedBroker()
    broker.start()
    pid = broker.pid
    assert pid is not None
    del broker
    gc.collect()
    assert not _pid_alive(pid)


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    """Cross-check against the reference tool from the same Debian package."""
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None, "mosquitto_passwd missing: install the Debian package `mosquitto`"
    passwd = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwd), "alice", "s3cret:é"], check=True)
    line = passwd.read_text().strip()
    user, _, reference = line.partition(":")
    _, kind, iterations, salt_b64, _digest = reference.split("$")
    assert (user, kind, iterations) == ("alice", "7", "101")
    assert hash_password("s3cret:é", salt=base64.b64decode(salt_b64)) == reference


def test_password_file_refuses_separators() -> None:
    assert password_file_text({"a": "x", "b": "y"}).count("\n") == 2
    with pytest.raises(BrokerError):
        password_file_text({"a:b": "x"})
    with pytest.raises(BrokerError):
        password_file_text({"a\nb": "x"})


def test_acl_for_runners_text() -> None:
    acl = acl_for_runners("club/v1", service_user="svc")
    lines = acl.splitlines()
    assert "pattern readwrite club/v1/runners/%u/#" in lines
    assert "pattern read club/v1/service/+/status" in lines
    assert lines[lines.index("user svc") + 1] == "topic readwrite club/v1/#"
    with pytest.raises(ConfigError):
        acl_for_runners("club/#")
    with pytest.raises(BrokerError):
        acl_for_runners(service_user="two words")
