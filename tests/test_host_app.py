"""The host app end to end: 8 simulated modules on the cascade rig, the INA228 model behind the real
driver, MOSFET switches on simulated pins, protection with the settings' limits."""

import adafruit_ina228
import bms_packet as P
import pytest
from bms_settings import Settings

from chain import ChainMaster
from current_sensor import CurrentSensor
from hil.chain_rig import ChainRig
from hil.fake_module import FakeModule
from hil.host_services_sim import PrechargeBusModel, SimHostServices
from hil.ina228_model import INA228Model
from hil.sim_i2c import SimI2C
from hil.sim_pins import SimPin
from host_app import ST_FAULT, ST_RUNNING, ST_SLEEP, HostApp
from indicators import Indicators
from pack import UNKNOWN
from protection import EV_RELEASE, EV_TRIP, NO_TEMP, OV, PLAUS, SC, SENSOR
from switches import CLOSED, ContactorSwitches, MosfetSwitches


class SettableModule(FakeModule):
    """A FakeModule whose cell voltages, temperatures and status flags the test sets."""

    def __init__(self, link, **kw):
        super().__init__(link, **kw)
        self.cells_mv = [3700] * 12  # NMC mid-range: inside every release level
        self.temps_dc = [250] * P.MAX_TEMPS
        self.open_wire_bits = 0

    def _handle(self, pkt, now_ms):
        t = pkt.type
        if t not in (P.GET_CELLS, P.GET_TEMPS, P.GET_STATUS) or self.sample_id is None:
            return super()._handle(pkt, now_ms)
        link = self.link
        out = link.tx_payload
        sid = self.sample_id
        if t == P.GET_CELLS:
            cells = [mv * 10 for mv in self.cells_mv[: self.cell_count]]
            n = P.pack_cells_into(out, 0, sid, cells, self.cell_count)
            link.reply(P.CELLS, pkt.seq, n)
        elif t == P.GET_TEMPS:
            n = P.pack_temps_into(out, 0, sid, self.temps_dc, self.temps, 300)
            link.reply(P.TEMPS, pkt.seq, n)
        else:
            flags = P.FLAG_OPEN_WIRE if self.open_wire_bits else 0
            n = P.pack_status_into(out, 0, flags, self.open_wire_bits, 0, 0, 0, 0, self.cell_count)
            link.reply(P.STATUS, pkt.seq, n)


def test_settings(modules=8, cells=12):
    s = Settings()
    pairs = [("modules", modules), ("cells_total", modules * cells)]
    pairs += [("mod%d_cells" % i, cells if i <= modules else 0) for i in range(1, 9)]
    # Shorter release delays than the factory's 30 s, so a test covers a whole trip/release in seconds.
    pairs += [("chg_oc_release_ms", 3000), ("dsg_oc_release_ms", 3000)]
    s.set_many(pairs)
    return s


test_settings.__test__ = False  # a helper, not a test


VBUS_RATIO = 5  # a 5:1 divider in front of VBUS: 355 V of pack -> 71 V at the INA228


