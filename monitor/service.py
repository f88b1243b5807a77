"""The live service: runner feeds in, MQTT out (DESIGN §3.5).

Structure: one :class:`RunmonService` per broker connection runs, in one TaskGroup, a publisher
task draining a bounded :class:`~monitor.outbox.Outbox` and one task per runner. A runner task
feeds its records to a :class:`~monitor.session.RunnerSession` (the same code ``runmon analyze``
replays through) and a ticker closes seconds when sensors fall silent, so metrics turn ``null``
instead of freezing. The service status is retained ``online`` while it runs, ``offline`` on a
clean exit, and the broker publishes the ``offline`` will if the process dies.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from monitor.analyze import MetricsSummary
from monitor.errors import InboundMessageError, MqttError
from monitor.inbound import parse_control, parse_pain
from monitor.metrics import STALE_AFTER_S, MetricRow
from monitor.mqtt.client import BrokerAddress, MqttLink, OutboundWill
from monitor.mqtt.topics import Topics
from monitor.outbox import Outbox, Outgoing
from monitor.session import RunnerSession, SessionOutput
from rules.coach import CueDecision
from rules.config import RuleConfig
from sensors.recording import ControlEvent, PainEvent, Record, RecordingHeader

log = logging.getLogger(__name__)

CUE_SCHEMA: Final = "runmon.cue/1"
METRICS_EXPIRY_S: Final = 5.0
#: Seconds of data time the silence ticker stays behind the clock, so a record still in flight
#: lands in its own second and a live run closes seconds exactly as its replay does.
TICK_GRACE_S: Final = 1.0
TICK_INTERVAL_S: Final = 0.25
#: A sensor's retained state is refreshed at least this often (data seconds) while it changes.
SENSOR_STATE_REFRESH_S: Final = 10


@dataclass(frozen=True, slots=True)
class RunnerFeed:
    """One runner's records and the data-time clock they run on (seconds since session start)."""

    header: RecordingHeader
    records: AsyncIterator[Record]
    data_clock: Callable[[], float]


@dataclass(slots=True)
class RunnerResult:
    """What a runner's session produced, for the caller's summary."""

    runner: str
    rows: int = 0
    cues: list[CueDecision] = field(default_factory=list)
    errors: int = 0
    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)


