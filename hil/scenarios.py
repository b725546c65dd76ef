"""Scenarios of the virtual rig: what is connected to the pack port when, which fault happens when, and what the
outcome must be.  Each scenario builds its ``Rig``, drives it (``run``) and judges the result (``check`` returns
the list of failures, empty when it passed).  ``hil.sim`` runs them from the command line; the tests run them small.

Timing rule checked for every fault: the right protection trips within its configured delay plus one host cycle
(plus one physics step, the granularity at which the rig notices a threshold is crossed), and nothing else trips.
"""

from hil.cells import soc_from_ocv
from hil.pack_model import Spread
from hil.profiles import CcCvCharger, Load, Rest
from hil.rig import Rig

CYCLE_MS = 200  # the host's fixed cycle
FULL_CV_MV = {"LFP": 3550, "NMC": 4200, "LTO": 2750}  # charger CV per cell = the preset's full-charge voltage
OV_TRIP_MV = {"LFP": 3650, "NMC": 4250, "LTO": 2850}
UV_TRIP_MV = {"LFP": 2500, "NMC": 3000, "LTO": 1900}


class Scenario:
    """Base: small defaults so tests are quick; ``hil.sim`` may override cells/modules/chemistry/seed."""

    name = ""
    doc = ""
    cells = 16
    modules = 2
    chemistry = "LFP"
    soc = 0.5
    spread = Spread(capacity_pct=0.3, soc_pct=0.05, r_pct=10.0)
    capacity_ah = 10.0
    settings = {}
    estimate_s = 120.0  # expected simulated length (progress bar)
    expect_trips = ()  # causes that must trip (in this order of first appearance)

    def build(self, cells=None, modules=None, chemistry=None, seed=1, capacity_ah=None, soc_spread_pct=None,
              **kw) -> Rig:
        if capacity_ah:
            self.capacity_ah = capacity_ah
        if soc_spread_pct is not None:
            self.spread = Spread(self.spread.capacity_pct, soc_spread_pct, self.spread.r_pct)
        rig = Rig(cells=cells or self.cells, modules=modules or self.modules, chemistry=chemistry or self.chemistry,
                  seed=seed, soc=self.soc, spread=self.spread, capacity_ah=self.capacity_ah,
                  settings=dict(self.settings), name=self.name, **kw)
        return rig

    def run(self, rig: Rig) -> dict:
        raise NotImplementedError

    def check(self, summary: dict, events: str) -> list:
        fails = []
        causes = [t["cause"] for t in summary["trips"]]
        for c in causes:
            if c not in self.expect_trips:
                fails.append("unexpected trip %s" % c)
        for c in self.expect_trips:
            if c not in causes:
                fails.append("expected a %s trip, got %s" % (c, causes or "none"))
        for c, onset in summary.get("onsets", {}).items():
            trip = next((t for t in summary["trips"] if t["cause"] == c), None)
            limit = summary.get("allowed_s", {}).get(c)
            if trip is not None and limit is not None and onset is not None:
                late = trip["t_s"] - onset
                if late > limit:
                    fails.append("%s tripped %.2f s after the onset, allowed %.2f s" % (c, late, limit))
        return fails

    # helpers ------------------------------------------------------------------------------------------
    def watch_onset(self, rig: Rig, cause: str, pred, delay_ms: int) -> None:
        """Record when ``pred(rig)`` first holds (the physical onset of ``cause``)."""
        rig.watch(cause, pred)
        self.allowed = getattr(self, "allowed", {})
        self.allowed[cause] = (delay_ms + CYCLE_MS + rig.physics_ms) / 1000.0

    def onset_extra(self, rig: Rig) -> dict:
        return {"onsets": {k: v for k, v in rig.watch_times.items()},
                "allowed_s": dict(getattr(self, "allowed", {}))}


