"""Properties of the bleed choice over random modules (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from balancer import CELL_UNKNOWN, choose_bleed, thermal_budget_mw

cell = st.one_of(st.integers(25000, 42000), st.just(CELL_UNKNOWN))


@settings(max_examples=400, deadline=None)
@given(
    cells=st.lists(cell, min_size=12, max_size=12),
    count=st.integers(4, 12),
    target=st.integers(25000, 42000),
    bleeding=st.integers(0, 0xFFF),
    budget=st.integers(0, 10000),
    hyst=st.integers(0, 50),
)
def test_choice_is_always_safe(cells, count, target, bleeding, budget, hyst):
    mask = choose_bleed(cells, count, target, bleeding, budget, hysteresis_100uv=hyst)
    assert mask & (mask >> 1) == 0  # never two adjacent
    assert mask >> count == 0  # never an unused channel
    heat = 0
    for i in range(count):
        if mask >> i & 1:
            v = cells[i]
            assert v != CELL_UNKNOWN and v > target - hyst  # a bleeding cell goes on to target - hysteresis
            if not bleeding >> i & 1:
                assert v > target  # a new bleed only above the target
            heat += 200 * v // 10000
    assert heat <= budget


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.integers(30000, 42000), min_size=12, max_size=12), budget=st.integers(0, 10000))
def test_a_waiting_cell_waits_for_a_neighbour_or_the_budget(cells, budget):
    """No cell above the target is left out unless a neighbour bleeds or the heat would not fit."""
    target = 30000
    mask = choose_bleed(cells, 12, target, 0, budget)
    used = sum(200 * cells[i] // 10000 for i in range(12) if mask >> i & 1)
    waiting = [
        cells[i]
        for i in range(12)
        if not mask >> i & 1 and cells[i] > target and not (mask >> (i + 1) & 1 or (i and mask >> (i - 1) & 1))
    ]
    if waiting:
        assert used + 200 * max(waiting) // 10000 > budget


@given(t=st.integers(-400, 1200))
def test_budget_never_grows_with_temperature(t):
    assert thermal_budget_mw(3000, t, 600, 700) >= thermal_budget_mw(3000, t + 1, 600, 700)
