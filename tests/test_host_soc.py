"""SOC, its persistence and the balancing policy inside the running HostApp (chain rig, fake modules):
what a user notices across a sleep, a trip, a power loss and a settings change, and the BALANCE
commands the modules receive."""

import bms_packet as P
from bms_settings import Settings
from settings_store import SettingsStore
from soc import SocCounter
from soc_persist import NVM_LEN, SocPersist
from test_host_app import HostRig, SettableModule, test_settings

from balance_policy import BalancePolicy
from host_app import ST_FAULT, ST_RUNNING, ST_SLEEP


class RecordingModule(SettableModule):
    """A SettableModule that remembers every BALANCE it receives: (rig ms, target_100uv, timeout_s)."""

    clock = None  # set by SocRig: the rig's virtual clock

    def __init__(self, link, **kw):
        super().__init__(link, **kw)
        self.balance_cmds = []
        self.cells_100uv = None  # when set, GET_CELLS answers these instead of cells_mv

    def _handle(self, pkt, now_ms):
        if pkt.type == P.BALANCE and pkt.length == P.BALANCE_LEN:
            target, timeout_s = P.unpack_balance(pkt.payload, 0)
            self.balance_cmds.append((self.clock.total_ms, target, timeout_s))
        if pkt.type == P.GET_CELLS and self.cells_100uv is not None and self.sample_id is not None:
            # readings at the AFE's full resolution (100 uV), not whole mV
            n = P.pack_cells_into(self.link.tx_payload, 0, self.sample_id, self.cells_100uv, self.cell_count)
            self.link.reply(P.CELLS, pkt.seq, n)
            return None
        return super()._handle(pkt, now_ms)


class SocRig(HostRig):
    """HostRig whose app also has the SOC counter, its persistence, the settings store and the balance policy,
    built the way ``code.py`` builds them; the modules record the BALANCE commands they receive."""

    def __init__(self, n_modules=2, settings=None, chemistry_in_counter=True, **kw):
        self.chemistry_in_counter = chemistry_in_counter
        settings = settings or test_settings(n_modules)
        # A small pack, so a few simulated seconds move the SOC by whole tenths of a percent.
        settings.set("capacity_mah", 5000)
        super().__init__(n_modules=n_modules, settings=settings, module_cls=RecordingModule, **kw)
        RecordingModule.clock = self.clock

    def _host(self, uart, dir_pin, clock):
        app = super()._host(uart, dir_pin, clock)
        g = self.settings.get
        self.store = SettingsStore(self.services.nvm, NVM_LEN)
        self.soc = SocCounter(g("capacity_mah"), g("full_charge_mv"), g("cutoff_mv"), g("tail_current_ma"),
                              g("full_hold_ms"), g("empty_hold_ms"),
                              chemistry=g("chemistry") if self.chemistry_in_counter else -1)
        self.persist = SocPersist(self.soc, self.services.sleep_memory, self.store, save_min=g("soc_save_min"))
        self.persist.restore()
        self.balance = BalancePolicy(g("bal_start_mv"), g("bal_rest_soc_pct"), g("rest_current_ma"),
                                     g("bal_timeout_s"), g("tail_current_ma"))
        app.soc, app.soc_persist, app.store, app.balance = self.soc, self.persist, self.store, self.balance
        return app

    def after_power_loss(self):
        """What the board would restore after a power loss: a fresh store and counter on the same nvm, an
        empty sleep memory. Returns (source, SocCounter)."""
        s = Settings()
        store = SettingsStore(self.services.nvm, NVM_LEN)
        store.load(s)
        g = s.get
        soc = SocCounter(g("capacity_mah"), g("full_charge_mv"), g("cutoff_mv"), g("tail_current_ma"),
                         g("full_hold_ms"), g("empty_hold_ms"))
        p = SocPersist(soc, bytearray(256), store)
        return p.restore(), soc


# -- 1a: SOC in flash before sleep and at a trip -------------------------------------------------------

