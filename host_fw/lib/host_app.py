"""
`host_app`
================================================================================

The host's superloop: where the chain master, the pack picture, the current sensor, the
protection, the switches, the indicators and (when given) SOC, balancing, the settings store and
the USB console meet. ``code.py`` builds the real objects and calls ``step(now_ms)`` forever; the
PC rig builds the same ``HostApp`` from simulated parts.

States: START -> WAKE (the chain wakes and enumerates) -> CHECK (found modules and cells match
the settings) -> STANDBY (paths open, first fresh cycles) -> RUNNING (paths follow protection;
charging / discharging / idle) -> FAULT (both paths open) and SLEEP on request.
See ``docs/host.md``. The steady-state ``step`` allocates nothing.
"""

from adafruit_ticks import ticks_diff
from bms_packet import CELL_UNKNOWN, TEMP_ABSENT  # the status line's null, as on the wire
from calibration import Calibrator
from calibration import apply as calibration_apply
from chain import FRESH_ALL, S_ASLEEP, S_ENUM, S_WAKE, S_WAKE_WAIT
from micropython import const
from pack import Pack
from protection import (
    BLOCK_BOTH,
    BLOCK_CHG,
    BLOCK_DSG,
    CHG_OC,
    CHG_OT,
    CHG_UT,
    DSG_OC,
    DSG_OT,
    DSG_UT,
    EV_CONFIG,
    EV_STATE,
    EV_SWITCH,
    FET_OT,
    MISSING,
    N_COND,
    NO_TEMP,
    OPEN_WIRE,
    OV,
    PLAUS,
    SC,
    SENSOR,
    UNKNOWN,
    UV,
    WIRING,
    KIND_NAMES,
    Protection,
    cond_text,
)
from protection import TABLE as PROTECTION_TABLE

try:
    import typing  # noqa: F401
except ImportError:
    pass

ST_START = const(0)
ST_WAKE = const(1)
ST_CHECK = const(2)
ST_STANDBY = const(3)
ST_RUNNING = const(4)
ST_FAULT = const(5)
ST_SLEEP = const(6)
# balance_policy.BalancePolicy.decide's action codes (NONE, SEND, STOP; docs/soc.md), local so they cost no RAM.
_BAL_NONE = const(0)
_BAL_SEND = const(1)
_BAL_STOP = const(2)

STATE_NAMES = ("START", "WAKE", "CHECK", "STANDBY", "RUNNING", "FAULT", "SLEEP")

# Running sub-states (what the current says).
IDLE = const(0)
CHARGING = const(1)
DISCHARGING = const(2)

# Fault causes besides protection trips (``fault_cause``).
FC_NONE = const(0)
FC_PROTECTION = const(1)
FC_CONFIG = const(2)  # chain does not match the settings
FC_LIMITS = const(3)  # the settings' limits were refused
FC_SWITCH = const(4)  # precharge fault

# Module CONFIG sent after CHECK (module board thermal limits for balancing, DESIGN.md §6).
MODULE_OW_PERIOD_S = const(60)
_MODULE_SILENCE_MS = const(2000)
_MODULE_TEMP_WARN_DC = const(600)
_MODULE_TEMP_LIMIT_DC = const(700)
_CONFIG_WAIT_MS = const(3000)

_STANDBY_CYCLES = const(2)  # fresh cycles protection sees before RUNNING may close a path
_IDLE_MA = const(500)  # |current| below this is "Idle" (unless the settings have rest_current_ma)
_HEALTHY_MS = const(2000)  # the watchdog is fed only while the chain made progress this recently
_RECHECK_MS = const(5000)  # with the chain not matching the settings, re-enumerate this often
_NOTE_CLEAR_CYCLES = const(300)  # about a minute of healthy cycles clears the safe-mode note
_LONG_PRESS_MS = const(3000)  # button held this long = user reset
_TEMPS_PER_MODULE = const(2)

_TEXT_START = "Starting…"
_TEXT_WAKE = "Waking modules…"
_TEXT_CHECK = "Checking modules…"
_TEXT_STANDBY = "Standby"
_TEXT_IDLE = "Idle"
_TEXT_CHARGING = "Charging…"
_TEXT_DISCHARGING = "Discharging…"
_TEXT_SLEEP = "Sleeping"
_TEXT_PRECHARGE = "Precharging…"
_TEXT_PRECHARGE_FAULT = "Precharge fault"


def _setting(settings, name: str, default: int) -> int:
    try:
        v = settings.get(name)
    except (KeyError, ValueError):
        return default
    return default if v is None else int(v)


