"""Orientation of a trunk strap under running accelerations, and the frames around it.

The filter is VQF (Laidig & Seel 2023, the ``vqf`` package, C++): its accelerometer correction
low-passes the acceleration in an almost-inertial frame, which is what stays right when stance
pushes 2–6 g and flight reads 0 g (Madgwick, Mahony and x-io Fusion in default settings were
measured 17–57° off on synthetic running; DESIGN §4). It also estimates the gyro bias, at rest
and in motion. We feed it in the declared body frame (forward, left, up) so the quaternions
it returns turn body vectors into a world frame whose z is vertical.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray
from vqf import VQF

from sensors.recording import MountSpec

FloatArray = NDArray[np.float64]

G_MPS2: Final = 9.80665
DEG: Final = np.pi / 180.0


def mount_matrix(mount: MountSpec) -> FloatArray:
    """(3, 3) body-from-sensor rotation of a declared mount: rows forward, left, up."""
    out = np.zeros((3, 3))
    for row, axis in enumerate((mount.forward, mount.left, mount.up)):
        out[row, "xyz".index(axis[1])] = 1.0 if axis[0] == "+" else -1.0
    return out


class OrientationFilter:
    """VQF in the body frame, fed block by block; holds its state between blocks."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.sample_rate_hz = sample_rate_hz
        # A 2 s accelerometer time constant (VQF's default is 3 s) recovers faster from the
        # orientation error a lost packet leaves, at no measurable cost without loss.
        self._vqf = VQF(1.0 / sample_rate_hz, tauAcc=2.0)

    def set_gyro_bias(self, bias_dps: FloatArray) -> None:
        """Start from the bias measured while the runner stood still."""
        self._vqf.setBiasEstimate(np.ascontiguousarray(bias_dps * DEG), 0.01 * DEG)

    def update(self, gyro_dps: FloatArray, acc_g: FloatArray) -> FloatArray:
        """Body-to-world quaternions (n, 4) for a block of body-frame samples."""
        gyr = np.ascontiguousarray(gyro_dps * DEG)
        acc = np.ascontiguousarray(acc_g * G_MPS2)
        out: FloatArray = self._vqf.updateBatch(gyr, acc)["quat6D"]
        return out
