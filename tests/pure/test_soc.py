"""Coulomb counter: exact integer counts, wrap-safe ticks, anchors, learned capacity, counters. Runs on MicroPython."""

from soc import (
    EV_CYCLE,
    EV_EMPTY,
    EV_FULL,
    EV_LEARNED,
    EV_SEEDED,
    MAMS_PER_MAH,
    RECORD_LEN,
    SocCounter,
    ocv_soc_permille,
)
from upy_check import raises

PERIOD = 1 << 29


def _soc(cap=100000):
    # capacity, full 4200 mV, cut-off 3000 mV, tail 2000 mA, full hold 30 s, empty hold 5 s
    return SocCounter(cap, 4200, 3000, 2000, 30000, 5000)


def _run(soc, start_ms, current_ma, seconds, step_ms=1000, cmin=3700, cmax=3800):
    t = start_ms
    ev = 0
    for _ in range(seconds * 1000 // step_ms):
        t = (t + step_ms) % PERIOD
        ev |= soc.update(current_ma, t, cmin, cmax)
    return t, ev


def test_10h_at_7ma_on_100ah_counts_70mah():
    s = _soc()
    s.set_soc_pct(50)
    start = s.charge_mams
    t = (PERIOD - 20000)  # the tick counter wraps 20 s into the run
    s.update(-7, t, 3700, 3800)
    _run(s, t, -7, 10 * 3600)
    assert 69 <= s.discharged_mah <= 71
    assert start - s.charge_mams == 70 * MAMS_PER_MAH  # exact: 7 mA x 36 000 000 ms
    assert s.charged_mah == 0


def test_tick_wrap_changes_nothing():
    a = _soc()
    b = _soc()
    ta = 1000
    tb = PERIOD - 1500
    a.update(0, ta)
    b.update(0, tb)
    for k in range(2000):
        cur = (k * 7919) % 60001 - 30000
        dt = 50 + (k * 31) % 900
        ta = (ta + dt) % PERIOD
        tb = (tb + dt) % PERIOD
        a.update(cur, ta)
        b.update(cur, tb)
    assert a.charge_mams == b.charge_mams
    assert a.throughput_mams(True) == b.throughput_mams(True)
    assert a.throughput_mams(False) == b.throughput_mams(False)


def test_long_gap_is_counted_exactly():
    s = _soc()
    s.set_soc_pct(50)
    s.update(0, 0)
    s.update(-100000, 3600000)  # one hour at 100 A in one reading
    assert s.discharged_mah == 100000 and s.throughput_mams(False) == 100000 * 3600000
    assert s.charge_mah == 0  # clamped at empty


def test_full_anchor_after_tail_current_held():
    s = _soc()
    s.set_soc_pct(80)
    t, ev = _run(s, 0, 1500, 29, cmax=4200)
    assert not ev & EV_FULL and s.soc_pct < 100
    t, ev = _run(s, t, 1500, 2, cmax=4200)
    assert ev & EV_FULL and s.soc_pct == 100 and s.full_seen
    t, ev = _run(s, t, 0, 60, cmax=4200)
    assert not ev & EV_FULL  # once per charge (one nvm write per anchor)


def test_no_full_anchor_while_charging_above_tail_or_below_full_voltage():
    s = _soc()
    s.set_soc_pct(80)
    _, ev = _run(s, 0, 10000, 60, cmax=4200)
    assert not ev & EV_FULL
    _, ev = _run(s, 0, 1000, 60, cmax=4190)
    assert not ev & EV_FULL


def test_empty_anchor_and_learned_capacity_from_full_to_empty():
    s = _soc(cap=10000)
    t, ev = _run(s, 0, 500, 31, cmax=4200)
    assert ev & EV_FULL
    # discharge 9 000 mAh at 9 A (1 h), then hit the cut-off and hold 5 s
    t, ev = _run(s, t, -9000, 3600, step_ms=200)
    assert not ev & EV_EMPTY and s.soc_pct == 10
    t, ev = _run(s, t, 0, 6, cmin=2990)
    assert ev & EV_EMPTY and ev & EV_LEARNED
    assert s.learned_mah == 9000 and s.capacity_mah == 9000 and s.soc_pct == 0
    # after a learn the SOC is relative to the learned capacity
    t, ev = _run(s, t, 4500, 3600, cmax=4000)
    assert s.soc_pct == 50


def test_learning_rejects_an_implausible_run_and_cancel_stops_it():
    s = _soc(cap=10000)
    t, _ = _run(s, 0, 500, 31, cmax=4200)
    t, _ = _run(s, t, -3000, 3600, step_ms=500)  # only 3 Ah: below half the design capacity
    t, ev = _run(s, t, 0, 6, cmin=2990)
    assert ev & EV_EMPTY and not ev & EV_LEARNED and s.learned_mah == 0
    t, _ = _run(s, t, 500, 31, cmax=4200)
    s.cancel_learning()
    t, _ = _run(s, t, -9000, 3600, step_ms=500)
    t, ev = _run(s, t, 0, 6, cmin=2990)
    assert not ev & EV_LEARNED


def test_cycle_count_one_per_capacity_discharged():
    s = _soc(cap=1000)
    s.set_soc_pct(100)
    ev = 0
    t = 0
    s.update(0, t)
    for _ in range(3):
        t, e = _run(s, t, -1000, 3600, step_ms=5000)
        ev |= e
        t, e = _run(s, t, 1000, 3600, step_ms=5000)
    assert ev & EV_CYCLE and s.cycles == 3
    assert s.discharged_mah == 3000 and s.charged_mah == 3000


def test_unknown_cells_never_anchor():
    s = _soc()
    s.set_soc_pct(50)
    _, ev = _run(s, 0, 0, 60, cmin=0, cmax=0)
    assert ev == 0


def test_record_roundtrip_and_refuses_other_capacity():
    s = _soc()
    s.set_soc_pct(37)
    _run(s, 0, -1234, 100)
    buf = bytearray(RECORD_LEN + 3)
    s.pack_into(buf, 3)
    r = _soc()
    assert r.unpack_from(buf, 3)
    assert r.charge_mams == s.charge_mams and r.discharged_mah == s.discharged_mah
    other = _soc(cap=50000)
    before = other.charge_mams
    assert not other.unpack_from(buf, 3)
    assert other.charge_mams == before


def test_new_design_capacity_keeps_soc_percent():
    s = _soc()
    s.set_soc_pct(40)
    s.configure(200000, 4200, 3000, 2000, 30000, 5000)
    assert s.soc_pct == 40 and s.charge_mah == 80000


def test_manual_soc_range():
    s = _soc()
    raises(ValueError, s.set_soc_pct, 101)


def test_first_start_estimates_from_the_rest_voltage():
    s = SocCounter(100000, 4200, 3000, 2000, 30000, 5000, chemistry=1)  # NMC
    assert s.soc_pct == 50 and not s.seeded
    assert not s.update(-20000, 0, 3600, 3620) & EV_SEEDED  # under load: no OCV guess
    assert s.update(-500, 1000, 3750, 3770) & EV_SEEDED  # at rest: 3760 mV is half full on NMC
    assert s.soc_pct == 50 and s.seeded
    s.update(0, 2000, 4000, 4000)
    assert s.soc_pct == 50  # only once


def test_ocv_estimate_per_chemistry_and_not_after_a_restore():
    assert ocv_soc_permille(2400, 0) == 0 and ocv_soc_permille(3700, 0) == 1000
    assert ocv_soc_permille(3990, 1) == 800 and ocv_soc_permille(2270, 2) == 500
    a = SocCounter(100000, 4200, 3000, 2000, 30000, 5000, chemistry=1)
    a.set_soc_pct(20)
    assert not a.update(0, 0, 4100, 4100) & EV_SEEDED and a.soc_pct == 20
    buf = bytearray(RECORD_LEN)
    a.pack_into(buf)
    b = SocCounter(100000, 4200, 3000, 2000, 30000, 5000, chemistry=1)
    assert b.unpack_from(buf)
    b.update(0, 0, 4100, 4100)
    assert b.soc_pct == 20
    c = _soc()  # no chemistry: stays at 50 % until an anchor
    c.update(0, 0, 4100, 4100)
    assert c.soc_pct == 50
