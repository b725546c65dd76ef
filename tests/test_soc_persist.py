"""SOC across resets (sleep_memory) and power loss (nvm), and a year of daily cycles within the flash budget."""

import random

from bms_settings import Settings
from settings_store import SettingsStore
from soc import SocCounter
from soc_persist import NVM_LEN, SocPersist
from test_settings_store import FlashNvm

PERIOD = 1 << 29


class MiniHost:
    """The SOC and storage part of the host loop, in the order host_app runs it."""

    def __init__(self, nvm, sleep_memory):
        self.settings = Settings()
        self.store = SettingsStore(nvm, NVM_LEN)
        self.store.load(self.settings)
        g = self.settings.get
        self.soc = SocCounter(g("capacity_mah"), g("full_charge_mv"), g("cutoff_mv"), g("tail_current_ma"),
                              g("full_hold_ms"), g("empty_hold_ms"))
        self.persist = SocPersist(self.soc, sleep_memory, self.store, save_min=g("soc_save_min"))
        self.source = self.persist.restore()
        self.written_mams = None

    def step(self, now_ms, current_ma, cmin=3700, cmax=3800, trip=False):
        ev = self.soc.update(current_ma, now_ms, cmin, cmax)
        self.persist.step(now_ms, ev, trip)
        if self.store.step(now_ms, self.settings):
            self.written_mams = self.soc.charge_mams
        return ev


def _discharge(h, t, seconds, current_ma=-20000, step_ms=1000):
    for _ in range(seconds * 1000 // step_ms):
        t = (t + step_ms) % PERIOD
        h.step(t, current_ma)
    return t


def test_reset_mid_discharge_restores_exactly_from_sleep_memory():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    h.settings.set("capacity_mah", 50000)
    h.store.settings_changed(0)
    h.soc.configure(50000, 4200, 3000, 2000, 30000, 5000)
    h.soc.set_soc_pct(90)
    t = _discharge(h, PERIOD - 600000, 3600)  # one hour at 20 A, the tick counter wraps on the way
    before = (h.soc.charge_mams, h.soc.discharged_mah, h.soc.throughput_mams(False), h.soc.cycles)
    r = MiniHost(nvm, sm)  # reset: RAM gone, sleep_memory kept
    assert r.source == "sleep_memory"
    assert r.settings.get("capacity_mah") == 50000
    assert (r.soc.charge_mams, r.soc.discharged_mah, r.soc.throughput_mams(False), r.soc.cycles) == before
    assert r.soc.soc_pct == 50
    _discharge(r, t, 60)
    # the first reading after a restart only starts the clock (the reset's own gap is not counted)
    assert r.soc.charge_mams == before[0] - 20000 * 59000


def test_power_loss_restores_from_nvm_within_what_happened_since_the_last_write():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    h.soc.set_soc_pct(100)
    t = 0
    for _ in range(3):  # discharge 30 h at 2 A with trips: several nvm saves on the way
        t = _discharge(h, t, 10 * 3600, current_ma=-2000, step_ms=10000)
        h.step(t, 0, trip=True)
        h.step(t + 10, 0, trip=False)
    assert h.written_mams is not None
    t = _discharge(h, t, 2 * 3600, current_ma=-2000, step_ms=10000)  # 4 Ah after the last write
    true_mams = h.soc.charge_mams
    rng = random.Random(7)
    garbage = bytearray(rng.getrandbits(8) for _ in range(256))  # RAM after a power loss
    r = MiniHost(nvm, garbage)
    assert r.source == "nvm"
    assert r.soc.charge_mams == h.written_mams
    assert 0 < r.soc.charge_mams - true_mams <= 2000 * 2 * 3600 * 1000 + 2000 * 10000


def test_power_loss_cancels_a_capacity_learning_run():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    t = 0
    for _ in range(40):
        t += 1000
        h.step(t, 1000, cmax=4200)
    assert h.soc.learning
    r = MiniHost(nvm, bytearray(256))
    assert r.source == "nvm" and r.soc.soc_pct == 100 and not r.soc.learning


def test_reboot_loop_wears_nothing():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    h.step(0, 0)
    h.step(200, 0)
    base = list(nvm.erases)
    for k in range(50):
        h = MiniHost(nvm, sm)
        for i in range(10):
            h.step(k * 10000 + i * 200, -100)
    assert nvm.erases == base


def test_before_sleep_saves_to_nvm():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    h.soc.set_soc_pct(80)
    t = _discharge(h, 0, 600, current_ma=-30000)
    assert h.persist.before_sleep(t, h.settings)
    r = MiniHost(nvm, bytearray(256))
    assert r.soc.charge_mams == h.soc.charge_mams


def test_a_year_of_daily_cycles_stays_within_the_erase_budget():
    nvm, sm = FlashNvm(), bytearray(256)
    h = MiniHost(nvm, sm)
    true_cap_mams = 95000 * 3600000  # the cells hold 95 Ah; the setting says 100 Ah
    true = true_cap_mams // 2
    step_ms = 600000  # 10 min
    t = 0
    phase = "dsg"
    fulls = empties = 0
    for _day in range(365):
        for k in range(144):
            v = 3000 + 1200 * true // true_cap_mams
            hour = k // 6
            if phase == "dsg":
                cur = -min(8000, true // step_ms)  # the load stops when the cells are empty
                if true <= 0 and hour >= 14:
                    phase = "chg"
            elif phase == "chg":
                cur = 15000 if true < true_cap_mams * 97 // 100 else 1500
                cur = min(cur, (true_cap_mams - true) // step_ms)  # the charger stops when full
                if true >= true_cap_mams and hour < 2:
                    phase = "dsg"
            ev = h.step(t, cur, v, v)
            fulls += ev & 1
            empties += (ev >> 1) & 1
            true = max(0, min(true_cap_mams, true + cur * step_ms))
            t = (t + step_ms) % PERIOD
    assert fulls >= 360 and empties >= 360
    assert 94900 <= h.soc.learned_mah <= 95100
    erases = h.store.erases
    assert max(erases) <= 3 * 365, erases  # ~3 erases a day per page: 10 000 in 10 years
    assert sum(erases) <= 4 * 365 + 16, erases
    assert h.soc.cycles >= 350

