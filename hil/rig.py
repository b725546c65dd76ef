"""The whole virtual pack on one virtual clock: pack physics, N module boards (LTC6811 model + module firmware),
the host board (INA228 model + host firmware), the byte-timed cascade links, the charger/load on the pack port,
and fault injection by name and time.  Tests drive it with ``run_for``/``run_until``; ``hil.sim`` runs scenarios.

Stepping (deterministic, no wall clock anywhere):
- the boards' ``step(now_ms)`` is called at the end of each transmission in flight (the packet is then whole at the
  far end), ``fine_ms`` later while a receiver still holds unread bytes, and every ``coarse_ms`` when all links are
  quiet (a board then only waits for its own timers, which tolerate a few ms);
- the physics advance every ``physics_ms`` (currents are set by the profile from the host's switch states,
  the bleed switches come from the LTC6811 models), which also samples the report timeline;
- scheduled faults fire at their exact simulated time.

``Firmware`` (below) is the one place that knows the apps' constructors: it builds each module board the way
``module_fw/code.py`` does (``hil.module_services_sim.SimModuleBoard``: LTC6811 model on SimSPI, real driver,
``ModuleLink``, ``ModuleApp``) and the host the way ``host_fw/code.py`` does (``ChainMaster``, ``HostApp`` with the
real ``adafruit_ina228`` driver on the INA228 model, MOSFET switches on ``SimPin``s, SOC counter, balance policy).
"""

import time

from hil.clock import VirtualClock
from hil.pack_model import PackModel, Spread
from hil.profiles import Rest
from hil.report import Recorder


class Paths:
    """The pack port as the charger and load see it: two switch states (read from the host's switch pins)."""

    def __init__(self, charge_fn, discharge_fn) -> None:
        self._c = charge_fn
        self._d = discharge_fn
        self.hw_cut = False  # the INA228 alert opened the switch driver (short circuit)

    @property
    def charge_closed(self) -> bool:
        return not self.hw_cut and bool(self._c())

    @property
    def discharge_closed(self) -> bool:
        return not self.hw_cut and bool(self._d())


