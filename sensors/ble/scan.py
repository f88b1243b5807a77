"""Prototype of ``runmon scan``: list nearby sensors with profile, name, address and RSSI.

Plain bleak calls; ``--transport`` puts them on the bumble backend (a virtual radio served by
``python -m simulators.peripherals.serve``, or ``usb:0``), without it bleak uses the OS stack::

    python -m sensors.ble.scan --transport tcp-client:127.0.0.1:9001 --timeout 2
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bleak import BleakScanner

from sensors.ble.bumble_backend import BumbleAdapter
from sensors.ble.errors import BleError
from sensors.profiles import PROFILE_SERVICES, ProfileName

__all__ = ["ScanResult", "identify_profile", "main", "scan"]


@dataclass(frozen=True, slots=True)
class ScanResult:
    address: str
    name: str | None
    rssi: int
    profile: ProfileName | None
    service_uuids: tuple[str, ...]


def identify_profile(service_uuids: Sequence[str]) -> ProfileName | None:
    """The runmon profile whose service a sensor advertises, or None for anything else."""
    advertised = {u.lower() for u in service_uuids}
    for profile, service in PROFILE_SERVICES.items():
        if service in advertised:
            return profile
    return None


async def scan(timeout_s: float, transport: str | None = None) -> list[ScanResult]:
    """Scan for ``timeout_s``; runmon sensors first, then by name."""
    if transport is None:
        found = await BleakScanner.discover(timeout_s, return_adv=True)
    else:
        async with BumbleAdapter(transport) as adapter:
            found = await BleakScanner.discover(
                timeout_s, return_adv=True, backend=adapter.scanner_backend
            )
    results = [
        ScanResult(
            address=device.address,
            name=advertisement.local_name or device.name,
            rssi=advertisement.rssi,
            profile=identify_profile(advertisement.service_uuids),
            service_uuids=tuple(advertisement.service_uuids),
        )
        for device, advertisement in found.values()
    ]
    return sorted(results, key=lambda r: (r.profile is None, r.name or "", r.address))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensors.ble.scan")
    parser.add_argument("--transport", help="bumble transport spec (default: the OS stack)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to scan")
    args = parser.parse_args(argv)
    try:
        results = asyncio.run(scan(args.timeout, args.transport))
    except BleError as error:
        print(f"scan: {error}", file=sys.stderr)
        return 2
    for result in results:
        print(
            f"{result.profile or '-':<14} {result.name or '?':<20} {result.address:<17} "
            f"{result.rssi:>4} dBm"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
