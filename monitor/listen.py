"""``runmon listen``: the reference headphone-app subscriber — one runner's cues, as they come.

It validates each cue against the published schema (``schema=runmon.cue/1``) the way an app
should: a malformed cue is reported on stderr and skipped, the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import InboundMessageError
from monitor.mqtt.client import InboundMessage, MqttLink, parse_broker_url
from monitor.mqtt.topics import Topics, validate_runner_id


class CuePayload(BaseModel):
    """A cue as DESIGN §3.5 publishes it (extra fields allowed: the schema may grow)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    v: Literal[1]
    id: str
    runner: str
    seq: int = Field(ge=1)
    ts: str
    t_s: float
    phase: str
    code: str
    text: str
    priority: int = Field(ge=1, le=3)
    ttl_s: float = Field(gt=0)
    evidence: dict[str, Any] = Field(default_factory=dict)


def parse_cue(message: InboundMessage) -> CuePayload:
    """Validate a cue message; :class:`InboundMessageError` says what is wrong."""
    data = message.json()
    try:
        return CuePayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise InboundMessageError(
            message.topic, f"not a runmon cue: {loc}: {first['msg']}"
        ) from exc


def format_clock(t_s: float) -> str:
    """Run time as ``m:ss`` (or ``h:mm:ss``)."""
    total = int(t_s)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_cue(cue: CuePayload) -> str:
    return (
        f"[{format_clock(cue.t_s)}] {cue.runner} {cue.code} (priority {cue.priority}): {cue.text}"
    )


async def cues(link: MqttLink) -> AsyncIterator[CuePayload]:
    """The cues arriving on ``link``; bad ones go to stderr and are skipped."""
    async for message in link.messages():
        try:
            yield parse_cue(message)
        except InboundMessageError as exc:
            print(f"runmon listen: skipped a bad cue: {exc}", file=sys.stderr)


async def listen_command(
    *,
    broker_url: str,
    runner: str,
    root: str = "runmon/v1",
    as_json: bool = False,
    count: int | None = None,
    timeout_s: float | None = None,
) -> int:
    address = parse_broker_url(broker_url)
    topics = Topics(root)
    validate_runner_id(runner)
    received = 0
    client_id = f"runmon-listen-{runner}-{secrets.token_hex(3)}"
    async with MqttLink(address, client_id=client_id) as link:
        await link.subscribe(topics.cues(runner), qos=1)
        print(
            f"listening for runner {runner!r} cues on {address.url} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        try:
            async with asyncio.timeout(timeout_s):
                async for cue in cues(link):
                    line = json.dumps(cue.model_dump(mode="json")) if as_json else format_cue(cue)
                    print(line, flush=True)
                    received += 1
                    if count is not None and received >= count:
                        break
        except TimeoutError:
            pass
    return 0 if count is None or received >= count else 1
