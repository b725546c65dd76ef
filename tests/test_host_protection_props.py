"""Properties of one protection condition over random value histories (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from protection import N_COND, OV, UNKNOWN, UV, Protection
from test_protection import nmc_limits, normal_values

STEP_MS = 50
values_mv = st.lists(st.one_of(st.integers(3900, 4400), st.just(UNKNOWN)), min_size=1, max_size=300)


def simulate(cond, seq, start_ms=(1 << 29) - 4000):
    p = Protection()
    lim = nmc_limits()
    p.load(lim)
    v = normal_values()
    allowed = []
    t = start_ms
    for x in seq:
        v[cond] = x
        p.update(t & 0x1FFFFFFF, v)
        allowed.append(p.charge_allowed if cond == OV else p.discharge_allowed)
        t += STEP_MS
    return allowed, lim


@settings(max_examples=200, deadline=None)
@given(values_mv)
def test_ov_never_trips_before_a_full_debounce_beyond_trip(seq):
    allowed, lim = simulate(OV, seq)
    need = lim["ov_delay_ms"] // STEP_MS + 1  # samples spanning delay_ms
    run = 0
    tripped = False
    for x, ok in zip(seq, allowed, strict=True):
        run = run + 1 if x != UNKNOWN and x >= lim["ov_trip_mv"] else 0
        if not ok and not tripped:
            tripped = True
            assert run >= need, "tripped after %d samples beyond trip, needs %d" % (run, need)
        if tripped and ok:
            tripped = False


@settings(max_examples=200, deadline=None)
@given(values_mv)
def test_ov_release_needs_a_full_delay_below_release(seq):
    allowed, lim = simulate(OV, seq)
    need = lim["ov_release_ms"] // STEP_MS + 1
    below = 0
    prev_ok = True
    for x, ok in zip(seq, allowed, strict=True):
        below = below + 1 if x != UNKNOWN and x <= lim["ov_release_mv"] else 0
        if ok and not prev_ok:
            assert below >= need
        prev_ok = ok


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(2500, 3800), min_size=1, max_size=200))
def test_uv_never_blocks_charging(seq):
    p = Protection()
    p.load(nmc_limits())
    v = normal_values()
    for i, x in enumerate(seq):
        v[UV] = x
        p.update(i * STEP_MS, v)
        assert p.charge_allowed
    assert len(v) == N_COND
