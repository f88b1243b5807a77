"""Compiled numerics for the per-sample, per-block and per-step loops of the hot path.

A second of trunk data is ~200 samples, ~10 notifications and ~3 steps: as numpy expressions
each is a few dozen tiny array calls whose overhead dwarfs the maths, and as Python loops it is
far too slow. numba compiles the plain loops instead (cached on disk next to the source, so only
the first run after a change pays the compile; every process pays ~0.3 s on its first call).
The functions stay pure, over numpy arrays and scalars. ``NUMBA_DISABLE_JIT=1`` runs them as
plain Python, for a debugger. It lives in ``sensors``, the bottom layer, so every package may
use the one decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` with numba: no Python objects, IEEE maths, numpy's division semantics."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(func))
