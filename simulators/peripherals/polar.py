"""A virtual Polar H10: a PMD control point that answers like the strap, data only while started.

The protocol is :mod:`sensors.gatt.polar_pmd`'s: requests are decoded with its decoder and every
answer is encoded with its encoders, so the client and this peripheral cannot drift apart
silently. What the strap does, and this one too:

- reading the control point gives the features (which measurement types it offers);
- GET_MEASUREMENT_SETTINGS answers with the settings it offers (sample rates, resolution,
  ranges);
- REQUEST_MEASUREMENT_START checks each selected setting against the offer (an unknown sample
  rate gets ``INVALID_SAMPLE_RATE``, and so on), answers ``SUCCESS`` with the stream's FACTOR
  when it has one, or ``ALREADY_IN_STATE`` for a stream that runs already;
- STOP_MEASUREMENT stops a running stream (``ALREADY_IN_STATE`` if it was not running);
- every stream stops when the link drops: a central must start them again after reconnecting
  (the reason the client restarts streams, and the tests count start requests).

Data frames flow only for started streams: :meth:`PmdControl.gate` holds a payload source back
until the stream of each payload's measurement type is running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Final

import numpy as np

from sensors import uuids
from sensors.errors import DecodeError
from sensors.gatt.polar_pmd import (
    PmdControlPointResponse,
    PmdFeatures,
    PmdFrame,
    PmdMeasurementType,
    PmdOpCode,
    PmdRequest,
    PmdSettings,
    PmdSettingType,
    PmdStatus,
    decode_pmd_request,
    encode_pmd_control_point_response,
    encode_pmd_data,
    encode_pmd_features,
    encode_pmd_settings,
)
from sensors.profiles import PROFILE_SERVICES
from simulators.peripherals.gatt_server import (
    CharacteristicSpec,
    PeripheralSpec,
    ServiceSpec,
    VirtualPeripheral,
)
from simulators.peripherals.profiles import battery_service, pmd_service

__all__ = ["H10_OFFER", "PmdControl", "polar_h10", "synthetic_acc_frames"]

#: What an H10 offers for its accelerometer (Polar SDK: 25-200 Hz, 16 bits, ±2/4/8 g).
H10_OFFER: Final[Mapping[PmdMeasurementType, PmdSettings]] = {
    PmdMeasurementType.ACC: PmdSettings(
        sample_rate_hz=(25, 50, 100, 200), resolution_bits=(16,), range=(2, 4, 8)
    ),
}

#: A start request's setting that the offer does not hold -> the status the strap answers.
_INVALID: Final = {
    PmdSettingType.SAMPLE_RATE: PmdStatus.INVALID_SAMPLE_RATE,
    PmdSettingType.RESOLUTION: PmdStatus.INVALID_RESOLUTION,
    PmdSettingType.RANGE: PmdStatus.INVALID_RANGE,
    PmdSettingType.RANGE_MILLIUNIT: PmdStatus.INVALID_RANGE,
    PmdSettingType.CHANNELS: PmdStatus.INVALID_NUMBER_OF_CHANNELS,
}
_KNOWN_OPS: Final = frozenset(int(op) for op in PmdOpCode)


class PmdControl:
    """The control point's logic: a :data:`~simulators.peripherals.WriteHandler` plus state.

    ``factor`` (when given) is sent as the FACTOR setting of each start response. ``requests``
    keeps every well-formed request in order (tests count the start requests).
    """

    def __init__(
        self,
        offer: Mapping[PmdMeasurementType, PmdSettings] = H10_OFFER,
        *,
        factor: float | None = None,
    ) -> None:
        self.offer = dict(offer)
        self.factor = factor
        self.requests: list[PmdRequest] = []
        self._started: dict[int, PmdSettings] = {}
        self._changed = asyncio.Event()

    @property
    def features(self) -> bytes:
        """The control point's read value."""
        return encode_pmd_features(PmdFeatures.of(frozenset(self.offer)))

    @property
    def started(self) -> Mapping[int, PmdSettings]:
        """Running streams by measurement type, with the settings they were started with."""
        return dict(self._started)

    def start_requests(self, measurement_type: int) -> int:
        """How many start requests for ``measurement_type`` arrived so far."""
        return sum(
            1
            for r in self.requests
            if r.op_code is PmdOpCode.REQUEST_MEASUREMENT_START
            and r.measurement_type == measurement_type
        )

    def attach(self, peripheral: VirtualPeripheral) -> None:
        """Stop every stream whenever the peripheral's link drops, as the strap does."""
        peripheral.on_disconnection(self.stop_all)

    def stop_all(self) -> None:
        if self._started:
            self._started.clear()
            self._changed.set()

    def handle(self, command: bytes) -> bytes:
        """Answer one control point write (the peripheral indicates the answer back)."""
        try:
            request = decode_pmd_request(command)
        except DecodeError:
            op_code = command[0] if command else 0
            measurement_type = command[1] if len(command) > 1 else 0
            if len(command) < 2:
                status = PmdStatus.INVALID_LENGTH
            elif op_code not in _KNOWN_OPS:
                status = PmdStatus.INVALID_OP_CODE
            else:
                status = PmdStatus.INVALID_PARAMETER
            return _response(op_code, measurement_type, status)
        self.requests.append(request)
        op_code, measurement_type = request.op_code, request.measurement_type
        try:
            kind = PmdMeasurementType(measurement_type)
        except ValueError:
            return _response(op_code, measurement_type, PmdStatus.INVALID_MEASUREMENT_TYPE)
        offered = self.offer.get(kind)
        if offered is None:
            return _response(op_code, measurement_type, PmdStatus.NOT_SUPPORTED)
        if op_code is PmdOpCode.GET_MEASUREMENT_SETTINGS:
            return _response(
                op_code, measurement_type, PmdStatus.SUCCESS, encode_pmd_settings(offered)
            )
        if op_code is PmdOpCode.STOP_MEASUREMENT:
            if self._started.pop(measurement_type, None) is None:
                return _response(op_code, measurement_type, PmdStatus.ALREADY_IN_STATE)
            self._changed.set()
            return _response(op_code, measurement_type, PmdStatus.SUCCESS)
        return self._start(request, offered)

    def _start(self, request: PmdRequest, offered: PmdSettings) -> bytes:
        op_code, measurement_type = request.op_code, request.measurement_type
        if measurement_type in self._started:
            return _response(op_code, measurement_type, PmdStatus.ALREADY_IN_STATE)
        wanted, available = request.settings.int_values(), offered.int_values()
        if not request.settings.sample_rate_hz:
            return _response(op_code, measurement_type, PmdStatus.INVALID_PARAMETER)
        for setting_type, values in wanted.items():
            if values and not set(values) <= set(available[setting_type]):
                return _response(op_code, measurement_type, _INVALID[setting_type])
        self._started[measurement_type] = request.settings
        self._changed.set()
        parameters = b""
        if self.factor is not None:
            parameters = encode_pmd_settings(PmdSettings(factor=(self.factor,)))
        return _response(op_code, measurement_type, PmdStatus.SUCCESS, parameters)

    async def wait_started(self, measurement_type: int) -> None:
        while measurement_type not in self._started:
            self._changed.clear()
            await self._changed.wait()

    async def gate(self, payloads: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Pass each data frame on once its measurement type (byte 0) is streaming."""
        async for payload in payloads:
            if payload:
                await self.wait_started(payload[0])
            yield payload


def _response(
    op_code: int, measurement_type: int, status: PmdStatus, parameters: bytes = b""
) -> bytes:
    return encode_pmd_control_point_response(
        PmdControlPointResponse(op_code, measurement_type, status, False, parameters)
    )


def polar_h10(
    name: str = "Polar H10 0A1B2C3D",
    *,
    control: PmdControl,
    battery_pct: int = 100,
    address: str | None = None,
    advertise_pmd: bool = False,
) -> PeripheralSpec:
    """Heart Rate, PMD and Battery. A real H10 advertises Heart Rate only (``advertise_pmd``
    adds PMD, for sensors a scan should tell apart without the ``Polar`` name)."""
    advertised = [PROFILE_SERVICES["heart_rate"]]
    if advertise_pmd:
        advertised.insert(0, PROFILE_SERVICES["polar_pmd"])
    return PeripheralSpec(
        name=name,
        services=(
            ServiceSpec(
                uuids.HEART_RATE_SERVICE,
                (CharacteristicSpec(uuids.HEART_RATE_MEASUREMENT, notify=True),),
            ),
            pmd_service(control.handle, features=control.features),
            battery_service(battery_pct),
        ),
        advertised_services=tuple(advertised),
        address=address,
    )


def synthetic_acc_frames(
    count: int, *, sample_rate_hz: int = 200, samples_per_frame: int = 36, seed: int = 0
) -> list[bytes]:
    """``count`` uncompressed 16-bit ACC frames (the H10's type 0x01) of a strap at rest, ~1 g
    on y (the H10's up axis), with small noise; sensor timestamps advance by the sample rate."""
    rng = np.random.default_rng(seed)
    period_ns = round(1e9 / sample_rate_hz)
    start_ns = 800_000_000_000_000_000  # 2025, in ns since 2000-01-01
    frames = []
    for i in range(count):
        samples = rng.normal(0.0, 0.01, (samples_per_frame, 3)) + np.array([0.0, 1.0, 0.0])
        last_ns = start_ns + ((i + 1) * samples_per_frame - 1) * period_ns
        frame = PmdFrame(PmdMeasurementType.ACC, last_ns, 1, False, np.round(samples, 3))
        frames.append(encode_pmd_data(frame))
    return frames
