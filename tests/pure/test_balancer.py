"""Bleed choice of one module (module_fw/lib/balancer.py). Runs on MicroPython too."""

from balancer import CELL_UNKNOWN, TEMP_ABSENT, adjacent, choose_bleed, thermal_budget_mw

BIG = 100000  # mW: no thermal limit


def cells(*mv):
    out = [0] * 12
    for i, v in enumerate(mv):
        out[i] = v * 10
    return out


def test_cell_30mv_high_bleeds_and_others_do_not():
    v = cells(3300, 3300, 3330, 3300, 3300, 3300, 3300)
    assert choose_bleed(v, 7, 33010, 0, BIG) == 1 << 2


def test_starts_above_target_and_stops_half_a_mv_below_it():
    target = 33010  # lowest + 1 mV
    v = [33000, 33010, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert choose_bleed(v, 2, target, 0, BIG) == 0  # at the target: within 1 mV of the lowest already
    v[1] = 33011
    assert choose_bleed(v, 2, target, 0, BIG) == 0b10  # 0.1 mV above: starts
    # Bleeding already: goes on through the target down to target - 0.5 mV (no flicker on noise).
    v[1] = 33006
    assert choose_bleed(v, 2, target, 0b10, BIG) == 0b10
    v[1] = 33005
    assert choose_bleed(v, 2, target, 0b10, BIG) == 0
    # ... and a cell that is not bleeding does not start again below the target.
    v[1] = 33008
    assert choose_bleed(v, 2, target, 0, BIG) == 0


def test_never_two_adjacent():
    v = cells(3400, 3400, 3400, 3400, 3400, 3400, 3400, 3400, 3400, 3400, 3400, 3400)
    m = choose_bleed(v, 12, 33000, 0, BIG)
    assert not adjacent(m)
    assert bin(m).count("1") == 6


def test_highest_excess_first_then_neighbours_skipped():
    v = cells(3300, 3350, 3340, 3310, 3300)
    assert choose_bleed(v, 5, 33000, 0, BIG) == 0b1010  # cells 2 and 4, cell 3 sits between


def test_bleeding_cells_keep_priority():
    v = cells(3300, 3320, 3340, 3300)
    # Cell 2 bleeds already; cell 3 (higher) is its neighbour and waits.
    assert choose_bleed(v, 4, 33000, 0b0010, BIG) == 0b0010


def test_unused_and_unknown_channels_never_bleed():
    v = cells(3300, 3300, 3300, 3300, 4000, 4000)
    assert choose_bleed(v, 4, 33000, 0, BIG) == 0
    v = cells(3300, 3400)
    v[1] = CELL_UNKNOWN
    assert choose_bleed(v, 2, 33000, 0, BIG) == 0


def test_thermal_budget_limits_count():
    v = cells(4000, 3000, 4000, 3000, 4000, 3000, 4000)
    # 200 mA x 4.0 V = 800 mW each: 2000 mW allows two.
    assert bin(choose_bleed(v, 7, 35000, 0, 2000)).count("1") == 2
    assert choose_bleed(v, 7, 35000, 0, 700) == 0


def test_budget_derates_between_warning_and_limit():
    assert thermal_budget_mw(3000, 500, 600, 700) == 3000
    assert thermal_budget_mw(3000, 600, 600, 700) == 3000
    assert thermal_budget_mw(3000, 650, 600, 700) == 1500
    assert thermal_budget_mw(3000, 700, 600, 700) == 0
    assert thermal_budget_mw(3000, 900, 600, 700) == 0
    assert thermal_budget_mw(3000, TEMP_ABSENT, 600, 700) == 1500
