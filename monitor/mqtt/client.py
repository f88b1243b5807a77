"""Our MQTT v5 edge: broker URLs, and :class:`MqttLink`, a small adapter over ``aiomqtt``.

Callers never see aiomqtt or paho types: payloads go in as bytes/str/dict, come out as
:class:`InboundMessage`, and every aiomqtt/paho failure leaves as :class:`MqttError`
(``raise ... from``), so the service handles one exception tree.

PUBACK reason codes. aiomqtt 2.x waits for a QoS 1 PUBACK but drops its reason code, so a
broker's refusal (Mosquitto 2 answers an ACL-denied MQTT 5 publish with 0x87 *Not authorized*)
would look like success. :class:`MqttLink` therefore wraps the paho client's public
``on_publish`` callback (paho 2 passes the reason code with callback API v2, which aiomqtt
uses) and publishes through paho's public ``publish``, which returns the message id to match
the PUBACK. The one private thing touched is ``aiomqtt.Client._client``, the paho client; if a
future aiomqtt renames it, :attr:`MqttLink.refusal_detection` turns ``False``, a warning is
logged, and publishing falls back to aiomqtt's own (refusal-blind) ``publish``. The test suite
pins the detection against a real Mosquitto. Only QoS 1 is checked: paho ignores the reason code
of a QoS 2 PUBREC.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from monitor.errors import (
    InboundMessageError,
    InvalidBrokerUrl,
    MqttError,
    PublishRefused,
    SubscribeRefused,
)

__all__ = [
    "BrokerAddress",
    "InboundMessage",
    "MqttLink",
    "OutboundWill",
    "Payload",
    "encode_payload",
    "message_expiry_interval",
    "parse_broker_url",
    "wait_for_message",
]

_log = logging.getLogger(__name__)

Payload = bytes | str | Mapping[str, object]

_DEFAULT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
_MAX_EXPIRY_S: Final = 2**32 - 1  # MQTT 5 Four Byte Integer
_MAX_UNCLAIMED_REFUSALS: Final = 256


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker is and how to log in; the password stays out of ``repr`` and :attr:`url`."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @property
    def url(self) -> str:
        """The address for logs and messages: scheme, user, host, port; never the password."""
        scheme = "mqtts" if self.tls else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{host}:{self.port}"


def _redact(url: str) -> str:
    """The URL with any password replaced, so errors can quote what the user typed."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{hostport}{slash}{tail}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:pw]@]host[:port]`` (1883) or ``mqtts://...`` (8883)."""
    shown = _redact(url)
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: scheme must be mqtt:// or mqtts://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: no path, query or fragment allowed")
    host = parts.hostname
    if not host:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: no host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: port must be 1-65535") from None
    if port == 0:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: port must be 1-65535")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise InvalidBrokerUrl(f"broker URL {shown!r}: a password needs a user name")
    return BrokerAddress(
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[parts.scheme],
        username=username,
        password=password,
        tls=parts.scheme == "mqtts",
    )


# --------------------------------------------------------------------------- messages


