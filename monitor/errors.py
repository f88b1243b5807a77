"""The one exception root of :mod:`monitor` and its typed children (tree in the package doc)."""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error raised by :mod:`monitor`."""


class BrokerError(MonitorError):
    """The embedded Mosquitto broker could not be found, started, or kept running."""


class MqttError(MonitorError):
    """Talking to an MQTT broker failed; wraps the aiomqtt/paho error as ``__cause__``."""


class PublishRefused(MqttError):
    """The broker refused a QoS 1 publish (PUBACK reason code >= 0x80)."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(f"broker refused publish to {topic!r}: {reason} (0x{reason_code:02x})")


class InboundMessageError(MonitorError):
    """An inbound MQTT message (pain, control, raw) whose payload does not validate."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"{topic}: {reason}")


class ConfigError(MonitorError):
    """A configuration file that does not validate; the message names the file and field."""


class SubscribeRefused(MqttError):
    """The broker answered a SUBSCRIBE with a failure reason code (SUBACK >= 0x80)."""

    def __init__(self, topic_filter: str, reason_code: int, reason: str) -> None:
        self.topic_filter = topic_filter
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(
            f"broker refused subscription to {topic_filter!r}: {reason} (0x{reason_code:02x})"
        )


class InvalidIdentifier(MonitorError):
    """A runner, sensor or service instance id that cannot be a topic level.

    Ids become MQTT topic levels and Mosquitto usernames, so anything outside
    ``[A-Za-z0-9_-]{1,64}`` could widen a subscription or an ACL pattern.
    """

    def __init__(self, kind: str, value: object) -> None:
        self.kind = kind
        self.value = value
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid {kind} id {shown}: must match [A-Za-z0-9_-]{{1,64}}")


class InvalidBrokerUrl(ConfigError):
    """A broker URL that is not ``mqtt[s]://host[:port]``; its message never echoes a password."""


class HistoryError(MonitorError):
    """The history database cannot be opened, read or written."""
