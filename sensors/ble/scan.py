"""``runmon scan``: list nearby sensors with profile, name, address and RSSI.

Plain bleak calls on a :class:`~sensors.ble.adapter.BleBackend`: the OS stack, or bumble on a
transport (a virtual radio served by ``runmon simulate --serve``, or ``usb:0``)::

    python -m sensors.ble.scan --transport tcp-client:127.0.0.1:9001 --timeout 2

A sensor's profile comes from the services it advertises. Polar straps advertise only Heart Rate
(0x180D) although they serve PMD too; a ``Polar`` name with Heart Rate is taken for PMD, as
Polar's own SDK identifies them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bleak import BleakScanner

from sensors.ble.adapter import BleBackend, open_backend, os_stack_errors
from sensors.ble.errors import BleError
from sensors.profiles import PROFILE_SERVICES, ProfileName

__all__ = ["ScanResult", "format_result", "identify_profile", "main", "scan", "scan_with"]

#: Most specific first: a strap advertising PMD and Heart Rate is a PMD sensor.
_PRIORITY: Final[tuple[ProfileName, ...]] = (
    "polar_pmd",
    "runmon_imu",
    "runmon_breath",
    "rsc",
    "heart_rate",
)
#: Name prefixes of Polar sensors that serve PMD (H10, Verity Sense, OH1).
_POLAR_PMD_NAMES: Final = ("Polar H10", "Polar Sense", "Polar OH1", "Polar Verity")


@dataclass(frozen=True, slots=True)
class ScanResult:
    address: str
    name: str | None
    rssi: int
    profile: ProfileName | None
    service_uuids: tuple[str, ...]


def identify_profile(service_uuids: Sequence[str], name: str | None = None) -> ProfileName | None:
    """The runmon profile a sensor's advertisement announces, or None for anything else."""
    advertised = {u.lower() for u in service_uuids}
    for profile in _PRIORITY:
        if PROFILE_SERVICES[profile] in advertised:
            if profile == "heart_rate" and name and name.startswith(_POLAR_PMD_NAMES):
                return "polar_pmd"
            return profile
    return None


async def scan_with(
    backend: BleBackend, timeout_s: float, *, every_device: bool = False
) -> list[ScanResult]:
    """Scan for ``timeout_s``; runmon sensors only unless ``every_device``, sorted by profile.

    Without ``every_device`` the scan filters on the profiles' service UUIDs, as a scan for
    sensors should (the controller then ignores every phone and headphone around).
    """
    service_uuids = None if every_device else list(PROFILE_SERVICES.values())
    with os_stack_errors(backend, "scan"):
        found = await BleakScanner.discover(
            timeout_s, return_adv=True, **backend.scanner_kwargs(service_uuids)
        )
    results = [
        ScanResult(
            address=device.address,
            name=advertisement.local_name or device.name,
            rssi=advertisement.rssi,
            profile=identify_profile(
                advertisement.service_uuids, advertisement.local_name or device.name
            ),
            service_uuids=tuple(advertisement.service_uuids),
        )
        for device, advertisement in found.values()
    ]
    order = {profile: i for i, profile in enumerate(PROFILE_SERVICES)}
    return sorted(
        results,
        key=lambda r: (
            len(order) if r.profile is None else order[r.profile],
            r.name or "",
            r.address,
        ),
    )


async def scan(
    timeout_s: float, transport: str | None = None, *, every_device: bool = False
) -> list[ScanResult]:
    """Open the adapter (the OS stack, or bumble on ``transport``) and scan it."""
    async with open_backend(transport) as backend:
        return await scan_with(backend, timeout_s, every_device=every_device)


def format_result(result: ScanResult) -> str:
    """One line: profile, name, address, RSSI."""
    return (
        f"{result.profile or '-':<14} {result.name or '?':<20} {result.address:<17} "
        f"{result.rssi:>4} dBm"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensors.ble.scan")
    parser.add_argument("--transport", help="bumble transport spec (default: the OS stack)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to scan")
    parser.add_argument("--all", action="store_true", help="list every device, not only sensors")
    args = parser.parse_args(argv)
    try:
        results = asyncio.run(scan(args.timeout, args.transport, every_device=args.all))
    except BleError as error:
        print(f"scan: {error}", file=sys.stderr)
        return 2
    for result in results:
        print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
