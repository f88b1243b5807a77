"""Scenarios: a runner profile, the virtual sensors worn, and a timeline, in TOML.

A timeline is a list of keyframes; each keyframe sets some of the runner's targets at ``t_s``,
and every target is interpolated linearly between the keyframes that set it, then held after
the last. ``speed_mps`` and ``cadence_spm`` must be set at ``t_s = 0``; every other target is
optional: before the first keyframe that sets it (and when none does) it takes its default, a
normal runner's value. Scenarios named in DESIGN §3.6 ship as ``simulators/scenarios/NAME.toml``;
a path to any other TOML file works too.

Keyframe targets (range; default). The runner model adds a real runner's wander and
stride-to-stride variability around them; ground truth measures what the motion then does.

- ``speed_mps`` (0–8), ``cadence_spm`` (0–240, steps/min): required at ``t_s = 0``. The body
  runs (flight phases, trunk motion) from about 130 steps/min; below 80 it stands still.
- ``trunk_lean_deg`` (-10–30; 7): stride-averaged forward trunk inclination relative to the
  standing posture while running (standing is 0 by definition).
- ``trunk_rotation_deg`` (0–60; 14): peak-to-peak trunk yaw within a stride.
- ``vertical_oscillation_cm`` (2–15; 8): peak-to-peak vertical displacement per step. The
  stance force profile is shaped to reach it; what a cadence and contact time allow is
  limited (about 4–10 cm at 172 steps/min and 250 ms), and truth reports what is reached.
- ``ground_contact_ms`` (120–400; 250): stance time per step.
- ``lateral_sway_cm`` (0–12; 3): peak-to-peak side-to-side trunk displacement per stride; the
  trunk also rolls, 0.75° per cm of sway each way.
- ``lean_variability_deg`` (0–6; 0.6): stride-to-stride standard deviation of the
  stride-averaged lean (``core_engage`` instability).
- ``steps_per_breath`` (1–10; 4): locomotor-respiratory coupling while running with
  ``runner.breathing = "locked"``.
- ``breathing_rate_bpm`` (4–80; default 14 standing, cadence / steps_per_breath running): the
  rate when standing, and while running with ``runner.breathing = "free"``.
- ``breath_depth_rel`` (0.1–3; 1): tidal depth relative to the runner's own running baseline
  (breaths at rest are 0.6 of it).
- ``heart_rate_bpm`` (30–230; default a heart that follows the effort: ``runner.hr_rest_bpm``
  standing, rising with speed towards ``runner.hr_max_bpm`` with a 30 s time constant and a
  slow cardiac drift).
- ``heading_rate_dps`` (-90–90; 0): turning rate, positive to the left; added to the bends of
  ``course = "track_400m"``.

Sensors are ``[sensors.ID]`` tables told apart by ``profile``: ``rsc`` (a footpod, optionally
with a ``battery_dies_at_s`` and a ``link``), ``runmon_imu``, ``polar_pmd`` (a Polar H10 chest
accelerometer), ``heart_rate`` and ``runmon_breath``.

Events are what the runner's app sends, ``[[events]]`` with ``t_s`` and exactly one of
``pain = { level = 0..10, location = "low_back", radiating = false }`` (locations as in DESIGN
§3.2) and ``control = { action = "snooze", minutes = 5 }`` (``start | stop | mute | unmute |
snooze``); they become ``pain`` and ``control`` records in time order.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sensors.profiles import DEFAULT_MOUNTS, Axis
from sensors.recording import ControlAction, MountSpec, PainLocation
from simulators.errors import ScenarioError

_SENSOR_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunnerSpec(_Strict):
    id: Annotated[str, Field(pattern=_SENSOR_ID)] = "r1"
    hr_max_bpm: Annotated[int, Field(ge=100, le=240)] = 190
    hr_rest_bpm: Annotated[int, Field(ge=30, le=110)] = 60
    #: ``locked``: while running, one breath every ``steps_per_breath`` steps, phase-locked to
    #: the steps; ``free``: breathing at ``breathing_rate_bpm``, drifting against the steps.
    breathing: Literal["locked", "free"] = "locked"


# --- sensors --------------------------------------------------------------------------------


class LinkDrop(_Strict):
    """The BLE link drops at ``t_s`` and comes back ``duration_s`` later."""

    t_s: Annotated[float, Field(ge=0.0)]
    duration_s: Annotated[float, Field(gt=0.0, le=3600.0)]


class LinkSpec(_Strict):
    """The radio between a strap and the host: when notifications arrive, and which do not."""

    connection_interval_ms: Annotated[float, Field(ge=7.5, le=400.0)] = 30.0
    #: Extra receive delay beyond the connection event, uniform in 0..jitter_ms.
    jitter_ms: Annotated[float, Field(ge=0.0, le=100.0)] = 2.0
    #: Probability that a notification is lost (buffer overflow, interference).
    packet_loss: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    drops: tuple[LinkDrop, ...] = ()


class FootpodSpec(_Strict):
    """A virtual RSC footpod."""

    profile: Literal["rsc"] = "rsc"
    sends_cadence_as: Literal["steps", "strides"] = "steps"
    declared_cadence_unit: Literal["steps", "strides", "auto"] = "auto"
    speed_error_rel: Annotated[float, Field(ge=-0.3, le=0.3)] = 0.0
    speed_noise_mps: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03
    interval_s: Annotated[float, Field(gt=0.0, le=5.0)] = 1.0
    #: Host receive delay, uniform in 0..jitter_s (when no ``link`` is given).
    jitter_s: Annotated[float, Field(ge=0.0, le=0.5)] = 0.02
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 87
    #: The battery runs flat at this time: its level falls from ``battery_pct`` at connect to 0
    #: (notified at every whole percent), then the footpod stops sending and disconnects.
    battery_dies_at_s: Annotated[float | None, Field(gt=0.0)] = None
    #: Deliver through the shared link model (connection events, packet loss, drops) instead of
    #: the simple ``jitter_s`` delay.
    link: LinkSpec | None = None


class ScenarioMount(_Strict):
    """Which sensor axis points forward, left and up when the runner stands upright."""

    forward: Axis = "+x"
    left: Axis = "+y"
    up: Axis = "+z"

    @model_validator(mode="after")
    def _proper_rotation(self) -> ScenarioMount:
        try:
            MountSpec(forward=self.forward, left=self.left, up=self.up)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
        return self


#: The largest strap tilt the model allows (a strap that sits worse is worn wrongly).
MAX_TILT_DEG: Final = 15.0


class ImuSpec(_Strict):
    """A virtual runmon IMU strap: acc (+ gyro) at ``sample_rate_hz``, batched per notification.

    The strap sits on the body per ``mount`` and is further tilted by ``tilt_forward_deg``
    (its up axis towards the front) and ``tilt_side_deg`` (towards the runner's left), which
    the standing calibration must absorb.
    """

    profile: Literal["runmon_imu"]
    placement: Literal["chest", "upper_back", "pelvis"] = "chest"
    mount: ScenarioMount = ScenarioMount()
    tilt_forward_deg: Annotated[float, Field(ge=-MAX_TILT_DEG, le=MAX_TILT_DEG)] = 0.0
    tilt_side_deg: Annotated[float, Field(ge=-MAX_TILT_DEG, le=MAX_TILT_DEG)] = 0.0
    sample_rate_hz: Annotated[int, Field(ge=25, le=1000)] = 200
    #: At most 42 with gyro (84 without) fit the largest notification (ATT MTU 512).
    samples_per_notification: Annotated[int, Field(ge=1, le=84)] = 19
    gyro: bool = True
    acc_noise_g: Annotated[float, Field(ge=0.0, le=0.1)] = 0.003
    acc_bias_g: Annotated[float, Field(ge=0.0, le=0.1)] = 0.005
    gyro_noise_dps: Annotated[float, Field(ge=0.0, le=5.0)] = 0.1
    #: Standard deviation, per axis, of the gyro's constant bias (it also wanders slowly).
    gyro_bias_dps: Annotated[float, Field(ge=0.0, le=5.0)] = 0.5
    #: The strap's clock runs this much fast (negative: slow) against the host's.
    clock_drift_ppm: Annotated[float, Field(ge=-500.0, le=500.0)] = 30.0
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 76
    link: LinkSpec = LinkSpec()

    @model_validator(mode="after")
    def _tilt_within_limit(self) -> ImuSpec:
        if math.hypot(self.tilt_forward_deg, self.tilt_side_deg) > MAX_TILT_DEG + 1e-9:
            raise ValueError(
                f"tilt_forward_deg, tilt_side_deg: the strap tilts more than {MAX_TILT_DEG:g}°"
            )
        if self.gyro and self.samples_per_notification > 42:
            raise ValueError("samples_per_notification: at most 42 fit a notification with gyro")
        return self


#: Output data rates a Polar H10 accelerometer supports.
PmdSampleRate = Literal[25, 50, 100, 200]

#: The H10's mount (DEFAULT_MOUNTS["polar_pmd"]): z out of the chest, x to the left, y up.
_H10_MOUNT: Final = ScenarioMount(
    forward=DEFAULT_MOUNTS["polar_pmd"]["forward"],
    left=DEFAULT_MOUNTS["polar_pmd"]["left"],
    up=DEFAULT_MOUNTS["polar_pmd"]["up"],
)


class PmdSpec(_Strict):
    """A virtual Polar H10: chest accelerometer frames (no gyro) over Polar Measurement Data.

    Frames carry the sensor clock's time (ns since 2000-01-01) of their last sample; the clock
    runs ``clock_drift_ppm`` fast. ``frame_type = "compressed"`` sends delta-compressed ACC
    frames of type 0x81 (raw mG, factor 1.0), filled with as many samples as one notification
    of ``mtu`` holds; ``"uncompressed"`` sends type 0x01 frames (3 x i16 mG per sample).
    """

    profile: Literal["polar_pmd"]
    placement: Literal["chest"] = "chest"
    mount: ScenarioMount = _H10_MOUNT
    tilt_forward_deg: Annotated[float, Field(ge=-MAX_TILT_DEG, le=MAX_TILT_DEG)] = 0.0
    tilt_side_deg: Annotated[float, Field(ge=-MAX_TILT_DEG, le=MAX_TILT_DEG)] = 0.0
    sample_rate_hz: PmdSampleRate = 200
    range_g: Literal[2, 4, 8] = 8
    frame_type: Literal["compressed", "uncompressed"] = "compressed"
    #: The negotiated ATT MTU (an H10 gives 232): a notification holds ``mtu - 3`` bytes.
    mtu: Annotated[int, Field(ge=23, le=517)] = 232
    acc_noise_g: Annotated[float, Field(ge=0.0, le=0.1)] = 0.004
    acc_bias_g: Annotated[float, Field(ge=0.0, le=0.1)] = 0.01
    clock_drift_ppm: Annotated[float, Field(ge=-500.0, le=500.0)] = -40.0
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 82
    link: LinkSpec = LinkSpec()

    @model_validator(mode="after")
    def _tilt_within_limit(self) -> PmdSpec:
        if math.hypot(self.tilt_forward_deg, self.tilt_side_deg) > MAX_TILT_DEG + 1e-9:
            raise ValueError(
                f"tilt_forward_deg, tilt_side_deg: the strap tilts more than {MAX_TILT_DEG:g}°"
            )
        return self


class HeartRateSpec(_Strict):
    """A virtual heart-rate strap: one Heart Rate Measurement with RR intervals per interval."""

    profile: Literal["heart_rate"]
    interval_s: Annotated[float, Field(ge=0.25, le=5.0)] = 1.0
    rr_intervals: bool = True
    hr_u16: bool = False
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 91
    link: LinkSpec = LinkSpec()


class BreathSpec(_Strict):
    """A virtual runmon Breath band: chest stretch at ``sample_rate_hz``, batched."""

    profile: Literal["runmon_breath"]
    sample_rate_hz: Annotated[int, Field(ge=5, le=200)] = 25
    samples_per_notification: Annotated[int, Field(ge=1, le=255)] = 10
    #: Reading of the relaxed band at rest, and how much one baseline breath stretches it.
    offset_units: Annotated[float, Field(ge=0.0, le=60000.0)] = 30000.0
    units_per_breath: Annotated[float, Field(gt=0.0, le=20000.0)] = 2000.0
    #: Peak-to-peak bounce of the band per step, per cm of vertical oscillation, relative to a
    #: baseline breath.
    step_artefact_per_cm: Annotated[float, Field(ge=0.0, le=0.2)] = 0.012
    #: Slow baseline wander (band slipping, sweat): its standard deviation, relative to a
    #: baseline breath, and a steady creep per hour.
    drift_rel: Annotated[float, Field(ge=0.0, le=2.0)] = 0.15
    creep_rel_per_h: Annotated[float, Field(ge=-5.0, le=5.0)] = -0.5
    noise_rel: Annotated[float, Field(ge=0.0, le=0.5)] = 0.01
    clock_drift_ppm: Annotated[float, Field(ge=-500.0, le=500.0)] = -20.0
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 64
    link: LinkSpec = LinkSpec()


#: The sensor profiles a scenario can put on the runner.
PROFILES: Final = ("rsc", "runmon_imu", "heart_rate", "runmon_breath", "polar_pmd")

#: One of the sensor specs (what ``isinstance`` dispatch narrows).
SensorSpecType = FootpodSpec | ImuSpec | HeartRateSpec | BreathSpec | PmdSpec
#: A ``[sensors.ID]`` table: its ``profile`` says which spec validates it.
SensorSpec = Annotated[SensorSpecType, Field(discriminator="profile")]


# --- timeline -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """A keyframe target: its default (``None``: derived by the runner model) and unit."""

    default: float | None
    unit: str


#: Targets every scenario must set at ``t_s = 0``.
TARGETS: tuple[str, ...] = ("speed_mps", "cadence_spm")

#: Optional targets and their defaults: a normal runner.
BODY_TARGETS: Final[dict[str, TargetInfo]] = {
    "trunk_lean_deg": TargetInfo(7.0, "deg"),
    "trunk_rotation_deg": TargetInfo(14.0, "deg"),
    "vertical_oscillation_cm": TargetInfo(8.0, "cm"),
    "ground_contact_ms": TargetInfo(250.0, "ms"),
    "lateral_sway_cm": TargetInfo(3.0, "cm"),
    "lean_variability_deg": TargetInfo(0.6, "deg"),
    "steps_per_breath": TargetInfo(4.0, "steps"),
    "breathing_rate_bpm": TargetInfo(None, "1/min"),
    "breath_depth_rel": TargetInfo(1.0, "rel"),
    "heart_rate_bpm": TargetInfo(None, "1/min"),
    "heading_rate_dps": TargetInfo(0.0, "deg/s"),
}


class Keyframe(_Strict):
    t_s: Annotated[float, Field(ge=0.0)]
    speed_mps: Annotated[float | None, Field(ge=0.0, le=8.0)] = None
    cadence_spm: Annotated[float | None, Field(ge=0.0, le=240.0)] = None
    trunk_lean_deg: Annotated[float | None, Field(ge=-10.0, le=30.0)] = None
    trunk_rotation_deg: Annotated[float | None, Field(ge=0.0, le=60.0)] = None
    vertical_oscillation_cm: Annotated[float | None, Field(ge=2.0, le=15.0)] = None
    ground_contact_ms: Annotated[float | None, Field(ge=120.0, le=400.0)] = None
    lateral_sway_cm: Annotated[float | None, Field(ge=0.0, le=12.0)] = None
    lean_variability_deg: Annotated[float | None, Field(ge=0.0, le=6.0)] = None
    steps_per_breath: Annotated[float | None, Field(ge=1.0, le=10.0)] = None
    breathing_rate_bpm: Annotated[float | None, Field(ge=4.0, le=80.0)] = None
    breath_depth_rel: Annotated[float | None, Field(ge=0.1, le=3.0)] = None
    heart_rate_bpm: Annotated[float | None, Field(ge=30.0, le=230.0)] = None
    heading_rate_dps: Annotated[float | None, Field(ge=-90.0, le=90.0)] = None
    note: str | None = None


# --- events ---------------------------------------------------------------------------------


class PainSpec(_Strict):
    """A pain report (0 none … 10 worst); ``radiating``: the pain runs down the legs."""

    level: Annotated[int, Field(ge=0, le=10, strict=True)]
    location: PainLocation
    radiating: Annotated[bool, Field(strict=True)] = False


class ControlSpec(_Strict):
    """The runner's app starts, stops, mutes, unmutes or snoozes the coach."""

    action: ControlAction
    minutes: Annotated[float | None, Field(gt=0.0, le=24 * 60.0)] = None


class EventSpec(_Strict):
    """What the runner's app sends at ``t_s``: exactly one of ``pain`` and ``control``."""

    t_s: Annotated[float, Field(ge=0.0)]
    pain: PainSpec | None = None
    control: ControlSpec | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EventSpec:
        if (self.pain is None) == (self.control is None):
            raise ValueError("pain, control: an event is exactly one of pain and control")
        return self


class Scenario(_Strict):
    name: str
    description: str = ""
    duration_s: Annotated[float, Field(gt=0.0, le=6 * 3600)]
    runner: RunnerSpec = RunnerSpec()
    #: ``track_400m``: laps of a standard track (84.39 m straights, 36.8 m bend radius) from the
    #: start of a straight, turning left, on top of any ``heading_rate_dps``.
    course: Literal["road", "track_400m"] = "road"
    sensors: Annotated[dict[str, SensorSpec], Field(min_length=1)]
    timeline: Annotated[list[Keyframe], Field(min_length=1)]
    #: When the fault starts, for scenarios that show one (tests measure cue latency from here).
    fault_onset_s: Annotated[float | None, Field(ge=0.0)] = None
    expected_cues: tuple[str, ...] = ()
    #: Pain reports and control commands, as the runner's app sends them.
    events: list[EventSpec] = []

    @model_validator(mode="after")
    def _check_timeline(self) -> Scenario:
        times = [k.t_s for k in self.timeline]
        if times != sorted(times):
            raise ValueError("timeline: keyframes must be in increasing t_s")
        first = self.timeline[0]
        if first.t_s != 0.0:
            raise ValueError("timeline.0.t_s: the first keyframe must be at t_s = 0")
        for target in TARGETS:
            if getattr(first, target) is None:
                raise ValueError(f"timeline.0.{target}: every target must be set at t_s = 0")
        for sensor_id in self.sensors:
            if not _matches(sensor_id):
                raise ValueError(f"sensors.{sensor_id}: ids are [A-Za-z0-9_-]{{1,64}}")
        for i, event in enumerate(self.events):
            if event.t_s > self.duration_s:
                raise ValueError(
                    f"events.{i}.t_s: {event.t_s:g} s is after the scenario ends "
                    f"({self.duration_s:g} s)"
                )
        for sensor_id, spec in self.sensors.items():
            dies = spec.battery_dies_at_s if isinstance(spec, FootpodSpec) else None
            if dies is not None and dies > self.duration_s:
                raise ValueError(
                    f"sensors.{sensor_id}.battery_dies_at_s: after the scenario ends "
                    f"({self.duration_s:g} s)"
                )
        return self

    def sets(self, name: str) -> bool:
        """Whether any keyframe sets the target ``name``."""
        return any(getattr(k, name) is not None for k in self.timeline)

    def target(self, name: str, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """A target interpolated at the times ``t_s`` (vectorised), its default where unset.

        Raises ``ValueError`` for a target whose default the runner model derives and that
        the timeline does not set (ask :meth:`sets` first).
        """
        points = [(k.t_s, v) for k in self.timeline if (v := getattr(k, name)) is not None]
        info = BODY_TARGETS.get(name)
        if info is not None and info.default is not None and (not points or points[0][0] > 0):
            points.insert(0, (0.0, info.default))
        if not points:
            raise ValueError(f"target {name!r} is not set and has no fixed default")
        xs = np.array([p[0] for p in points], dtype=np.float64)
        ys = np.array([p[1] for p in points], dtype=np.float64)
        return np.interp(t_s, xs, ys)

    def sensors_of(self, profile: str) -> dict[str, SensorSpecType]:
        """The sensors of one profile, by id, in declaration order."""
        return {i: s for i, s in self.sensors.items() if s.profile == profile}


def _matches(sensor_id: str) -> bool:
    return re.fullmatch(_SENSOR_ID, sensor_id) is not None


def builtin_scenario_names() -> list[str]:
    """Names of the scenarios shipped with runmon."""
    folder = resources.files("simulators") / "scenarios"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, or a scenario TOML file by path."""
    text: str
    source: str
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{source}: cannot read scenario: {exc.strerror}") from exc
    else:
        name = str(name_or_path)
        resource = resources.files("simulators") / "scenarios" / f"{name}.toml"
        if not resource.is_file():
            known = ", ".join(builtin_scenario_names())
            raise ScenarioError(f"unknown scenario {name!r}; known: {known}")
        source = f"scenario {name!r}"
        text = resource.read_text(encoding="utf-8")
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario TOML; errors name the source and the bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        parts = [str(part) for part in first["loc"]]
        if len(parts) > 2 and parts[0] == "sensors" and parts[2] in PROFILES:
            del parts[2]  # the union's tag: the sensor's own fields follow
        loc = ".".join(parts) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            # A sensor without a known profile: name the field, list the choices.
            loc += ".profile"
            message = f"must be one of {', '.join(PROFILES)}"
            if first["type"] == "union_tag_invalid":
                message = f"unknown profile {first['input'].get('profile')!r}; " + message
        raise ScenarioError(f"{source}: {loc}: {message}") from exc