def test_going_to_sleep_puts_the_soc_in_flash():
    h = SocRig()
    h.start()
    h.app.soc.set_soc_pct(80)
    h.ina.set_current(-20000)  # 20 A for 10 s: 56 mAh of a 5 Ah pack
    h.run(10000)
    h.ina.set_current(0)
    h.run(400)
    assert h.app.soc.charge_mah < 4000 - 50
    h.app.request_sleep()
    h.run(500)
    assert h.app.state == ST_SLEEP
    source, soc = h.after_power_loss()
    assert source == "nvm", "a power loss while asleep must not lose the SOC"
    assert soc.charge_mah == h.app.soc.charge_mah


def test_a_trip_puts_the_soc_in_flash():
    h = SocRig()
    h.start()
    h.app.soc.set_soc_pct(80)
    s = h.settings
    h.ina.set_current(-(s.get("dsg_oc_trip_ma") + 5000))
    assert h.until(lambda: not h.dsg.value, s.get("dsg_oc_delay_ms") + 600)
    h.run(400)  # the trip's cycle has been counted and stored
    source, soc = h.after_power_loss()
    assert source == "nvm"
    assert abs(soc.charge_mah - h.app.soc.charge_mah) <= (s.get("dsg_oc_trip_ma") + 5000) * 600 // 3600000 + 1


def test_a_dead_current_sensor_trip_still_puts_the_soc_in_flash():
    h = SocRig()
    h.start()
    h.app.soc.set_soc_pct(80)
    h.ina.set_current(-20000)
    h.run(10000)
    h.ina.set_current(0)
    h.run(400)
    counted = h.app.soc.charge_mah
    h.i2c.nack.add(h.ina.address)  # the INA228 stops answering: a sensor fault trips both paths
    assert h.until(lambda: not h.dsg.value and not h.chg.value, 1000 + 1000)  # the sensor fault's fixed 1 s
    h.run(1000)
    source, soc = h.after_power_loss()
    assert source == "nvm" and soc.charge_mah == counted


# -- 1b: settings changes reach the SOC counter and its persistence -------------------------------------

def idle_minutes(h, minutes):
    """Let ``minutes`` pass at no load: the clock jumps a minute at a time, then a few cycles run."""
    for _ in range(minutes):
        h.clock.advance_us(59_600_000)
        h.run(400)


def test_changed_save_period_takes_effect_without_a_reset():
    h = SocRig()
    h.start()
    h.app.soc.set_soc_pct(80)
    h.settings.set("soc_save_min", 30)  # factory: 360 min
    h.app.settings_changed(h.clock.ms)
    h.run(3000)  # the settings record is written (after 2 s of settling), the SOC (80 %) rides in it
    assert h.after_power_loss()[1].soc_pct == 80
    h.app.soc.set_soc_pct(60)  # the charge moved by 20 %: worth a periodic save
    idle_minutes(h, 31)
    source, soc = h.after_power_loss()
    assert source == "nvm" and soc.soc_pct == 60, "the 30 min save period must apply without a reset"


def test_chemistry_from_the_settings_gives_the_first_start_estimate():
    # A counter built without a chemistry (as a simulator may build it): the app's settings supply it, so a
    # new NMC pack resting at 3.99 V per cell shows about 80 %, not 50 % until the first anchor.
    h = SocRig(chemistry_in_counter=False)
    for m in h.rig.modules:
        m.cells_mv = [3990] * 12
    h.start()
    h.run(400)
    assert h.app.soc.seeded and h.app.soc.soc_pct == 80


def test_changed_full_charge_voltage_anchors_at_the_new_level_without_a_reset():
    settings = test_settings(2)
    settings.set("full_hold_ms", 2000)
    h = SocRig(settings=settings)
    h.start()
    h.app.soc.set_soc_pct(60)
    for m in h.rig.modules:
        m.cells_mv = [4100] * 12  # below the factory full-charge voltage (4.20 V)
    h.ina.set_current(500)  # the charger's tail
    h.run(4000)
    assert not h.app.soc.full_seen
    h.settings.set("full_charge_mv", 4100)
    h.run(4000)
    assert h.app.soc.full_seen and h.app.soc.soc_pct == 100