def iso_ms(epoch_s: float) -> str:
    """``2026-11-25T07:31:02.120Z``: the wall-clock form apps see."""
    stamp = datetime.fromtimestamp(epoch_s, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def cue_payload(
    decision: CueDecision, *, runner: str, seq: int, wall_s: float, cue_id: str
) -> dict[str, Any]:
    """The cue JSON of DESIGN §3.5."""
    return {
        "v": 1,
        "id": cue_id,
        "runner": runner,
        "seq": seq,
        "ts": iso_ms(wall_s),
        "t_s": round(decision.t_s, 3),
        "phase": decision.phase,
        "code": decision.code,
        "text": decision.text,
        "priority": decision.priority,
        "ttl_s": decision.ttl_s,
        "evidence": dict(decision.evidence),
    }


class _RunnerPublisher:
    """Turns one session's outputs into outgoing MQTT messages."""

    def __init__(
        self,
        service: RunmonService,
        session: RunnerSession,
        result: RunnerResult,
        started_at: str,
    ) -> None:
        self.service = service
        self.session = session
        self.result = result
        self.topics = service.topics
        self.runner = session.runner
        self.started_at = started_at
        self.summary = MetricsSummary()  # not the rows: a long run must not grow the service
        self._seq = 0
        self._session_state: tuple[str, bool] | None = None
        self._sensor_states: dict[str, tuple[str, int | None]] = {}
        self._sensor_sent_t: dict[str, int] = {}

    def __call__(self, item: SessionOutput) -> None:
        if isinstance(item, MetricRow):
            self._row(item)
        else:
            self._cue(item)

    def _row(self, row: MetricRow) -> None:
        self.result.rows += 1
        self.summary.add(row)
        self.service.outbox.put(
            Outgoing(
                self.topics.metrics(self.runner),
                row.to_json(),
                qos=0,
                retain=True,
                expiry_s=METRICS_EXPIRY_S,
                content_type="application/json",
                droppable=True,
            )
        )
        self.publish_session(row.phase)
        self._sensors(row.t_s)

    def publish_session(self, phase: str, *, force: bool = False) -> None:
        state = (phase, bool(self.session.coach.baselines))
        if state == self._session_state and not force:
            return
        self._session_state = state
        self.service.outbox.put(
            Outgoing(
                self.topics.session(self.runner),
                {
                    "phase": phase,
                    "started_at": self.started_at,
                    "sensors": list(self.session.channels),
                    "baseline_ready": state[1],
                },
                qos=1,
                retain=True,
                content_type="application/json",
            )
        )

    def _sensors(self, t_s: int) -> None:
        for sensor_id, channel in self.session.channels.items():
            st = channel.state
            age_s = None if st.last_data_t_s is None else max(0.0, t_s - st.last_data_t_s)
            if st.last_data_t_s is None:
                state = "connecting"
            elif st.disconnected or (age_s is not None and age_s > STALE_AFTER_S):
                state = "lost"  # a dropped link at once; a silent one after 3 s
            else:
                state = "streaming"
            key = (state, st.battery_pct)
            last_sent = self._sensor_sent_t.get(sensor_id)
            changed = self._sensor_states.get(sensor_id) != key
            if not changed and last_sent is not None and t_s - last_sent < SENSOR_STATE_REFRESH_S:
                continue
            self._sensor_states[sensor_id] = key
            self._sensor_sent_t[sensor_id] = t_s
            self.service.outbox.put(
                Outgoing(
                    self.topics.sensor(self.runner, sensor_id),
                    {
                        "state": state,
                        "battery_pct": st.battery_pct,
                        "last_data_age_s": None if age_s is None else round(age_s, 1),
                    },
                    qos=1,
                    retain=True,
                    content_type="application/json",
                    droppable=not changed,
                )
            )

    def _cue(self, decision: CueDecision) -> None:
        self._seq += 1
        self.result.cues.append(decision)
        loop_now = asyncio.get_running_loop().time()
        self.service.outbox.put(
            Outgoing(
                self.topics.cues(self.runner),
                cue_payload(
                    decision,
                    runner=self.runner,
                    seq=self._seq,
                    wall_s=self.service.wall_clock(),
                    cue_id=str(uuid.uuid4()),
                ),
                qos=1,
                retain=False,
                expiry_s=decision.ttl_s,
                content_type="application/json",
                user_properties=(("schema", CUE_SCHEMA),),
                deadline=loop_now + decision.ttl_s,
            )
        )

    def report(self) -> dict[str, Any]:
        """The retained post-run summary."""
        metrics = self.summary.to_json()
        self.result.metrics = metrics
        return {
            "runner": self.runner,
            "started_at": self.started_at,
            "duration_s": round(self.session.last_t_s, 3),
            "cues": [c.to_json() for c in self.result.cues],
            "metrics": metrics,
            "baseline": self.session.coach.baselines.to_json(),
            "errors": self.session.diagnostics.errors,
        }


class RunmonService:
    """Publishes each runner's metrics, cues, session and sensor state over one MQTT link."""

    def __init__(
        self,
        link: MqttLink,
        *,
        topics: Topics | None = None,
        instance: str = "local",
        rules: RuleConfig | None = None,
        wall_clock: Callable[[], float] = time.time,
        outbox_capacity: int = 1024,
    ) -> None:
        self.link = link
        self.topics = topics if topics is not None else Topics()
        self.instance = instance
        self.status_topic = self.topics.status(instance)
        self.rules = rules
        self.wall_clock = wall_clock
        self.outbox = Outbox(outbox_capacity)
        self.cues_expired = 0
        self.inbound_errors: dict[tuple[str, str], int] = {}
        self._live: dict[str, tuple[RunnerSession, Callable[[], float]]] = {}

    async def run(self, feeds: Sequence[RunnerFeed]) -> list[RunnerResult]:
        """Serve the feeds until all have ended; status ``offline`` on the way out."""
        await self.link.publish(self.status_topic, "online", qos=1, retain=True)
        for feed in feeds:
            await self.link.subscribe(self.topics.pain(feed.header.runner), qos=1)
            await self.link.subscribe(self.topics.control(feed.header.runner), qos=1)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish_loop(), name="mqtt-publisher")
                inbound = group.create_task(self._inbound_loop(), name="mqtt-inbound")
                runners = [
                    group.create_task(self._run_runner(feed), name=f"runner-{feed.header.runner}")
                    for feed in feeds
                ]
                try:
                    results = [await task for task in runners]
                finally:
                    inbound.cancel()
                    self.outbox.close()
        finally:
            if self.link.connected:
                await asyncio.shield(self._say_offline())
        return results

    async def _say_offline(self) -> None:
        try:
            await self.link.publish(self.status_topic, "offline", qos=1, retain=True)
        except MqttError as exc:
            log.warning("could not publish offline status: %s", exc)

    async def _run_runner(self, feed: RunnerFeed) -> RunnerResult:
        result = RunnerResult(runner=feed.header.runner)
        session = RunnerSession(feed.header, rules=self.rules)
        publisher = _RunnerPublisher(self, session, result, iso_ms(self.wall_clock()))
        session.set_output(publisher)
        publisher.publish_session(session.coach.phase, force=True)
        self._live[session.runner] = (session, feed.data_clock)
        async with asyncio.TaskGroup() as group:
            ticker = group.create_task(
                self._tick(session, feed.data_clock), name=f"tick-{session.runner}"
            )
            async for record in feed.records:
                session.feed(record)
            ticker.cancel()
        del self._live[session.runner]
        session.finish()
        session.coach.end()
        publisher.publish_session("ended")
        self.outbox.put(
            Outgoing(
                self.topics.report(session.runner),
                publisher.report(),
                qos=1,
                retain=True,
                content_type="application/json",
            )
        )
        result.errors = session.diagnostics.errors
        result.warnings = list(session.diagnostics.warnings)
        return result

    @staticmethod
    async def _tick(session: RunnerSession, data_clock: Callable[[], float]) -> None:
        """Close seconds on the clock while sensors are silent (rows then say ``stale``)."""
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            session.advance_to(data_clock() - TICK_GRACE_S)

    async def _inbound_loop(self) -> None:
        """Pain reports and controls from the runners' apps, into their sessions."""
        async for message in self.link.messages():
            parsed = self.topics.parse(message.topic)
            if parsed is None or parsed.runner not in self._live:
                continue  # another service's runner, or not ours to handle
            session, data_clock = self._live[parsed.runner]
            # Stamped no later than the ticker has closed, so the event lands in an open second.
            t_s = max(session.last_t_s, data_clock() - TICK_GRACE_S)
            try:
                if parsed.kind == "pain":
                    pain = parse_pain(message)
                    session.feed(PainEvent(t_s, pain.level, pain.location, pain.radiating))
                elif parsed.kind == "control":
                    control = parse_control(message)
                    session.feed(ControlEvent(t_s, control.action, control.minutes))
            except InboundMessageError as exc:
                self._refuse(parsed.runner, message.topic, exc)

    def _refuse(self, runner: str, topic: str, exc: InboundMessageError) -> None:
        """Log, count and publish a refused inbound message; the stream goes on."""
        key = (runner, topic)
        count = self.inbound_errors.get(key, 0) + 1
        self.inbound_errors[key] = count
        if count <= 3 or count % 100 == 0:
            log.warning("refused inbound message #%d: %s", count, exc)
        self.outbox.put(
            Outgoing(
                self.topics.errors(runner),
                {"topic": topic, "error": exc.reason, "count": count},
                qos=0,
                content_type="application/json",
                droppable=True,
            )
        )

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while (item := await self.outbox.get()) is not None:
            if item.deadline is not None and loop.time() > item.deadline:
                self.cues_expired += 1
                log.info("dropped %s: not delivered within its ttl", item.topic)
                continue
            await self.link.publish(
                item.topic,
                item.payload,
                qos=item.qos,
                retain=item.retain,
                expiry_s=item.expiry_s,
                content_type=item.content_type,
                user_properties=item.user_properties,
            )


async def serve(
    address: BrokerAddress,
    feeds: Sequence[RunnerFeed],
    *,
    topics: Topics | None = None,
    instance: str = "local",
    rules: RuleConfig | None = None,
) -> list[RunnerResult]:
    """Connect with the ``offline`` will, serve the feeds, disconnect cleanly."""
    topics = topics if topics is not None else Topics()
    will = OutboundWill(topics.status(instance), "offline", qos=1, retain=True)
    async with MqttLink(address, client_id=f"runmon-service-{instance}", will=will) as link:
        service = RunmonService(link, topics=topics, instance=instance, rules=rules)
        return await service.run(feeds)
