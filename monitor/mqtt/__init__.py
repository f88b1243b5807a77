"""MQTT edge of runmon: topic tree, an MQTT 5 link over aiomqtt, an embedded Mosquitto.

Nothing outside this package imports aiomqtt or paho; failures arrive as
:class:`monitor.errors.MqttError` (and children) or :class:`monitor.errors.BrokerError`.
"""

from monitor.mqtt.broker import EmbeddedBroker, acl_for_runners, hash_password, password_file_text
from monitor.mqtt.client import (
    BrokerAddress,
    InboundMessage,
    MqttLink,
    OutboundWill,
    Payload,
    encode_payload,
    message_expiry_interval,
    parse_broker_url,
    wait_for_message,
)
from monitor.mqtt.topics import (
    DEFAULT_ROOT,
    ParsedTopic,
    Topics,
    validate_instance_id,
    validate_root,
    validate_runner_id,
    validate_sensor_id,
)

__all__ = [
    "DEFAULT_ROOT",
    "BrokerAddress",
    "EmbeddedBroker",
    "InboundMessage",
    "MqttLink",
    "OutboundWill",
    "ParsedTopic",
    "Payload",
    "Topics",
    "acl_for_runners",
    "encode_payload",
    "hash_password",
    "message_expiry_interval",
    "parse_broker_url",
    "password_file_text",
    "validate_instance_id",
    "validate_root",
    "validate_runner_id",
    "validate_sensor_id",
    "wait_for_message",
]
