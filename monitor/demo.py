"""``runmon demo``: everything on this machine — an embedded broker, a simulated runner on virtual
BLE sensors, the service, and a subscriber that prints what a headphone app and a coach dashboard
receive.

The runner's sensors are virtual peripherals on an in-process bumble radio
(:class:`~simulators.serve_scenario.ScenarioServer`), serving the scenario's bytes paced on data
time; the production BLE client (:class:`~sensors.ble.client.SensorHub`, bleak on our bumble
backend) connects to them, subscribes and turns what arrives into the records the service eats:
the path a real run takes, minus the radio. Pain reports and controls of a scenario are not BLE:
the demo publishes them over MQTT at their time, as the runner's app would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from monitor.errors import InboundMessageError
from monitor.inbound import ControlMessage, PainMessage
from monitor.listen import CuePayload, format_clock, parse_cue
from monitor.mqtt.broker import EmbeddedBroker
from monitor.mqtt.client import BrokerAddress, MqttLink, parse_broker_url
from monitor.mqtt.topics import Topics
from monitor.service import RunnerFeed, RunnerResult, serve
from sensors.ble import VirtualRadio, open_backend
from sensors.ble.client import ClientOptions, SensorHub, SensorStatus, SensorTarget
from sensors.recording import ControlEvent, PainEvent, Record
from simulators.scenario import load_scenario
from simulators.serve_scenario import ScenarioPlan, ScenarioServer, plan_sensors
from simulators.session import effective_duration_s, recording_header, simulated_records

#: Print a metrics line every this many seconds of run time.
METRICS_EVERY_S = 30
#: The virtual radio is in this process: reconnect quickly (data time runs ``speedup`` x faster).
DEMO_CLIENT_OPTIONS = ClientOptions(
    connect_timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=1.0
)
#: How far (wall s) a sensor's stream may fall behind before data time waits for it: the
#: in-process radio carries about 1500 notifications/s, a 4-sensor runner at 100x needs more.
MAX_LAG_S = 0.05
#: After the last payload is served, how long (wall s) the client may take to receive it.
DELIVERY_GRACE_S = 5.0


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
    sensor_losses: int = 0


async def paced(records: Iterable[Record], speedup: float, start: float) -> AsyncIterator[Record]:
    """Release each record when its data time comes, ``speedup`` times faster than real time.

    Records straight into a service, no BLE in between: for tests of the service itself.
    """
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
    plan = plan_sensors(header, simulated_records(scenario, duration_s, options.seed))
    print(
        f"runmon demo: scenario {scenario.name!r}, {duration_s:.0f} s of running at "
        f"{options.speedup:g}x real time (about {duration_s / options.speedup:.0f} s), "
        f"seed {options.seed}"
    )
    sensors = ", ".join(f"{s.id} ({s.spec.profile}, {s.name!r})" for s in plan.sensors)
    print(f"virtual BLE sensors: {sensors}")
    print(f"broker: {address.url} ({where})")
    print("follow along in another terminal:")
    print(f"  .venv/bin/runmon listen --broker {address.url} --runner {runner}")
    print("runmon coaches running form; it does not diagnose. Pain that lasts: see a professional.")
    print()
    seen = _Seen()
    wall_start = time.monotonic()
    radio = VirtualRadio()
    watch_link = MqttLink(address, client_id=f"runmon-demo-watch-{runner}")
    async with watch_link, asyncio.TaskGroup() as group:
        watcher = group.create_task(_watch(watch_link, topics, runner, seen), name="watch")
        # Subscriptions are in place before the service publishes anything.
        await asyncio.sleep(0.1)
        async with (
            ScenarioServer(radio, plan, speedup=options.speedup, max_lag_s=MAX_LAG_S) as server,
            open_backend(radio) as backend,
        ):
            # Data time is the scenario's: it starts when the client first subscribes.
            clock = server.now_s
            targets = [SensorTarget(s.id, s.spec.profile, address=s.address) for s in plan.sensors]

            def on_status(status: SensorStatus) -> None:
                if status.state == "lost":
                    seen.sensor_losses += 1
                    print(f"  {format_clock(clock()):>6}  sensor {status.reason}")

            hub = SensorHub(
                targets, backend, clock=clock, options=DEMO_CLIENT_OPTIONS, on_status=on_status
            )
            async with hub:
                group.create_task(_finish(server, hub, plan), name="finish")
                app = group.create_task(
                    _app_events(watch_link, topics, runner, plan.other_records, server),
                    name="app-events",
                )
                feed = RunnerFeed(header=header, records=hub.records(), data_clock=clock)
                try:
                    results = await serve(address, [feed], topics=topics, instance=options.instance)
                finally:
                    app.cancel()  # events timed after the last record have nobody to go to
        seen.expected_cues = len(results[0].cues)
        if len(seen.cues) >= seen.expected_cues:
            seen.all_cues.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.all_cues.wait(), timeout=5.0)
        watcher.cancel()
    _summary(results[0], seen, time.monotonic() - wall_start, duration_s)
    return 0 if len(seen.cues) == len(results[0].cues) else 1


async def _finish(server: ScenarioServer, hub: SensorHub, plan: ScenarioPlan) -> None:
    """End the run once every payload is served and received: the records then end."""
    await server.wait_done()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DELIVERY_GRACE_S):
            await hub.wait_notified(plan.notification_counts)
    hub.close()


async def _app_events(
    link: MqttLink, topics: Topics, runner: str, records: list[Record], server: ScenarioServer
) -> None:
    """Publish the scenario's pain reports and controls at their time, as the app would."""
    for record in records:
        await server.sleep_until(record.t or 0.0)
        if isinstance(record, PainEvent):
            pain = PainMessage(
                level=record.level, location=record.location, radiating=record.radiating
            )
            await link.publish(topics.pain(runner), pain.model_dump(mode="json"), qos=1)
        elif isinstance(record, ControlEvent):
            control = ControlMessage(action=record.action, minutes=record.minutes)
            payload = control.model_dump(mode="json", exclude_none=True)
            await link.publish(topics.control(runner), payload, qos=1)


def _summary(result: RunnerResult, seen: _Seen, wall_s: float, duration_s: float) -> None:
    print()
    codes = ", ".join(f"{c.code} at {format_clock(c.t_s)}" for c in seen.cues) or "none"
    print(f"summary: {duration_s:.0f} s of simulated run in {wall_s:.1f} s of wall time")
    print(f"  cues received over MQTT: {len(seen.cues)} of {len(result.cues)} decided ({codes})")
    print(f"  metrics rows published: {result.rows}; bad input lines: {result.errors}")
    if seen.sensor_losses:
        print(f"  sensor links lost and recovered: {seen.sensor_losses}")
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
