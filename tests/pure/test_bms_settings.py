"""Settings schema: ranges, cross-field rules with their messages, presets, factory reset. Runs on MicroPython too."""

from bms_settings import (
    CHAIN_RULES,
    CHEM_LFP,
    CHEM_LTO,
    CHEM_NMC,
    ORIGINAL_SETTINGS,
    SCHEMA,
    Settings,
    check_values,
    factory_values,
    index_of,
)
from upy_check import raises


def _refused(s, name, value):
    before = s.values()
    changes = s.changes
    e = raises(ValueError, s.set, name, value)
    assert s.values() == before, "a refused value changed something"
    assert s.changes == changes
    return str(e)


def test_factory_defaults_pass_every_rule_for_each_chemistry():
    for chem in (CHEM_LFP, CHEM_NMC, CHEM_LTO):
        assert check_values(factory_values(chem)) == ""


def test_protection_names_agreed_with_safety_exist():
    for cond, unit in (("ov", "mv"), ("uv", "mv"), ("chg_oc", "ma"), ("dsg_oc", "ma"), ("chg_ot", "dc"),
                       ("chg_ut", "dc"), ("dsg_ot", "dc"), ("dsg_ut", "dc"), ("fet_ot", "dc")):
        for kind in ("warn_" + unit, "trip_" + unit, "release_" + unit, "delay_ms", "release_ms"):
            index_of(cond + "_" + kind)
    for name in ("sc_trip_ma", "module_missing_ms", "plaus_tol_mv", "plaus_delay_ms", "chemistry",
                 "cells_total", "modules", "capacity_mah", "full_charge_mv", "cutoff_mv", "tail_current_ma"):
        index_of(name)


def test_preset_voltages_match_the_chemistry_facts():
    s = Settings()
    facts = ((CHEM_NMC, 4250, 4050, 3000, 3500), (CHEM_LFP, 3650, 3400, 2500, 3100), (CHEM_LTO, 2850, 2700, 1900, 2100))
    for chem, ovt, ovr, uvt, uvr in facts:
        s.apply_preset(chem)
        assert s.get("chemistry") == chem
        got = (s.get("ov_trip_mv"), s.get("ov_release_mv"), s.get("uv_trip_mv"), s.get("uv_release_mv"))
        assert got == (ovt, ovr, uvt, uvr)
        assert s.get("uv_trip_mv") <= s.get("cutoff_mv") < s.get("full_charge_mv") < s.get("ov_trip_mv")


def test_temperature_windows_charge_0_45_discharge_minus20_60():
    s = Settings()
    assert (s.get("chg_ut_trip_dc"), s.get("chg_ot_trip_dc")) == (0, 450)
    assert (s.get("dsg_ut_trip_dc"), s.get("dsg_ot_trip_dc")) == (-200, 600)


def test_setting_chemistry_brings_its_preset():
    s = Settings()
    s.set("chemistry", CHEM_LFP)
    assert s.get("ov_trip_mv") == 3650 and s.get("cutoff_mv") == 2500


def test_chemistry_with_other_pairs_applies_the_preset_first():
    s = Settings()
    s.set_many((("chemistry", CHEM_LFP), ("full_charge_mv", 3500)))
    assert s.get("full_charge_mv") == 3500 and s.get("ov_trip_mv") == 3650 and s.get("cutoff_mv") == 2500


def test_voltage_order_rule_named():
    s = Settings()
    msg = _refused(s, "ov_trip_mv", 4000)  # below OV release 4050
    assert "uv_trip_mv < uv_release_mv < ov_release_mv < ov_trip_mv" in msg, msg
    msg = _refused(s, "uv_release_mv", 4100)  # above OV release
    assert "uv_release_mv < ov_release_mv" in msg or "uv_trip_mv < uv_release_mv < ov_release_mv" in msg, msg


def test_warning_between_release_and_trip():
    s = Settings()
    msg = _refused(s, "ov_warn_mv", 4260)
    assert "ov_release_mv < ov_warn_mv < ov_trip_mv" in msg, msg
    msg = _refused(s, "uv_warn_mv", 2990)
    assert "uv_trip_mv < uv_warn_mv < uv_release_mv" in msg, msg
    msg = _refused(s, "dsg_oc_warn_ma", 100001)
    assert "dsg_oc_release_ma < dsg_oc_warn_ma < dsg_oc_trip_ma" in msg, msg
    msg = _refused(s, "chg_ut_warn_dc", -10)
    assert "chg_ut_trip_dc < chg_ut_warn_dc < chg_ut_release_dc" in msg, msg


def test_every_chain_rule_refuses_equal_neighbours_with_a_named_rule():
    for names in CHAIN_RULES:
        for k in range(len(names) - 1):
            s = Settings()
            a, b = names[k], names[k + 1]
            msg = _refused(s, b, s.get(a))
            assert msg.startswith("rule ") and b in msg, msg


def test_cell_count_is_the_sum_of_module_cells():
    s = Settings()
    msg = _refused(s, "cells_total", 16)
    assert "cells_total = sum of modN_cells" in msg, msg
    msg = _refused(s, "modules", 2)
    assert "mod2_cells" in msg, msg
    s.set_many((("modules", 2), ("mod2_cells", 4), ("cells_total", 16)))
    assert s.get("cells_total") == 16 and s.get("modules") == 2


def test_module_cells_4_to_12_and_unused_zero():
    s = Settings()
    msg = _refused(s, "mod1_cells", 3)
    assert "module cells 4..12" in msg, msg
    msg = _refused(s, "mod3_cells", 4)
    assert "unused module" in msg, msg


def test_set_many_is_all_or_nothing():
    s = Settings()
    before = s.values()
    raises(ValueError, s.set_many, (("capacity_mah", 50000), ("ov_trip_mv", 3000)))
    assert s.values() == before


def test_range_type_and_unknown_name_refused():
    s = Settings()
    assert "range 100..2000000 mAh" in _refused(s, "capacity_mah", 50)
    assert "integer" in _refused(s, "capacity_mah", "100")
    assert "integer" in _refused(s, "capacity_mah", 1.5)
    assert "unknown setting" in str(raises(ValueError, s.set, "nope", 1))


def test_cutoff_not_below_uv_trip():
    s = Settings()
    msg = _refused(s, "cutoff_mv", 2900)
    assert "uv_trip_mv <= cutoff_mv" in msg, msg


def test_short_circuit_above_overcurrent():
    s = Settings()
    msg = _refused(s, "sc_trip_ma", 100000)
    assert "dsg_oc_trip_ma < sc_trip_ma" in msg, msg


def test_valid_change_bumps_changes_and_factory_reset_restores():
    s = Settings()
    c = s.changes
    s.set("dsg_oc_trip_ma", 120000)
    assert s.get("dsg_oc_trip_ma") == 120000 and s.changes == c + 1
    s.factory_reset()
    assert s.values() == factory_values(CHEM_NMC)


def test_original_product_settings_map_to_schema_names():
    for _label, names in ORIGINAL_SETTINGS:
        for n in names:
            index_of(n)


def test_schema_rows_are_well_formed():
    seen = {}
    for name, unit, lo, hi, default in SCHEMA:
        assert name not in seen
        seen[name] = 1
        assert lo <= default <= hi, name
        assert unit


def test_temp_required_defaults_on_and_is_a_flag():
    s = Settings()
    assert s.get("temp_required") == 1  # by default no charging without a cell temperature
    s.set("temp_required", 0)
    assert s.get("temp_required") == 0
    e = raises(ValueError, s.set, "temp_required", 2)
    assert "temp_required" in str(e) and s.get("temp_required") == 0