def encode_payload(payload: Payload) -> bytes:
    """Bytes as given, text as UTF-8, a mapping as compact JSON (no NaN: apps must parse it)."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MqttError(f"payload is not JSON-serialisable: {exc}") from exc
    return text.encode("utf-8")


def message_expiry_interval(expiry_s: float) -> int:
    """MQTT 5 counts whole seconds; round up so a message never expires early, and at least 1."""
    if not math.isfinite(expiry_s) or expiry_s < 0:
        raise ValueError(f"expiry_s must be a finite number >= 0, not {expiry_s!r}")
    return min(max(1, math.ceil(expiry_s)), _MAX_EXPIRY_S)


def _properties(
    packet_type: int,
    expiry_s: float | None,
    content_type: str | None,
    user_properties: Sequence[tuple[str, str]],
) -> Properties | None:
    if expiry_s is None and content_type is None and not user_properties:
        return None
    props = Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
    if expiry_s is not None:
        props.MessageExpiryInterval = message_expiry_interval(expiry_s)
    if content_type is not None:
        props.ContentType = content_type
    if user_properties:
        props.UserProperty = [(str(key), str(value)) for key, value in user_properties]
    return props


@dataclass(frozen=True)
class OutboundWill:
    """The message the broker publishes for us if we vanish without DISCONNECT (LWT).

    The service's status will is ``OutboundWill(topics.status(i), "offline", retain=True)``.
    """

    topic: str
    payload: Payload
    qos: int = 1
    retain: bool = False
    expiry_s: float | None = None
    content_type: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()

    def _to_aiomqtt(self) -> aiomqtt.Will:
        props = _properties(
            PacketTypes.WILLMESSAGE, self.expiry_s, self.content_type, self.user_properties
        )
        return aiomqtt.Will(self.topic, encode_payload(self.payload), self.qos, self.retain, props)


@dataclass(frozen=True)
class InboundMessage:
    """A received message; ``expiry_s`` is what remains of the sender's expiry at delivery."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    content_type: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    expiry_s: int | None = None

    def user_property(self, name: str) -> str | None:
        """The first value of a user property (MQTT allows repeats; our schemas do not)."""
        for key, value in self.user_properties:
            if key == name:
                return value
        return None

    def text(self) -> str:
        """The payload as UTF-8, or :class:`InboundMessageError` naming the topic."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InboundMessageError(self.topic, f"payload is not UTF-8: {exc}") from exc

    def json(self) -> object:
        """The payload as JSON, or :class:`InboundMessageError` naming the topic."""
        text = self.text()
        try:
            return cast(object, json.loads(text))
        except json.JSONDecodeError as exc:
            raise InboundMessageError(self.topic, f"payload is not JSON: {exc}") from exc


def _inbound(message: aiomqtt.Message) -> InboundMessage:
    props = message.properties
    content_type = getattr(props, "ContentType", None)
    user_properties = getattr(props, "UserProperty", None) or []
    expiry = getattr(props, "MessageExpiryInterval", None)
    return InboundMessage(
        topic=message.topic.value,
        payload=bytes(message.payload),
        qos=message.qos,
        retain=bool(message.retain),
        content_type=content_type if isinstance(content_type, str) else None,
        user_properties=tuple((str(k), str(v)) for k, v in user_properties),
        expiry_s=expiry if isinstance(expiry, int) else None,
    )


# --------------------------------------------------------------------------- the link


class _Messages:
    """Inbound messages as :class:`InboundMessage`; ends cleanly when the link is closed by us."""

    def __init__(self, link: MqttLink, inner: AsyncIterator[aiomqtt.Message]) -> None:
        self._link = link
        self._inner = inner

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> InboundMessage:
        try:
            message = await anext(self._inner)
        except aiomqtt.MqttError as exc:
            if self._link._closing:
                raise StopAsyncIteration from None
            raise MqttError(f"lost the connection to {self._link.address.url}: {exc}") from exc
        return _inbound(message)


class MqttLink:
    """One MQTT 5 connection: async context manager, publish/subscribe, inbound iterator.

    ``max_queued_inbound`` bounds the inbound queue (DESIGN §6: no unbounded queues); when a
    slow consumer lets it fill, aiomqtt logs a warning and drops the newest messages.
    Messages from :meth:`messages` go to one consumer: iterate it from a single task.
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str | None = None,
        will: OutboundWill | None = None,
        keepalive_s: int = 10,
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        max_queued_inbound: int = 1000,
    ) -> None:
        self.address = address
        self.client_id = client_id if client_id is not None else f"runmon-{secrets.token_hex(6)}"
        self._will = will
        self._keepalive_s = keepalive_s
        self._timeout_s = timeout_s
        self._tls_context = tls_context
        self._max_queued_inbound = max_queued_inbound
        self._client: aiomqtt.Client | None = None
        self._paho: paho.Client | None = None
        self._closing = False
        self._acks: dict[int, asyncio.Future[ReasonCode]] = {}
        self._unclaimed_refusals: dict[int, ReasonCode] = {}

    # -- lifecycle

    @property
    def connected(self) -> bool:
        return self._client is not None and not self._closing

    @property
    def refusal_detection(self) -> bool:
        """Whether :meth:`publish` can see PUBACK reason codes (see the module doc)."""
        return self._paho is not None

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise MqttError(f"link to {self.address.url} is already open")
        tls_context = self._tls_context
        if tls_context is None and self.address.tls:
            tls_context = ssl.create_default_context()
        try:
            client = aiomqtt.Client(
                self.address.host,
                self.address.port,
                username=self.address.username,
                password=self.address.password,
                identifier=self.client_id,
                protocol=aiomqtt.ProtocolVersion.V5,
                will=self._will._to_aiomqtt() if self._will is not None else None,
                keepalive=self._keepalive_s,
                timeout=self._timeout_s,
                tls_context=tls_context,
                max_queued_incoming_messages=self._max_queued_inbound,
            )
        except ValueError as exc:  # paho's will_set validates topic and QoS
            raise MqttError(f"invalid will for {self.address.url}: {exc}") from exc
        self._hook_paho(client)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            self._paho = None
            raise MqttError(f"could not connect to {self.address.url}: {exc}") from exc
        self._client = client
        self._closing = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client = self._client
        if client is None:
            return
        self._closing = True
        self._fail_pending_acks("the link was closed")
        try:
            await client.__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError as err:
            if exc is None:
                raise MqttError(f"disconnecting from {self.address.url}: {err}") from err
            _log.warning("disconnecting from %s after an error: %s", self.address.url, err)
        finally:
            self._client = None
            self._paho = None

    def _require_client(self) -> aiomqtt.Client:
        if self._client is None or self._closing:
            raise MqttError(f"link to {self.address.url} is not open")
        return self._client

    # -- PUBACK reason codes (module doc explains why paho is reached here)

    def _hook_paho(self, client: aiomqtt.Client) -> None:
        inner = getattr(client, "_client", None)
        if not isinstance(inner, paho.Client):
            _log.warning(
                "aiomqtt %s no longer exposes its paho client; QoS 1 publish refusals "
                "(PUBACK >= 0x80) will go unnoticed",
                aiomqtt.__version__,
            )
            self._paho = None
            return
        forward_publish = cast(
            "Callable[[paho.Client, Any, int, ReasonCode, Properties], None] | None",
            inner.on_publish,
        )
        forward_disconnect = cast(
            "Callable[[paho.Client, Any, paho.DisconnectFlags, ReasonCode, Properties | None], "
            "None] | None",
            inner.on_disconnect,
        )

        def on_publish(
            paho_client: paho.Client,
            userdata: Any,
            mid: int,
            reason_code: ReasonCode,
            properties: Properties,
        ) -> None:
            self._settle_ack(mid, reason_code)
            if forward_publish is not None:
                forward_publish(paho_client, userdata, mid, reason_code, properties)

        def on_disconnect(
            paho_client: paho.Client,
            userdata: Any,
            flags: paho.DisconnectFlags,
            reason_code: ReasonCode,
            properties: Properties | None = None,
        ) -> None:
            self._fail_pending_acks(f"disconnected ({reason_code})")
            if forward_disconnect is not None:
                forward_disconnect(paho_client, userdata, flags, reason_code, properties)

        inner.on_publish = on_publish
        inner.on_disconnect = on_disconnect
        self._paho = inner

    def _settle_ack(self, mid: int, reason_code: ReasonCode) -> None:
        waiter = self._acks.pop(mid, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(reason_code)
        elif reason_code.is_failure:
            # A refusal nobody waits for: the PUBACK beat publish() back (not seen in practice,
            # paho reads on our loop) or the publish was cancelled. Kept briefly, bounded.
            if len(self._unclaimed_refusals) >= _MAX_UNCLAIMED_REFUSALS:
                self._unclaimed_refusals.pop(next(iter(self._unclaimed_refusals)))
            self._unclaimed_refusals[mid] = reason_code

    def _fail_pending_acks(self, why: str) -> None:
        acks, self._acks = self._acks, {}
        for waiter in acks.values():
            if not waiter.done():
                waiter.set_exception(MqttError(f"no PUBACK from {self.address.url}: {why}"))

    # -- operations

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: int = 0,
        retain: bool = False,
        expiry_s: float | None = None,
        content_type: str | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Publish; for QoS 1, return once the broker acknowledged, or raise PublishRefused."""
        client = self._require_client()
        data = encode_payload(payload)
        props = _properties(PacketTypes.PUBLISH, expiry_s, content_type, user_properties)
        inner = self._paho
        if inner is None:
            try:
                await client.publish(
                    topic, data, qos=qos, retain=retain, properties=props, timeout=self._timeout_s
                )
            except (aiomqtt.MqttError, ValueError) as exc:
                raise MqttError(f"publish to {topic!r} failed: {exc}") from exc
            return
        try:
            info = inner.publish(topic, data, qos, retain, props)
        except ValueError as exc:  # paho: invalid topic, QoS or payload size
            raise MqttError(f"cannot publish to {topic!r}: {exc}") from exc
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise MqttError(
                f"publish to {topic!r} on {self.address.url} failed: {paho.error_string(info.rc)}"
            )
        if qos == 0:
            return
        early = self._unclaimed_refusals.pop(info.mid, None)
        if info.is_published():
            reason = early
        else:
            waiter: asyncio.Future[ReasonCode] = asyncio.get_running_loop().create_future()
            self._acks[info.mid] = waiter
            try:
                reason = await asyncio.wait_for(waiter, self._timeout_s)
            except TimeoutError:
                raise MqttError(
                    f"no PUBACK for {topic!r} from {self.address.url} within {self._timeout_s} s"
                ) from None
            finally:
                if self._acks.get(info.mid) is waiter:
                    del self._acks[info.mid]
        if reason is not None and reason.is_failure:
            raise PublishRefused(topic, reason.value, str(reason))

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and return the granted QoS; a SUBACK failure raises SubscribeRefused.

        Mosquitto 2.0 grants any filter and applies read ACLs per message at delivery, so a
        runner subscribing to another runner's topics gets a grant and then nothing.
        """
        client = self._require_client()
        try:
            reasons = await client.subscribe(topic_filter, qos, timeout=self._timeout_s)
        except (aiomqtt.MqttError, ValueError) as exc:
            raise MqttError(f"subscribe to {topic_filter!r} failed: {exc}") from exc
        granted = 0
        for reason in reasons:
            if isinstance(reason, ReasonCode):
                if reason.is_failure:
                    raise SubscribeRefused(topic_filter, reason.value, str(reason))
                granted = reason.value
            else:
                granted = reason
        return granted

    async def unsubscribe(self, topic_filter: str) -> None:
        client = self._require_client()
        try:
            await client.unsubscribe(topic_filter, timeout=self._timeout_s)
        except (aiomqtt.MqttError, ValueError) as exc:
            raise MqttError(f"unsubscribe from {topic_filter!r} failed: {exc}") from exc

    def messages(self) -> AsyncIterator[InboundMessage]:
        """Messages of every subscription; raises MqttError if the connection drops."""
        return _Messages(self, aiter(self._require_client().messages))


async def wait_for_message(
    link: MqttLink,
    predicate: Callable[[InboundMessage], bool],
    *,
    timeout_s: float,
) -> InboundMessage:
    """The first inbound message matching ``predicate``; others are consumed and dropped.

    Raises TimeoutError after ``timeout_s`` (wall time), MqttError if the link drops.
    """
    async with asyncio.timeout(timeout_s):
        async for message in link.messages():
            if predicate(message):
                return message
    raise MqttError(f"link to {link.address.url} closed while waiting for a message")
