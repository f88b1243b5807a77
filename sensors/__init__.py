"""runmon sensors: radio -> bytes -> timed samples.

Knows Bluetooth and byte layouts, nothing about running form. Decoders are pure functions over
``bytes`` with encoder twins (:mod:`sensors.gatt`); recordings are the on-disk form of a BLE
capture (:mod:`sensors.recording`); :mod:`sensors.ble` puts bleak on bumble for a radio-less
BLE stack.

Exception tree (:mod:`sensors.errors`, and :mod:`sensors.ble.errors` for the BLE branch)::

    SensorsError
    ├── DecodeError          a payload that does not decode (what, which profile/characteristic)
    ├── RecordingError       a recording line that stops a reader (path, line number, reason)
    │   └── RecordingHeaderError   line 1 missing or not a valid header (field: the bad one)
    └── BleError             BLE transport, connection or GATT failure (tree in sensors.ble)
"""
