"""``runmon simulate --serve``, ``scan``, ``record`` and ``run`` as a user runs them: real
processes, the served sensors reached over bumble's TCP transport, a real broker."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from monitor.mqtt.client import BrokerAddress, MqttLink, wait_for_message
from monitor.mqtt.topics import Topics
from sensors.recording import Notification, Record, RecordingReader

RUNMON = str(Path(sys.executable).with_name("runmon"))
WAIT_S = 20.0


class Served:
    """A running ``runmon simulate --serve``: its transport spec and its output so far."""

    def __init__(self, process: asyncio.subprocess.Process, spec: str, lines: list[str]) -> None:
        self.process = process
        self.spec = spec
        self.lines = lines

    async def read_until(self, text: str) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT_S):
            while True:
                line = (await self.process.stdout.readline()).decode()
                assert line, f"server ended before printing {text!r}: {self.lines}"
                self.lines.append(line)
                if text in line:
                    return line


async def run(*args: str, timeout_s: float = WAIT_S) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        RUNMON, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(timeout_s):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def serve(*args: str) -> AsyncIterator[Served]:
    process = await asyncio.create_subprocess_exec(
        RUNMON, "simulate", "--serve", *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        served = Served(process, "", [])
        first = await served.read_until("--ble-transport")
        match = re.search(r"--ble-transport (tcp-client:\S+)", first)
        assert match is not None, first
        served.spec = match.group(1)
        await served.read_until("the run starts when")
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT_S):
            await process.wait()


@pytest.fixture
async def lean_forward(tmp_path: Path) -> AsyncIterator[Served]:
    """lean_forward's four sensors, 10 s of running at 50x, and a runner config for them."""
    async for served in serve(
        "--scenario", "lean_forward", "--duration", "10", "--speedup", "50", "--seed", "2",
        "--config-out", str(tmp_path / "runner.toml"),
    ):  # fmt: skip
        yield served


def _field(payload: object, name: str) -> object:
    return payload.get(name) if isinstance(payload, dict) else None


def per_sensor(records: Iterable[Record]) -> dict[str, list[tuple[str, bytes]]]:
    out: dict[str, list[tuple[str, bytes]]] = {}
    for record in records:
        if isinstance(record, Notification):
            out.setdefault(record.sensor, []).append((record.char, record.payload))
    return out


async def test_record_against_served_sensors_captures_the_simulators_bytes(
    lean_forward: Served, tmp_path: Path
) -> None:
    config = tmp_path / "runner.toml"
    assert 'name = "runmon-r1-chest"' in config.read_text()

    captured, direct = tmp_path / "captured.jsonl", tmp_path / "direct.jsonl"
    # Scanning first (a sensor stops advertising once connected, as real ones do), while the
    # simulator writes the same run directly; then recording.
    scanned, simulated = await asyncio.gather(
        run("scan", "--ble-transport", lean_forward.spec, "--timeout", "0.3"),
        run(
            "simulate", "--scenario", "lean_forward", "--duration", "10", "--seed", "2",
            "--out", str(direct),
        ),
    )  # fmt: skip
    recorded = await run(
        "record", "--config", str(config), "--ble-transport", lean_forward.spec,
        "--out", str(captured), "--duration", "2.5",
    )  # fmt: skip

    # runmon scan lists them, profiles told apart from their advertisements.
    code, out, err = scanned
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert sorted((row[0], row[1]) for row in rows) == [
        ("heart_rate", "runmon-r1-hr"),
        ("rsc", "runmon-r1-foot"),
        ("runmon_breath", "runmon-r1-band"),
        ("runmon_imu", "runmon-r1-chest"),
    ]
    code, out, err = recorded
    assert code == 0, err
    assert f"wrote {captured}" in out
    assert "chest: streaming" in err
    served = await lean_forward.read_until("scenario served")
    assert ", 0 not delivered" in served
    code, _, err = simulated
    assert code == 0, err
    with RecordingReader(direct) as a, RecordingReader(captured) as b:
        expected, got = per_sensor(a), per_sensor(b)
        assert b.header.runner == "r1"
        assert [s.id for s in b.header.sensors] == ["foot", "chest", "hr", "band"]
    assert got == expected
    lines = captured.read_text().splitlines()
    events = [json.loads(line).get("event") for line in lines[1:]]
    assert events.count("connect") == 4
    assert events.count("disconnect") == 4  # recording stopped: every sensor let go


async def test_run_serves_live_sensors_over_mqtt_and_stops_cleanly(
    tmp_path: Path, mqtt_address: BrokerAddress, topics: Topics
) -> None:
    config = tmp_path / "runner.toml"
    async for served in serve(
        "--scenario", "stride_shorten", "--duration", "120", "--speedup", "20",
        "--config-out", str(config),
    ):  # fmt: skip
        async with MqttLink(mqtt_address) as app:
            await app.subscribe(topics.sensor("r1", "foot"), qos=1)
            await app.subscribe(topics.metrics("r1"), qos=0)
            await app.subscribe(topics.status("live"), qos=1)
            process = await asyncio.create_subprocess_exec(
                RUNMON, "run", "--config", str(config), "--broker", mqtt_address.url,
                "--root", topics.root, "--instance", "live", "--ble-transport", served.spec,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                state = await wait_for_message(
                    app,
                    lambda m: (
                        m.topic == topics.sensor("r1", "foot")
                        and _field(m.json(), "state") == "streaming"
                    ),
                    timeout_s=WAIT_S,
                )
                assert _field(state.json(), "battery_pct") == 87  # read on connect
                row = await wait_for_message(
                    app, lambda m: m.topic == topics.metrics("r1"), timeout_s=WAIT_S
                )
                assert _field(row.json(), "phase") == "warmup"  # standing, before the run
                process.send_signal(signal.SIGTERM)  # as systemd stops a service
                async with asyncio.timeout(WAIT_S):
                    out, err = await process.communicate()
                assert process.returncode == 0, err.decode()
                assert re.search(r"^r1: \d+ rows, cues: ", out.decode(), re.MULTILINE)
                offline = await wait_for_message(
                    app,
                    lambda m: m.topic == topics.status("live") and m.payload == b"offline",
                    timeout_s=WAIT_S,
                )
                assert offline.payload == b"offline"
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def test_bad_config_and_unreachable_transport_exit_with_clear_errors(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[runner]\nid = "r1"\n[sensors.foot]\nprofile = "rsc"\nspeed_factor = 9\n')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (code, _, err), (scan_code, _, scan_err) = await asyncio.gather(
        run("record", "--config", str(bad), "--out", str(tmp_path / "x.jsonl")),
        run("scan", "--ble-transport", f"tcp-client:127.0.0.1:{port}"),
    )
    assert code == 2
    assert f"{bad}: sensors.foot.speed_factor" in err
    assert not (tmp_path / "x.jsonl").exists()
    assert scan_code == 1  # nothing listens there: a runtime failure, said plainly
    assert f"runmon: error: BLE transport 'tcp-client:127.0.0.1:{port}': cannot open" in scan_err
