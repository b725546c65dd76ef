"""The pack picture agrees with a plain reference over random cells, unknowns and missing modules."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pack import UNKNOWN, Pack

module = st.tuples(st.integers(4, 12), st.booleans(),
                   st.lists(st.one_of(st.integers(20000, 45000), st.just(0xFFFF)), min_size=12, max_size=12))


@settings(max_examples=200, deadline=None)
@given(st.lists(module, min_size=1, max_size=8))
def test_pack_matches_reference(mods):
    p = Pack()
    p.configure([n for n, _, _ in mods])
    p.begin()
    ref = []
    for m, (n, fresh, raw) in enumerate(mods):
        if fresh:
            p.set_module(m, raw, 0, 12)
            ref += [UNKNOWN if r == 0xFFFF else (r + 5) // 10 for r in raw[:n]]
        else:
            ref += [UNKNOWN] * n
    p.finish()
    assert p.cells_mv[: p.n_cells] == ref
    known = [v for v in ref if v != UNKNOWN]
    if known:
        assert p.min_mv == min(known) and p.max_mv == max(known)
        assert ref[p.min_cell - 1] == p.min_mv and ref[p.max_cell - 1] == p.max_mv
        assert p.spread_mv == max(known) - min(known)
    else:
        assert p.min_mv == UNKNOWN and p.spread_mv == UNKNOWN
    assert p.total_mv == (sum(known) if len(known) == len(ref) else UNKNOWN)
    missing = sum(1 for n, fresh, raw in mods if not fresh or 0xFFFF in raw[:n])
    assert p.missing_count == missing


def test_pack_reads_the_chain_masters_unknown_temperature_as_unknown():
    # pack repeats chain.TEMP_UNKNOWN (so the pure pack picture needs no chain master): they must agree.
    import chain

    p = Pack(max_modules=1, cells_per_module=12, temps_per_module=2)
    p.configure([12])
    p.begin()
    p.set_module(0, [33000] * 12, 0, 12, [chain.TEMP_UNKNOWN, 250], 0, 2)
    p.finish()
    assert p.sensor_state(0) == "unknown" and p.module_temp_dc[0] == UNKNOWN and p.temp_min_dc == 250