# -- 2: balancing end to end ----------------------------------------------------------------------------

def _full_then_spread(h):
    """Charge to a full anchor with one low cell; returns the time of the anchor."""
    for m in h.rig.modules:
        m.cells_mv = [4200] * 12
    h.rig.modules[1].cells_mv[5] = 4170  # the lowest cell: 30 mV low
    h.ina.set_current(500)  # CV tail
    assert h.until(lambda: h.app.soc.full_seen, h.settings.get("full_hold_ms") + 1000)
    return h.clock.total_ms


def _balancing_after_full_charge():
    """Two modules, bleeding for 60 s windows after a full charge with one cell 30 mV low, current 0."""
    settings = test_settings(2)
    settings.set_many((("full_hold_ms", 2000), ("bal_timeout_s", 60)))
    h = SocRig(settings=settings)
    h.start()
    _full_then_spread(h)
    h.ina.set_current(0)
    h.run(1000)
    return h


def test_balancing_after_a_full_charge_targets_the_lowest_cell_renews_and_stops_at_1_mv():
    settings = test_settings(2)
    settings.set_many((("full_hold_ms", 2000), ("bal_timeout_s", 10)))
    h = SocRig(settings=settings)
    h.start()
    h.app.soc.set_soc_pct(60)
    h.run(2000)
    assert all(not m.balance_cmds for m in h.rig.modules), "no balancing before a full charge"
    t_full = _full_then_spread(h)
    h.ina.set_current(0)
    h.run(1000)
    for m in h.rig.modules:
        assert m.balance_cmds, "every module hears the BALANCE broadcast"
        t, target, timeout_s = m.balance_cmds[0]
        assert t - t_full <= 600 and target == 41700 + 10 and timeout_s == 10
    # renewed before the modules' own 10 s timeout runs out
    h.run(25000)
    times = [t for t, _, to in h.rig.modules[0].balance_cmds if to]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) >= 4 and max(gaps) < 10000
    # the cells converge: spread 1 mV -> one stop (timeout 0)
    for m in h.rig.modules:
        m.cells_mv = [4171] * 12
    h.rig.modules[1].cells_mv[5] = 4170
    h.run(1000)
    for m in h.rig.modules:
        assert m.balance_cmds[-1][2] == 0
    n = len(h.rig.modules[0].balance_cmds)
    h.run(15000)
    assert len(h.rig.modules[0].balance_cmds) == n, "nothing more once balanced"


def test_a_trip_that_opens_both_paths_stops_balancing():
    h = _balancing_after_full_charge()
    assert h.rig.modules[0].balance_cmds[-1][2] == 60
    t0 = h.clock.total_ms
    h.fet_dc = h.settings.get("fet_ot_trip_dc") + 10  # MOSFET over-temperature: both paths open (FAULT)
    assert h.until(lambda: h.app.state == ST_FAULT, h.settings.get("fet_ot_delay_ms") + 600)
    h.run(600)
    for m in h.rig.modules:
        stops = [t for t, _, to in m.balance_cmds if to == 0 and t >= t0]
        assert stops, "the modules must not bleed on for a minute behind a trip"
    assert not h.app.balance.balancing


def test_a_one_direction_trip_stops_balancing():
    h = _balancing_after_full_charge()
    t0 = h.clock.total_ms
    h.rig.modules[0].cells_mv[2] = h.settings.get("ov_trip_mv") + 20
    assert h.until(lambda: not h.chg.value, h.settings.get("ov_delay_ms") + 600)
    h.run(600)
    assert h.app.state == ST_RUNNING
    stops = [t for t, _, to in h.rig.modules[0].balance_cmds if to == 0 and t >= t0]
    assert stops


