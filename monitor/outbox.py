"""A bounded outbound queue between the sessions and the MQTT publisher.

Drop policy (DESIGN §6: no unbounded queues): when full, the oldest *droppable* message goes
first (metrics rows and sensor states: a newer one supersedes them); only if none is droppable
does the oldest message go. Cues past their deadline are dropped at publish time, never sent late.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

DEFAULT_CAPACITY: Final = 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish, with its MQTT 5 properties and delivery policy."""

    topic: str
    payload: Mapping[str, Any] | str | bytes
    qos: int = 0
    retain: bool = False
    expiry_s: float | None = None
    content_type: str | None = None
    user_properties: Sequence[tuple[str, str]] = ()
    #: ``loop.time()`` after which the message is worthless (a cue past its ttl).
    deadline: float | None = None
    droppable: bool = False


class Outbox:
    """FIFO with a capacity and the drop policy above; one consumer."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        if self._closed:
            raise RuntimeError("outbox is closed")
        if len(self._items) >= self.capacity:
            self._drop_one()
        self._items.append(item)
        self._ready.set()

    def _drop_one(self) -> None:
        for index, queued in enumerate(self._items):
            if queued.droppable:
                del self._items[index]
                break
        else:
            self._items.popleft()
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("outbox full (%d): dropped %d messages so far", self.capacity, self.dropped)

    async def get(self) -> Outgoing | None:
        """The next message, or ``None`` once closed and drained (the consumer then stops)."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        """No more puts; :meth:`get` hands out what is left, then ``None``."""
        self._closed = True
        self._ready.set()

    def empty(self) -> bool:
        return not self._items
