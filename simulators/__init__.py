"""runmon simulators: a virtual runner -> the same bytes real sensors send, plus ground truth.

Imports :mod:`sensors` (for the encoders), never :mod:`monitor` or :mod:`rules`.

Exception tree (all in :mod:`simulators.errors`)::

    SimulatorError
    └── ScenarioError        a scenario that is unknown or does not validate (names the field)
"""