class Rig:
    """A virtual pack of ``cells`` cells of ``chemistry`` on ``modules`` module boards and one host, with the seeded
    ``spread``.  ``settings`` overrides host settings by name (``bms_settings``); ``host_soc_pct`` is the SOC the
    host starts from (default: the true SOC, as if restored from sleep memory); ``module_kwargs`` overrides
    ``ModuleApp`` options; ``pace_x`` > 0 runs at most that many times real time.

    Read: ``t_s``, ``pack`` (the physics, the truth), ``paths`` (switch states the port sees), ``trips``,
    ``recorder`` (timeline and events), ``fw`` (the boards and views of the host's state).
    """

    def __init__(self, cells: int = 16, modules: int = 2, chemistry: str = "LFP", seed: int = 1, soc: float = 0.5,
                 spread: Spread = None, capacity_ah: float = None, ambient_c: float = 25.0, baudrate: int = 250_000,
                 start_ms: int = 0, physics_ms: int = 200, fine_ms: int = 1, coarse_ms: int = 10,
                 record_every_s: float = 5.0, settings: dict = None, name: str = "rig", host_soc_pct=None,
                 pace_x: float = 0.0, module_kwargs: dict = None) -> None:
        self.name = name
        self.clock = VirtualClock(start_ms)
        self.pack = PackModel(chemistry=chemistry, cells=cells, modules=modules, seed=seed, soc=soc,
                              capacity_ah=capacity_ah, spread=spread, ambient_c=ambient_c)
        self.recorder = Recorder(name, cells, modules)
        self.profile = Rest()
        self.phase = "start"
        self.physics_ms = physics_ms
        self.fine_ms = fine_ms
        self.coarse_ms = coarse_ms
        self.record_every_ms = int(record_every_s * 1000)
        self._next_physics = 0
        self._last_physics = 0
        self._next_record = 0
        self._schedule = []  # (total_ms, order, name, kwargs)
        self._order = 0
        self.active_faults = {}  # name -> text, for the live view and the report
        self.short_circuit_a = 0.0
        self.trips = []  # {"cause", "t_s", "value"} from the host's protection event log
        self.soc_error_max_pct = 0.0
        self.wall_s = 0.0
        self.host_on = True
        self.watches = {}  # name -> predicate, checked every physics step until it first holds
        self.watch_times = {}  # name -> t_s when it first held (None until then)
        self.live = None  # a hil.live.LiveView, updated at every timeline sample
        self.pace_x = pace_x  # > 0: run at most this many times real time (the --speed knob)
        self._sc_start_ms = None
        self._sc_end_ms = None
        self.last_snapshot = None
        mk = dict(MODULE_DEFAULTS)
        mk.update(module_kwargs or {})
        self.fw = Firmware(self, baudrate=baudrate, settings=settings or {}, host_soc_pct=host_soc_pct,
                           module_kwargs=mk)
        self.paths = Paths(self.fw.charge_closed, self.fw.discharge_closed)
        self.fw.paths = self.paths

    # -- time --------------------------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        return self.clock.total_ms / 1000.0

    def run_for(self, seconds: float, until=None, check_every_s: float = 0.2) -> bool:
        """Run ``seconds`` of simulated time; stop early (returning True) when ``until(rig)`` becomes true."""
        return self.run_until(until, seconds, check_every_s) if until else self._run_to(
            self.clock.total_ms + int(seconds * 1000)) or False

    def run_until(self, pred, timeout_s: float, check_every_s: float = 0.2) -> bool:
        """Run until ``pred(rig)`` is true (checked every ``check_every_s``); False if ``timeout_s`` passed first."""
        end = self.clock.total_ms + int(timeout_s * 1000)
        step = max(1, int(check_every_s * 1000))
        while self.clock.total_ms < end:
            self._run_to(min(end, self.clock.total_ms + step))
            if pred(self):
                return True
        return False

    def at(self, t_s: float, fault: str, **kw) -> None:
        """Schedule fault ``fault`` (a name in ``FAULTS``) at simulated time ``t_s`` (absolute)."""
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (one of %s)" % (fault, ", ".join(sorted(FAULTS))))
        self._schedule.append((int(t_s * 1000), self._order, fault, kw))
        self._order += 1
        self._schedule.sort()

    def inject(self, fault: str, **kw) -> None:
        """Apply fault ``fault`` now."""
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (one of %s)" % (fault, ", ".join(sorted(FAULTS))))
        FAULTS[fault](self, **kw)

    def set_profile(self, profile, phase: str = None) -> None:
        self.profile = profile
        if phase:
            self.phase = phase
        self.event("rig", "port: %s%s" % (profile.name, " (phase %s)" % phase if phase else ""))

    def watch(self, name: str, pred) -> None:
        """Record the simulated time at which ``pred(rig)`` first holds (checked every physics step)."""
        self.watches[name] = pred
        self.watch_times.setdefault(name, None)

    def soc_error_now(self) -> float:
        est = self.fw.host_soc_pct()
        return abs(est - self.pack.true_soc() * 100.0) if est is not None else float("nan")

    def short_circuit_duration_ms(self):
        """How long the short-circuit current flowed before the path opened (None if it never opened)."""
        if self._sc_start_ms is None or self._sc_end_ms is None:
            return None
        return self._sc_end_ms - self._sc_start_ms

    def event(self, source: str, text: str) -> None:
        self.recorder.event(self.t_s, source, text)

    # -- the loop ----------------------------------------------------------------------------------------
    def _run_to(self, end_ms: int) -> None:
        t0 = self._chunk_t0 = time.perf_counter()
        clock = self.clock
        fw = self.fw
        fine, coarse = self.fine_ms, self.coarse_ms
        while clock.total_ms < end_ms:
            now = clock.total_ms
            while self._schedule and self._schedule[0][0] <= now:
                _, _, fault, kw = self._schedule.pop(0)
                FAULTS[fault](self, **kw)
            if now >= self._next_physics:
                self._physics()
                self._next_physics = now + self.physics_ms
            fw.step(clock.ms)
            now_us = clock.total_us
            nxt = fw.next_step_us(now_us, fine * 1000, coarse * 1000)
            lim = min(end_ms, self._next_physics)
            if self._schedule:
                lim = min(lim, self._schedule[0][0])
            nxt = min(nxt, lim * 1000)
            clock.advance_us(max(10, nxt - now_us))
        self._poll_host_events()  # the caller sees every trip up to now
        self.wall_s += time.perf_counter() - t0

    def _physics(self) -> None:
        pack = self.pack
        now = self.clock.total_ms
        dt_s = (now - self._last_physics) / 1000.0  # normally physics_ms; shorter when a short forced a step
        self._last_physics = now
        if dt_s > 0:
            pack.step(dt_s)
        for m, mask in enumerate(self.fw.bleed_masks()):
            pack.set_bleed_mask(m, mask)
        if self.short_circuit_a and self.paths.discharge_closed:
            i = -self.short_circuit_a
            if self._sc_start_ms is None:
                self._sc_start_ms = now
        else:
            if self.short_circuit_a and self._sc_start_ms is not None and self._sc_end_ms is None:
                self._sc_end_ms = now
            i = self.profile.current_a(pack, self.paths)
        pack.set_current(i)
        self.fw.after_physics()
        self._poll_host_events()
        for name, pred in self.watches.items():
            if self.watch_times.get(name) is None and pred(self):
                self.watch_times[name] = round(self.t_s, 3)
                self.event("rig", "onset of %s" % name)
        if now >= self._next_record:
            self._record()
            self._next_record = now + self.record_every_ms
            if self.live is not None:
                self.live.update(self.last_snapshot)
            if self.pace_x > 0:
                ahead = self.t_s / self.pace_x - (self.wall_s + time.perf_counter() - self._chunk_t0)
                if ahead > 0:
                    time.sleep(ahead)

    # -- host events, SOC truth -------------------------------------------------------------------------
    def _poll_host_events(self) -> None:
        for kind, cause, value, where, text, t_s in self.fw.new_host_events():
            if kind == "trip":
                self.trips.append({"cause": cause, "t_s": round(t_s, 3), "value": value, "where": where})
            self.recorder.event(t_s, "host", text)
        est = self.fw.host_soc_pct()
        if est is not None and self.host_on:
            true = self.pack.true_soc() * 100.0
            err = abs(est - true)
            if err > self.soc_error_max_pct:
                self.soc_error_max_pct = err

    def snapshot(self) -> dict:
        """Everything the live view and the timeline need, at this instant."""
        pack = self.pack
        cells_mv = pack.cell_mv_list()
        mods = []
        awake = self.fw.modules_awake()
        for m in range(pack.modules):
            mv = cells_mv[pack.starts[m]:pack.starts[m] + pack.counts[m]]
            mods.append({
                "n": m + 1, "min_mv": min(mv), "max_mv": max(mv), "bleeding": bin(pack.bleed_masks[m]).count("1"),
                "board_c": pack.board_temp_c[m], "cells_c": max(c.temp_c for c in pack.module_cells(m)),
                "awake": awake[m],
            })
        est = self.fw.host_soc_pct()
        return {
            "t_s": self.t_s, "phase": self.phase, "current_a": pack.current_a,
            "host_current_a": self.fw.host_current_a(),
            "pack_v": sum(cells_mv) / 1000.0, "soc_pct": est if est is not None else float("nan"),
            "true_soc_pct": pack.true_soc() * 100.0, "spread_mv": pack.spread_mv(), "cells_mv": cells_mv,
            "modules": mods, "faults": sorted(self.active_faults.values()), "trips": self.trips,
            "charge_closed": self.paths.charge_closed, "discharge_closed": self.paths.discharge_closed,
            "host_state": self.fw.host_state(), "fet_c": pack.fet_temp_c,
        }

    def _record(self) -> None:
        s = self.snapshot()
        row = {
            "t_s": round(s["t_s"], 3), "phase": s["phase"], "current_a": s["current_a"],
            "host_current_a": s["host_current_a"], "pack_v": s["pack_v"], "soc_pct": s["soc_pct"],
            "true_soc_pct": s["true_soc_pct"], "spread_mv": s["spread_mv"],
            "cell_min_mv": min(s["cells_mv"]), "cell_max_mv": max(s["cells_mv"]),
            "charge_closed": int(s["charge_closed"]), "discharge_closed": int(s["discharge_closed"]),
            "host_state": s["host_state"], "fet_c": s["fet_c"],
        }
        for m in s["modules"]:
            row["m%d_board_c" % m["n"]] = m["board_c"]
            row["m%d_cells_c" % m["n"]] = m["cells_c"]
            row["m%d_bleeding" % m["n"]] = m["bleeding"]
            row["m%d_awake" % m["n"]] = int(m["awake"])
        for i, v in enumerate(s["cells_mv"]):
            row["cell%02d_mv" % (i + 1)] = v
        self.recorder.sample(row)
        self.last_snapshot = s

    # -- summary ----------------------------------------------------------------------------------------
    def summary(self, scenario: str, extra: dict = None) -> dict:
        pack = self.pack
        out = {
            "scenario": scenario,
            "simulated_s": round(self.t_s, 3),
            "wall_s": round(self.wall_s, 3),
            "speed_x": round(self.t_s / self.wall_s, 1) if self.wall_s > 0 else None,
            "cells": len(pack.cells),
            "modules": pack.modules,
            "chemistry": pack.chemistry,
            "final_spread_mv": round(pack.spread_mv(), 3),
            "balance_time_s": None,
            "soc_error_max_pct": round(self.soc_error_max_pct, 3),
            "trips": list(self.trips),
            "charge_ah": round(pack.charge_as / 3600.0, 4),
            "discharge_ah": round(pack.discharge_as / 3600.0, 4),
            "missed_cycles": self.fw.missed_cycles(),
            "bled_ah": round(sum(pack.bleed_as) / 3600.0, 4),
            "board_warn_c": self.fw.boards[0].app.temp_warn_dc / 10.0,  # module balancing derates from here
            "board_limit_c": self.fw.boards[0].app.temp_limit_dc / 10.0,  # and stops here
            "faults_injected": [e[2] for e in self.recorder.events if e[1] == "fault"],
        }
        if extra:
            out.update(extra)
        return out


