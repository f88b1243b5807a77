"""``runmon demo``: everything on this machine — an embedded broker, a simulated runner, the
service, and a subscriber that prints what a headphone app and a coach dashboard receive.

Until the virtual BLE sensors exist the simulated runner's notifications go straight into the
service: the same records, bytes and session code a BLE capture would feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from monitor.errors import InboundMessageError
from monitor.listen import CuePayload, format_clock, parse_cue
from monitor.mqtt.broker import EmbeddedBroker
from monitor.mqtt.client import BrokerAddress, MqttLink, parse_broker_url
from monitor.mqtt.topics import Topics
from monitor.service import RunnerFeed, RunnerResult, serve
from sensors.recording import Record
from simulators.scenario import load_scenario
from simulators.session import effective_duration_s, recording_header, simulated_records

#: Print a metrics line every this many seconds of run time.
METRICS_EVERY_S = 30


@dataclass(frozen=True, slots=True)
class DemoOptions:
    scenario: str = "stride_shorten"
    duration_s: float | None = 600.0
    speedup: float = 20.0
    seed: int = 0
    broker_url: str | None = None
    root: str = "runmon/v1"
    instance: str = "demo"


@dataclass(slots=True)
class _Seen:
    cues: list[CuePayload] = field(default_factory=list)
    metrics_rows: int = 0
    all_cues: asyncio.Event = field(default_factory=asyncio.Event)
    expected_cues: int | None = None


async def paced(records: Iterable[Record], speedup: float, start: float) -> AsyncIterator[Record]:
    """Release each record when its data time comes, ``speedup`` times faster than real time."""
    loop = asyncio.get_running_loop()
    for record in records:
        delay = start + (record.t or 0.0) / speedup - loop.time()
        if delay > 0.001:
            await asyncio.sleep(delay)
        yield record


def describe_evidence(evidence: dict[str, object]) -> str:
    """One readable line of why a cue came: the metric against the runner's baseline."""
    metric, value, baseline = (evidence.get(k) for k in ("metric", "value", "baseline"))
    parts = []
    if isinstance(value, int | float) and isinstance(baseline, int | float) and baseline:
        change = 100.0 * (value / baseline - 1.0)
        parts.append(f"{metric} {value} vs baseline {baseline} ({change:+.0f} %)")
    elif metric is not None:
        parts.append(f"{metric} {value}")
    extras = {k: v for k, v in evidence.items() if k not in {"metric", "value", "baseline"}}
    parts.extend(f"{k} {v}" for k, v in extras.items() if k != "target")
    return "; ".join(parts)


def _fmt(value: object, digits: int, unit: str) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f} {unit}"


async def _watch(link: MqttLink, topics: Topics, runner: str, seen: _Seen) -> None:
    """Print cues and a metrics line from what arrives over MQTT, as an app would see it."""
    await link.subscribe(topics.cues(runner), qos=1)
    await link.subscribe(topics.metrics(runner), qos=0)
    async for message in link.messages():
        if message.topic == topics.cues(runner):
            try:
                cue = parse_cue(message)
            except InboundMessageError as exc:
                print(f"  !! bad cue: {exc}")
                continue
            seen.cues.append(cue)
            clock = format_clock(cue.t_s)
            print(f"  {clock:>6}  CUE {cue.code} (priority {cue.priority}): {cue.text}")
            print(f"          {describe_evidence(cue.evidence)}")
            if seen.expected_cues is not None and len(seen.cues) >= seen.expected_cues:
                seen.all_cues.set()
        elif message.topic == topics.metrics(runner):
            row = message.json()
            if not isinstance(row, dict):
                continue
            seen.metrics_rows += 1
            t_s = row.get("t_s")
            if isinstance(t_s, int) and t_s % METRICS_EVERY_S == 0:
                print(
                    f"  {format_clock(t_s):>6}  {row.get('phase', '?'):<8}"
                    f"  cadence {_fmt(row.get('cadence_spm'), 0, 'spm'):>9}"
                    f"  speed {_fmt(row.get('speed_mps'), 2, 'm/s'):>8}"
                    f"  stride {_fmt(row.get('stride_length_m'), 2, 'm'):>6}"
                )


async def _run(options: DemoOptions, address: BrokerAddress, where: str) -> int:
    scenario = load_scenario(options.scenario)
    duration_s = effective_duration_s(scenario, options.duration_s)
    topics = Topics(options.root)
    header = recording_header(scenario)
    runner = header.runner
    print(
        f"runmon demo: scenario {scenario.name!r}, {duration_s:.0f} s of running at "
        f"{options.speedup:g}x real time (about {duration_s / options.speedup:.0f} s), "
        f"seed {options.seed}"
    )
    print(f"broker: {address.url} ({where})")
    print("follow along in another terminal:")
    print(f"  .venv/bin/runmon listen --broker {address.url} --runner {runner}")
    print("runmon coaches running form; it does not diagnose. Pain that lasts: see a professional.")
    print()
    seen = _Seen()
    wall_start = time.monotonic()
    watch_link = MqttLink(address, client_id=f"runmon-demo-watch-{runner}")
    async with watch_link, asyncio.TaskGroup() as group:
        watcher = group.create_task(_watch(watch_link, topics, runner, seen), name="watch")
        # Subscriptions are in place before the service publishes anything.
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        feed = RunnerFeed(
            header=header,
            records=paced(
                simulated_records(scenario, duration_s, options.seed), options.speedup, start
            ),
            data_clock=lambda: (loop.time() - start) * options.speedup,
        )
        results = await serve(address, [feed], topics=topics, instance=options.instance)
        seen.expected_cues = len(results[0].cues)
        if len(seen.cues) >= seen.expected_cues:
            seen.all_cues.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.all_cues.wait(), timeout=5.0)
        watcher.cancel()
    _summary(results[0], seen, time.monotonic() - wall_start, duration_s)
    return 0 if len(seen.cues) == len(results[0].cues) else 1


def _summary(result: RunnerResult, seen: _Seen, wall_s: float, duration_s: float) -> None:
    print()
    codes = ", ".join(f"{c.code} at {format_clock(c.t_s)}" for c in seen.cues) or "none"
    print(f"summary: {duration_s:.0f} s of simulated run in {wall_s:.1f} s of wall time")
    print(f"  cues received over MQTT: {len(seen.cues)} of {len(result.cues)} decided ({codes})")
    print(f"  metrics rows published: {result.rows}; bad input lines: {result.errors}")
    for name in ("cadence_spm", "speed_mps", "stride_length_m"):
        stats = result.metrics.get(name, {})
        if stats.get("mean") is not None:
            print(
                f"  {name}: mean {stats['mean']}, min {stats['min']}, max {stats['max']}, "
                f"coverage {stats['coverage']:.0%}"
            )


async def run_demo(options: DemoOptions) -> int:
    if options.broker_url is not None:
        return await _run(options, parse_broker_url(options.broker_url), "external")
    async with EmbeddedBroker() as broker:
        return await _run(options, broker.address(), "embedded Mosquitto")
