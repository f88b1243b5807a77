"""MqttLink against a real Mosquitto, plus topics and broker URLs (pure)."""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.errors import (
    ConfigError,
    InboundMessageError,
    InvalidBrokerUrl,
    InvalidIdentifier,
    MqttError,
    PublishRefused,
)
from monitor.mqtt.broker import EmbeddedBroker, acl_for_runners
from monitor.mqtt.client import (
    BrokerAddress,
    InboundMessage,
    MqttLink,
    OutboundWill,
    encode_payload,
    message_expiry_interval,
    parse_broker_url,
    wait_for_message,
)
from monitor.mqtt.topics import (
    ParsedTopic,
    Topics,
    validate_instance_id,
    validate_runner_id,
    validate_sensor_id,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 3.0


def _on(topic: str) -> Callable[[InboundMessage], bool]:
    return lambda message: message.topic == topic


# --------------------------------------------------------------------------- broker URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://localhost", BrokerAddress("localhost", 1883)),
        ("mqtt://10.0.0.5:1884/", BrokerAddress("10.0.0.5", 1884)),
        ("mqtts://broker.example", BrokerAddress("broker.example", 8883, tls=True)),
        ("mqtt://app@h:2000", BrokerAddress("h", 2000, username="app")),
        ("mqtt://r1:p%40ss%3A1@h", BrokerAddress("h", 1883, username="r1", password="p@ss:1")),
        ("mqtt://[::1]:1999", BrokerAddress("::1", 1999)),
    ],
)
def test_parse_broker_url(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://h",
        "h:1883",
        "mqtt://",
        "mqtt://h:0",
        "mqtt://h:99999",
        "mqtt://h:port",
        "mqtt://h/some/path",
        "mqtt://h?x=1",
        "mqtt://:pw@h",
    ],
)
def test_parse_broker_url_rejects(url: str) -> None:
    with pytest.raises(InvalidBrokerUrl):
        parse_broker_url(url)


def test_broker_url_errors_and_reprs_hide_the_password() -> None:
    with pytest.raises(InvalidBrokerUrl) as caught:
        parse_broker_url("mqtt://r1:hunter2@h/x")
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, ConfigError)
    address = parse_broker_url("mqtts://r1:hunter2@h")
    assert "hunter2" not in repr(address)
    assert address.url == "mqtts://r1@h:8883"
    assert BrokerAddress("::1", 1883).url == "mqtt://[::1]:1883"


# --------------------------------------------------------------------------- topics


def test_topic_builders() -> None:
    t = Topics()
    assert t.cues("r1") == "runmon/v1/runners/r1/cues"
    assert t.metrics("r1") == "runmon/v1/runners/r1/metrics"
    assert t.session("r1") == "runmon/v1/runners/r1/session"
    assert t.sensor("r1", "chest") == "runmon/v1/runners/r1/sensors/chest"
    assert t.report("r1") == "runmon/v1/runners/r1/report"
    assert t.errors("r1") == "runmon/v1/runners/r1/errors"
    assert t.pain("r1") == "runmon/v1/runners/r1/pain"
    assert t.control("r1") == "runmon/v1/runners/r1/control"
    assert t.raw("r1", "foot") == "runmon/v1/runners/r1/raw/foot"
    assert t.status("svc-1") == "runmon/v1/service/svc-1/status"
    assert Topics("club/x").cues("a") == "club/x/runners/a/cues"
    assert t.inbound_filters() == (
        "runmon/v1/runners/+/pain",
        "runmon/v1/runners/+/control",
        "runmon/v1/runners/+/raw/+",
    )
    assert t.inbound_filters("r2")[0] == "runmon/v1/runners/r2/pain"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("runmon/v1/runners/r1/pain", ParsedTopic("pain", "r1")),
        ("runmon/v1/runners/r_2-X/control", ParsedTopic("control", "r_2-X")),
        ("runmon/v1/runners/r1/raw/chest", ParsedTopic("raw", "r1", "chest")),
        ("runmon/v1/runners/r1/cues", None),
        ("runmon/v1/runners/r1/raw", None),
        ("runmon/v1/runners/r1/raw/chest/x", None),
        ("runmon/v1/runners/r1/pain/x", None),
        ("runmon/v1/runners/r 1/pain", None),
        ("runmon/v1/runners//pain", None),
        ("runmon/v1/runners/r1/raw/ch est", None),
        ("runmon/v2/runners/r1/pain", None),
        ("other/runmon/v1/runners/r1/pain", None),
        ("runmon/v1/service/s/status", None),
    ],
)
def test_topic_parse(topic: str, expected: ParsedTopic | None) -> None:
    assert Topics().parse(topic) == expected


