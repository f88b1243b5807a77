"""What apps send in over MQTT (DESIGN §3.5): pain reports and controls, validated.

A payload that does not validate raises :class:`InboundMessageError` naming the field; the
service logs it, counts it, publishes it on the runner's ``errors`` topic and carries on.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import InboundMessageError
from monitor.mqtt.client import InboundMessage
from sensors.recording import ControlAction, PainLocation


class PainMessage(BaseModel):
    """``runners/{runner}/pain``: a pain report from the runner's app."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Annotated[int, Field(ge=0, le=10, strict=True)]
    location: PainLocation = "low_back"
    radiating: Annotated[bool, Field(strict=True)] = False


class ControlMessage(BaseModel):
    """``runners/{runner}/control``: start, stop, mute, unmute, snooze."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: ControlAction
    minutes: Annotated[float | None, Field(gt=0.0, le=24 * 60.0)] = None


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], message: InboundMessage) -> M:
    data = message.json()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise InboundMessageError(message.topic, f"{loc}: {first['msg']}") from exc


def parse_pain(message: InboundMessage) -> PainMessage:
    return _validate(PainMessage, message)


def parse_control(message: InboundMessage) -> ControlMessage:
    return _validate(ControlMessage, message)