def test_a_discharge_stops_balancing_rest_resumes_it_and_the_charge_tail_keeps_it():
    h = _balancing_after_full_charge()
    assert h.app.balance.balancing
    assert h.settings.get("rest_current_ma") < 1500 <= h.settings.get("tail_current_ma")
    t0 = h.clock.total_ms
    h.ina.set_current(-30000)  # a 30 A load: the spread is now I x R, not charge
    h.run(1000)
    for m in h.rig.modules:
        after = [(t, to) for t, _, to in m.balance_cmds if t >= t0]
        assert after and after[0][1] == 0, "a stop as the load starts"
    assert not h.app.balance.balancing
    h.run(20000)
    for m in h.rig.modules:
        assert all(to == 0 for t, _, to in m.balance_cmds if t >= t0), "no BALANCE while under load"
    t1 = h.clock.total_ms
    h.ina.set_current(0)
    h.run(1000)
    assert h.app.balance.balancing
    assert [to for t, _, to in h.rig.modules[0].balance_cmds if t >= t1] == [60], "resumed at rest"
    t2 = h.clock.total_ms
    h.ina.set_current(1500)  # a charger's tail current (<= tail_current_ma): balancing goes on
    h.run(5000)
    assert h.app.balance.balancing
    assert all(to != 0 for t, _, to in h.rig.modules[0].balance_cmds if t >= t2)


def test_balance_target_uses_the_afe_resolution():
    # The lowest cell reads 4.1704 V: the target is 4.1714 V, not a value rounded to whole mV first.
    settings = test_settings(2)
    settings.set_many((("full_hold_ms", 2000), ("bal_timeout_s", 10)))
    h = SocRig(settings=settings)
    h.start()
    _full_then_spread(h)
    for m in h.rig.modules:
        m.cells_100uv = [42000] * 12
    h.rig.modules[1].cells_100uv[5] = 41704
    h.ina.set_current(0)
    h.run(6000)
    assert h.rig.modules[0].balance_cmds[-1][1:] == (41714, 10)
    # 0.9 mV of spread left: balanced, stop
    for m in h.rig.modules:
        m.cells_100uv = [41713] * 12
    h.rig.modules[1].cells_100uv[5] = 41704
    h.run(600)
    assert h.rig.modules[0].balance_cmds[-1][2] == 0 and not h.app.balance.balancing


def test_spread_that_rounds_to_1_mv_but_is_1_9_mv_keeps_balancing():
    # 4.1705 V and 4.1724 V show as 4171 and 4172 mV (1 mV apart) but are 1.9 mV apart: not balanced yet.
    settings = test_settings(2)
    settings.set_many((("full_hold_ms", 2000), ("bal_timeout_s", 10)))
    h = SocRig(settings=settings)
    h.start()
    _full_then_spread(h)
    for m in h.rig.modules:
        m.cells_100uv = [42000] * 12
    h.rig.modules[1].cells_100uv[5] = 41705
    h.ina.set_current(0)
    h.run(2000)
    assert h.app.balance.balancing
    for m in h.rig.modules:
        m.cells_100uv = [41724] * 12
    h.rig.modules[1].cells_100uv[5] = 41705
    h.run(2000)
    assert h.app.pack.spread_mv == 1  # what the status line shows
    assert h.app.balance.balancing and h.rig.modules[0].balance_cmds[-1][2] == 10, "stopped on a rounded 1 mV"
    # 1.0 mV at the AFE's resolution: done
    for m in h.rig.modules:
        m.cells_100uv = [41715] * 12
    h.rig.modules[1].cells_100uv[5] = 41705
    h.run(600)
    assert h.rig.modules[0].balance_cmds[-1][2] == 0 and not h.app.balance.balancing


def test_a_chain_that_no_longer_matches_the_settings_stops_balancing():
    h = _balancing_after_full_charge()
    assert h.app.balance.balancing
    t0 = h.clock.total_ms
    h.settings.set_many((("modules", 1), ("cells_total", 12), ("mod2_cells", 0)))
    assert h.until(lambda: h.app.state == ST_FAULT, 1000)
    h.run(600)
    for m in h.rig.modules:
        assert [t for t, _, to in m.balance_cmds if to == 0 and t >= t0], "no bleeding on behind a FAULT"
    assert not h.app.balance.balancing