@pytest.mark.parametrize("good", ["r1", "A", "a_b-C9", "x" * 64])
def test_valid_ids(good: str) -> None:
    assert validate_runner_id(good) == good
    assert validate_sensor_id(good) == good
    assert validate_instance_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "x" * 65, "r/1", "r+", "r#", "r 1", "rü", "r1\n", "$SYS", "a.b"]
)
def test_invalid_ids(bad: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_runner_id(bad)
    assert caught.value.kind == "runner"
    with pytest.raises(InvalidIdentifier):
        validate_sensor_id(bad)
    with pytest.raises(InvalidIdentifier):
        validate_instance_id(bad)
    with pytest.raises(InvalidIdentifier):
        Topics().cues(bad)
    with pytest.raises(InvalidIdentifier):
        Topics().raw("r1", bad)


@pytest.mark.parametrize("root", ["", "/a", "a/", "a//b", "a/+/b", "a/#", "$SYS/x", " a"])
def test_invalid_roots(root: str) -> None:
    with pytest.raises(ConfigError):
        Topics(root)


# --------------------------------------------------------------------------- payload helpers


def test_payload_encoding_and_expiry_rounding() -> None:
    assert encode_payload({"b": [1, 2], "a": "é"}) == '{"b":[1,2],"a":"é"}'.encode()
    assert encode_payload("x") == b"x"
    assert encode_payload(b"\x00") == b"\x00"
    with pytest.raises(MqttError, match="JSON"):
        encode_payload({"x": math.nan})
    with pytest.raises(MqttError, match="JSON"):
        encode_payload({"x": object()})
    assert [message_expiry_interval(s) for s in (0, 0.2, 1, 4.2, 5)] == [1, 1, 1, 5, 5]
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="expiry_s"):
            message_expiry_interval(bad)


def test_inbound_message_decoding_errors_name_the_topic() -> None:
    assert InboundMessage("t", b'{"a":1}').json() == {"a": 1}
    with pytest.raises(InboundMessageError, match=r"^t/x: payload is not JSON"):
        InboundMessage("t/x", b"{").json()
    with pytest.raises(InboundMessageError, match="UTF-8"):
        InboundMessage("t/x", b"\xff").text()
    message = InboundMessage("t", b"", user_properties=(("schema", "a"), ("schema", "b")))
    assert message.user_property("schema") == "a"
    assert message.user_property("other") is None


# --------------------------------------------------------------------------- real broker


async def test_publish_properties_reach_a_second_subscriber(
    mqtt_broker: EmbeddedBroker, topics: Topics
) -> None:
    topic = topics.cues("r1")
    async with MqttLink(mqtt_broker.address()) as app, MqttLink(mqtt_broker.address()) as svc:
        assert app.refusal_detection
        assert svc.refusal_detection
        assert await app.subscribe(topic, qos=1) == 1
        await svc.publish(
            topic,
            {"v": 1, "code": "lean_forward", "ttl_s": 5},
            qos=1,
            expiry_s=4.2,
            content_type="application/json",
            user_properties=[("schema", "runmon.cue/1")],
        )
        got = await wait_for_message(app, _on(topic), timeout_s=WAIT_S)
    assert got.payload == b'{"v":1,"code":"lean_forward","ttl_s":5}'
    assert got.json() == {"v": 1, "code": "lean_forward", "ttl_s": 5}
    assert got.content_type == "application/json"
    assert got.user_properties == (("schema", "runmon.cue/1"),)
    assert got.user_property("schema") == "runmon.cue/1"
    assert got.expiry_s in (4, 5)  # ceil(4.2) = 5, minus a second if the clock ticked
    assert got.qos == 1
    assert not got.retain


async def test_plain_message_has_no_properties(mqtt_broker: EmbeddedBroker, topics: Topics) -> None:
    topic = topics.errors("r1")
    async with MqttLink(mqtt_broker.address()) as link:
        await link.subscribe(topic, qos=0)
        await link.publish(topic, "plain")
        got = await wait_for_message(link, _on(topic), timeout_s=WAIT_S)
    assert (got.payload, got.content_type, got.user_properties, got.expiry_s) == (
        b"plain",
        None,
        (),
        None,
    )


