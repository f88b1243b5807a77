"""Runner configuration: who runs, and which sensors they wear (TOML, ``--config RUNNER.toml``).

::

    [runner]
    id = "r1"
    hr_max_bpm = 190

    [sensors.foot]                  # the sensor's id: recordings and MQTT topics use it
    profile = "rsc"
    name = "Stryd"                  # advertised name, or
    address = "C4:7F:51:0A:1B:2C"   # address (AA:BB:CC:DD:EE:FF; a UUID on macOS); or both
    cadence_unit = "auto"           # rsc only: steps | strides | auto
    speed_factor = 1.0              # rsc only: footpod calibration

    [sensors.h10]
    profile = "polar_pmd"
    name = "Polar H10 0A1B2C3D"
    placement = "chest"             # IMU profiles only: chest | pelvis | upper_back | unknown
    mount = { forward = "+z", left = "+x", up = "+y" }
    acc = { sample_rate_hz = 200, range_g = 8, resolution_bits = 16 }
    silence_timeout_s = 5           # any sensor: the watchdog (no data this long: reconnect)

A sensor's entry turns into its recording header entry (:class:`sensors.recording.SensorSpec`,
DESIGN §3.2) exactly as declared: the fields given, nothing added, plus ``settings`` for a PMD
strap (the streams the client starts, defaults included). Unknown fields, and fields that mean
nothing for the sensor's profile, are errors: a typo must not silently leave a default in place.
Every error names the file and the dotted path of the bad field (``sensors.foot.speed_factor``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.errors import ConfigError
from sensors.ble.client import PmdStreamRequest, SensorTarget
from sensors.profiles import ProfileName
from sensors.recording import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MountSpec,
    RecordingHeader,
    RunnerProfile,
    SensorSpec,
)

__all__ = [
    "PmdAccSettings",
    "PmdGyroSettings",
    "RunnerConfig",
    "RunnerConfigError",
    "SensorConfig",
    "config_for_header",
    "dump_runner_config",
    "load_runner_config",
    "parse_runner_config",
]

_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
#: A Bluetooth device address, or the UUID macOS's CoreBluetooth gives a device instead.
_ADDRESS_PATTERN: Final = (
    r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$"
    r"|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
_IMU_PROFILES: Final = frozenset({"runmon_imu", "polar_pmd"})


class RunnerConfigError(ConfigError):
    """A runner configuration that cannot be read or does not validate (file and field named)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunnerSection(_Strict):
    id: Annotated[str, Field(pattern=_ID_PATTERN)]
    # The same sanity range as a recording header's runner_profile.
    hr_max_bpm: Annotated[int | None, Field(ge=100, le=250)] = None


class PmdAccSettings(_Strict):
    """Polar PMD accelerometer stream: rate, range (±g) and resolution (bits)."""

    sample_rate_hz: Annotated[int, Field(ge=1, le=10_000)] = 200
    range_g: Annotated[int, Field(ge=1, le=64)] = 8
    resolution_bits: Annotated[int, Field(ge=8, le=32)] = 16

    def request(self) -> PmdStreamRequest:
        return PmdStreamRequest("acc", self.sample_rate_hz, self.range_g, self.resolution_bits)


class PmdGyroSettings(_Strict):
    """Polar PMD gyroscope stream (Verity Sense): rate, range (±deg/s) and resolution (bits)."""

    sample_rate_hz: Annotated[int, Field(ge=1, le=10_000)] = 52
    range_dps: Annotated[int, Field(ge=1, le=8000)] = 2000
    resolution_bits: Annotated[int, Field(ge=8, le=32)] = 16

    def request(self) -> PmdStreamRequest:
        return PmdStreamRequest("gyro", self.sample_rate_hz, self.range_dps, self.resolution_bits)


class SensorConfig(_Strict):
    """One worn sensor: how to find it, and what its header entry says."""

    profile: ProfileName
    address: Annotated[str | None, Field(pattern=_ADDRESS_PATTERN)] = None
    name: Annotated[str | None, Field(min_length=1, max_length=248)] = None
    placement: Literal["chest", "pelvis", "upper_back", "unknown"] | None = None
    mount: MountSpec | None = None
    cadence_unit: Literal["steps", "strides", "auto"] = "auto"
    speed_factor: Annotated[float, Field(gt=0.0, le=3.0)] = 1.0
    acc: PmdAccSettings | None = None
    gyro: PmdGyroSettings | None = None
    #: The watchdog: no data for this long and the link is treated as lost (default 5 s).
    silence_timeout_s: Annotated[float | None, Field(gt=0.0, le=3600.0)] = None

    @model_validator(mode="after")
    def _fits_the_profile(self) -> Self:
        if self.address is None and self.name is None:
            raise ValueError("address or name: give at least one, so the sensor can be found")
        given = self.model_fields_set
        only_for: list[tuple[str, frozenset[str], str]] = [
            ("cadence_unit", frozenset({"rsc"}), "rsc"),
            ("speed_factor", frozenset({"rsc"}), "rsc"),
            ("placement", _IMU_PROFILES, "runmon_imu and polar_pmd"),
            ("mount", _IMU_PROFILES, "runmon_imu and polar_pmd"),
            ("acc", frozenset({"polar_pmd"}), "polar_pmd"),
            ("gyro", frozenset({"polar_pmd"}), "polar_pmd"),
        ]
        for name, profiles, which in only_for:
            if name in given and self.profile not in profiles:
                raise ValueError(f"{name}: applies to {which} sensors only, not to {self.profile}")
        return self

    def pmd_streams(self) -> tuple[PmdStreamRequest, ...]:
        """The PMD streams to start (accelerometer at the defaults when none is configured)."""
        if self.profile != "polar_pmd":
            return ()
        acc = self.acc if self.acc is not None or self.gyro is not None else PmdAccSettings()
        return tuple(s.request() for s in (acc, self.gyro) if s is not None)

    def pmd_settings(self) -> dict[str, Any] | None:
        """The header's ``settings`` for a PMD strap, e.g. ``{"acc": {"sample_rate_hz": 200,
        "range_g": 8, "resolution_bits": 16}}``; None for other profiles."""
        if self.profile != "polar_pmd":
            return None
        acc = self.acc if self.acc is not None or self.gyro is not None else PmdAccSettings()
        settings: dict[str, Any] = {}
        if acc is not None:
            settings["acc"] = acc.model_dump()
        if self.gyro is not None:
            settings["gyro"] = self.gyro.model_dump()
        return settings

    def header_entry(self, sensor_id: str) -> SensorSpec:
        """The recording header's entry for this sensor: exactly the fields declared."""
        declared: dict[str, Any] = {"id": sensor_id, "profile": self.profile}
        for name in ("placement", "mount", "cadence_unit", "speed_factor"):
            if name in self.model_fields_set:
                declared[name] = getattr(self, name)
        settings = self.pmd_settings()
        if settings is not None:
            declared["settings"] = settings
        return SensorSpec(**declared)

    def target(self, sensor_id: str) -> SensorTarget:
        """What the BLE client connects to."""
        return SensorTarget(
            id=sensor_id,
            profile=self.profile,
            address=self.address,
            name=self.name,
            pmd_streams=self.pmd_streams(),
            silence_timeout_s=self.silence_timeout_s,
        )


