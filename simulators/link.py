"""The BLE link between a virtual strap and the host: arrival times, losses and drops.

A strap queues a notification when it is ready; the host receives it at the next connection
event (every ``connection_interval_ms``), a little later still by the host's scheduling jitter.
A notification is lost at random (``packet_loss``) or when the link is down (sent or due while
a drop lasts); a drop shows in the recording as a ``disconnect`` and a ``connect`` event.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from sensors.recording import ConnectionEvent, Notification, Record
from simulators.scenario import LinkSpec
from simulators.signals import FloatArray

T = TypeVar("T")
BoolArray = np.ndarray[tuple[int], np.dtype[np.bool_]]


@dataclass(frozen=True, slots=True)
class Link:
    """One strap's link: when it connects, when it is down, and how it delivers."""

    spec: LinkSpec
    connect_s: float
    anchor_s: float  # a connection event; the others follow every connection interval
    down_s: tuple[tuple[float, float], ...]  # (from, to) while the link is down
    end_s: float  # the capture stops here: nothing later is received

    @staticmethod
    def open(spec: LinkSpec, rng: np.random.Generator, duration_s: float) -> Link:
        connect_s = round(float(rng.uniform(0.05, 0.4)), 4)
        interval_s = spec.connection_interval_ms / 1000.0
        anchor_s = connect_s + float(rng.uniform(0.0, interval_s))
        down = tuple(
            (d.t_s, d.t_s + d.duration_s)
            for d in sorted(spec.drops, key=lambda d: d.t_s)
            if connect_s < d.t_s < duration_s
        )
        return Link(
            spec=spec, connect_s=connect_s, anchor_s=anchor_s, down_s=down, end_s=duration_s
        )

    @property
    def connects_s(self) -> list[float]:
        """Every time the link comes up in the capture: the first connect, then after drops."""
        return [self.connect_s, *(end for _, end in self.down_s if end < self.end_s)]

    def is_down(self, t_s: FloatArray) -> BoolArray:
        down: BoolArray = np.zeros(t_s.size, dtype=bool)
        for start, end in self.down_s:
            down |= (t_s >= start) & (t_s < end)
        return down

    def deliver(
        self, send_s: FloatArray, rng: np.random.Generator, not_before_s: float = 0.0
    ) -> tuple[FloatArray, BoolArray]:
        """Host receive times of notifications sent at ``send_s``, and which arrive at all.

        Receive times never go back, also not behind ``not_before_s`` (the previous batch's
        last): a host hands one link's notifications over in order.
        """
        interval_s = self.spec.connection_interval_ms / 1000.0
        events = np.ceil((send_s - self.anchor_s) / interval_s)
        recv = self.anchor_s + np.maximum(events, 0.0) * interval_s
        recv = recv + rng.uniform(0.0, self.spec.jitter_ms / 1000.0, send_s.size)
        recv = np.maximum(np.maximum(recv, send_s), not_before_s)
        recv = np.maximum.accumulate(recv) if recv.size else recv
        kept = rng.random(send_s.size) >= self.spec.packet_loss
        kept &= ~self.is_down(send_s) & ~self.is_down(recv) & (send_s >= self.connect_s)
        kept &= recv <= self.end_s
        return recv, kept


def receive_time(record: Record) -> float:
    """Sort key of records; a simulator makes no BadLine, the only record that may lack t."""
    return 0.0 if record.t is None else record.t


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter); ``itertools.batched``
    arrives only with Python 3.12."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def delivered(
    link: Link,
    rng: np.random.Generator,
    sensor_id: str,
    char: str,
    batches: Iterable[Sequence[tuple[float, bytes]]],
) -> Iterator[Record]:
    """The notifications of ``batches`` of (send time, payload) that arrive, in arrival order."""
    latest_s = 0.0
    for batch in batches:
        if not batch:
            continue
        send_s = np.fromiter((s for s, _ in batch), dtype=np.float64, count=len(batch))
        recv_s, kept = link.deliver(send_s, rng, latest_s)
        latest_s = float(recv_s[-1])
        for (_, payload), t, keep in zip(batch, recv_s.tolist(), kept.tolist(), strict=True):
            if keep:
                yield Notification(t=round(t, 4), sensor=sensor_id, char=char, payload=payload)


def connection_records(
    link: Link, sensor_id: str, reads: Sequence[tuple[str, bytes]]
) -> list[Record]:
    """Connects and disconnects, and the characteristics the host reads on every connect."""
    events: list[Record] = [
        ConnectionEvent(t=round(start, 4), sensor=sensor_id, kind="disconnect")
        for start, _ in link.down_s
    ]
    for up in link.connects_s:
        events.append(ConnectionEvent(t=round(up, 4), sensor=sensor_id, kind="connect"))
        events += [
            Notification(round(up + 0.03 * (i + 1), 4), sensor_id, char, payload)
            for i, (char, payload) in enumerate(reads)
        ]
    return sorted((e for e in events if receive_time(e) <= link.end_s), key=receive_time)


def sensor_records(
    link: Link,
    seed: np.random.SeedSequence,
    sensor_id: str,
    reads: Sequence[tuple[str, bytes]],
    char: str,
    payloads: Iterable[tuple[float, bytes]],
    batch_size: int = 256,
) -> Iterator[Record]:
    """Everything a capture of one sensor holds: connects with their reads, and the data
    notifications of ``payloads`` (send time, bytes) that arrive, in receive-time order."""
    data = delivered(
        link, np.random.default_rng(seed), sensor_id, char, batched(payloads, batch_size)
    )
    return heapq.merge(connection_records(link, sensor_id, reads), data, key=receive_time)
