"""The MQTT topic tree of DESIGN §3.5, built and parsed in one place.

Every id that becomes a topic level is validated here: a ``+``, ``#`` or ``/`` in a runner id
would widen a subscription or escape the runner's ACL pattern (the runner id is also its
Mosquitto username, substituted for ``%u``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from monitor.errors import ConfigError, InvalidIdentifier

__all__ = [
    "DEFAULT_ROOT",
    "ID_PATTERN",
    "InboundKind",
    "ParsedTopic",
    "Topics",
    "validate_instance_id",
    "validate_root",
    "validate_runner_id",
    "validate_sensor_id",
]

DEFAULT_ROOT: Final = "runmon/v1"
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

InboundKind = Literal["pain", "control", "raw"]


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _validate_id(kind: str, value: str) -> str:
    if not _is_id(value):
        raise InvalidIdentifier(kind, value)
    return value


def validate_runner_id(runner: str) -> str:
    """Return ``runner`` unchanged, or raise :class:`InvalidIdentifier`."""
    return _validate_id("runner", runner)


def validate_sensor_id(sensor: str) -> str:
    """Return ``sensor`` unchanged, or raise :class:`InvalidIdentifier`."""
    return _validate_id("sensor", sensor)


def validate_instance_id(instance: str) -> str:
    """Return ``instance`` unchanged, or raise :class:`InvalidIdentifier`."""
    return _validate_id("service instance", instance)


def validate_root(root: str) -> str:
    """Check a configured topic root: concrete levels only, so it can prefix filters and ACLs."""
    problem = None
    if not root:
        problem = "is empty"
    elif root.startswith("/") or root.endswith("/") or "//" in root:
        problem = "has an empty level (leading, trailing or double '/')"
    elif "+" in root or "#" in root:
        problem = "contains a wildcard ('+' or '#')"
    elif root.startswith("$"):
        problem = "starts with '$' (reserved for broker topics)"
    elif any(ch in root for ch in "\x00\n\r") or root != root.strip():
        problem = "contains NUL, a line break or surrounding whitespace"
    if problem is not None:
        raise ConfigError(f"MQTT topic root {root!r} {problem}")
    return root


@dataclass(frozen=True)
class ParsedTopic:
    """An inbound runner topic, as routed from a wildcard subscription."""

    kind: InboundKind
    runner: str
    sensor: str | None = None


@dataclass(frozen=True)
class Topics:
    """Topic names under one root; a test gives each case its own root to isolate retained state."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        validate_root(self.root)

    def runner_base(self, runner: str) -> str:
        return f"{self.root}/runners/{validate_runner_id(runner)}"

    def cues(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/cues"

    def metrics(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/metrics"

    def session(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/session"

    def sensor(self, runner: str, sensor: str) -> str:
        return f"{self.runner_base(runner)}/sensors/{validate_sensor_id(sensor)}"

    def report(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/report"

    def errors(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/errors"

    def pain(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/pain"

    def control(self, runner: str) -> str:
        return f"{self.runner_base(runner)}/control"

    def raw(self, runner: str, sensor: str) -> str:
        return f"{self.runner_base(runner)}/raw/{validate_sensor_id(sensor)}"

    def status(self, instance: str) -> str:
        return f"{self.root}/service/{validate_instance_id(instance)}/status"

    def inbound_filters(self, runner: str | None = None) -> tuple[str, ...]:
        """Subscription filters for what apps send: every runner (``+``) or just one."""
        base = f"{self.root}/runners/+" if runner is None else self.runner_base(runner)
        return (f"{base}/pain", f"{base}/control", f"{base}/raw/+")

    def parse(self, topic: str) -> ParsedTopic | None:
        """Route an inbound topic; ``None`` for anything that is not pain/control/raw of a valid id.

        Wildcard subscriptions deliver any level a publisher chose, so ids are re-checked here
        instead of trusting the broker's match.
        """
        prefix = f"{self.root}/runners/"
        if not topic.startswith(prefix):
            return None
        levels = topic[len(prefix) :].split("/")
        runner = levels[0]
        if not _is_id(runner):
            return None
        match levels[1:]:
            case ["pain"]:
                return ParsedTopic("pain", runner)
            case ["control"]:
                return ParsedTopic("control", runner)
            case ["raw", sensor] if _is_id(sensor):
                return ParsedTopic("raw", runner, sensor)
            case _:
                return None
