"""The virtual rig as a library: boots the real firmware on the simulated pack; what the host sees is what the
physics says; bleeding drains the right cells; runs are reproducible; faults are refused by name."""

import pytest

from hil.pack_model import Spread
from hil.profiles import ConstantCurrent, Load
from hil.rig import Rig


@pytest.fixture(scope="module")
def booted():
    rig = Rig(cells=16, modules=2, soc=0.6, seed=3, spread=Spread(soc_pct=0.5))
    rig.run_for(5.0)
    return rig


def test_host_finds_every_module_and_measures_the_models_cells(booted):
    rig = booted
    assert rig.fw.modules_present() == 2
    host = rig.fw.host_cells_mv()
    truth = rig.pack.cell_mv_list()
    assert len(host) == 16
    for h, t in zip(host, truth, strict=True):
        assert h == pytest.approx(t, abs=1.0)  # 100 µV LSB, one instant


def test_host_current_follows_the_port(booted):
    rig = booted
    rig.set_profile(ConstantCurrent(12.5), "charge")
    rig.run_for(2.0)
    assert rig.fw.host_current_a() == pytest.approx(12.5, rel=0.01)
    rig.set_profile(Load(7.0), "discharge")
    rig.run_for(2.0)
    assert rig.fw.host_current_a() == pytest.approx(-7.0, rel=0.01)
    rig.set_profile(ConstantCurrent(0.0))
    rig.run_for(1.0)


def test_balancing_bleeds_only_high_cells_through_the_ltc6811_switches():
    rig = Rig(cells=8, modules=2, soc=0.99, seed=5, spread=Spread(soc_pct=0.3))
    rig.run_for(3.0)
    rig.fw.force_balance(True)
    rig.run_until(lambda r: r.pack.bleeding_cells() > 0, 30.0)
    rig.run_for(20.0)
    bled = rig.pack.bleed_as
    assert any(b > 0 for b in bled)
    low = min(range(8), key=lambda i: rig.pack.cells[i].ocv_v())
    assert bled[low] == 0  # the lowest cell is the target: it never bleeds
    for m in range(2):  # never two neighbours at once
        mask = rig.pack.bleed_masks[m]
        assert mask & (mask >> 1) == 0


def test_same_seed_same_run():
    def run():
        rig = Rig(cells=8, modules=2, soc=0.5, seed=9, spread=Spread(soc_pct=1.0), record_every_s=1.0)
        rig.set_profile(Load(10.0), "discharge")
        rig.run_for(8.0)
        return [repr((r["t_s"], r["cell01_mv"], r["soc_pct"], r["host_current_a"])) for r in rig.recorder.rows]

    first = run()
    assert first == run()
    assert "-10.0" in first[-1]  # the load really ran (the host closed the path)


def test_unknown_fault_is_refused_with_the_list():
    rig = Rig(cells=8, modules=2)
    with pytest.raises(ValueError, match="open_wire"):
        rig.at(1.0, "lightning")


def test_run_until_reports_a_timeout():
    rig = Rig(cells=8, modules=2)
    assert rig.run_until(lambda r: False, 1.0) is False
    assert rig.t_s == pytest.approx(1.0, abs=0.01)


def test_whole_rig_runs_across_the_tick_wrap():
    from hil.clock import TICKS_PERIOD

    rig = Rig(cells=8, modules=2, soc=0.6, start_ms=TICKS_PERIOD - 4000)
    rig.set_profile(Load(10.0), "discharge")
    rig.run_for(12.0)  # the firmware's tick wraps 4 s in
    assert rig.clock.ms < 10000
    assert rig.trips == []
    assert rig.paths.discharge_closed and rig.fw.host_current_a() == pytest.approx(-10.0, rel=0.01)
    assert rig.fw.missed_cycles() == 0
    assert rig.soc_error_max_pct < 0.5


def test_host_settings_can_be_overridden_and_bad_ones_are_refused_with_the_rule():
    rig = Rig(cells=8, modules=2, settings={"dsg_oc_trip_ma": 20000, "dsg_oc_warn_ma": 15000,
                                            "dsg_oc_release_ma": 10000})
    rig.set_profile(Load(25.0), "discharge")
    rig.run_for(6.0)
    assert [t["cause"] for t in rig.trips] == ["dsg_oc"]
    with pytest.raises(ValueError, match="ov_trip_mv"):
        Rig(cells=8, modules=2, settings={"ov_trip_mv": 2000})