class HostApp:
    """The host application.

    :param chain: a ``chain.ChainMaster`` (its UART is the host's DOWN port).
    :param settings: an object with ``get(name) -> int`` (``bms_settings.Settings``).
    :param switches: ``switches.MosfetSwitches`` or ``switches.ContactorSwitches``.
    :param current: a ``current_sensor.CurrentSensor`` or None (no current sensor: current unknown).
    :param indicators: an ``indicators.Indicators`` or None.
    :param services: ``host_services.HostServices`` (or the PC fake) or None (no watchdog).
    :param fet_temp: a callable returning the MOSFET/shunt temperature in 0.1 degC or ``UNKNOWN``, given
        only when the sensor is fitted (then ``UNKNOWN``, open or short, is a sensor fault); None = not fitted.
    :param soc: a ``soc.SocCounter`` or None; ``balance``: a ``balance_policy.BalancePolicy`` or None;
        ``soc_persist``: a ``soc_persist.SocPersist`` or None; ``store``: a
        ``settings_store.SettingsStore`` or None; ``console``: a ``usb_console.UsbConsole`` (whose
        facade is this app) or None: polled every step, a status line after every cycle.
    :param button: a ``digitalio`` input, low when pressed, or None: a short press mutes the
        buzzer, a press held ``_LONG_PRESS_MS`` is the user reset.
    """

    def __init__(self, chain, settings, *, switches, current=None, indicators=None, services=None,
                 fet_temp=None, soc=None, soc_persist=None, balance=None, store=None, console=None,
                 button=None, max_modules: int = 8, event_capacity: int = 32) -> None:
        self.chain = chain
        self.settings = settings
        self.switches = switches
        self.current = current
        self.indicators = indicators
        self.services = services
        self.fet_temp = fet_temp
        self.soc = soc
        self.soc_persist = soc_persist
        self.balance = balance
        self.store = store
        self.console = console
        self.button = button
        self._pressed_ms = -1
        self.pack = Pack(max_modules, chain.max_cells, _TEMPS_PER_MODULE)
        self.protection = Protection(event_capacity)
        self.events = self.protection.events
        self.values = [UNKNOWN] * N_COND
        self.where = [0] * N_COND
        self.state = ST_START
        self.sub = IDLE
        self.fault_cause = FC_NONE
        self.config_text = ""
        self.current_ma = UNKNOWN
        self.bus_mv = UNKNOWN
        self.cycles = 0  # chain cycles the host has processed
        self._seen_cycle = chain.cycle_count
        self._seen_enum = chain.enumerations
        self._enum_at_wake = chain.enumerations
        self._seen_count = -1
        self._progress_ms = 0
        self._state_ms = 0
        self._standby_cycles = 0
        self._settings_changes = -1
        self._idle_ma = _IDLE_MA
        self._cal_off = 0
        self._cal_gain = 1000000
        self._config_next = 0
        self._dir_hold = 0  # contactor: directions whose current forced the main open
        self._bal_pending = _BAL_NONE  # a BALANCE (or stop) the full command queue could not take yet
        self._sleep_requested = False
        self._wake_requested = False
        self._reset_requested = False
        self._status_due = False
        self._note_cleared = False
        self.calibrator = Calibrator()
        self.cal_error = ""
        self.sc_error = ""  # why the sc_trip_ma setting could not be programmed (the old limit stays)
        self._sc_retry = False
        self.raw_current_ma = UNKNOWN
        self.healthy = True

    # -- requests from the user interfaces ------------------------------------------------------
    def reset(self) -> None:
        """User reset (button, console, app): clears every latched trip (``Protection.latched``: short
        circuit, plausibility) and a precharge fault if their cause is gone. Applied at the next ``step``."""
        self._reset_requested = True

    def mute(self) -> None:
        if self.indicators is not None:
            self.indicators.mute()

    def request_sleep(self) -> None:
        """Open both paths, put the chain to sleep (modules stop balancing and sleep)."""
        self._sleep_requested = True

    def request_wake(self) -> None:
        self._wake_requested = True

    # -- what the status interfaces read --------------------------------------------------------
    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def charge_on(self) -> bool:
        return self.switches.charge_closed

    @property
    def discharge_on(self) -> bool:
        return self.switches.discharge_closed

    @property
    def power_mw(self) -> int:
        """Pack power in mW (charge positive), ``UNKNOWN`` without current or pack voltage."""
        if self.current_ma == UNKNOWN or self.pack.total_mv == UNKNOWN:
            return UNKNOWN
        # mV x mA / 1000 without a long int on the board: split the voltage into volts and mV.
        v = self.pack.total_mv
        i = self.current_ma
        return (v // 1000) * i + ((v % 1000) * i) // 1000

    @property
    def state_key(self) -> str:
        """A short ASCII word for machines (the console's "state"): starting, waking, checking, standby,
        idle, charging, discharging, precharging, fault, sleeping."""
        st = self.state
        if st == ST_RUNNING:
            if self.switches.state_text == "precharging":
                return "precharging"
            return ("idle", "charging", "discharging")[self.sub]
        return ("starting", "waking", "checking", "standby", "", "fault", "sleeping")[st]

    @property
    def state_text(self) -> str:
        """The dashboard's state line, as the original shows it ("Charging…")."""
        st = self.state
        if st == ST_RUNNING:
            c = self.protection.first_tripped()
            if c >= 0:
                return cond_text(c)
            if self.switches.state_text == "precharging":
                return _TEXT_PRECHARGE
            if self.sub == CHARGING:
                return _TEXT_CHARGING
            if self.sub == DISCHARGING:
                return _TEXT_DISCHARGING
            return _TEXT_IDLE
        if st == ST_FAULT:
            if self.fault_cause == FC_PROTECTION:
                c = self.protection.first_tripped()
                return cond_text(c) if c >= 0 else "Fault"
            if self.fault_cause == FC_SWITCH:
                return _TEXT_PRECHARGE_FAULT
            return self.config_text or "Fault"
        return (_TEXT_START, _TEXT_WAKE, _TEXT_CHECK, _TEXT_STANDBY, "", "", _TEXT_SLEEP)[st]

    @property
    def severity(self) -> int:
        p = self.protection
        if p.is_tripped(SC) or self.switches.fault or self.state == ST_FAULT:
            return 3
        if p.tripped:
            return 2
        if p.warnings:
            return 1
        return 0

    # -- the loop -------------------------------------------------------------------------------
    def step(self, now_ms: int) -> None:
        """One pass of the superloop. Never blocks."""
        chain = self.chain
        chain.step(now_ms)
        if chain.cycle_count != self._seen_cycle or chain.enumerations != self._seen_enum:
            self._progress_ms = now_ms
        self._button(now_ms)
        self._requests(now_ms)
        self._reload_settings(now_ms)

        st = self.state
        if st == ST_START:
            self._start(now_ms)
        elif st == ST_WAKE:
            if chain.enumerations != self._enum_at_wake and not self._chain_enumerating():
                self._check(now_ms)
        elif st == ST_CHECK:
            self._configure_modules(now_ms)
        elif st != ST_SLEEP and self.fault_cause != FC_LIMITS and not self._chain_enumerating():
            if chain.module_count != self._seen_count:
                self._check(now_ms)  # the chain grew (or was re-enumerated): check it again
            elif self.fault_cause == FC_CONFIG and ticks_diff(now_ms, self._state_ms) >= _RECHECK_MS:
                # A module may have been plugged in while the others all answer: look for it.
                self._state_ms = now_ms
                chain.request_enumerate()
        self._seen_enum = chain.enumerations

        if chain.cycle_count != self._seen_cycle:
            self._seen_cycle = chain.cycle_count
            st = self.state
            fc = self.fault_cause
            if (st == ST_STANDBY or st == ST_RUNNING or st == ST_FAULT) and (
                    fc == FC_NONE or fc == FC_PROTECTION or fc == FC_SWITCH):
                self._cycle(now_ms)
        elif self.current is not None and self.current.sc_alert and not self.protection.is_tripped(SC):
            # The hardware already cut the pack; make the firmware agree at once, not at the next cycle.
            self.values[SC] = 1
            self.protection.update(now_ms, self.values, self.where)

        self._decide(now_ms)
        self._balance_guard()
        self._drive(now_ms)
        if self.indicators is not None:
            self.indicators.step(now_ms, self.state, self.severity)
        if self.store is not None:
            self.store.step(now_ms, self.settings)
        if self.console is not None:
            self.console.poll(now_ms)
            if self._status_due:
                self._status_due = False
                self.console.write_status(now_ms)
        self._feed(now_ms)

    # -- pieces of the loop ---------------------------------------------------------------------
    def _set_state(self, now_ms: int, st: int, value: int = 0) -> None:
        if st != self.state:
            self.state = st
            self._state_ms = now_ms
            self.events.add(now_ms, EV_STATE, st, value, 0)

    def _button(self, now_ms: int) -> None:
        b = self.button
        if b is None:
            return
        if not b.value:
            if self._pressed_ms == -1:
                self._pressed_ms = now_ms
            elif self._pressed_ms != -2 and ticks_diff(now_ms, self._pressed_ms) >= _LONG_PRESS_MS:
                self._pressed_ms = -2  # held: reset once, nothing more until released
                self.reset()
        else:
            if self._pressed_ms >= 0 and ticks_diff(now_ms, self._pressed_ms) >= 30:
                self.mute()  # a short press (debounced)
            self._pressed_ms = -1

    def _requests(self, now_ms: int) -> None:
        if self._reset_requested:
            self._reset_requested = False
            if self.current is not None:
                self.current.clear_alert()
                self.values[SC] = 1 if self.current.sc_alert else 0
            if not self.switches.connected:
                # With the paths open nothing is measured: the last mismatch is the stale one that caused
                # the trip, and must not refuse the reset that reruns the check.
                self.values[PLAUS] = UNKNOWN
            self.protection.reset(now_ms, self.values)
            self.switches.reset()
            if self.fault_cause == FC_SWITCH:
                self.fault_cause = FC_NONE
                self._set_state(now_ms, ST_STANDBY)
                self._standby_cycles = 0
        if self._sleep_requested:
            self._sleep_requested = False
            self.switches.open_all()
            if self.balance is not None:
                self.balance.balancing = False  # the modules stop bleeding when they sleep
            self._bal_pending = _BAL_NONE
            if self.soc_persist is not None and self.state != ST_SLEEP:
                # SOC into flash before the host and chain go quiet: a power loss while asleep keeps it.
                self.soc_persist.before_sleep(now_ms, self.settings)
            self.chain.queue_sleep()
            self._set_state(now_ms, ST_SLEEP)
        if self._wake_requested:
            self._wake_requested = False
            if self.state == ST_SLEEP:
                self._enum_at_wake = self.chain.enumerations
                self.chain.wake()
                self._set_state(now_ms, ST_WAKE)

    def _reload_settings(self, now_ms: int) -> None:
        changes = getattr(self.settings, "changes", 0)
        if changes == self._settings_changes:
            return
        self._settings_changes = changes
        s = self.settings
        try:
            self.protection.load(s)
        except ValueError as e:
            self.config_text = str(e)
            self.fault_cause = FC_LIMITS
            self.events.add(now_ms, EV_CONFIG, FC_LIMITS, 0, 0)
            self._set_state(now_ms, ST_FAULT)
            return
        if self.fault_cause == FC_LIMITS:
            self.fault_cause = FC_NONE
            self._set_state(now_ms, ST_START)
        self._apply_sc_trip()
        self._idle_ma = _setting(s, "rest_current_ma", _IDLE_MA)
        self._cal_off = _setting(s, "cal_offset_ma", 0)
        self._cal_gain = _setting(s, "cal_gain_ppm", 1000000)
        if self.state in (ST_STANDBY, ST_RUNNING, ST_FAULT):
            self._check(now_ms)  # module or cell counts may have changed
        if self.soc is not None:
            # A changed capacity or full-charge voltage counts from now, without a reset.
            self.soc.configure(_setting(s, "capacity_mah", 100000), _setting(s, "full_charge_mv", 4200),
                               _setting(s, "cutoff_mv", 3000), _setting(s, "tail_current_ma", 2000),
                               _setting(s, "full_hold_ms", 30000), _setting(s, "empty_hold_ms", 5000),
                               _setting(s, "chemistry", -1))
        if self.soc_persist is not None:
            self.soc_persist.save_min = _setting(s, "soc_save_min", 360)
        if self.balance is not None:
            self.balance.configure(_setting(s, "bal_start_mv", 10), _setting(s, "bal_rest_soc_pct", 95),
                                   self._idle_ma, _setting(s, "bal_timeout_s", 30),
                                   _setting(s, "tail_current_ma", 2000))

    def _apply_sc_trip(self) -> None:
        """Program a changed ``sc_trip_ma`` into the sensor's hardware limit, without a reboot. A limit
        beyond the ADC range chosen at start is refused: the old one stays in the chip and ``sc_error``
        says why (shown as the status note); an I2C error is retried every cycle."""
        cur = self.current
        if cur is None or not hasattr(cur, "set_sc_trip_ma"):
            return
        want = _setting(self.settings, "sc_trip_ma", cur.sc_trip_ma)
        self._sc_retry = False
        if want == cur.sc_trip_ma and not self.sc_error:
            return
        try:
            cur.set_sc_trip_ma(want)
            self.sc_error = ""
        except ValueError as e:
            self.sc_error = str(e)
        except OSError:
            self.sc_error = "current sensor: sc_trip_ma not written yet (I2C error)"
            self._sc_retry = True

    def _chain_enumerating(self) -> bool:
        s = self.chain.state
        return s == S_WAKE or s == S_WAKE_WAIT or s == S_ENUM

    def _start(self, now_ms: int) -> None:
        if self.fault_cause == FC_LIMITS:
            return
        if self.services is not None and not self.services.watchdog_running:
            self.services.start_watchdog()
        self._progress_ms = now_ms
        self._set_state(now_ms, ST_WAKE)

    def _expected_counts(self):
        s = self.settings
        return _setting(s, "modules", 0), _setting(s, "cells_total", 0)

    def _check(self, now_ms: int) -> None:
        """Compare the enumerated chain with the settings; configure the pack or fault."""
        chain = self.chain
        self._seen_count = chain.module_count
        want_modules, want_cells = self._expected_counts()
        found = chain.module_count
        cells = 0
        per_module_ok = True
        for a in range(1, found + 1):
            cells += chain.cell_count[a]
            want = _setting(self.settings, "mod%d_cells" % a, 0)
            if want and want != chain.cell_count[a]:
                per_module_ok = False
        if found == 0 or found != want_modules or cells != want_cells or not per_module_ok \
                or found > self.pack.max_modules:
            self.config_text = "Found %d modules / %d cells, expected %d / %d" % (found, cells, want_modules,
                                                                                   want_cells)
            self.fault_cause = FC_CONFIG
            self.events.add(now_ms, EV_CONFIG, FC_CONFIG, cells, found)
            self.switches.open_all()
            self._set_state(now_ms, ST_FAULT)
            return
        if self._same_chain(found) and (self.state == ST_STANDBY or self.state == ST_RUNNING or (
                self.state == ST_FAULT and self.fault_cause != FC_CONFIG)):
            return  # nothing changed for the pack (e.g. a limit was edited): keep running, no glitch
        counts = [chain.cell_count[a] for a in range(1, found + 1)]
        self.pack.configure(counts)
        self.config_text = ""
        if self.fault_cause == FC_CONFIG:
            self.fault_cause = FC_NONE
        self._config_next = 1
        self._set_state(now_ms, ST_CHECK)

    def _same_chain(self, found: int) -> bool:
        pack = self.pack
        if pack.modules != found:
            return False
        for a in range(1, found + 1):
            if pack.cell_count[a - 1] != self.chain.cell_count[a]:
                return False
        return True

    def _configure_modules(self, now_ms: int) -> None:
        """Send each module its CONFIG (cell count, thermal limits); STANDBY when acked or after a bound."""
        chain = self.chain
        while 0 < self._config_next <= chain.module_count:
            a = self._config_next
            if not chain.queue_config(a, chain.cell_count[a], MODULE_OW_PERIOD_S, _MODULE_SILENCE_MS,
                                      _MODULE_TEMP_WARN_DC, _MODULE_TEMP_LIMIT_DC):
                return  # queue full: the rest next time
            self._config_next += 1
        acked = True
        for a in range(1, chain.module_count + 1):
            if not chain.config_acked[a]:
                acked = False
        if acked or ticks_diff(now_ms, self._state_ms) >= _CONFIG_WAIT_MS:
            self._standby_cycles = 0
            self._set_state(now_ms, ST_STANDBY)

    def _cycle(self, now_ms: int) -> None:
        """A chain cycle finished: rebuild the pack picture, read the current, run protection."""
        self.cycles += 1
        chain = self.chain
        pack = self.pack
        mc = chain.max_cells
        mt = chain.max_temps
        pack.begin()
        for a in range(1, pack.modules + 1):
            if chain.fresh[a] == FRESH_ALL and not chain.missing[a]:
                pack.set_module(a - 1, chain.cells_100uv, (a - 1) * mc, mc, chain.temps_dc, (a - 1) * mt,
                                chain.temp_count[a], chain.flags[a], chain.open_wire[a], chain.wiring[a])
        if self.fet_temp is not None:
            pack.set_fet_temp(self.fet_temp())
        pack.finish()

        cur = self.current
        sensor_fault = False
        if self._sc_retry:
            self._apply_sc_trip()
        if cur is not None:
            if cur.read():
                self.raw_current_ma = cur.current_ma
                self.current_ma = self._calibrated(cur.current_ma)
                self.bus_mv = cur.bus_mv
                if self.calibrator.busy:
                    self._calibrate_step(now_ms)
            else:
                self.current_ma = UNKNOWN
                self.bus_mv = UNKNOWN
                sensor_fault = True

        v = self.values
        w = self.where
        v[OV] = pack.max_mv
        w[OV] = pack.max_cell
        v[UV] = pack.min_mv
        w[UV] = pack.min_cell
        i = self.current_ma
        if i == UNKNOWN:
            v[CHG_OC] = UNKNOWN
            v[DSG_OC] = UNKNOWN
        else:
            v[CHG_OC] = i if i > 0 else 0
            v[DSG_OC] = -i if i < 0 else 0
        v[SC] = 1 if cur is not None and cur.sc_alert else 0
        v[CHG_OT] = v[DSG_OT] = pack.temp_max_dc
        w[CHG_OT] = w[DSG_OT] = pack.temp_max_sensor
        v[CHG_UT] = v[DSG_UT] = pack.temp_min_dc
        w[CHG_UT] = w[DSG_UT] = pack.temp_min_sensor
        v[FET_OT] = pack.fet_temp_dc
        v[MISSING] = pack.missing_count
        w[MISSING] = pack.first_missing
        v[OPEN_WIRE] = pack.open_wire_count
        v[WIRING] = pack.wiring_count
        # Host sensors that should answer and do not: both paths open after SENSOR_DELAY_MS (1 s, fixed).
        # A MOSFET sensor is fitted when ``fet_temp`` was given (code.py: FET_NTC_PIN set); reading open or
        # short it would leave the MOSFETs without over-temperature protection, so it is a fault too.
        fet_fault = self.fet_temp is not None and pack.fet_temp_dc == UNKNOWN
        v[SENSOR] = (1 if sensor_fault else 0) + (1 if fet_fault else 0)
        w[SENSOR] = 1 if sensor_fault else 2 if fet_fault else 0
        # Not one cell temperature known: a fact only while every module answers (a missing module's sensors
        # may be fine; ``missing`` blocks both paths meanwhile). One absent sensor among others is fine.
        if pack.temp_max_dc != UNKNOWN:
            v[NO_TEMP] = 0
        else:
            v[NO_TEMP] = UNKNOWN if pack.missing_count else 1
        if pack.total_mv != UNKNOWN and self.bus_mv != UNKNOWN and self.switches.connected:
            d = pack.total_mv - self.bus_mv
            v[PLAUS] = d if d >= 0 else -d
        else:
            v[PLAUS] = UNKNOWN
        self.protection.update(now_ms, v, w)

        if i != UNKNOWN:
            self.sub = CHARGING if i > self._idle_ma else DISCHARGING if i < -self._idle_ma else IDLE
        if self.state == ST_STANDBY:
            self._standby_cycles += 1
        self._soc_and_balance(now_ms)
        self._status_due = True

    def _calibrate_step(self, now_ms: int) -> None:
        cal = self.calibrator
        if not cal.feed(self.raw_current_ma, self._cal_off):
            return
        if not cal.name:
            self.cal_error = cal.error
            return
        try:
            self.settings.set(cal.name, cal.value)
        except ValueError as e:
            self.cal_error = str(e)
            return
        self.cal_error = ""
        self.settings_changed(now_ms)

    def _calibrated(self, raw_ma: int) -> int:
        if self._cal_off == 0 and self._cal_gain == 1000000:
            return raw_ma
        return calibration_apply(raw_ma, self._cal_off, self._cal_gain)

    def _soc_and_balance(self, now_ms: int) -> None:
        pack = self.pack
        lo = pack.min_mv if pack.min_mv != UNKNOWN and pack.known_cells == pack.n_cells else 0
        hi = pack.max_mv if lo else 0
        soc = self.soc
        if soc is not None:
            ev = 0
            if self.current_ma != UNKNOWN:
                ev = soc.update(self.current_ma, now_ms, lo, hi)
            if self.soc_persist is not None:
                # Also without a current reading: a trip (e.g. the sensor died) still saves the last count.
                self.soc_persist.step(now_ms, ev, self.protection.tripped != 0)
        bp = self.balance
        if bp is None or self.state != ST_RUNNING:
            return
        lo_100uv = hi_100uv = 0xFFFF
        if lo:
            # The AFE's own resolution (100 uV) for the target and the 1 mV stop, not the rounded mV.
            chain = self.chain
            mc = chain.max_cells
            lo_100uv = 0xFFFE
            hi_100uv = 0
            for m in range(pack.modules):
                base = m * mc
                for i in range(pack.cell_count[m]):
                    v = chain.cells_100uv[base + i]
                    if v < lo_100uv:
                        lo_100uv = v
                    if v > hi_100uv:
                        hi_100uv = v
        action = bp.decide(now_ms, lo_100uv, hi_100uv,
                           soc.soc_pct if soc is not None else 0, soc.full_seen if soc is not None else False,
                           self.protection.tripped != 0, self.current_ma if self.current_ma != UNKNOWN else 0)
        if action == _BAL_SEND:
            self._bal_pending = _BAL_SEND
        elif action == _BAL_STOP:
            self._bal_pending = _BAL_STOP
        self._send_balance()

    def _send_balance(self) -> None:
        """Queue the pending BALANCE (or stop); a full command queue keeps it for the next pass."""
        act = self._bal_pending
        if act == _BAL_SEND:
            bp = self.balance
            ok = self.chain.queue_balance(0xFF, bp.target_100uv, bp.timeout_s)
        elif act == _BAL_STOP:
            ok = self.chain.queue_balance(0xFF, 0, 0)
        else:
            return
        if ok:
            self._bal_pending = _BAL_NONE

    def _balance_guard(self) -> None:
        """Out of RUNNING (a FAULT of any cause, STANDBY after a re-check) the modules must stop bleeding
        now, not at their own timeout."""
        bp = self.balance
        if bp is not None and bp.balancing and self.state != ST_RUNNING and self.state != ST_SLEEP:
            bp.balancing = False
            self._bal_pending = _BAL_STOP
        if self._bal_pending:
            self._send_balance()

    def _decide(self, now_ms: int) -> None:
        """State changes that follow from protection and the switches."""
        st = self.state
        p = self.protection
        if self.switches.fault and st in (ST_STANDBY, ST_RUNNING):
            self.fault_cause = FC_SWITCH
            self.events.add(now_ms, EV_SWITCH, 0, self.switches.last_gap_mv if hasattr(self.switches,
                                                                                      "last_gap_mv") else 0, 0)
            self._set_state(now_ms, ST_FAULT)
            return
        both = p.blocked & BLOCK_BOTH == BLOCK_BOTH
        if st == ST_STANDBY:
            if both and self._standby_cycles >= 1:
                self.fault_cause = FC_PROTECTION
                self._set_state(now_ms, ST_FAULT)
            elif self._standby_cycles >= _STANDBY_CYCLES:
                self._set_state(now_ms, ST_RUNNING)
        elif st == ST_RUNNING:
            if both:
                self.fault_cause = FC_PROTECTION
                self._set_state(now_ms, ST_FAULT)
        elif st == ST_FAULT and self.fault_cause == FC_PROTECTION and not both:
            self.fault_cause = FC_NONE
            self._set_state(now_ms, ST_RUNNING)

    def _drive(self, now_ms: int) -> None:
        sw = self.switches
        if self.state != ST_RUNNING:
            if sw.charge_closed or sw.discharge_closed or sw.state != 0:
                sw.open_all()
            return
        p = self.protection
        chg = p.charge_allowed
        dsg = p.discharge_allowed
        if sw.kind == "contactor":
            # One contactor carries both directions: it stays closed while the allowed direction (or
            # nothing) flows, and opens when current flows the blocked way; it closes again only once
            # that direction is allowed. With the current unknown the direction cannot be seen, so a
            # blocked direction opens it at once (not only at the sensor fault's trip).
            i = self.current_ma
            if not chg and (i == UNKNOWN or i > self._idle_ma):
                self._dir_hold |= BLOCK_CHG
            if not dsg and (i == UNKNOWN or i < -self._idle_ma):
                self._dir_hold |= BLOCK_DSG
            if chg:
                self._dir_hold &= ~BLOCK_CHG
            if dsg:
                self._dir_hold &= ~BLOCK_DSG
            if self._dir_hold:
                chg = dsg = False
        sw.update(now_ms, chg, dsg, self.pack.total_mv, self.bus_mv)

    def _feed(self, now_ms: int) -> None:
        """Feed the watchdog only from a healthy loop: the chain master is making progress (cycles or
        re-enumeration), or the host is legitimately quiet (asleep)."""
        chain = self.chain
        quiet = self.state == ST_SLEEP or chain.state == S_ASLEEP
        self.healthy = quiet or ticks_diff(now_ms, self._progress_ms) < _HEALTHY_MS
        if self.healthy and self.services is not None:
            self.services.feed_watchdog()
            if not self._note_cleared and self.cycles >= _NOTE_CLEAR_CYCLES:
                # A healthy minute: whatever sent the board to safe mode is over; start counting afresh.
                self._note_cleared = True
                self.services.clear_safemode_note()

    # -- the USB console's facade (usb_console.UsbConsole) --------------------------------------
    condition_names = tuple(row[0] for row in PROTECTION_TABLE)

    def check_settings(self, pairs) -> str:
        """Before the console stores ``pairs`` ((name, value), ...): why the hardware cannot take them
        ("" when it can). A short-circuit limit beyond the sensor's range is refused here."""
        cur = self.current
        if cur is None or not hasattr(cur, "sc_trip_error"):
            return ""
        for name, value in pairs:
            if name == "sc_trip_ma":
                return cur.sc_trip_error(value)
        return ""

    def settings_changed(self, now_ms: int) -> None:
        """After a successful settings change: save it (budgeted); the limits reload next step."""
        if self.store is not None:
            self.store.settings_changed(now_ms)

    def fill_status(self, st) -> None:
        """Fill the console's preallocated ``Status`` (allocates nothing)."""
        pack = self.pack
        st.state = self.state_key
        st.pack_mv = pack.total_mv if pack.total_mv != UNKNOWN else 0
        st.current_ma = self.current_ma if self.current_ma != UNKNOWN else 0
        soc = self.soc
        if soc is not None:
            st.soc_pct = soc.soc_pct
            st.charge_mah = soc.charge_mah
            st.capacity_mah = soc.capacity_mah
            st.learned_mah = soc.learned_mah
            st.charged_mah = soc.charged_mah
            st.discharged_mah = soc.discharged_mah
            st.cycles = soc.cycles
        st.chg_on = self.switches.charge_closed
        st.dsg_on = self.switches.discharge_closed
        n = pack.n_cells if pack.n_cells <= len(st.cells_mv) else len(st.cells_mv)
        for k in range(n):
            v = pack.cells_mv[k]
            st.cells_mv[k] = CELL_UNKNOWN if v == UNKNOWN else v
        st.n_cells = n
        st.temps_dc[0] = TEMP_ABSENT if pack.fet_temp_dc == UNKNOWN else pack.fet_temp_dc
        nt = 1
        for k in range(pack.modules * pack.temps_per_module):
            if nt >= len(st.temps_dc):
                break
            v = pack.module_temp_dc[k]
            st.temps_dc[nt] = TEMP_ABSENT if v == UNKNOWN else v
            nt += 1
        st.n_temps = nt
        bal = 0
        for a in range(1, pack.modules + 1):
            b = self.chain.balance[a]
            while b:
                bal += b & 1
                b >>= 1
        st.balancing = bal
        st.warnings = self.protection.warnings
        st.faults = self.protection.tripped
        st.latched = self.protection.latched  # every latched trip (short circuit, plausibility)
        store = self.store
        if store is not None:
            st.nvm_erases0 = store.erases[0]
            st.nvm_erases1 = store.erases[1]
            st.nvm_pending = 1 if store.pending else 0
        if self.soc_persist is not None:
            st.soc_source = self.soc_persist.source
        if self.state == ST_FAULT and self.fault_cause != FC_PROTECTION:
            st.note = self.state_text
        elif self.cal_error:
            st.note = self.cal_error
        elif self.sc_error:
            st.note = self.sc_error
        elif store is not None:
            st.note = store.note
        else:
            st.note = ""

    def reset_latch(self, now_ms: int) -> str:
        """The console's user reset: the same as the button and ``reset()`` (every latched trip, a precharge
        fault); refused with the reason when nothing is latched or the short circuit is still there."""
        latched = self.protection.latched
        if not latched and not self.switches.fault:
            return "nothing latched"
        if self.current is not None and latched & (1 << SC):
            self.current.clear_alert()
            if self.current.sc_alert:
                return "short circuit still present"
        self.reset()
        return ""

    def calibrate(self, kind: str, true_ma: int) -> str:
        """Start a zero (no load) or gain (one known current) calibration over the next 10 cycles."""
        if self.current is None or not self.current.ok:
            return "no current sensor"
        try:
            if kind == "zero":
                self.calibrator.start_zero(10)
            else:
                self.calibrator.start_gain(true_ma, 10)
        except ValueError as e:
            return str(e)
        self.cal_error = ""
        return ""

    def event_log(self) -> list:
        out = []
        ev = self.events
        for n in range(len(ev)):
            t, kind, cause, value, where = ev.get(n)
            if kind == EV_STATE:
                what = STATE_NAMES[cause]
            elif kind < EV_STATE:
                what = PROTECTION_TABLE[cause][0]
            else:
                what = cause
            out.append({"t": t, "kind": KIND_NAMES[kind], "cause": what, "value": value, "where": where})
        return out

    def set_soc(self, pct: int) -> str:
        if self.soc is None:
            return "no SOC counter"
        self.soc.set_soc_pct(pct)
        return ""
