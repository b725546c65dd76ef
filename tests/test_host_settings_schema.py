"""The settings schema is written out literally (no builder code in the board's RAM): its rows must still follow
the pattern every protection condition shares, and lookups must refuse unknown names as before."""

import pytest
from bms_settings import CHAIN_RULES, CONDITIONS, HIGH, SCHEMA, Settings, index_of

_UNIT = {"mv": ("mV", 1000, 4800), "ma": ("mA", 100, 1000000), "dc": ("0.1C", -400, 1500)}


def test_each_condition_has_warn_trip_release_and_delays_in_order():
    for k, (cond, unit, _side) in enumerate(CONDITIONS):
        text, lo, hi = _UNIT[unit]
        rows = SCHEMA[5 * k: 5 * k + 5]
        assert [r[0] for r in rows] == [cond + "_warn_" + unit, cond + "_trip_" + unit, cond + "_release_" + unit,
                                        cond + "_delay_ms", cond + "_release_ms"]
        assert all(r[1:4] == (text, lo, hi) for r in rows[:3])
        assert rows[3][1:4] == ("ms", 0, 600000) and rows[4][1:4] == ("ms", 0, 3600000)


def test_each_condition_has_its_ordered_chain_rule():
    for cond, unit, side in CONDITIONS:
        t, w, r = cond + "_trip_" + unit, cond + "_warn_" + unit, cond + "_release_" + unit
        assert ((r, w, t) if side == HIGH else (t, w, r)) in CHAIN_RULES


def test_names_are_unique_and_lookups_refuse_unknown_names():
    names = [r[0] for r in SCHEMA]
    assert len(set(names)) == len(names)
    assert all(index_of(n) == i for i, n in enumerate(names))
    s = Settings()
    with pytest.raises(KeyError):
        s.get("ov_trip_v")
    with pytest.raises(ValueError, match="unknown setting"):
        s.set("ov_trip_v", 4)
    assert s.get("mod1_cells") == 12 and s.get("mod2_cells") == 0
