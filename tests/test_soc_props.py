"""Coulomb counting against an exact integer reference: 1 000 h of random currents, and any tick start."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from soc import MAMS_PER_MAH, SocCounter

PERIOD = 1 << 29


def _counter(cap=2000000):
    return SocCounter(cap, 4200, 3000, 2000, 30000, 5000)


def test_1000h_of_random_currents_match_the_exact_reference():
    rng = random.Random(20261126)
    s = _counter()
    s.set_soc_pct(50)
    ref_net = s.charge_mams
    ref_chg = ref_dsg = 0
    t = PERIOD - 7 * 3600 * 1000  # the tick counter wraps 7 h into the run
    s.update(0, t, 3700, 3800)
    elapsed = 0
    cur = 0
    lo = hi = ref_net
    while elapsed < 1000 * 3600 * 1000:
        dt = rng.randint(200, 20000)
        cur = rng.randint(-50000, 50000) if rng.random() < 0.2 else cur  # a load or charger that changes now and then
        elapsed += dt
        t = (t + dt) % PERIOD
        s.update(cur, t, 3700, 3800)
        d = cur * dt
        ref_net += d
        if d > 0:
            ref_chg += d
        else:
            ref_dsg -= d
        lo, hi = min(lo, ref_net), max(hi, ref_net)
    assert 0 < lo and hi < 2000000 * MAMS_PER_MAH  # never clamped, so the net must match too
    assert s.charge_mams == ref_net
    assert s.throughput_mams(True) == ref_chg
    assert s.throughput_mams(False) == ref_dsg
    assert s.charged_mah == ref_chg // MAMS_PER_MAH and s.discharged_mah == ref_dsg // MAMS_PER_MAH


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, PERIOD - 1),
    steps=st.lists(st.tuples(st.integers(-2000000, 2000000), st.integers(0, 3600000)), min_size=1, max_size=40),
)
def test_any_start_tick_and_gap_count_exactly(start, steps):
    s = _counter()
    s.set_soc_pct(50)
    t = start
    s.update(0, t)
    ref_chg = ref_dsg = 0
    for cur, dt in steps:
        t = (t + dt) % PERIOD
        s.update(cur, t)
        if cur > 0:
            ref_chg += cur * dt
        else:
            ref_dsg -= cur * dt
    assert s.throughput_mams(True) == ref_chg
    assert s.throughput_mams(False) == ref_dsg
    assert 0 <= s.charge_mah <= 2000000
