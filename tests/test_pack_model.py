"""Pack model: what the chip models read, balancing that really drains, spread from a seed, thermal."""

import pytest

from hil.pack_model import VREF2_UV, PackModel, Spread, ntc_temp_c, ntc_uv, split_cells


def test_modules_get_even_cell_counts_and_bad_layouts_are_refused():
    assert split_cells(48, 4) == [12, 12, 12, 12]
    assert split_cells(14, 2) == [7, 7]
    with pytest.raises(ValueError, match="4..12"):
        split_cells(60, 4)
    with pytest.raises(ValueError):
        split_cells(6, 2)


def test_same_seed_same_pack_other_seed_other_pack():
    spread = Spread(capacity_pct=1.0, soc_pct=1.0, r_pct=10.0)
    a = PackModel(cells=16, modules=2, seed=7, spread=spread)
    b = PackModel(cells=16, modules=2, seed=7, spread=spread)
    c = PackModel(cells=16, modules=2, seed=8, spread=spread)
    assert [x.soc for x in a.cells] == [x.soc for x in b.cells]
    assert [x.soc for x in a.cells] != [x.soc for x in c.cells]
    assert len({round(x.capacity_as) for x in a.cells}) > 1


def test_cells_uv_gives_twelve_channels_unused_read_zero():
    p = PackModel(cells=14, modules=2, soc=0.5)
    ch = p.cells_fn(1)()
    assert len(ch) == 12
    assert all(3_200_000 < v < 3_400_000 for v in ch[:7])
    assert ch[7:] == [0] * 5


def test_charge_current_raises_measured_voltage_and_shows_on_ina_side():
    p = PackModel(cells=8, modules=2, soc=0.5)
    rest = p.cells_uv(0)[0]
    p.set_current(50.0)
    assert p.cells_uv(0)[0] - rest == pytest.approx(50.0 * p.cells[0].r_ohm() * 1e6, rel=1e-3)
    assert p.current_ma() == 50000
    assert p.bus_mv() == pytest.approx(sum(p.cell_mv_list()), abs=1)


def test_bleeding_drains_only_its_cell_at_v_over_r_and_heats_the_board():
    p = PackModel(cells=8, modules=2, soc=0.95)
    p.set_bleed_mask(0, 0b0101)
    before = [c.soc for c in p.cells]
    for _ in range(3600):
        p.step(1.0)
    v = p.cells[0].ocv_v()
    drained_ah = (before[0] - p.cells[0].soc) * p.cells[0].capacity_ah
    assert drained_ah == pytest.approx(v / 16.5, rel=0.05)  # ~200 mA for an hour
    assert p.cells[1].soc == pytest.approx(before[1], abs=1e-4)  # its neighbour only self-discharges
    assert p.cells[4].soc == pytest.approx(before[4], abs=1e-4)  # other module untouched
    assert p.board_temp_c[0] > 30.0
    assert p.board_temp_c[1] == pytest.approx(25.0, abs=0.1)
    assert p.bleed_as[0] > 0 and p.bleed_as[1] == 0


def test_ntc_divider_round_trips_and_absent_sensor_reads_vref():
    for t in (-20.0, 0.0, 25.0, 60.0, 90.0):
        assert ntc_temp_c(ntc_uv(t)) == pytest.approx(t, abs=0.05)
    assert ntc_uv(25.0) == VREF2_UV // 2
    p = PackModel(cells=8, modules=2)
    p.sensor_absent.add((1, 0))
    assert p.gpio_uv(1)[0] == VREF2_UV
    assert ntc_temp_c(p.gpio_uv(0)[0]) == pytest.approx(25.0, abs=0.1)


def test_hot_cell_shows_on_the_cell_sensor_of_its_module():
    p = PackModel(cells=8, modules=2)
    p.cells[5].extra_heat_w = 20.0  # module 2, cell 2: lower half, GPIO1
    for _ in range(600):
        p.step(1.0)
    assert ntc_temp_c(p.gpio_uv(1)[0]) > 40.0
    assert ntc_temp_c(p.gpio_uv(1)[1]) == pytest.approx(25.0, abs=0.2)
    assert ntc_temp_c(p.gpio_uv(0)[0]) == pytest.approx(25.0, abs=0.2)


def test_true_soc_is_bounded_by_the_weakest_cell():
    p = PackModel(cells=8, modules=2, soc=0.5)
    assert p.true_soc() == pytest.approx(0.5, abs=0.01)
    p.cells[3].soc = 1.0  # one full cell: the pack cannot take more charge
    assert p.true_soc() == pytest.approx(1.0, abs=1e-9)


def test_ntc_helper_agrees_with_the_ltc6811_models_sensor():
    ltc = pytest.importorskip("hil.ltc6811_model")
    for t_dc in (-100, 0, 250, 600, 800):
        assert abs(ntc_uv(t_dc / 10.0) - ltc.ntc_gpio_uv(t_dc)) <= 2


def test_charge_is_conserved_through_terminals_and_bleed_resistors():
    p = PackModel(cells=8, modules=2, soc=0.5, spread=Spread(capacity_pct=2.0, soc_pct=1.0))
    before = [c.soc * c.capacity_as for c in p.cells]
    p.set_bleed_mask(1, 0b1010)
    for i in range(1800):
        p.set_current(20.0 if i < 900 else -30.0)
        p.step(1.0)
    after = [c.soc * c.capacity_as for c in p.cells]
    for k in range(8):
        net = p.charge_as - p.discharge_as - p.bleed_as[k]
        assert after[k] - before[k] == pytest.approx(net, abs=0.5)  # 0.5 A·s of self-discharge in 30 min
    assert p.charge_as == pytest.approx(18000.0) and p.discharge_as == pytest.approx(27000.0)
