"""Every scenario of the rig on a small pack: the right protection trips within its delay + one cycle and nothing
else; the report says so (summary.json fields, events.log)."""

import json

import pytest

from hil import scenarios

SMALL = {"cells": 8, "modules": 2}


@pytest.fixture(scope="module")
def results():
    cache = {}

    def run(name, **kw):
        if name not in cache:
            cache[name] = scenarios.run_scenario(name, **dict(SMALL, **kw))
        return cache[name]

    return run


def _trip(summary, cause):
    return next(t for t in summary["trips"] if t["cause"] == cause)


@pytest.mark.parametrize("name,cause", [
    ("ov_charge", "ov"), ("uv_discharge", "uv"), ("over_current", "dsg_oc"), ("short_circuit", "sc"),
    ("module_unplug", "missing"), ("open_wire", "open_wire"), ("hot_cell", "chg_ot dsg_ot"),
])
def test_fault_trips_the_right_protection_in_time_and_nothing_else(results, name, cause):
    summary, fails, rig = results(name)
    assert fails == []
    causes = cause.split()
    assert {t["cause"] for t in summary["trips"]} == set(causes)
    for c in causes:
        trip = _trip(summary, c)
        onset = summary["onsets"][c]
        assert onset is not None
        assert 0 <= trip["t_s"] - onset <= summary["allowed_s"][c]
        assert "trip %s" % c in rig.recorder.events_text()


def test_ov_trip_opens_the_charge_path_and_the_charger_stops(results):
    summary, _, rig = results("ov_charge")
    assert not rig.paths.charge_closed
    assert summary["current_at_end_a"] == 0.0
    assert _trip(summary, "ov")["value"] >= rig.fw.setting("ov_trip_mv")


def test_short_circuit_is_cut_by_hardware_before_the_firmware_cycle_and_latches(results):
    summary, _, rig = results("short_circuit")
    assert summary["short_circuit_peak_ms"] is not None and summary["short_circuit_peak_ms"] < 200
    assert summary["discharge_open_at_end"]  # latched after the short was gone
    assert summary["closed_after_reset"]  # until the user's reset
    assert "INA228 alert" in rig.recorder.events_text()


def test_unplugged_module_comes_back_without_a_reset(results):
    summary, _, rig = results("module_unplug")
    assert summary["both_open_while_missing"]
    assert summary["recovered"]
    assert summary["missed_cycles"] >= 10  # every cycle without module 2 counts as missed
    assert "release missing" in rig.recorder.events_text()


def test_absent_sensor_runs_normally_and_is_reported_absent(results):
    summary, fails, rig = results("sensor_absent")
    assert fails == []
    assert summary["trips"] == []
    assert summary["absent_reported"]


def test_host_silent_puts_every_module_to_sleep_and_back(results):
    summary, fails, rig = results("host_silent")
    assert fails == []
    assert summary["bleeding_before"] > 0  # it was balancing when the host went silent
    assert summary["all_asleep"] and summary["asleep_after_s"] <= 3.0
    assert summary["afes_asleep"] and summary["none_bleeding_asleep"]
    assert summary["all_awake_again"]
    assert rig.recorder.events_text().count("asleep on") == 2


def test_hot_board_derates_then_stops_bleeding_without_a_pack_trip(results):
    summary, fails, rig = results("hot_board")
    assert fails == []
    assert summary["heat_warning_seen"] and summary["heat_limit_seen"]
    assert not summary["m1_bleeding_at_limit"]
    assert summary["trips"] == []


def test_reduced_full_cycle_charges_balances_and_discharges(tmp_path):
    summary, fails, rig = scenarios.run_scenario("full_cycle", out_dir=str(tmp_path), cells=8, modules=2,
                                                 capacity_ah=1.0, soc_spread_pct=0.3, plots=False)
    assert fails == []
    assert summary["spread_before_balance_mv"] > 10.0  # there was something to balance
    assert summary["balance_time_s"] > 0
    assert summary["final_spread_mv"] <= 1.0
    assert summary["final_true_spread_mv"] <= 2.0
    assert sum(rig.pack.bleed_as) > 0
    assert summary["soc_error_max_pct"] <= 3.0
    assert summary["soc_error_after_full_pct"] <= 1.0
    assert [t["cause"] for t in summary["trips"]] == ["uv"]
    assert summary["charge_ah"] > 0 and summary["discharge_ah"] > 0.8
    assert summary["missed_cycles"] == 0
    written = json.loads((tmp_path / "summary.json").read_text())
    for key in ("scenario", "simulated_s", "wall_s", "cells", "final_spread_mv", "balance_time_s",
                "soc_error_max_pct", "trips", "charge_ah", "discharge_ah", "missed_cycles"):
        assert key in written
    assert (tmp_path / "timeline.csv").read_text().count("\n") > 10
    assert "trip uv" in (tmp_path / "events.log").read_text()


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="--list"):
        scenarios.get("nope")
