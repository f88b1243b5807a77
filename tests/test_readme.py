"""The README's examples are real: its rule file and scenario validate as written."""

from __future__ import annotations

import re
from pathlib import Path

from rules.config import parse_rule_config
from simulators.scenario import parse_scenario

README = (Path(__file__).parent.parent / "README.md").read_text()


def _toml_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no TOML example after {heading!r}"
    return match.group(1)


def test_readme_rule_file_validates() -> None:
    config = parse_rule_config(_toml_after("### Rules"), "README")
    assert config.form["stride_shorten"].sustain_s == 30
    assert config.form["arm_swing"].conditions[0].baseline_ratio == 0.5
    assert config.form["lean_forward"].conditions[0].absolute == 3.0


def test_readme_scenario_validates() -> None:
    scenario = parse_scenario(_toml_after("### Writing a scenario"), "README")
    assert scenario.fault_onset_s == 480
