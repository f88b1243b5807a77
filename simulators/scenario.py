"""Scenarios: a runner profile, the virtual sensors worn, and a timeline, in TOML.

A timeline is a list of keyframes; each keyframe sets some of the runner's targets (speed,
cadence, …) at ``t_s``, and every target is interpolated linearly between the keyframes that set
it, then held after the last. Every target must be set at ``t_s = 0``. Scenarios named in
DESIGN §3.6 ship as ``simulators/scenarios/NAME.toml``; a path to any other TOML file works too.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.errors import ScenarioError

_SENSOR_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunnerSpec(_Strict):
    id: Annotated[str, Field(pattern=_SENSOR_ID)] = "r1"
    hr_max_bpm: Annotated[int, Field(ge=100, le=240)] = 190


class FootpodSpec(_Strict):
    """A virtual RSC footpod."""

    profile: Literal["rsc"] = "rsc"
    sends_cadence_as: Literal["steps", "strides"] = "steps"
    declared_cadence_unit: Literal["steps", "strides", "auto"] = "auto"
    speed_error_rel: Annotated[float, Field(ge=-0.3, le=0.3)] = 0.0
    speed_noise_mps: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03
    interval_s: Annotated[float, Field(gt=0.0, le=5.0)] = 1.0
    jitter_s: Annotated[float, Field(ge=0.0, le=0.5)] = 0.02
    battery_pct: Annotated[int, Field(ge=0, le=100)] = 87


SensorSpec = FootpodSpec

#: Runner targets a keyframe may set, with the range a human runner can hold.
TARGETS: tuple[str, ...] = ("speed_mps", "cadence_spm")


class Keyframe(_Strict):
    t_s: Annotated[float, Field(ge=0.0)]
    speed_mps: Annotated[float | None, Field(ge=0.0, le=8.0)] = None
    cadence_spm: Annotated[float | None, Field(ge=0.0, le=240.0)] = None
    note: str | None = None


class Scenario(_Strict):
    name: str
    description: str = ""
    duration_s: Annotated[float, Field(gt=0.0, le=6 * 3600)]
    runner: RunnerSpec = RunnerSpec()
    sensors: Annotated[dict[str, SensorSpec], Field(min_length=1)]
    timeline: Annotated[list[Keyframe], Field(min_length=1)]
    #: When the fault starts, for scenarios that show one (tests measure cue latency from here).
    fault_onset_s: Annotated[float | None, Field(ge=0.0)] = None
    expected_cues: tuple[str, ...] = ()

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
        return self

    def target(self, name: str, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """A target interpolated at the times ``t_s`` (vectorised)."""
        points = [(k.t_s, v) for k in self.timeline if (v := getattr(k, name)) is not None]
        xs = np.array([p[0] for p in points], dtype=np.float64)
        ys = np.array([p[1] for p in points], dtype=np.float64)
        return np.interp(t_s, xs, ys)


def _matches(sensor_id: str) -> bool:
    import re

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
        loc = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ScenarioError(f"{source}: {loc}: {first['msg']}") from exc
