"""The one exception root of :mod:`rules`."""

from __future__ import annotations


class RulesError(Exception):
    """Root of every error raised by :mod:`rules`."""


class RuleConfigError(RulesError):
    """A rule configuration that does not validate; the message names the file and field."""
