"""safemode.py drives the power path OFF whatever the output polarity, with the values CircuitPython's
``os.getenv`` really returns (integers for integer settings in settings.toml)."""

import importlib.util
import os
import types

import pytest

from hil.sim_pins import SimPin

HOST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host_fw")


def _safemode():
    spec = importlib.util.spec_from_file_location("host_safemode_polarity", os.path.join(HOST, "safemode.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("active_high,off_level", [(1, False), (0, True), ("0", True), (None, False), ("", False)])
def test_outputs_off_for_either_polarity(active_high, off_level):
    env = {"CHG_PIN": "D9", "DSG_PIN": "D10", "OUTPUT_ACTIVE_HIGH": active_high}
    pins = {}

    def make(p):
        pins[p] = SimPin(p)
        return pins[p]

    held = _safemode().outputs_off(env.get, types.SimpleNamespace(D9="D9", D10="D10"),
                                   types.SimpleNamespace(DigitalInOut=make))
    assert len(held) == 2
    assert pins["D9"].value is off_level and pins["D10"].value is off_level


def test_restart_limits_and_growing_pause_per_cause():
    sm = _safemode()
    # a failing supply is retried 20 times, pausing 2 s more each time (capped at 30 s), then left for a person
    assert [sm.decide("BROWNOUT", n) for n in (1, 2, 14, 15, 20)] == [(True, 2), (True, 4), (True, 28), (True, 30),
                                                                       (True, 30)]
    assert sm.decide("BROWNOUT", 21) == (False, 0)
    assert sm.decide("WATCHDOG", 5)[0] and not sm.decide("WATCHDOG", 6)[0]
    assert sm.decide("HARD_FAULT", 3)[0] and not sm.decide("HARD_FAULT", 4)[0]
    assert not sm.decide("USER", 1)[0] and not sm.decide("PROGRAMMATIC", 1)[0] and not sm.decide("OTHER", 1)[0]
