"""Properties: whatever is typed, the live settings always satisfy every rule, and what is stored comes back."""

from bms_settings import SCHEMA, Settings, check_values
from hypothesis import given, settings
from hypothesis import strategies as st
from settings_store import SettingsStore

NAMES = [row[0] for row in SCHEMA]


def _value(row):
    name, _unit, lo, hi, default = row
    near = st.integers(max(lo, default - default // 10 - 50), min(hi, default + default // 10 + 50))
    return st.tuples(st.just(name), st.one_of(near, st.integers(lo - 5, hi + 5), st.integers(-(1 << 31), 1 << 31)))


changes = st.lists(st.sampled_from(SCHEMA).flatmap(_value), max_size=25)


@settings(max_examples=120, deadline=None)
@given(changes)
def test_settings_never_break_a_rule_and_refusals_change_nothing(seq):
    s = Settings()
    for name, value in seq:
        before = s.values()
        try:
            s.set(name, value)
            assert s.get(name) == value
        except ValueError as e:
            assert str(e) and s.values() == before
        assert check_values(s.values()) == ""


@settings(max_examples=40, deadline=None)
@given(changes)
def test_what_is_stored_comes_back(seq):
    nvm = bytearray(b"\xff" * 8192)
    s = Settings()
    store = SettingsStore(nvm, 53)
    store.load(s)
    for name, value in seq:
        try:
            s.set(name, value)
        except ValueError:
            continue
        store.write_now(s)
        again = Settings()
        SettingsStore(nvm, 53).load(again)
        assert again.values() == s.values()
