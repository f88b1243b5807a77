"""``runmon run`` with several runner configs: one radio, one service, a runner each.

The production path (:func:`monitor.ble_feed.run_live`: a hub per runner on one adapter, into
the one service) against two runners' virtual sensors on an in-process bumble radio and a real
broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from monitor.ble_feed import run_live
from monitor.config import config_for_header
from monitor.mqtt.client import BrokerAddress, InboundMessage, MqttLink, wait_for_message
from monitor.mqtt.topics import Topics
from sensors.ble import VirtualRadio
from sensors.ble.client import SensorStatus
from simulators.scenario import load_scenario
from simulators.serve_scenario import ScenarioServer, plan_sensors
from simulators.session import recording_header, simulated_records

RUNNERS = ("ra", "rb")


def _running_row(topics: Topics, runner: str) -> Callable[[InboundMessage], bool]:
    """A metrics row of ``runner`` that has a cadence (its footpod is streaming)."""

    def matches(message: InboundMessage) -> bool:
        payload = message.json() if message.topic == topics.metrics(runner) else None
        return isinstance(payload, dict) and isinstance(payload.get("cadence_spm"), float)

    return matches


async def test_two_runners_are_served_side_by_side_and_stop_cleanly(
    mqtt_address: BrokerAddress, topics: Topics
) -> None:
    radio = VirtualRadio()
    base = load_scenario("stride_shorten")  # a footpod runner
    plans, configs = [], []
    for runner in RUNNERS:
        scenario = base.model_copy(update={"runner": base.runner.model_copy(update={"id": runner})})
        header = recording_header(scenario)
        plan = plan_sensors(header, simulated_records(scenario, 120.0, 1))
        plans.append(plan)
        configs.append(config_for_header(header, {s.id: s.name for s in plan.sensors}))
    statuses: list[tuple[str, str]] = []

    def on_status(runner: str, status: SensorStatus) -> None:
        statuses.append((runner, status.state))

    stop = asyncio.Event()
    async with (
        MqttLink(mqtt_address) as app,
        ScenarioServer(radio, plans[0], speedup=20.0),
        ScenarioServer(radio, plans[1], speedup=20.0),
    ):
        for runner in RUNNERS:
            await app.subscribe(topics.metrics(runner), qos=0)
        service = asyncio.create_task(
            run_live(
                configs,
                mqtt_address,
                transport=radio,
                topics=topics,
                instance="multi",
                stop=stop,
                on_status=on_status,
            ),
            name="run-live",
        )
        try:
            # Each runner's own rows, with their own footpod's cadence, on their own topic.
            for runner in RUNNERS:
                row = await wait_for_message(app, _running_row(topics, runner), timeout_s=30.0)
                assert row.topic == topics.metrics(runner)
        finally:
            stop.set()
            async with asyncio.timeout(20.0):
                results = await service
    assert [r.runner for r in results] == list(RUNNERS)
    assert all(r.rows > 0 and r.errors == 0 for r in results)
    for runner in RUNNERS:
        assert (runner, "streaming") in statuses