async def test_retained_message_reaches_a_late_subscriber(
    mqtt_broker: EmbeddedBroker, topics: Topics
) -> None:
    topic = topics.session("r1")
    async with MqttLink(mqtt_broker.address()) as svc:
        await svc.publish(topic, {"phase": "running"}, qos=1, retain=True)
    async with MqttLink(mqtt_broker.address()) as late:
        await late.subscribe(topic)
        got = await wait_for_message(late, _on(topic), timeout_s=WAIT_S)
        assert got.retain
        assert got.json() == {"phase": "running"}
        await late.publish(topic, b"", qos=1, retain=True)  # clears the retained message


WILL_CLIENT = """
import asyncio, sys
from monitor.mqtt.client import MqttLink, OutboundWill, parse_broker_url

async def main() -> None:
    url, topic = sys.argv[1], sys.argv[2]
    will = OutboundWill(topic, "offline", qos=1, retain=True)
    async with MqttLink(parse_broker_url(url), will=will, keepalive_s=60) as link:
        await link.publish(topic, "online", qos=1, retain=True)
        print("online", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.fixture
def will_client_cleanup() -> Iterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()


async def test_will_is_published_when_a_client_is_killed(
    mqtt_broker: EmbeddedBroker,
    topics: Topics,
    will_client_cleanup: list[asyncio.subprocess.Process],
) -> None:
    status = topics.status("svc-will")
    async with MqttLink(mqtt_broker.address()) as watcher:
        await watcher.subscribe(status)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WILL_CLIENT,
            mqtt_broker.url,
            status,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        will_client_cleanup.append(proc)
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            assert await proc.stdout.readline() == b"online\n"
        online = await wait_for_message(watcher, _on(status), timeout_s=WAIT_S)
        assert online.payload == b"online"
        proc.kill()  # SIGKILL: no DISCONNECT, the broker must publish the will
        await proc.wait()
        offline = await wait_for_message(watcher, _on(status), timeout_s=WAIT_S)
        assert offline.payload == b"offline"
    async with MqttLink(mqtt_broker.address()) as late:
        await late.subscribe(status)
        kept = await wait_for_message(late, _on(status), timeout_s=WAIT_S)
    assert (kept.payload, kept.retain) == (b"offline", True)


async def test_will_is_not_published_on_a_clean_close(
    mqtt_broker: EmbeddedBroker, topics: Topics
) -> None:
    status = topics.status("svc-clean")
    async with MqttLink(mqtt_broker.address()) as watcher:
        await watcher.subscribe(status)
        will = OutboundWill(status, "offline", qos=1, retain=True, content_type="text/plain")
        async with MqttLink(mqtt_broker.address(), will=will) as service:
            await service.publish(status, "online", qos=1, retain=True)
        async with MqttLink(mqtt_broker.address()) as other:
            await other.publish(status, "marker", qos=1)
        seen = [
            (await wait_for_message(watcher, _on(status), timeout_s=WAIT_S)).payload
            for _ in range(2)
        ]
    assert seen == [b"online", b"marker"]


async def test_messages_iteration_ends_when_the_link_closes(
    mqtt_broker: EmbeddedBroker, topics: Topics
) -> None:
    link = MqttLink(mqtt_broker.address())
    received: list[InboundMessage] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for message in link.messages():
            received.append(message)
            first.set()

    async with link:
        await link.subscribe(topics.metrics("r1"))
        consumer = asyncio.create_task(consume())
        await link.publish(topics.metrics("r1"), "1", qos=1)
        async with asyncio.timeout(WAIT_S):
            await first.wait()
    async with asyncio.timeout(WAIT_S):
        await consumer  # ends without an exception
    assert [m.payload for m in received] == [b"1"]


async def test_operation_errors_are_mqtt_errors(mqtt_broker: EmbeddedBroker) -> None:
    link = MqttLink(mqtt_broker.address())
    with pytest.raises(MqttError, match="not open"):
        await link.publish("a", "x")
    async with link:
        with pytest.raises(MqttError, match="already open"):
            await link.__aenter__()
        with pytest.raises(MqttError, match="cannot publish") as caught:
            await link.publish("a/+/b", "x", qos=1)
        assert isinstance(caught.value.__cause__, ValueError)
        with pytest.raises(MqttError, match="subscribe"):
            await link.subscribe("a/#/b")
    with pytest.raises(MqttError, match="not open"):
        link.messages()


async def test_broker_loss_surfaces_as_mqtt_error(topics: Topics) -> None:
    broker = EmbeddedBroker()
    await asyncio.to_thread(broker.start)
    try:
        async with MqttLink(broker.address()) as link:
            await link.subscribe(topics.control("r1"))
            inbound = link.messages()
            await asyncio.to_thread(broker.stop)
            with pytest.raises(MqttError, match="lost the connection"):
                await anext(inbound)
            with pytest.raises(MqttError, match="not currently connected"):
                await link.publish(topics.cues("r1"), "x", qos=1)
    finally:
        await asyncio.to_thread(broker.stop)


async def test_connect_refused_names_the_address() -> None:
    with EmbeddedBroker() as broker:
        address = broker.address()
    with pytest.raises(MqttError, match=f"could not connect to mqtt://127.0.0.1:{address.port}"):
        async with MqttLink(address, timeout_s=2):
            pass


# --------------------------------------------------------------------------- auth and ACL

SECURE_ROOT = f"test/{uuid.uuid4().hex}/runmon/v1"
PASSWORDS = {"runmon-service": "svc-pw", "r1": "r1-pw", "r2": "r2-pw"}


@dataclass(frozen=True)
class Secure:
    broker: EmbeddedBroker
    topics: Topics

    def address(self, user: str, password: str | None = None) -> BrokerAddress:
        return self.broker.address(user, PASSWORDS[user] if password is None else password)


@pytest.fixture(scope="module")
def secure() -> Iterator[Secure]:
    acl = acl_for_runners(SECURE_ROOT, service_user="runmon-service")
    with EmbeddedBroker(users=PASSWORDS, acl=acl) as broker:
        yield Secure(broker, Topics(SECURE_ROOT))


async def test_password_auth(secure: Secure) -> None:
    async with MqttLink(secure.address("r1")) as link:
        await link.publish(secure.topics.metrics("r1"), "{}", qos=1)
    for address in (
        secure.address("r1", "wrong"),
        secure.broker.address("nobody", "x"),
        secure.broker.address(),
    ):
        with pytest.raises(MqttError, match=f"could not connect to {address.url}") as caught:
            async with MqttLink(address):
                pass
        assert "Not authorized" in str(caught.value) or "Bad user name" in str(caught.value)
        assert "wrong" not in str(caught.value)


async def test_runner_acl_isolation_and_publish_refusal(secure: Secure) -> None:
    t = secure.topics
    async with (
        MqttLink(secure.address("runmon-service")) as svc,
        MqttLink(secure.address("r1")) as r1,
    ):
        # Mosquitto 2.0 grants any filter; read ACLs then filter each delivery.
        await r1.subscribe(f"{SECURE_ROOT}/runners/#")
        await svc.subscribe(t.inbound_filters()[0])
        await svc.publish(t.cues("r2"), "for r2", qos=1)
        await svc.publish(t.cues("r1"), "for r1", qos=1)
        first = await wait_for_message(r1, lambda m: m.topic.endswith("/cues"), timeout_s=WAIT_S)
        assert (first.topic, first.payload) == (t.cues("r1"), b"for r1")

        await r1.publish(t.pain("r1"), {"level": 3}, qos=1)
        pain = await wait_for_message(svc, _on(t.pain("r1")), timeout_s=WAIT_S)
        assert t.parse(pain.topic) == ParsedTopic("pain", "r1")

        with pytest.raises(PublishRefused) as refused:
            await r1.publish(t.pain("r2"), {"level": 9}, qos=1)
        assert refused.value.reason_code == 0x87
        assert refused.value.topic == t.pain("r2")
        assert isinstance(refused.value, MqttError)
        with pytest.raises(PublishRefused):
            await r1.publish(t.status("svc"), "offline", qos=1, retain=True)
        # The refused pain never reached the service; the next one from r1 does.
        await r1.publish(t.pain("r1"), {"level": 4}, qos=1)
        nxt = await wait_for_message(svc, lambda m: True, timeout_s=WAIT_S)
        assert (nxt.topic, nxt.json()) == (t.pain("r1"), {"level": 4})


async def test_runner_reads_service_status(secure: Secure) -> None:
    t = secure.topics
    status = t.status("svc-acl")
    async with MqttLink(secure.address("runmon-service")) as svc:
        await svc.publish(status, "online", qos=1, retain=True)
    async with MqttLink(secure.address("r2")) as r2:
        await r2.subscribe(status)
        got = await wait_for_message(r2, _on(status), timeout_s=WAIT_S)
        assert (got.payload, got.retain) == (b"online", True)
