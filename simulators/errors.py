"""The one exception root of :mod:`simulators`."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error raised by :mod:`simulators`."""


class ScenarioError(SimulatorError):
    """A scenario that is unknown or does not validate; the message names the field."""