# -- the firmware side: real apps on simulated parts --------------------------------------------------------
SHUNT_UOHM = 250  # 75 mV at 300 A
# ModuleApp options the rig sets: none, the boards run the firmware's defaults (a test may pass module_kwargs).
MODULE_DEFAULTS = {}
MAX_CURRENT_MA = 300000


def _fmt_value(unit, value: int) -> str:
    if unit == "mv":
        return "%d mV" % value
    if unit == "ma":
        return "%.1f A" % (value / 1000.0)
    if unit == "dc":
        return "%.1f °C" % (value / 10.0)
    return "value %d" % value


def _chem_code(chemistry: str) -> int:
    from bms_settings import CHEMISTRY_NAMES

    return CHEMISTRY_NAMES.index(chemistry)


class Firmware:
    """N module boards and the host board, wired by cascade links, reading the rig's pack."""

    def __init__(self, rig, baudrate: int = 250_000, settings: dict = None, host_soc_pct=None,
                 module_kwargs: dict = None) -> None:
        from hil.module_services_sim import SimModuleBoard
        from hil.sim_uart import SimLink

        self.rig = rig
        self.clock = rig.clock
        pack = rig.pack
        n = pack.modules
        self.baudrate = baudrate
        # links[k] is the cable into module k+1's UP port (links[0]: host DOWN -> module 1 UP)
        self.links = [SimLink(self.clock, baudrate, seed=1000 + k, name="cable%d" % (k + 1)) for k in range(n)]
        self.boards = []
        for k in range(n):
            down = self.links[k + 1].a if k + 1 < n else None
            self.boards.append(SimModuleBoard(self.clock, self.links[k].b, down, pack.cells_fn(k), pack.gpio_fn(k),
                                              cell_count=pack.counts[k], uid=0x6811_0000 + k + 1,
                                              **(module_kwargs or {})))
        self.settings = self._settings(pack, settings or {})
        self.host_on = True
        self._ev_seq = 0
        self._cycles_seen = 0
        self.incomplete_cycles = 0  # host cycles that ended without every module's cells, temps and status
        self.n_modules = n
        from chain import FRESH_ALL

        self._fresh_all = FRESH_ALL
        self._mod_flags = [None] * n
        self._force_balance = False
        self._soc_full = False
        self._soc_empty = False
        self._build_host(host_soc_pct if host_soc_pct is not None else pack.true_soc() * 100.0)
        self.paths = None

    # -- building --------------------------------------------------------------------------------------
    @staticmethod
    def _settings(pack, overrides: dict):
        from bms_settings import Settings

        s = Settings(_chem_code(pack.chemistry))
        pairs = [("cells_total", len(pack.cells)), ("modules", pack.modules),
                 ("capacity_mah", int(round(pack.nominal_capacity_ah * 1000)))]
        for m in range(8):
            pairs.append(("mod%d_cells" % (m + 1), pack.counts[m] if m < pack.modules else 0))
        s.set_many(pairs + list(overrides.items()))  # a bad override raises ValueError naming the broken rule
        return s

    def _build_host(self, soc_pct: float, soc_record=None) -> None:
        import adafruit_ina228
        from balance_policy import BalancePolicy
        from chain import ChainMaster
        from current_sensor import CurrentSensor
        from host_app import HostApp
        from soc import SocCounter
        from switches import MosfetSwitches

        from hil.host_services_sim import SimHostServices
        from hil.ina228_model import INA228Model
        from hil.sim_i2c import SimI2C
        from hil.sim_pins import SimPin

        clock = self.clock
        s = self.settings
        pack = self.rig.pack
        self.host_dir = SimPin("host_dir", clock)
        self.host_dir.switch_to_output(False)
        self.links[0].a.dir_pin = self.host_dir
        self.chain = ChainMaster(self.links[0].a, dir_pin=self.host_dir, baudrate=self.baudrate)
        self.i2c = SimI2C(clock)
        self.ina = INA228Model(SHUNT_UOHM, clock=clock).attach_to(self.i2c)
        # the pack voltage reaches VBUS through a divider sized for the pack (VBUS reads at most 85 V)
        top_mv = len(pack.cells) * 4800
        self.vbus_ratio = max(1, -(-top_mv // 80000))
        self.alert_pin = SimPin("ina_alert", clock, source=lambda: self.ina.alert_pin)
        self.current = CurrentSensor(adafruit_ina228.INA228(self.i2c), shunt_uohm=SHUNT_UOHM,
                                     max_current_ma=MAX_CURRENT_MA, sc_trip_ma=s.get("sc_trip_ma"),
                                     alert_pin=self.alert_pin, vbus_ratio=self.vbus_ratio)
        self.chg_pin = SimPin("chg_fet", clock)
        self.dsg_pin = SimPin("dsg_fet", clock)
        self.switches = MosfetSwitches(self.chg_pin, self.dsg_pin)
        self.services = SimHostServices(clock)
        self.soc = SocCounter(s.get("capacity_mah"), s.get("full_charge_mv"), s.get("cutoff_mv"),
                              s.get("tail_current_ma"), s.get("full_hold_ms"), s.get("empty_hold_ms"))
        if soc_record is not None:
            self.soc.unpack_from(soc_record)
        else:
            self.soc.set_soc_pct(int(round(min(100.0, max(0.0, soc_pct)))))
        self.balance = BalancePolicy()
        self.host = HostApp(self.chain, s, switches=self.switches, current=self.current, services=self.services,
                            fet_temp=lambda: int(round(pack.fet_temp_c * 10)), soc=self.soc, balance=self.balance)
        self._ev_seq = 0
        self._cycles_seen = self.chain.cycle_count

    # -- stepping --------------------------------------------------------------------------------------
    def step(self, now_ms: int) -> None:
        if self.host_on:
            self.host.step(now_ms)
            chain = self.chain
            if chain.cycle_count != self._cycles_seen:  # a cycle ended: did every module answer in it?
                self._cycles_seen = chain.cycle_count
                fresh = chain.fresh
                if chain.module_count < self.n_modules or any(
                        fresh[a] != self._fresh_all for a in range(1, chain.module_count + 1)):
                    self.incomplete_cycles += 1
        for b in self.boards:
            b.step(now_ms)
        # the INA228 ALERT line drives the switch driver directly: a short is cut at once
        if self.paths is not None:
            cut = self.ina.alert_active
            if cut != self.paths.hw_cut:
                self.paths.hw_cut = cut
                if cut:
                    self.rig.event("rig", "INA228 alert: switch driver cut the pack (hardware)")
                    self.rig._next_physics = self.clock.total_ms  # the current stops now

    def next_step_us(self, now_us: int, fine_us: int, coarse_us: int) -> int:
        """When the boards need their next step: ``fine_us`` from now while a receiver holds unread bytes, at the
        end of the earliest transmission in flight (the packet is then whole at the far end), or ``coarse_us``
        from now when every link is quiet."""
        nxt = now_us + coarse_us
        host_on = self.host_on
        for k, link in enumerate(self.links):
            for end in (link.a, link.b):
                # unread bytes: in the receive buffer, or arrived on the wire and not yet pumped (peeking at the
                # SimUART queues instead of ``in_waiting`` avoids pumping every port every step)
                if (k or host_on or end is link.b) and (end._rx or (end.peer._wire and end.peer._wire[0][0] <= now_us)):
                    return now_us + fine_us
                t = end._tx_end_us
                if now_us < t < nxt:
                    nxt = int(t) + 1
        return nxt

    def busy(self) -> bool:
        """Bytes on a wire or waiting in a receiver."""
        now = self.clock.total_us
        return self.next_step_us(now, 1, 1 << 40) < now + (1 << 40)

    def bleed_masks(self) -> list:
        return [b.model.discharge_mask for b in self.boards]

    def after_physics(self) -> None:
        """Feed the INA228 model the new current and bus voltage; watch cycles and module flags."""
        pack = self.rig.pack
        self.ina.set_current(pack.current_ma())
        self.ina.set_bus(pack.bus_mv() // self.vbus_ratio)
        chain = self.chain
        for pin in [b.cs for b in self.boards] + [self.host_dir]:
            if len(pin.history) > 4096:  # chip selects toggle every transaction: keep memory flat on long runs
                del pin.history[:-1]
        for m, b in enumerate(self.boards):
            b.model.die_temp_dc = int(round(pack.board_temp_c[m] * 10))  # the AFE sits among the bleed resistors
            app = b.app
            f = (app.heat_warn, app.heat_limit, app.balancing, b.sleeping, app.open_wire)
            old = self._mod_flags[m]
            if old is not None and f != old:
                self._module_event(m, old, f)
            self._mod_flags[m] = f
        if self.host_on:
            soc = self.soc
            full, empty = soc.full_seen, soc.soc_permille == 0
            if full != self._soc_full:
                self._soc_full = full
                if full:
                    self.rig.event("host", "SOC re-anchored to 100 %% (full charge); true SOC %.1f %%"
                                   % (pack.true_soc() * 100.0))
            if empty != self._soc_empty:
                self._soc_empty = empty
                if empty:
                    self.rig.event("host", "SOC at 0 %% (cut-off); true SOC %.1f %%" % (pack.true_soc() * 100.0))
        if self._force_balance and self.host_on:
            lo = min(pack.cell_mv_list())
            if self.clock.total_ms % 10000 < self.rig.physics_ms:
                chain.queue_balance(0xFF, int(lo * 10) + 10, 30)

    def _module_event(self, m: int, old, new) -> None:
        names = ("heat warning", "heat limit", "balancing", "asleep")
        for i, name in enumerate(names):
            if old[i] != new[i]:
                self.rig.event("m%d" % (m + 1), "%s %s" % (name, "on" if new[i] else "off"))
        if old[4] != new[4]:
            self.rig.event("m%d" % (m + 1), "open wire lines 0x%04x" % new[4])

    def new_host_events(self):
        """(kind, cause, value, where, text) of the host's protection/state events since the last call."""
        from host_app import STATE_NAMES
        from protection import (
            EV_RELEASE,
            EV_RESET,
            EV_STATE,
            EV_TRIP,
            EV_WARN,
            EV_WARN_CLEAR,
            TABLE,
            cond_name,
            cond_text,
        )

        from adafruit_ticks import ticks_diff

        log = self.host.events
        out = []
        if log.seq == self._ev_seq:
            return out
        count = len(log)
        first = log.seq - count
        start = max(self._ev_seq, first)
        now = self.clock.ms
        for s in range(start, log.seq):
            t_ms, kind, cause, value, where = log.get(s - first)
            t_s = self.rig.t_s - ticks_diff(now, t_ms) / 1000.0
            if kind in (EV_TRIP, EV_WARN, EV_WARN_CLEAR, EV_RELEASE):
                name = cond_name(cause)
                k = {EV_TRIP: "trip", EV_WARN: "warn", EV_WARN_CLEAR: "warn_clear", EV_RELEASE: "release"}[kind]
                text = "%s %s (%s) %s%s" % (k, name, cond_text(cause), _fmt_value(TABLE[cause][1], value),
                                            " at %s %d" % ("module" if name in ("missing",) else "cell"
                                                           if TABLE[cause][1] == "mv" else "sensor", where)
                                            if where else "")
                out.append((k, name, value, where, text, t_s))
            elif kind == EV_STATE:
                out.append(("state", STATE_NAMES[cause], value, where, "state %s" % STATE_NAMES[cause], t_s))
            elif kind == EV_RESET:
                out.append(("reset", "", value, where, "protection reset", t_s))
            else:
                out.append(("other", str(kind), value, where,
                            "event kind %d cause %d value %d where %d" % (kind, cause, value, where), t_s))
        self._ev_seq = log.seq
        return out

    # -- views -----------------------------------------------------------------------------------------
    def charge_closed(self) -> bool:
        return self.host_on and self.chg_pin.value

    def discharge_closed(self) -> bool:
        return self.host_on and self.dsg_pin.value

    def host_soc_pct(self):
        return self.soc.soc_permille / 10.0 if self.host_on else None

    def host_current_a(self) -> float:
        from protection import UNKNOWN

        i = self.host.current_ma
        return float("nan") if (i == UNKNOWN or not self.host_on) else i / 1000.0

    def host_state(self) -> str:
        return self.host.state_text if self.host_on else "off"

    def host_full(self) -> bool:
        return self.soc.full_seen

    def host_spread_mv(self):
        """The spread the host computes (integer mV cells), None when unknown."""
        from protection import UNKNOWN

        v = self.host.pack.spread_mv
        return None if v == UNKNOWN else v

    def host_cells_mv(self) -> list:
        chain = self.chain
        out = []
        for a in range(1, chain.module_count + 1):
            for i in range(chain.cell_count[a]):
                v = chain.cells_100uv[(a - 1) * chain.max_cells + i]
                out.append(None if v == 0xFFFF else v / 10.0)
        return out

    def balancing(self) -> bool:
        return self.balance.balancing or any(b.app.balancing for b in self.boards)

    def modules_awake(self) -> list:
        return [not b.sleeping for b in self.boards]

    def modules_present(self) -> int:
        chain = self.chain
        return sum(1 for a in range(1, chain.module_count + 1) if chain.present[a] and not chain.missing[a])

    def missed_cycles(self) -> int:
        return self.incomplete_cycles

    def setting(self, name: str) -> int:
        return self.settings.get(name)

    def has_setting(self, name: str) -> bool:
        try:
            self.settings.get(name)
        except KeyError:
            return False
        return True

    def module_ow_period_s(self) -> int:
        from host_app import MODULE_OW_PERIOD_S

        return MODULE_OW_PERIOD_S

    def protection_delay(self, name: str) -> int:
        import protection

        return self.host.protection.limit(getattr(protection, name.upper()), "delay_ms")

    def open_wire(self, m: int, line: int, is_open: bool) -> None:
        self.boards[m].model.open_wire(line, is_open)

    def open_lines(self, m: int):
        return self.boards[m].model.open_lines

    def link_to(self, m: int):
        return self.links[m]

    def module_flag(self, m: int, name: str) -> bool:
        return bool(getattr(self.boards[m].app, name))

    def sensor_absent(self, m: int, j: int) -> bool:
        from bms_ntc import TEMP_ABSENT

        return self.boards[m].app.temps_dc[j] == TEMP_ABSENT

    def force_balance(self, on: bool) -> None:
        """Test hook: ask every module to balance to the lowest cell + 1 mV, whatever the host's policy says."""
        self._force_balance = on

    def host_power(self, on: bool) -> None:
        """Power the host off (it stops; its gate drivers open the pack) or on (a fresh boot that restores the SOC
        record it kept in sleep memory)."""
        if on == self.host_on:
            return
        if not on:
            self._soc_record = bytearray(64)
            self.soc.pack_into(self._soc_record)
            self.host_on = False
            return
        self.links[0].a.reset_input_buffer()
        self._build_host(0.0, soc_record=self._soc_record)
        self.host_on = True


# -- fault injection by name ------------------------------------------------------------------------------
def _fault(name):
    def deco(fn):
        FAULTS[name] = fn
        return fn
    return deco


FAULTS = {}


@_fault("open_wire")
def _open_wire(rig, module: int = 1, line: int = 3):
    """Sense line C(``line``) of ``module`` (1-based) breaks."""
    rig.fw.open_wire(module - 1, line, True)
    rig.active_faults["open_wire:%d:%d" % (module, line)] = "open wire m%d C%d" % (module, line)
    rig.event("fault", "open wire: module %d sense line C%d" % (module, line))


@_fault("unplug")
def _unplug(rig, module: int = 2):
    """The cable into ``module``'s UP port is pulled (it and every module after it are cut off)."""
    rig.fw.link_to(module - 1).unplugged = True
    rig.active_faults["unplug:%d" % module] = "cable to m%d unplugged" % module
    rig.event("fault", "cable into module %d unplugged" % module)


@_fault("replug")
def _replug(rig, module: int = 2):
    rig.fw.link_to(module - 1).unplugged = False
    rig.active_faults.pop("unplug:%d" % module, None)
    rig.event("fault", "cable into module %d plugged back" % module)


@_fault("sensor_removed")
def _sensor_removed(rig, module: int = 1, gpio: int = 1):
    """The NTC on GPIO``gpio`` of ``module`` is unplugged (it reads VREF2 through the pull-up)."""
    rig.pack.sensor_absent.add((module - 1, gpio - 1))
    rig.active_faults["sensor:%d:%d" % (module, gpio)] = "sensor m%d GPIO%d absent" % (module, gpio)
    rig.event("fault", "temperature sensor GPIO%d of module %d removed" % (gpio, module))


@_fault("short_circuit")
def _short(rig, amps: float = 2000.0):
    """A dead short on the pack port: ``amps`` flow until the discharge path opens."""
    rig.short_circuit_a = float(amps)
    rig.active_faults["short"] = "short circuit %.0f A" % amps
    rig.event("fault", "short circuit on the pack port (%.0f A)" % amps)
    rig._next_physics = rig.clock.total_ms  # the current jumps now, not at the next physics step


@_fault("short_cleared")
def _short_cleared(rig):
    rig.short_circuit_a = 0.0
    rig.active_faults.pop("short", None)
    rig.event("fault", "short circuit removed")


@_fault("hot_cell")
def _hot_cell(rig, cell: int = 1, watts: float = 20.0):
    """Cell ``cell`` (1-based, pack order) heats with ``watts`` of its own (an internal fault)."""
    rig.pack.cells[cell - 1].extra_heat_w = float(watts)
    rig.active_faults["hot_cell:%d" % cell] = "cell %d heating %.0f W" % (cell, watts)
    rig.event("fault", "cell %d starts heating (%.0f W)" % (cell, watts))


@_fault("hot_board")
def _hot_board(rig, module: int = 1, offset_c: float = 35.0):
    """Module ``module``'s board sits in hot air (blocked airflow): its ambient is ``offset_c`` higher."""
    rig.pack.board_ambient_offset_c[module - 1] = float(offset_c)
    rig.active_faults["hot_board:%d" % module] = "board m%d +%.0f °C" % (module, offset_c)
    rig.event("fault", "module %d board ambient +%.0f °C" % (module, offset_c))


@_fault("host_off")
def _host_off(rig):
    """The host stops (powered off / crashed): the chain goes silent."""
    rig.host_on = False
    rig.fw.host_power(False)
    rig.active_faults["host_off"] = "host silent"
    rig.event("fault", "host silent")


@_fault("host_on")
def _host_on(rig):
    rig.host_on = True
    rig.fw.host_power(True)
    rig.active_faults.pop("host_off", None)
    rig.event("fault", "host back")


@_fault("ambient")
def _ambient(rig, temp_c: float = 25.0):
    rig.pack.ambient_c = float(temp_c)
    rig.event("fault", "ambient %.1f °C" % temp_c)