class RunnerConfig(_Strict):
    """A runner and the sensors they wear."""

    runner: RunnerSection
    sensors: Annotated[dict[str, SensorConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _sensor_ids(self) -> Self:
        for sensor_id in self.sensors:
            if re.fullmatch(_ID_PATTERN, sensor_id) is None:
                raise ValueError(f"sensors.{sensor_id}: ids are [A-Za-z0-9_-]{{1,64}}")
        return self

    @property
    def runner_id(self) -> str:
        return self.runner.id

    def header_sensors(self) -> list[SensorSpec]:
        return [config.header_entry(i) for i, config in self.sensors.items()]

    def targets(self) -> list[SensorTarget]:
        return [config.target(i) for i, config in self.sensors.items()]

    def recording_header(
        self, started_at: datetime | None = None, meta: dict[str, Any] | None = None
    ) -> RecordingHeader:
        """A recording's header line for a capture of this runner (DESIGN §3.2)."""
        return RecordingHeader(
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            runner=self.runner.id,
            started_at=started_at or datetime.now(UTC),
            sensors=self.header_sensors(),
            runner_profile=RunnerProfile(hr_max_bpm=self.runner.hr_max_bpm),
            meta=meta or {},
        )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "string_pattern_mismatch" and loc.endswith(".address"):
        message = "must be a Bluetooth address like C4:7F:51:0A:1B:2C (or a macOS device UUID)"
    return f"{loc}: {message}" if loc else message


def parse_runner_config(text: str, source: str = "<runner config>") -> RunnerConfig:
    """Validate runner TOML; errors name the source and the dotted path of the bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunnerConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return RunnerConfig.model_validate(data)
    except ValidationError as exc:
        raise RunnerConfigError(f"{source}: {_first_error(exc)}") from exc


def load_runner_config(path: str | Path) -> RunnerConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RunnerConfigError(f"{source}: cannot read runner config: {exc.strerror}") from exc
    return parse_runner_config(text, source)


def config_for_header(header: RecordingHeader, names: Mapping[str, str]) -> RunnerConfig:
    """A configuration that finds ``header``'s sensors by advertised name (``names[id]``):
    what ``runmon simulate --serve --config-out`` writes for the sensors it serves."""
    sensors: dict[str, dict[str, Any]] = {}
    for spec in header.sensors:
        declared = spec.model_dump(mode="json", exclude_unset=True)
        entry: dict[str, Any] = {"profile": spec.profile, "name": names[spec.id]}
        for key in ("placement", "mount", "cadence_unit", "speed_factor"):
            if key in declared:
                entry[key] = declared[key]
        settings = declared.get("settings")
        if spec.profile == "polar_pmd" and isinstance(settings, dict):
            entry.update({k: v for k, v in settings.items() if k in ("acc", "gyro")})
        sensors[spec.id] = entry
    runner: dict[str, Any] = {"id": header.runner}
    if header.runner_profile.hr_max_bpm is not None:
        runner["hr_max_bpm"] = header.runner_profile.hr_max_bpm
    try:
        return RunnerConfig.model_validate({"runner": runner, "sensors": sensors})
    except ValidationError as exc:
        raise RunnerConfigError(f"recording header: {_first_error(exc)}") from exc


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dump_runner_config(config: RunnerConfig, comment: str | None = None) -> str:
    """TOML text that :func:`parse_runner_config` reads back as ``config``."""
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    lines += ["[runner]", f"id = {_toml_value(config.runner.id)}"]
    if config.runner.hr_max_bpm is not None:
        lines.append(f"hr_max_bpm = {config.runner.hr_max_bpm}")
    for sensor_id, sensor in config.sensors.items():
        lines += ["", f"[sensors.{sensor_id}]"]
        dumped = sensor.model_dump(mode="json", exclude_unset=True)
        dumped = {"profile": dumped.pop("profile", sensor.profile), **dumped}
        lines += [f"{key} = {_toml_value(value)}" for key, value in dumped.items()]
    return "\n".join(lines) + "\n"
