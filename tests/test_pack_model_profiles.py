"""What is on the pack port: a CC/CV charger tapers at its voltage and obeys the charge switch; a load stops when
the discharge path opens."""

import pytest

from hil.pack_model import PackModel
from hil.profiles import CcCvCharger, ConstantCurrent, Load


class Paths:
    def __init__(self, charge=True, discharge=True):
        self.charge_closed = charge
        self.discharge_closed = discharge


def _run(pack, profile, paths, seconds, dt=1.0):
    for _ in range(int(seconds / dt)):
        pack.set_current(profile.current_a(pack, paths))
        pack.step(dt)


def test_cccv_charger_holds_its_voltage_tapers_and_terminates():
    pack = PackModel("LFP", cells=8, modules=2, soc=0.9, capacity_ah=2.0)
    ch = CcCvCharger(10.0, 8 * 3.55, tail_a=0.2)
    paths = Paths()
    assert ch.current_a(pack, paths) == 10.0  # CC while far from the voltage
    _run(pack, ch, paths, 3600)
    assert ch.in_cv and ch.done
    assert pack.current_a == 0.0
    # at termination the average cell sat at the CV voltage: the pack is nearly full
    assert pack.ocv_sum_v() == pytest.approx(8 * 3.55, abs=0.05)


def test_charger_pushes_nothing_through_an_open_charge_switch():
    pack = PackModel("NMC", cells=8, modules=2, soc=0.5)
    ch = CcCvCharger(10.0, 8 * 4.2)
    assert ch.current_a(pack, Paths(charge=False)) == 0.0
    assert ch.current_a(pack, Paths(charge=True)) == 10.0


def test_load_stops_when_discharge_opens_and_stays_off():
    pack = PackModel("LFP", cells=8, modules=2, soc=0.5)
    load = Load(20.0)
    assert load.current_a(pack, Paths(discharge=False)) == 0.0  # BMS still starting: held back, not latched
    assert load.current_a(pack, Paths()) == -20.0
    assert load.current_a(pack, Paths(discharge=False)) == 0.0
    assert load.current_a(pack, Paths()) == 0.0  # latched off, like an inverter that lost its input
    relaxed = Load(20.0, latch=False)
    relaxed.current_a(pack, Paths())
    relaxed.current_a(pack, Paths(discharge=False))
    assert relaxed.current_a(pack, Paths()) == -20.0


def test_constant_current_respects_its_direction_switch():
    pack = PackModel("LFP", cells=8, modules=2)
    assert ConstantCurrent(5.0).current_a(pack, Paths(charge=False)) == 0.0
    assert ConstantCurrent(-5.0).current_a(pack, Paths(charge=False)) == -5.0
    assert ConstantCurrent(-5.0).current_a(pack, Paths(discharge=False)) == 0.0
