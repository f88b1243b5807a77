"""Shared fixtures: one real Mosquitto per test session, and a private topic root per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from monitor.mqtt.broker import EmbeddedBroker
from monitor.mqtt.client import BrokerAddress
from monitor.mqtt.topics import Topics


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[EmbeddedBroker]:
    """Anonymous embedded Mosquitto; a missing binary fails with BrokerError here, never skips."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def mqtt_address(mqtt_broker: EmbeddedBroker) -> BrokerAddress:
    return mqtt_broker.address()


@pytest.fixture
def topic_root() -> str:
    """A root no other test uses, so retained messages never leak between tests."""
    return f"test/{uuid.uuid4().hex}/runmon/v1"


@pytest.fixture
def topics(topic_root: str) -> Topics:
    return Topics(topic_root)
