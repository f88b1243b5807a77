"""runmon sensors: radio -> bytes -> timed samples.

Knows Bluetooth and byte layouts, nothing about running form. Decoders are pure functions over
``bytes`` with encoder twins; recordings are the on-disk form of a BLE capture.

Exception tree (all in :mod:`sensors.errors`)::

    SensorsError
    ├── DecodeError          a payload that does not decode (what, which profile/characteristic)
    └── RecordingError       a recording line that stops a reader (path, line number, reason)
        └── RecordingHeaderError   line 1 missing or not a valid header (field: the bad one)
"""
