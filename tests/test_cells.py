"""Cell model: OCV curves, resistance, self-discharge, thermal (what a pack builder would check on a real cell)."""

import pytest

from hil.cells import CHEMISTRY, OCV_TABLES, Cell, ocv_mv, soc_from_ocv


@pytest.mark.parametrize("chem", sorted(OCV_TABLES))
def test_ocv_curve_rises_and_inverts(chem):
    prev = -1.0
    for pm in range(0, 1051, 5):
        v = ocv_mv(chem, pm / 1000.0)
        assert v > prev
        prev = v
        assert abs(soc_from_ocv(chem, v) - pm / 1000.0) < 1e-6


def test_ocv_ranges_match_the_chemistry():
    assert ocv_mv("LFP", 0.5) == pytest.approx(3300, abs=30)  # the long LFP plateau
    assert ocv_mv("NMC", 1.0) == pytest.approx(4180, abs=30)
    assert ocv_mv("LTO", 0.5) < 2400
    assert ocv_mv("LFP", 1.02) > 3700  # overcharge: the voltage shoots up
    assert ocv_mv("LFP", 1.5) == ocv_mv("LFP", 1.05)  # clamped, never extrapolated


def test_one_hour_at_one_c_moves_the_whole_capacity():
    c = Cell("NMC", capacity_ah=2.0, soc=0.0)
    for _ in range(3600):
        c.step(1.0, 2.0, 25.0)
    assert c.soc == pytest.approx(1.0, abs=0.002)


def test_terminal_voltage_includes_ir_drop():
    c = Cell("LFP", soc=0.5, r_mohm=4.0)
    assert c.terminal_v(10.0) - c.terminal_v(-10.0) == pytest.approx(0.08, rel=1e-6)


def test_self_discharge_is_a_few_percent_a_month():
    c = Cell("LFP", soc=1.0)
    for _ in range(30):
        c.step(86400.0, 0.0, 25.0)
    assert 0.97 < c.soc < 0.99


def test_current_heats_the_cell_and_it_cools_back_to_ambient():
    c = Cell("LFP", r_mohm=3.0)
    for _ in range(600):
        c.step(1.0, 100.0, 25.0)  # 30 W
    hot = c.temp_c
    assert hot > 40.0
    for _ in range(12):
        c.step(3600.0, 0.0, 25.0)  # the exact thermal step is stable at any step size
    assert c.temp_c == pytest.approx(25.0, abs=0.5)


def test_cold_cell_has_higher_resistance():
    c = Cell("LFP", temp_c=0.0)
    assert c.r_ohm() > 1.4 * CHEMISTRY["LFP"]["r_mohm"] / 1000.0


def test_unknown_chemistry_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="LFP"):
        Cell("NiCd")