class HostRig:
    """ChainRig with a HostApp (and its INA228 model, pins and services) as the host."""

    def __init__(self, n_modules=8, settings=None, temps=1, start_ms=(1 << 29) - 3000, contactor=False,
                 module_cls=None, fet_fitted=True):
        self.settings = settings or test_settings(n_modules)
        self.contactor = contactor
        self.fet_fitted = fet_fitted
        self.parts = {}
        cls = module_cls or SettableModule
        self.rig = ChainRig(n_modules, start_ms=start_ms, host_factory=self._host,
                            module_factory=lambda i, up, down, clk: cls(_link(up, down), temps=temps,
                                                                        uid=0x1000 + i))
        self.app = self.rig.host
        self.clock = self.rig.clock

    def _host(self, uart, dir_pin, clock):
        chain = ChainMaster(uart, dir_pin=dir_pin, max_modules=8)
        self.i2c = i2c = SimI2C(clock)
        self.ina = INA228Model(shunt_uohm=250).attach_to(i2c)
        self.alert = SimPin("alert", clock, source=lambda: self.ina.alert_pin)
        self.sensor = CurrentSensor(adafruit_ina228.INA228(i2c), shunt_uohm=250, max_current_ma=300000,
                                    sc_trip_ma=self.settings.get("sc_trip_ma"), alert_pin=self.alert,
                                    vbus_ratio=VBUS_RATIO)
        self.chg = SimPin("chg", clock)
        self.dsg = SimPin("dsg", clock)
        self.led = SimPin("led", clock)
        self.buzzer = SimPin("buzzer", clock)
        self.services = SimHostServices(clock)
        self.fet_dc = 300
        self.bus_offset_mv = 0
        if self.contactor:
            # chg = main contactor, dsg = precharge relay; VBUS (load side) follows the RC model.
            self.bus_model = PrechargeBusModel(clock, self.chg, self.dsg, self._pack_mv, tau_ms=300)
            switches = ContactorSwitches(self.chg, self.dsg, margin_mv=5000, precharge_ms=3000, retries=2,
                                         pause_ms=2000)
        else:
            switches = MosfetSwitches(self.chg, self.dsg)
        return HostApp(chain, self.settings, switches=switches, current=self.sensor,
                       indicators=Indicators(self.led, self.buzzer), services=self.services,
                       fet_temp=(lambda: self.fet_dc) if self.fet_fitted else None)

    def _pack_mv(self):
        return sum(sum(m.cells_mv[: m.cell_count]) for m in self.rig.modules)

    def _bus(self):
        # VBUS sits on the load side; with the paths closed it reads the pack (plus an offset the test sets).
        if self.contactor:
            self.ina.set_bus(self.bus_model.bus_mv // VBUS_RATIO)
        else:
            self.ina.set_bus((self._pack_mv() + self.bus_offset_mv) // VBUS_RATIO)

    def _tick(self):
        self.rig.step()
        if self.contactor:
            self._bus()

    def run(self, ms):
        self._bus()
        if self.contactor:
            self.until(lambda: False, ms)
        else:
            self.rig.run_ms(ms, step_us=2000)

    def until(self, cond, ms):
        self._bus()
        if not self.contactor:
            return self.rig.run_until(cond, ms, step_us=2000)
        end = self.clock.total_ms + ms
        while self.clock.total_ms < end:
            self.clock.advance_us(2000)
            self._tick()
            if cond():
                return True
        return False

    def module(self, k):
        return self.rig.modules[k - 1]

    def start(self):
        assert self.until(lambda: self.app.state == ST_RUNNING, 5000), self.app.state_text
        assert self.chg.value and self.dsg.value

    def time_of_change(self, pin, value, since):
        for t, v in pin.history:
            if t is not None and t >= since and v == value:
                return t
        return None


def _link(up, down):
    from module_link import ModuleLink

    return ModuleLink(up, down)


def test_starts_and_runs_with_eight_modules():
    h = HostRig()
    h.start()
    p = h.app.pack
    assert p.n_cells == 96 and p.known_cells == 96 and p.total_mv == 96 * 3700
    assert h.app.state_text == "Idle"
    h.ina.set_current(20000)
    h.run(500)
    assert h.app.state_text == "Charging…" and abs(h.app.current_ma - 20000) <= 2
    assert h.services.feeds > 0 and not h.services.poll()


def trip_and_release(h, set_bad, set_release, set_good, pin, other, delay_ms, release_ms):
    """Common shape: bad value -> path opens after the debounce, not before, the other path stays;
    value between trip and release holds it; below release -> closes after the release delay."""
    t0 = h.clock.total_ms
    set_bad()
    h.run(delay_ms - 10)
    assert pin.value, "opened before its debounce"
    h.run(600)  # one to three 200 ms cycles late at most
    t_open = h.time_of_change(pin, False, t0)
    assert t_open is not None and delay_ms <= t_open - t0 <= delay_ms + 600
    assert other.value, "the other path must stay allowed"
    set_release()  # past trip but not past release: hysteresis holds
    h.run(release_ms + 1000)
    assert not pin.value
    t1 = h.clock.total_ms
    set_good()
    h.run(release_ms - 10)
    assert not pin.value, "released before its delay"
    h.run(600)
    t_close = h.time_of_change(pin, True, t1)
    assert t_close is not None and release_ms <= t_close - t1 <= release_ms + 600


def test_cell_ov_opens_charge_only_and_releases_with_hysteresis():
    h = HostRig()
    h.start()
    m = h.module(5)
    s = h.settings

    def cell(mv):
        return lambda: m.cells_mv.__setitem__(7, mv)

    trip_and_release(h, cell(s.get("ov_trip_mv") + 20), cell(s.get("ov_release_mv") + 50),
                     cell(s.get("ov_release_mv") - 20), h.chg, h.dsg, s.get("ov_delay_ms"), s.get("ov_release_ms"))
    ev = h.app.events
    n = ev.find(EV_TRIP, OV)
    assert n >= 0 and ev.get(n)[3] == s.get("ov_trip_mv") + 20 and ev.get(n)[4] == 4 * 12 + 8  # cell 56
    assert ev.find(EV_RELEASE, OV) > n


def test_cell_uv_opens_discharge_only():
    h = HostRig()
    h.start()
    m = h.module(1)
    s = h.settings

    def cell(mv):
        return lambda: m.cells_mv.__setitem__(0, mv)

    trip_and_release(h, cell(s.get("uv_trip_mv") - 20), cell(s.get("uv_release_mv") - 50),
                     cell(s.get("uv_release_mv") + 20), h.dsg, h.chg, s.get("uv_delay_ms"), s.get("uv_release_ms"))


def test_charge_and_discharge_overcurrent():
    h = HostRig()
    h.start()
    s = h.settings
    trip_and_release(h, lambda: h.ina.set_current(s.get("chg_oc_trip_ma") + 5000),
                     lambda: h.ina.set_current(s.get("chg_oc_release_ma") + 2000),
                     lambda: h.ina.set_current(0), h.chg, h.dsg, s.get("chg_oc_delay_ms"),
                     s.get("chg_oc_release_ms"))
    trip_and_release(h, lambda: h.ina.set_current(-(s.get("dsg_oc_trip_ma") + 5000)),
                     lambda: h.ina.set_current(-(s.get("dsg_oc_release_ma") + 2000)),
                     lambda: h.ina.set_current(0), h.dsg, h.chg, s.get("dsg_oc_delay_ms"),
                     s.get("dsg_oc_release_ms"))


@pytest.mark.parametrize("cond,pin_name,other_name", [
    ("chg_ot", "chg", "dsg"), ("chg_ut", "chg", "dsg"), ("dsg_ot", "dsg", "chg"), ("dsg_ut", "dsg", "chg")])
def test_temperature_windows(cond, pin_name, other_name):
    settings = test_settings()
    if cond.startswith("dsg"):
        # The factory charge window (0..45 C) lies inside the discharge window (-20..60 C), so a cell
        # outside the discharge window is outside the charge window too (covered below). Widen the charge
        # window here to see the discharge window alone.
        settings.set_many((("chg_ot_warn_dc", 680), ("chg_ot_trip_dc", 700), ("chg_ot_release_dc", 650),
                           ("chg_ut_warn_dc", -280), ("chg_ut_trip_dc", -300), ("chg_ut_release_dc", -250)))
    h = HostRig(settings=settings)
    h.start()
    s = h.settings
    m = h.module(3)
    high = cond.endswith("ot")
    trip = s.get(cond + "_trip_dc")
    rel = s.get(cond + "_release_dc")
    bad = trip + 10 if high else trip - 10
    mid = rel + 5 if high else rel - 5
    good = rel - 10 if high else rel + 10

    def temp(dc):
        return lambda: m.temps_dc.__setitem__(0, dc)

    trip_and_release(h, temp(bad), temp(mid), temp(good), getattr(h, pin_name), getattr(h, other_name),
                     s.get(cond + "_delay_ms"), s.get(cond + "_release_ms"))


def test_outside_discharge_window_with_factory_limits_opens_both_then_recovers():
    for cond, bad, good in (("dsg_ot", 620, 250), ("dsg_ut", -220, 250)):
        h = HostRig()
        h.start()
        s = h.settings
        m = h.module(2)
        t0 = h.clock.total_ms
        m.temps_dc[0] = bad
        h.run(s.get(cond + "_delay_ms") - 10)
        assert h.dsg.value
        h.run(600)
        t = h.time_of_change(h.dsg, False, t0)
        assert t is not None and s.get(cond + "_delay_ms") <= t - t0 <= s.get(cond + "_delay_ms") + 600
        assert not h.chg.value and h.app.state == ST_FAULT
        m.temps_dc[0] = good
        assert h.until(lambda h=h: h.dsg.value and h.chg.value, 15000)


def test_mosfet_overtemperature_opens_both():
    h = HostRig()
    h.start()
    h.fet_dc = h.settings.get("fet_ot_trip_dc") + 10
    assert h.until(lambda: not h.chg.value and not h.dsg.value, h.settings.get("fet_ot_delay_ms") + 600)
    assert h.app.state_text == "MOSFET over-temperature"


def test_unplugged_module_cells_unknown_both_open_then_recovers():
    h = HostRig()
    h.start()
    s = h.settings
    t0 = h.clock.total_ms
    h.rig.links[6].unplugged = True  # module 7 (and 8 behind it) lose the host
    h.run(400)
    assert h.app.pack.cells_mv[6 * 12] == UNKNOWN and h.app.pack.cells_mv[7 * 12 + 11] == UNKNOWN
    assert h.app.pack.cells_mv[0] == 3700
    assert h.app.pack.total_mv == UNKNOWN
    assert h.until(lambda: not h.chg.value and not h.dsg.value, s.get("module_missing_ms") + 600)
    t_open = h.clock.total_ms - t0
    assert t_open >= s.get("module_missing_ms")
    assert h.app.state_text == "Module missing"
    h.rig.links[6].unplugged = False
    assert h.until(lambda: h.chg.value and h.dsg.value, 10000)
    assert h.app.pack.known_cells == 96


def test_short_circuit_opens_both_at_once_and_latches_until_reset():
    h = HostRig()
    h.start()
    h.run(50)
    t0 = h.clock.total_ms
    h.ina.set_current(-(h.settings.get("sc_trip_ma") + 50000))
    h.ina.set_current(-10000)  # the hardware cut it: the current is gone a moment later
    h.run(10)
    assert not h.chg.value and not h.dsg.value
    assert h.time_of_change(h.dsg, False, t0) - t0 <= 4  # the next loop pass, not the next cycle
    h.ina.set_current(0)
    h.run(30000)
    assert not h.chg.value and not h.dsg.value and h.app.protection.is_tripped(SC)
    assert h.app.state_text == "Short circuit"
    h.app.reset()
    assert h.until(lambda: h.chg.value and h.dsg.value, 2000)


def test_absent_temperature_sensor_shows_absent_and_trips_nothing():
    h = HostRig(temps=2)
    h.start()
    h.module(4).temps_dc[1] = P.TEMP_ABSENT
    h.run(5000)
    assert h.chg.value and h.dsg.value and h.app.protection.tripped == 0
    assert h.app.pack.sensor_state(3 * 2 + 1) == "absent"
    assert h.app.pack.sensor_state(3 * 2) == "ok"


def test_wrong_module_count_is_a_config_fault():
    h = HostRig(n_modules=7, settings=test_settings(8))
    assert h.until(lambda: h.app.state == ST_FAULT, 5000)
    assert "Found 7 modules / 84 cells, expected 8 / 96" == h.app.state_text
    h.run(2000)
    assert not h.chg.value and not h.dsg.value


def test_sleep_and_wake():
    h = HostRig()
    h.start()
    h.app.request_sleep()
    h.run(500)
    assert h.app.state == ST_SLEEP and not h.chg.value and not h.dsg.value
    assert all(m.asleep for m in h.rig.modules)
    h.app.request_wake()
    assert h.until(lambda: h.app.state == ST_RUNNING, 5000)


def test_pack_voltage_implausible_opens_both():
    h = HostRig()
    h.start()
    h.run(6000)
    assert h.chg.value and h.dsg.value  # sum of cells and VBUS agree
    h.bus_offset_mv = h.settings.get("plaus_tol_mv") + 1500
    t0 = h.clock.total_ms
    assert h.until(lambda: not h.dsg.value, h.settings.get("plaus_delay_ms") + 600)
    assert h.clock.total_ms - t0 >= h.settings.get("plaus_delay_ms")
    assert h.app.state_text == "Pack voltage implausible"


def test_contactor_precharges_then_closes_main():
    h = HostRig(contactor=True)
    assert h.until(lambda: h.app.switches.state == CLOSED, 8000), h.app.state_text
    main, pre = h.chg, h.dsg
    t_pre = [t for t, v in pre.history if v][0]
    t_main = [t for t, v in main.history if v][0]
    assert t_main > t_pre and main.value and not pre.value
    assert h.app.state == ST_RUNNING and h.app.state_text == "Idle"


def test_contactor_precharge_fault_after_retries_then_reset():
    h = HostRig(contactor=True)
    h.bus_model.stuck = True  # a shorted load: the bus never rises
    assert h.until(lambda: h.app.state == ST_FAULT, 30000)
    assert h.app.state_text == "Precharge fault"
    assert len([t for t, v in h.dsg.history if v]) == 3  # one attempt + two retries
    assert not any(v for t, v in h.chg.history)  # main never closed
    h.run(10000)
    assert len([t for t, v in h.dsg.history if v]) == 3  # and no more tries without a reset
    h.bus_model.stuck = False
    h.app.reset()
    assert h.until(lambda: h.app.switches.state == CLOSED, 10000)


def test_open_sense_wire_opens_both_and_releases_after_it_is_fixed():
    h = HostRig()
    h.start()
    h.module(6).open_wire_bits = 1 << 4  # C4 open, as reported by the module's ADOW check
    assert h.until(lambda: not h.chg.value and not h.dsg.value, 600)
    assert h.app.state_text == "Open sense wire"
    h.module(6).open_wire_bits = 0
    t0 = h.clock.total_ms
    assert h.until(lambda: h.chg.value and h.dsg.value, 7000)
    assert h.clock.total_ms - t0 >= 5000  # fixed release delay of open wire


def test_editing_a_limit_while_running_does_not_glitch_the_outputs():
    h = HostRig()
    h.start()
    t0 = h.clock.total_ms
    h.settings.set("ov_warn_mv", h.settings.get("ov_warn_mv") - 10)
    h.run(2000)
    assert h.time_of_change(h.chg, False, t0) is None and h.time_of_change(h.dsg, False, t0) is None
    assert h.app.protection.limit(OV, "warn") == h.settings.get("ov_warn_mv")  # the new limit is in force


def test_changing_the_module_count_setting_rechecks_the_chain():
    h = HostRig()
    h.start()
    pairs = [("modules", 7), ("cells_total", 84), ("mod8_cells", 0)]
    h.settings.set_many(pairs)
    assert h.until(lambda: h.app.state == ST_FAULT, 1000)
    assert not h.chg.value and not h.dsg.value
    assert "expected 7 / 84" in h.app.state_text


def test_noisy_link_never_crashes_and_never_runs_on_unknown_cells():
    h = HostRig()
    h.start()
    h.rig.set_faults(byte_corrupt_prob=0.002)
    closed_while_missing_ms = 0
    worst = 0
    end = h.clock.total_ms + 20000
    while h.clock.total_ms < end:
        h.until(lambda: True, 2)
        if h.app.pack.missing_count and (h.chg.value or h.dsg.value):
            closed_while_missing_ms += 2
            worst = max(worst, closed_while_missing_ms)
        else:
            closed_while_missing_ms = 0
    # a path may stay closed over missing data only for the missing-module debounce (plus a cycle)
    assert worst <= h.settings.get("module_missing_ms") + 400
    h.rig.set_faults(byte_corrupt_prob=0.0)
    assert h.until(lambda: h.chg.value and h.dsg.value and h.app.pack.known_cells == 96, 10000)
    assert h.app.chain.crc_errors > 0  # the noise really reached the host


def test_refused_limits_hold_both_paths_open_with_the_reason():
    class Broken:
        changes = 0

        def __init__(self, good):
            self.good = good

        def get(self, name):
            if name == "uv_release_mv":
                return 2900  # below the UV trip: contradictory
            return self.good.get(name)

    h = HostRig(settings=Broken(test_settings()))
    h.run(3000)
    assert h.app.state == ST_FAULT and "uv" in h.app.state_text and "rule" in h.app.state_text
    assert not h.chg.value and not h.dsg.value


def test_single_contactor_opens_only_when_current_flows_the_blocked_way():
    h = HostRig(contactor=True)
    assert h.until(lambda: h.app.switches.state == CLOSED, 8000)
    s = h.settings
    h.ina.set_current(-20000)  # discharging
    h.module(2).cells_mv[3] = s.get("ov_trip_mv") + 20  # OV: charging blocked
    h.run(s.get("ov_delay_ms") + 1000)
    assert not h.app.protection.charge_allowed
    assert h.chg.value, "the main contactor stays closed: the allowed direction flows"
    h.ina.set_current(15000)  # a charger pushes into the OV cell
    assert h.until(lambda: not h.chg.value, 600)
    h.ina.set_current(0)
    h.run(3000)
    assert not h.chg.value, "stays open until charging is allowed again"
    h.module(2).cells_mv[3] = s.get("ov_release_mv") - 20
    assert h.until(lambda: h.app.switches.state == CLOSED, s.get("ov_release_ms") + 6000)


def test_current_sensor_fault_opens_both_after_its_own_short_delay_not_the_plausibility_delay():
    settings = test_settings()
    settings.set("plaus_delay_ms", 600000)  # the longest the schema allows: must not delay a sensor fault
    h = HostRig(settings=settings)
    h.start()
    t0 = h.clock.total_ms
    h.i2c.nack.add(h.ina.address)  # the INA228 stops answering
    h.run(1000 - 10)
    assert h.chg.value and h.dsg.value, "one missed reading is not yet a fault"
    assert h.until(lambda: not h.chg.value and not h.dsg.value, 600)
    assert 1000 <= h.time_of_change(h.dsg, False, t0) - t0 <= 1600
    assert h.app.state_text == "Sensor fault" and h.app.protection.trip_where[SENSOR] == 1
    h.i2c.nack.discard(h.ina.address)  # it answers again: released after 5 s of good readings
    t1 = h.clock.total_ms
    assert h.until(lambda: h.chg.value and h.dsg.value, 7000)
    assert h.clock.total_ms - t1 >= 5000


def test_fitted_mosfet_sensor_reading_open_or_short_is_a_sensor_fault_that_opens_both():
    h = HostRig()
    h.start()
    t0 = h.clock.total_ms
    h.fet_dc = UNKNOWN  # pack.ntc_temp_dc's answer for an open or shorted NTC
    h.run(1000 - 10)
    assert h.chg.value and h.dsg.value
    assert h.until(lambda: not h.chg.value and not h.dsg.value, 600)
    assert 1000 <= h.time_of_change(h.dsg, False, t0) - t0 <= 1600  # the sensor fault's 1 s, not fet_ot's
    assert h.app.state_text == "Sensor fault" and h.app.protection.trip_where[SENSOR] == 2
    h.fet_dc = 300
    assert h.until(lambda: h.chg.value and h.dsg.value, 7000)


def test_unfitted_mosfet_sensor_is_absent_and_trips_nothing():
    h = HostRig(fet_fitted=False)
    h.start()
    h.run(5000)
    assert h.chg.value and h.dsg.value and h.app.protection.tripped == 0
    assert h.app.pack.fet_temp_dc == UNKNOWN


@pytest.mark.parametrize("required", [1, 0])
def test_no_cell_temperature_at_all_blocks_charging_unless_not_required(required):
    settings = test_settings()
    settings.set("temp_required", required)
    h = HostRig(settings=settings, temps=2)
    for m in h.rig.modules:
        m.temps_dc[0] = m.temps_dc[1] = P.TEMP_ABSENT  # not one cell temperature in the pack
    assert h.until(lambda: h.app.state == ST_RUNNING, 5000), h.app.state_text
    h.run(2000)
    assert h.dsg.value, "discharging stays allowed"
    assert h.app.protection.is_warning(NO_TEMP), "always a warning"
    if required:
        assert not h.chg.value and h.app.state_text == "No cell temperature"
        assert not any(v for t, v in h.chg.history), "charging never began without a cell temperature"
        h.module(5).temps_dc[1] = 50  # one sensor reads (5.0 degC): charging may start
        assert h.until(lambda: h.chg.value, 2000)
    else:
        assert h.chg.value and h.app.protection.tripped == 0


def test_single_contactor_opens_at_once_when_a_direction_is_blocked_and_the_current_is_unknown():
    h = HostRig(contactor=True)
    assert h.until(lambda: h.app.switches.state == CLOSED, 8000)
    s = h.settings
    h.ina.set_current(-20000)  # discharging
    h.module(2).cells_mv[3] = s.get("ov_trip_mv") + 20  # OV: charging blocked
    h.run(s.get("ov_delay_ms") + 1000)
    assert not h.app.protection.charge_allowed and h.chg.value  # the allowed direction flows: stays closed
    t0 = h.clock.total_ms
    h.i2c.nack.add(h.ina.address)  # the direction can no longer be seen: a charger may be pushing in
    assert h.until(lambda: not h.chg.value, 450), "the contactor must not wait for the sensor fault"
    assert not h.app.protection.is_tripped(SENSOR) and h.clock.total_ms - t0 < 1000
    h.i2c.nack.discard(h.ina.address)
    h.run(8000)  # the current is seen again (the sensor fault released), but charging is still blocked
    assert not h.chg.value, "stays open until charging is allowed again"
    h.module(2).cells_mv[3] = s.get("ov_release_mv") - 20
    assert h.until(lambda: h.app.switches.state == CLOSED, s.get("ov_release_ms") + 6000)


def test_console_shows_every_latched_trip_and_its_reset_latch_clears_it_like_the_button():
    from usb_console import Status

    h = HostRig()
    h.start()
    h.run(1000)
    assert h.app.reset_latch(h.clock.total_ms) == "nothing latched"
    h.bus_offset_mv = h.settings.get("plaus_tol_mv") + 1500  # implausible pack voltage: a latched trip
    assert h.until(lambda: not h.chg.value and not h.dsg.value, h.settings.get("plaus_delay_ms") + 600)
    st = Status()
    h.app.fill_status(st)
    assert st.latched == 1 << PLAUS == h.app.protection.latched
    h.bus_offset_mv = 0  # fixed
    assert h.app.reset_latch(h.clock.total_ms) == ""
    assert h.until(lambda: h.chg.value and h.dsg.value, 2000)
    h.app.fill_status(st)
    assert st.latched == 0


def _console(h):
    import json

    from hil.sim_serial import stream_pair
    from usb_console import UsbConsole

    fw, pc = stream_pair()
    h.app.console = UsbConsole(fw, h.app)

    def ask(line):
        pc.write((line + "\n").encode())
        h.run(400)
        while pc.in_waiting:
            msg = json.loads(pc.readline())
            if msg.get("type") != "status":
                return msg
        return None

    return ask


def test_sc_trip_ma_changed_at_run_time_reaches_the_hardware_limit_or_is_refused_with_the_reason():
    h = HostRig()
    h.start()
    ask = _console(h)
    rep = ask("set sc_trip_ma=200000")
    assert rep["ok"], rep
    h.run(400)
    assert h.sensor.limit_ma == 200000 and h.ina.regs[0x0C] == 200000 * 250 // 5000  # no reboot needed
    h.ina.set_current(-250000)  # beyond the new limit, below the factory 300 A: the hardware cuts it
    h.run(10)
    assert not h.chg.value and not h.dsg.value and h.app.protection.is_tripped(SC)
    h.ina.set_current(0)
    h.app.reset()
    assert h.until(lambda: h.chg.value and h.dsg.value, 2000)
    # 700 A on 250 uOhm is 175 mV: beyond the +-163.84 mV range chosen at start. Refused, with the reason.
    rep = ask("set sc_trip_ma=700000")
    assert not rep["ok"] and "range" in rep["error"], rep
    assert h.settings.get("sc_trip_ma") == 200000 and h.sensor.limit_ma == 200000
    # The same value from elsewhere (e.g. a stored record, a future interface): a warning, never a crash.
    t0 = h.clock.total_ms
    h.settings.set("sc_trip_ma", 700000)
    h.run(1000)
    assert h.sensor.limit_ma == 200000  # the old limit stays in the chip
    assert "sc_trip_ma" in h.app.sc_error and "range" in h.app.sc_error
    assert h.time_of_change(h.dsg, False, t0) is None  # running on, with the limit that is programmed
    h.settings.set("sc_trip_ma", 250000)
    h.run(400)
    assert h.sensor.limit_ma == 250000 and h.app.sc_error == ""
