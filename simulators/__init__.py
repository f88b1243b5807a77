"""runmon simulators: a virtual runner -> the same bytes real sensors send, plus ground truth.

Imports :mod:`sensors` (for the encoders), never :mod:`monitor` or :mod:`rules`.

Modules, from the scenario to the bytes::

    scenario     TOML scenarios (pydantic): runner, sensors by profile, keyframe timeline
    runner       speed and cadence on a 10 Hz grid (what a footpod sees)
    body         the trunk's 3-D motion: stance impulses, lean, rotation, sway, bends
    physiology   breathing (locked to the steps or free) and heartbeats (RR with RSA)
    model        all of the above for one scenario, duration and seed: a VirtualRunner
    footpod, imu, hr_strap, breath_band
                 virtual sensors, encoded with the production encoders
    link         BLE timing: connection events, jitter, packet loss, link drops
    truth        every DESIGN §3.3 metric per second, measured on the motion
    session      one time-ordered record stream; recordings and truth files

Exception tree (all in :mod:`simulators.errors`)::

    SimulatorError
    └── ScenarioError        a scenario that is unknown or does not validate (names the field)
"""
