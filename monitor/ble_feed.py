"""Live BLE into runmon: a runner configuration's sensors as a recording or as a service feed.

``runmon record`` and ``runmon run`` are thin shells around :func:`record` and :func:`run_live`.
Both take the runner configuration (:mod:`monitor.config`), open the adapter (``--ble-transport``:
the OS stack, or bumble on a transport), and run one :class:`~sensors.ble.client.SensorHub` per
runner. The hub's records are what a recording holds, so recording writes them as they come and
the live service feeds them to the same :class:`~monitor.session.RunnerSession` that replays a
recording.

Both stop cleanly when ``stop`` is set (a signal handler sets it): the hubs disconnect their
sensors, the records end, the recording is flushed and closed, the service publishes its report
and ``offline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from monitor.config import RunnerConfig
from sensors.ble import BleBackend, BleTransportError, open_backend
from sensors.ble.adapter import Transport
from sensors.ble.client import ClientOptions, SensorHub, SensorStatus
from sensors.recording import ConnectionEvent, Notification, RecordingWriter

if TYPE_CHECKING:
    # The service (estimators, rules, MQTT) loads only for run_live: `runmon record` starts
    # in half the time without it.
    from monitor.mqtt.client import BrokerAddress
    from monitor.mqtt.topics import Topics
    from monitor.service import RunnerResult
    from rules.config import RuleConfig

__all__ = ["RecordSummary", "describe_status", "record", "run_live"]

logger = logging.getLogger(__name__)

#: Wall seconds between flushes of a live recording: a crash loses at most this much.
FLUSH_EVERY_S: Final = 1.0


@dataclass(slots=True)
class RecordSummary:
    """What ``runmon record`` wrote."""

    path: Path
    records: int = 0
    notifications: dict[str, int] = field(default_factory=dict)
    connects: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    #: Why recording stopped early: the adapter went away (the file holds everything before).
    error: BleTransportError | None = None


def describe_status(status: SensorStatus) -> str:
    """One terminal line for a sensor's state change."""
    if status.state == "lost":
        return f"{status.sensor}: lost: {status.reason}"
    battery = "" if status.battery_pct is None else f" (battery {status.battery_pct} %)"
    return f"{status.sensor}: {status.state}{battery}"


async def _stop_when(
    hubs: Sequence[SensorHub], stop: asyncio.Event | None, duration_s: float | None
) -> None:
    """Close the hubs when ``stop`` is set or after ``duration_s`` (wall), whichever first."""
    waiter = asyncio.Event() if stop is None else stop
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration_s):
            await waiter.wait()
    for hub in hubs:
        hub.close()


async def _flush_every(writer: RecordingWriter) -> None:
    """Flush on wall time too: lines must not wait in a buffer when the sensors go quiet.

    (The writer flushes every second of recording time as lines come; no fsync, as there: a
    crashed process loses nothing flushed, a power cut may lose more.)
    """
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        writer.flush()


async def record(
    config: RunnerConfig,
    out: Path,
    *,
    transport: Transport = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    options: ClientOptions | None = None,
    on_status: Callable[[SensorStatus], None] | None = None,
) -> RecordSummary:
    """Record the runner's sensors into ``out`` (DESIGN §3.2) until ``stop`` or ``duration_s``.

    Lines are written as they arrive and flushed every second, so a crash loses at most the last
    second. Raises :class:`~sensors.ble.BleTransportError` if the adapter cannot be opened; one
    that goes away later ends the recording early, with the reason in
    :attr:`RecordSummary.error` (what was recorded until then stays in the file).
    """
    summary = RecordSummary(out)
    try:
        async with open_backend(transport) as backend:
            await _record(config, backend, summary, duration_s, stop, options, on_status)
    except BaseExceptionGroup as group:
        _raise_single(group)
    return summary


async def _record(
    config: RunnerConfig,
    backend: BleBackend,
    summary: RecordSummary,
    duration_s: float | None,
    stop: asyncio.Event | None,
    options: ClientOptions | None,
    on_status: Callable[[SensorStatus], None] | None,
) -> None:
    header = config.recording_header(
        datetime.now(UTC), meta={"recorder": {"adapter": backend.description}}
    )
    hub = SensorHub(config.targets(), backend, options=options, on_status=on_status)
    with RecordingWriter(summary.path, header) as writer:
        async with hub, asyncio.TaskGroup() as group:
            stopper = group.create_task(_stop_when([hub], stop, duration_s), name="stop")
            flusher = group.create_task(_flush_every(writer), name="flush")
            try:
                async for item in hub.records():
                    writer.write_record(item)
                    summary.records += 1
                    if isinstance(item, Notification):
                        counts = summary.notifications
                        counts[item.sensor] = counts.get(item.sensor, 0) + 1
                    elif isinstance(item, ConnectionEvent) and item.kind == "connect":
                        summary.connects[item.sensor] = summary.connects.get(item.sensor, 0) + 1
            except BleTransportError as error:
                summary.error = error
            finally:
                stopper.cancel()
                flusher.cancel()
            summary.duration_s = hub.now()


def _raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """A TaskGroup's one failure as itself (the CLI reports typed errors), else the group."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop()
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        raise leaves[0] from group
    raise group


async def run_live(
    configs: Sequence[RunnerConfig],
    address: BrokerAddress,
    *,
    transport: Transport = None,
    topics: Topics | None = None,
    instance: str = "local",
    rules: RuleConfig | None = None,
    stop: asyncio.Event | None = None,
    options: ClientOptions | None = None,
    on_status: Callable[[str, SensorStatus], None] | None = None,
) -> list[RunnerResult]:
    """The live service on the runners' sensors until ``stop``: one hub per runner, all on one
    adapter (one connect lock), into :func:`monitor.service.serve`."""
    runners = [c.runner_id for c in configs]
    if len(set(runners)) != len(runners):
        raise ValueError(f"runner ids must be unique, got {runners}")
    try:
        async with open_backend(transport) as backend:
            return await _serve_hubs(
                configs, backend, address, topics, instance, rules, stop, options, on_status
            )
    except BaseExceptionGroup as group:
        _raise_single(group)


async def _serve_hubs(
    configs: Sequence[RunnerConfig],
    backend: BleBackend,
    address: BrokerAddress,
    topics: Topics | None,
    instance: str,
    rules: RuleConfig | None,
    stop: asyncio.Event | None,
    options: ClientOptions | None,
    on_status: Callable[[str, SensorStatus], None] | None,
) -> list[RunnerResult]:
    from monitor.service import RunnerFeed, serve

    async with contextlib.AsyncExitStack() as stack:
        hubs: list[SensorHub] = []
        feeds: list[RunnerFeed] = []
        for config in configs:
            runner = config.runner_id
            report = None if on_status is None else _bind(on_status, runner)
            hub = SensorHub(config.targets(), backend, options=options, on_status=report)
            await stack.enter_async_context(hub)
            hubs.append(hub)
            feeds.append(RunnerFeed(config.recording_header(), hub.records(), hub.now))
        async with asyncio.TaskGroup() as group:
            stopper = group.create_task(_stop_when(hubs, stop, None), name="stop")
            service = group.create_task(
                serve(address, feeds, topics=topics, instance=instance, rules=rules),
                name="service",
            )
            service.add_done_callback(lambda _task: stopper.cancel())
        return service.result()


def _bind(
    on_status: Callable[[str, SensorStatus], None], runner: str
) -> Callable[[SensorStatus], None]:
    def report(status: SensorStatus) -> None:
        on_status(runner, status)

    return report