def ideal_balance_s(rig: Rig) -> float:
    """Ideal balancing time from now: charge to remove (down to the host's target, lowest cell + 1 mV) ÷ bleed
    current (V/R), every module bleeding as many cells at once as "never two neighbours" and its thermal budget
    allow (the module's ``budget_mw`` over its own heat estimate per cell, ``bleed_ma`` × V)."""
    pack = rig.pack
    v_min = min(c.ocv_v() for c in pack.cells) * 1000.0
    soc_target = soc_from_ocv(pack.chemistry, v_min + 1.0)
    worst = 0.0
    for m in range(pack.modules):
        cells = pack.module_cells(m)
        app = rig.fw.boards[m].app
        excess = [max(0.0, (c.soc - soc_target) * c.capacity_as) for c in cells]
        v = sum(c.ocv_v() for c in cells) / len(cells)
        i_bleed = v / pack.bleed_ohm
        thermal = int(app.budget_mw // (app.bleed_ma * v))
        parallel = max(1, min((len(cells) + 1) // 2, thermal))
        t = max(max(excess) / i_bleed, sum(excess) / (i_bleed * parallel))
        worst = max(worst, t)
    return worst


class FullCycle(Scenario):
    name = "full_cycle"
    doc = "charge to full (CC/CV), balance to <= 1 mV at rest, discharge to cut-off; no spurious trip"
    cells = 48
    modules = 4
    soc = 0.965
    spread = Spread(capacity_pct=0.3, soc_pct=0.07, r_pct=10.0)
    estimate_s = 1900.0
    expect_trips = ("uv",)  # the discharge ends at the cut-off: under-voltage is the expected end, nothing else
    charge_a = 25.0
    load_a = 30.0
    balance_timeout_s = 3 * 3600.0

    def run(self, rig: Rig) -> dict:
        n = len(rig.pack.cells)
        chem = rig.pack.chemistry
        extra = {}
        rig.run_for(5.0)  # boot, enumerate
        charger = CcCvCharger(self.charge_a, n * FULL_CV_MV[chem] / 1000.0, tail_a=0.5)
        rig.set_profile(charger, "charge")
        full = rig.run_until(lambda r: r.fw.host_full() or charger.done, 4 * 3600.0, check_every_s=1.0)
        extra["full_reached"] = bool(full)
        rig.run_until(lambda r: r.fw.host_full(), 120.0, check_every_s=1.0)
        rig.run_for(2.0)
        extra["soc_error_after_full_pct"] = round(rig.soc_error_now(), 3)
        rig.set_profile(Rest(), "balance")
        extra["spread_before_balance_mv"] = round(rig.pack.spread_mv(), 3)
        extra["ideal_balance_s"] = round(ideal_balance_s(rig), 1)
        t0 = rig.t_s
        # balancing starts when the host sees rest at full (spread >= its start threshold) and is over when the
        # host stops it (its measured spread <= 1 mV) and no cell bleeds any more
        started = rig.run_until(lambda r: r.pack.bleeding_cells() > 0, 120.0, check_every_s=1.0)
        t_start = rig.t_s if started else None
        if started:
            rig.run_until(lambda r: r.pack.bleeding_cells() == 0 and not r.fw.balancing(), self.balance_timeout_s,
                          check_every_s=2.0)
        extra["balance_started_s"] = round(t_start - t0, 1) if t_start is not None else None
        extra["balance_time_s"] = round(rig.t_s - t_start, 1) if t_start is not None else 0.0
        extra["balance_ratio"] = (round(extra["balance_time_s"] / extra["ideal_balance_s"], 2)
                                  if extra["ideal_balance_s"] > 0 and t_start is not None else None)
        rig.run_for(5.0)
        extra["final_spread_mv"] = rig.fw.host_spread_mv()  # what the BMS shows (integer mV cells)
        extra["final_true_spread_mv"] = round(rig.pack.spread_mv(), 3)  # the model's open-circuit spread
        rig.set_profile(Load(self.load_a), "discharge")
        self.watch_onset(rig, "uv", lambda r: min(r.pack.cell_mv_list()) < UV_TRIP_MV[chem],
                         rig.fw.setting("uv_delay_ms"))
        rig.run_until(lambda r: not r.paths.discharge_closed, 4 * 3600.0, check_every_s=1.0)
        rig.run_for(10.0)
        extra["end_spread_mv"] = round(rig.pack.spread_mv(), 3)
        extra.update(self.onset_extra(rig))
        return extra

    def check(self, summary: dict, events: str) -> list:
        fails = super().check(summary, events)
        if summary["final_spread_mv"] is None or summary["final_spread_mv"] > 1.0:
            fails.append("spread after balancing %s mV > 1 mV" % summary["final_spread_mv"])
        if summary.get("final_true_spread_mv", 0) > 2.0:
            fails.append("true spread after balancing %.2f mV > 2 mV" % summary["final_true_spread_mv"])
        if summary["soc_error_max_pct"] > 3.0:
            fails.append("SOC error %.2f %% > 3 %%" % summary["soc_error_max_pct"])
        if summary.get("soc_error_after_full_pct", 99) > 1.0:
            fails.append("SOC error after the full re-anchor %.2f %% > 1 %%" % summary["soc_error_after_full_pct"])
        trips = summary["trips"]
        if trips and trips[0]["cause"] == "uv" and summary["discharge_ah"] < 0.5 * summary.get("capacity_ah", 0):
            fails.append("under-voltage came too early (%.2f Ah discharged)" % summary["discharge_ah"])
        return fails


class OvCharge(Scenario):
    name = "ov_charge"
    doc = "a charger set 0.2 V/cell above the OV trip keeps pushing: cell over-voltage trips and stops the charge"
    soc = 0.98
    estimate_s = 200.0
    expect_trips = ("ov",)

    def run(self, rig: Rig) -> dict:
        n = len(rig.pack.cells)
        chem = rig.pack.chemistry
        rig.run_for(5.0)
        self.watch_onset(rig, "ov", lambda r: max(r.pack.cell_mv_list()) > OV_TRIP_MV[chem],
                         rig.fw.setting("ov_delay_ms"))
        rig.set_profile(CcCvCharger(20.0, n * (OV_TRIP_MV[chem] + 200) / 1000.0), "charge")
        rig.run_until(lambda r: not r.paths.charge_closed, 600.0)
        rig.run_for(5.0)
        extra = self.onset_extra(rig)
        extra["charge_open_at_end"] = not rig.paths.charge_closed
        extra["current_at_end_a"] = rig.pack.current_a
        return extra

    def check(self, summary, events):
        fails = super().check(summary, events)
        if summary["current_at_end_a"] > 0.01:
            fails.append("charge current still flows after the OV trip")
        return fails


class UvDischarge(Scenario):
    name = "uv_discharge"
    doc = "a load drains a nearly empty pack: cell under-voltage trips and the load stops"
    soc = 0.03
    estimate_s = 300.0
    expect_trips = ("uv",)

    def run(self, rig):
        chem = rig.pack.chemistry
        rig.run_for(5.0)
        self.watch_onset(rig, "uv", lambda r: min(r.pack.cell_mv_list()) < UV_TRIP_MV[chem],
                         rig.fw.setting("uv_delay_ms"))
        rig.set_profile(Load(20.0), "discharge")
        rig.run_until(lambda r: not r.paths.discharge_closed, 900.0)
        rig.run_for(3.0)
        extra = self.onset_extra(rig)
        extra["current_at_end_a"] = rig.pack.current_a
        return extra

    def check(self, summary, events):
        fails = super().check(summary, events)
        if abs(summary["current_at_end_a"]) > 0.01:
            fails.append("load current still flows after the UV trip")
        return fails


class OverCurrent(Scenario):
    name = "over_current"
    doc = "a load draws 130 A (discharge over-current trips at 100 A after its delay; no short-circuit trip)"
    soc = 0.6
    estimate_s = 30.0
    expect_trips = ("dsg_oc",)

    def run(self, rig):
        rig.run_for(5.0)
        trip_ma = rig.fw.setting("dsg_oc_trip_ma")
        self.watch_onset(rig, "dsg_oc", lambda r: -r.pack.current_a * 1000.0 > trip_ma,
                         rig.fw.setting("dsg_oc_delay_ms"))
        rig.set_profile(Load(trip_ma * 1.3 / 1000.0), "discharge")
        rig.run_until(lambda r: not r.paths.discharge_closed, 30.0)
        rig.run_for(2.0)
        extra = self.onset_extra(rig)
        extra["current_at_end_a"] = rig.pack.current_a
        return extra


class ShortCircuit(Scenario):
    name = "short_circuit"
    doc = "a dead short on the port: the INA228 alert cuts it in hardware, the host latches it until a user reset"
    soc = 0.6
    estimate_s = 20.0
    expect_trips = ("sc",)

    def run(self, rig):
        rig.run_for(5.0)
        rig.set_profile(Load(5.0, latch=False), "discharge")
        rig.run_for(2.0)
        self.watch_onset(rig, "sc", lambda r: r.short_circuit_a > 0, 0)
        rig.inject("short_circuit", amps=2000.0)
        rig.run_until(lambda r: not r.paths.discharge_closed, 5.0)
        rig.run_for(1.0)
        rig.inject("short_cleared")
        rig.run_for(3.0)  # latched: stays open after the short is gone
        extra = self.onset_extra(rig)
        extra["discharge_open_at_end"] = not rig.paths.discharge_closed
        rig.event("rig", "user reset")
        rig.fw.host.reset()  # the user's reset (button, console, app) clears the latch once the short is gone
        extra["closed_after_reset"] = bool(rig.run_until(lambda r: r.paths.discharge_closed, 10.0))
        rig.run_for(1.0)
        extra["short_circuit_peak_ms"] = rig.short_circuit_duration_ms()
        return extra

    def check(self, summary, events):
        fails = super().check(summary, events)
        if not summary["discharge_open_at_end"]:
            fails.append("short circuit did not latch the discharge path open")
        if not summary["closed_after_reset"]:
            fails.append("the user reset did not clear the short-circuit latch")
        return fails


class ModuleUnplug(Scenario):
    name = "module_unplug"
    doc = "the cable into module 2 is pulled, then plugged back: module missing trips, then releases"
    soc = 0.6
    estimate_s = 60.0
    expect_trips = ("missing",)

    def run(self, rig):
        rig.run_for(5.0)
        t = rig.t_s + 2.0
        m = min(2, rig.pack.modules)  # the cable into module 2 (into module 1 on a one-module pack)
        rig.at(t, "unplug", module=m)
        self.watch_onset(rig, "missing", lambda r: r.fw.link_to(m - 1).unplugged, rig.fw.setting("module_missing_ms"))
        rig.run_for(10.0)
        extra = {"both_open_while_missing": not rig.paths.charge_closed and not rig.paths.discharge_closed}
        rig.inject("replug", module=m)
        t_back = rig.t_s
        back = rig.run_until(lambda r: r.fw.modules_present() == r.pack.modules and r.paths.discharge_closed, 60.0)
        extra["recovered"] = bool(back)
        extra["recovered_after_s"] = round(rig.t_s - t_back, 1)
        rig.run_for(2.0)
        extra.update(self.onset_extra(rig))
        return extra

    def check(self, summary, events):
        fails = super().check(summary, events)
        if not summary["both_open_while_missing"]:
            fails.append("switches stayed closed with a module missing")
        if not summary["recovered"]:
            fails.append("module 2 did not come back after replugging")
        return fails


class OpenWire(Scenario):
    name = "open_wire"
    doc = "sense line C3 of module 1 breaks: the open-wire check finds it and the host trips open-wire"
    soc = 0.6
    estimate_s = 60.0
    expect_trips = ("open_wire",)

    def run(self, rig):
        rig.run_for(5.0)
        rig.at(rig.t_s + 1.0, "open_wire", module=1, line=3)
        period_ms = rig.fw.module_ow_period_s() * 1000
        self.watch_onset(rig, "open_wire", lambda r: bool(r.fw.open_lines(0)),
                         period_ms + rig.fw.protection_delay("open_wire"))
        rig.run_until(lambda r: any(t["cause"] == "open_wire" for t in r.trips), 60.0)
        rig.run_for(2.0)
        return self.onset_extra(rig)


class HotBoard(Scenario):
    name = "hot_board"
    doc = "module 1's board sits in 85 °C air while balancing: it derates, then stops bleeding at its limit; no trip"
    soc = 0.99
    spread = Spread(capacity_pct=0.3, soc_pct=0.3, r_pct=10.0)
    estimate_s = 400.0

    def run(self, rig):
        rig.run_for(5.0)
        rig.phase = "balance"
        rig.fw.force_balance(True)
        rig.inject("hot_board", module=1, offset_c=60.0)
        warn = rig.run_until(lambda r: r.fw.module_flag(0, "heat_warn"), 600.0, check_every_s=1.0)
        limit = rig.run_until(lambda r: r.fw.module_flag(0, "heat_limit"), 600.0, check_every_s=1.0)
        rig.run_for(2.0)
        stopped = rig.pack.bleed_masks[0] == 0
        rig.run_for(20.0)  # and it stays stopped while the board is that hot
        extra = {"heat_warning_seen": bool(warn), "heat_limit_seen": bool(limit),
                 "m1_bleeding_at_limit": not stopped or rig.pack.bleed_masks[0] != 0,
                 "others_bleeding": any(rig.pack.bleed_masks[1:]),
                 "m1_board_c": round(rig.pack.board_temp_c[0], 1)}
        return extra

    def check(self, summary, events):
        fails = super().check(summary, events)
        if not summary["heat_warning_seen"]:
            fails.append("no heat warning from module 1")
        if not summary["heat_limit_seen"]:
            fails.append("module 1 never reached its heat limit")
        if summary["m1_bleeding_at_limit"]:
            fails.append("module 1 still bleeds at its heat limit")
        return fails


class SensorAbsent(Scenario):
    name = "sensor_absent"
    doc = "the last module's second cell NTC is not fitted: shown absent, not a fault; the pack runs normally"
    soc = 0.5
    estimate_s = 60.0

    def build(self, **kw):
        rig = super().build(**kw)
        rig.inject("sensor_removed", module=rig.pack.modules, gpio=2)
        return rig

    def run(self, rig):
        rig.run_for(5.0)
        n = len(rig.pack.cells)
        rig.set_profile(CcCvCharger(10.0, n * FULL_CV_MV[rig.pack.chemistry] / 1000.0), "charge")
        rig.run_for(20.0)
        c = rig.pack.current_a
        rig.set_profile(Load(10.0), "discharge")
        rig.run_for(20.0)
        return {"charged_a": c, "discharged_a": -rig.pack.current_a,
                "absent_reported": rig.fw.sensor_absent(rig.pack.modules - 1, 1)}

    def check(self, summary, events):
        fails = super().check(summary, events)
        if summary["charged_a"] < 9.0 or summary["discharged_a"] < 9.0:
            fails.append("the pack did not run normally with a sensor absent")
        if not summary["absent_reported"]:
            fails.append("the absent sensor is not reported as absent")
        return fails


class HostSilent(Scenario):
    name = "host_silent"
    doc = "the host goes silent while balancing: every module stops bleeding and sleeps; the host comes back: all wake"
    soc = 0.99
    spread = Spread(capacity_pct=0.3, soc_pct=0.3, r_pct=10.0)
    estimate_s = 40.0

    def run(self, rig):
        rig.run_for(5.0)
        rig.run_until(lambda r: r.pack.bleeding_cells() > 0, 30.0)
        awake_before = all(rig.fw.modules_awake())
        bleeding_before = rig.pack.bleeding_cells()
        t_off = rig.t_s
        rig.inject("host_off")
        slept = rig.run_until(lambda r: not any(r.fw.modules_awake()), 10.0)
        t_sleep = rig.t_s
        rig.run_for(5.0)
        afes_asleep = all(b.model.asleep for b in rig.fw.boards)  # the LTC6811 watchdog ran out too
        none_bleeding = rig.pack.bleeding_cells() == 0
        rig.inject("host_on")
        woke = rig.run_until(lambda r: all(r.fw.modules_awake()) and r.fw.modules_present() == r.pack.modules, 20.0)
        rig.run_for(2.0)
        return {"awake_before": awake_before, "all_asleep": bool(slept), "asleep_after_s": round(t_sleep - t_off, 2),
                "afes_asleep": afes_asleep, "none_bleeding_asleep": none_bleeding, "bleeding_before": bleeding_before,
                "all_awake_again": bool(woke), "wake_after_s": round(rig.t_s - t_sleep - 5.0 - 2.0, 2)}

    def check(self, summary, events):
        fails = super().check(summary, events)
        for k in ("awake_before", "all_asleep", "afes_asleep", "none_bleeding_asleep", "all_awake_again"):
            if not summary[k]:
                fails.append("%s is false" % k)
        return fails


class HotCell(Scenario):
    name = "hot_cell"
    doc = "a cell heats by itself during discharge: charge (45 °C) then discharge (60 °C) over-temperature trip"
    soc = 0.7
    estimate_s = 250.0
    expect_trips = ("chg_ot", "dsg_ot")

    def run(self, rig):
        rig.run_for(5.0)
        rig.set_profile(Load(10.0), "discharge")
        rig.inject("hot_cell", cell=3, watts=60.0)
        for cause in self.expect_trips:
            trip_c = rig.fw.setting(cause + "_trip_dc") / 10.0
            self.watch_onset(rig, cause, lambda r, t=trip_c: r.pack.cells[2].temp_c > t,
                             rig.fw.setting(cause + "_delay_ms"))
        rig.run_until(lambda r: not r.paths.discharge_closed, 1800.0, check_every_s=1.0)
        rig.run_for(2.0)
        return self.onset_extra(rig)


SCENARIOS = {s.name: s for s in (FullCycle, OvCharge, UvDischarge, OverCurrent, ShortCircuit, ModuleUnplug, OpenWire,
                                  HotBoard, SensorAbsent, HostSilent, HotCell)}
DEFAULT = "full_cycle"


def get(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError("unknown scenario %r (try --list)" % name)
    return SCENARIOS[name]()


def run_scenario(name: str, out_dir: str = None, live=None, plots: bool = True, **build_kw):
    """Build, run and judge one scenario; write the report when ``out_dir`` is given.

    Returns ``(summary, failures, rig)``."""
    sc = get(name)
    rig = sc.build(**build_kw)
    if live is not None:
        rig.live = live
    extra = sc.run(rig)
    extra["capacity_ah"] = sc.capacity_ah
    summary = rig.summary(sc.name, extra)
    for k in ("final_spread_mv", "balance_time_s"):
        if k in extra:
            summary[k] = extra[k]
    fails = sc.check(summary, rig.recorder.events_text())
    summary["passed"] = not fails
    summary["failures"] = fails
    if out_dir:
        rig.recorder.write(out_dir, summary, plots=plots)
    return summary, fails, rig

