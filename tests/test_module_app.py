"""The module app on a simulated board: real driver, real link, chip model, simulated host cable."""

import bms_packet as P
from hil.clock import TICKS_PERIOD, VirtualClock
from hil.module_services_sim import HostProbe, SimModuleBoard
from hil.sim_uart import SimLink

MV = 1000  # uV


class Rig:
    """One module on its UP cable, a host probe at the other end, a DOWN cable to nothing."""

    def __init__(self, cells_mv, *, start_ms=0, drain_uv_per_ms=0, **app_kwargs):
        self.clock = VirtualClock(start_ms)
        self.cells_uv = [v * MV for v in cells_mv] + [0] * (12 - len(cells_mv))
        self.up = SimLink(self.clock, name="up")
        self.down = SimLink(self.clock, name="down")
        self.board = SimModuleBoard(self.clock, self.up.b, self.down.a, lambda: self.cells_uv, **app_kwargs)
        self.model = self.board.model
        self.host = HostProbe(self.up.a)
        self.drain_uv_per_ms = drain_uv_per_ms
        self.max_bleeding = 0
        self.adjacent_seen = False
        self.sid = 0

    @property
    def app(self):
        return self.board.app

    def run(self, ms):
        for _ in range(ms):
            self.clock.advance(1)
            mask = self.model.discharge_mask
            if mask & (mask >> 1):
                self.adjacent_seen = True
            self.max_bleeding = max(self.max_bleeding, bin(mask).count("1"))
            if self.drain_uv_per_ms:
                for i in range(12):
                    if mask >> i & 1:
                        self.cells_uv[i] -= self.drain_uv_per_ms
            self.board.step(self.clock.ms)

    def request(self, dst, ptype, payload=b"", timeout_ms=50):
        seq = self.host.send(dst, ptype, payload)
        self.last_host_ms = self.clock.total_ms
        for _ in range(timeout_ms):
            self.run(1)
            r = self.host.take(seq)
            if r is not None:
                return r
        return None

    def enumerate(self):
        r = self.request(P.ADDR_BROADCAST, P.ENUMERATE, bytes([0]))
        assert r is not None and r[1] == P.ENUMERATED and r[0] == 1
        return r

    def configure(self, cell_count, ow_period_s=30, silence_ms=2000, warn=600, limit=700):
        buf = bytearray(P.CONFIG_LEN)
        P.pack_config_into(buf, 0, cell_count, ow_period_s, silence_ms, warn, limit)
        return self.request(1, P.CONFIG, bytes(buf))

    def sample(self):
        self.sid = (self.sid + 1) & 0xFF
        self.host.send(P.ADDR_BROADCAST, P.SAMPLE, bytes([self.sid]))
        self.last_host_ms = self.clock.total_ms
        self.run(1)

    def cells(self):
        r = self.request(1, P.GET_CELLS)
        assert r is not None and r[1] == P.CELLS, r
        out = [0] * 16
        n = P.unpack_cells_into(r[3], 0, len(r[3]), out)
        assert r[3][0] == self.sid
        return out[:n]

    def temps(self):
        r = self.request(1, P.GET_TEMPS)
        assert r is not None and r[1] == P.TEMPS, r
        out = [0] * 8
        n = P.unpack_temps_into(r[3], 0, len(r[3]), out)
        return out[:n], P.get_i16(r[3], 2 + 2 * n)

    def status(self):
        r = self.request(1, P.GET_STATUS)
        assert r is not None and r[1] == P.STATUS, r
        return P.unpack_status(r[3], 0)  # flags, open_wire, balance, wiring, pec, link, cell_count

    def balance(self, target_100uv, timeout_s):
        buf = bytearray(P.BALANCE_LEN)
        P.pack_balance_into(buf, 0, target_100uv, timeout_s)
        r = self.request(1, P.BALANCE, bytes(buf))
        assert r is not None and r[1] == P.BALANCE_ACK, r
        return P.get_u16(r[3], 0)

    def cycle(self):
        """One host cycle (200 ms): SAMPLE, collect cells, temps and status."""
        start = self.clock.total_ms
        self.sample()
        cells = self.cells()
        self.temps()
        st = self.status()
        self.run(200 - (self.clock.total_ms - start))
        return cells, st


def started(cells_mv, cell_count=None, **kw):
    rig = Rig(cells_mv, **kw)
    rig.enumerate()
    assert rig.configure(cell_count or len(cells_mv))[1] == P.CONFIG_ACK
    return rig


def _cell_1_bleeding(timeout_s=600):
    """A 4-cell module whose cell 1 is 10 mV high and bleeding after one BALANCE."""
    rig = started([3400, 3300, 3300, 3300])
    rig.cycle()
    rig.balance(33010, timeout_s)
    rig.cycle()
    assert rig.model.discharge_mask == 1
    return rig


def test_7_cell_module_reports_7_voltages_within_1_2_mv():
    truth = [3301.234, 3299.987, 3310.05, 3288.8, 3305.55, 3300.01, 3297.49]
    rig = Rig([0] * 7)
    rig.cells_uv[:7] = [int(v * 1000) for v in truth]
    rig.enumerate()
    rig.configure(7)
    rig.sample()
    cells = rig.cells()
    assert len(cells) == 7
    for got, want in zip(cells, truth, strict=True):
        assert abs(got / 10 - want) <= 1.2
    flags = rig.status()[0]
    assert not flags & (P.FLAG_WIRING | P.FLAG_AFE_FAULT | P.FLAG_NOT_CONFIGURED | P.FLAG_SAMPLE_STALE)


def test_12_cell_module_reports_12():
    rig = started([3300 + i for i in range(12)])
    rig.sample()
    assert rig.cells() == [33000 + 10 * i for i in range(12)]


def test_voltage_on_an_unused_channel_is_a_wiring_fault():
    rig = started([3300] * 7)
    rig.cells_uv[9] = 120 * MV  # channel 10 should sit at 0 V (tied to the top cell)
    rig.sample()
    assert len(rig.cells()) == 7
    flags, _, _, wiring, _, _, count = rig.status()
    assert flags & P.FLAG_WIRING
    assert wiring == 1 << 9
    assert count == 7
    rig.cells_uv[9] = 20 * MV  # below 50 mV: fine
    rig.sample()
    rig.cells()
    assert rig.status()[3] == 0


def test_get_cells_before_any_sample_is_refused_not_made_up():
    rig = started([3300] * 12)
    r = rig.request(1, P.GET_CELLS)
    assert r[1] == P.NACK and r[3] == bytes([P.GET_CELLS, P.NACK_NOT_READY])


def test_bad_config_is_refused_and_keeps_the_old_one():
    rig = started([3300] * 8)
    assert rig.configure(8, ow_period_s=20, silence_ms=3000, warn=550, limit=650)[1] == P.CONFIG_ACK
    app = rig.app
    kept = (8, 20, 3000, 550, 650)
    for bad in (dict(cell_count=3), dict(cell_count=13), dict(cell_count=12, warn=700, limit=600),
                dict(cell_count=12, warn=650, limit=650), dict(cell_count=12, limit=1500),
                dict(cell_count=12, silence_ms=100)):
        r = rig.configure(**bad)
        assert r[1] == P.NACK and r[3] == bytes([P.CONFIG, P.NACK_BAD_VALUE]), bad
        assert (app.cell_count, app.ow_period_s, app.silence_ms, app.temp_warn_dc, app.temp_limit_dc) == kept, bad
        assert rig.status()[6] == 8
    r = rig.request(1, P.CONFIG, bytes(P.CONFIG_LEN - 1))
    assert r[1] == P.NACK and r[3] == bytes([P.CONFIG, P.NACK_BAD_LENGTH])
    assert app.cell_count == 8


def test_good_module_reports_no_open_wire():
    rig = started([3300] * 12)
    rig.run(50)
    flags, open_wire = rig.status()[:2]
    assert open_wire == 0 and not flags & P.FLAG_OPEN_WIRE


def test_open_sense_line_is_found_and_named():
    rig = started([3300] * 12)
    rig.model.open_wire(5, True)
    rig.configure(12, ow_period_s=1)  # a new configuration re-checks the wires
    for _ in range(3):
        rig.cycle()
    flags, open_wire = rig.status()[:2]
    assert open_wire == 1 << 5
    assert flags & P.FLAG_OPEN_WIRE
    rig.model.open_wire(5, False)
    for _ in range(7):  # the periodic check (1 s) clears it again
        rig.cycle()
    assert rig.status()[1] == 0


def test_temperatures_and_an_absent_thermistor():
    rig = started([3300] * 12)
    rig.model.ntc_temp_dc = [312, None]
    rig.model.die_temp_dc = 405
    rig.sample()
    rig.cells()
    temps, die = rig.temps()
    assert abs(temps[0] - 312) <= 3
    assert temps[1] == P.TEMP_ABSENT
    assert abs(die - 405) <= 1
    assert rig.status()[0] & P.FLAG_TEMP_ABSENT
    # The reading is ratiometric: a reference 3 % off (the pull-up sits on VREF2 too) moves nothing.
    rig.model.vref2_uv = 3_090_000
    rig.cycle()
    rig.cycle()  # TEMPS carries the conversions that followed the previous SAMPLE
    temps, _ = rig.temps()
    assert abs(temps[0] - 312) <= 3


def test_one_high_cell_bleeds_until_within_1_mv_of_the_lowest():
    rig = started([3300, 3300, 3330, 3300, 3300, 3300, 3300], start_ms=TICKS_PERIOD - 3000, drain_uv_per_ms=2)
    rig.cycle()
    target = 33000 + 10  # host: lowest + 1 mV
    assert rig.balance(target, 600) == 0b100
    bleeding_seen = False
    for _ in range(200):
        cells, st = rig.cycle()
        bal = st[2]
        if bal & 0b100:
            bleeding_seen = True
            assert cells[2] > 33000 + 5  # not cleared before it is within 1 mV (+ 0.5 mV hysteresis)
        else:
            break
    assert bleeding_seen
    assert cells[2] <= 33000 + 10  # cleared once it is within 1 mV of the lowest
    assert abs(rig.cells_uv[2] - 3_300_000) <= 1_000  # truth too
    rig.run(50)
    assert rig.model.discharge_mask == 0
    assert not rig.status()[0] & P.FLAG_BALANCING
    # The session ended at the target (docs/module.md): a cell that rises later waits for a new BALANCE.
    rig.cells_uv[2] += 20_000
    for _ in range(3):
        rig.cycle()
    assert rig.model.discharge_mask == 0


def test_never_two_adjacent_and_thermal_budget_limits_count():
    rig = started([3400] * 12, drain_uv_per_ms=1, budget_mw=2100)  # 3 x 680 mW
    rig.cycle()
    rig.balance(33000, 600)
    for _ in range(30):
        rig.cycle()
    assert rig.max_bleeding == 3
    assert not rig.adjacent_seen


def test_heat_limit_stops_all_bleeding_and_flags_it():
    rig = started([3400, 3300, 3400, 3300, 3400, 3300, 3400, 3300])
    rig.cycle()
    rig.balance(33010, 600)
    rig.cycle()
    assert rig.model.discharge_mask != 0
    rig.model.ntc_temp_dc[0] = 650  # between warning and limit: derated, fewer cells
    rig.cycle()
    rig.cycle()
    st = rig.status()
    assert st[0] & P.FLAG_HEAT_WARN and not st[0] & P.FLAG_HEAT_LIMIT
    assert 0 < bin(rig.model.discharge_mask).count("1") < 4
    rig.model.ntc_temp_dc[0] = 720
    rig.cycle()  # this cycle's cells still bleed on the last (derated) reading ...
    st = rig.status()
    # ... but the temperature read right after them stops every switch at once, not a cycle later
    assert rig.model.discharge_mask == 0 and st[2] == 0
    assert st[0] & P.FLAG_HEAT_LIMIT
    rig.model.ntc_temp_dc[0] = 670  # cooler, but not 5 C below the limit: still stopped (no on/off at the edge)
    for _ in range(3):
        rig.cycle()
        assert rig.model.discharge_mask == 0
    assert rig.status()[0] & P.FLAG_HEAT_LIMIT
    rig.model.ntc_temp_dc[0] = 640  # released: bleeding resumes, derated
    rig.cycle()
    rig.cycle()
    st = rig.status()
    assert not st[0] & P.FLAG_HEAT_LIMIT and st[0] & P.FLAG_HEAT_WARN
    assert rig.model.discharge_mask != 0


def test_balancing_ends_at_its_timeout_and_dcto_is_armed():
    rig = _cell_1_bleeding(timeout_s=2)
    assert rig.model.dcto_code != 0  # a hung MCU: the AFE stops on its own
    for _ in range(10):
        rig.cycle()
    assert rig.model.discharge_mask == 0
    assert rig.status()[2] == 0


def test_host_silence_sleeps_everything_and_a_preamble_wakes_it():
    rig = started([3400, 3300, 3300, 3300, 3300, 3300], start_ms=TICKS_PERIOD - 1000)
    rig.cycle()
    rig.balance(33010, 600)
    rig.cycle()
    assert rig.model.discharge_mask == 1
    services = rig.board.services
    # The host says nothing from its last packet on; 2.5 s later everything is off.
    rig.run(rig.last_host_ms + 2500 - rig.clock.total_ms)
    assert rig.model.discharge_mask == 0
    assert rig.model.asleep
    assert services.deep_sleep_requested and services.alarm == ("UP_RX", False)
    assert 2000 <= services.deep_sleep_ms - rig.last_host_ms <= 2010
    # Still asleep while nothing happens on the line.
    rig.run(1000)
    assert rig.board.boots == 1
    # The host's preamble wakes it; it passes the wake down and answers again (after re-enumeration).
    downstream = rig.down.b
    downstream.read()  # forwarded broadcasts from before
    rig.host.wake()
    rig.run(5)
    assert rig.board.boots == 2
    assert downstream.read() == bytes(P.WAKE_LEN)
    rig.enumerate()
    assert rig.status()[6] == 6  # configuration kept in sleep memory
    rig.sample()
    assert len(rig.cells()) == 6


def test_sleep_command_sleeps_at_once():
    rig = started([3300] * 12)
    rig.host.send(P.ADDR_BROADCAST, P.SLEEP)
    rig.run(40)
    assert rig.board.services.deep_sleep_requested


def test_pec_failure_is_reported_not_hidden():
    rig = started([3300] * 12)
    rig.cycle()
    rig.model.corrupt_reads = True
    rig.sample()
    r = rig.request(1, P.GET_CELLS)
    assert r[1] == P.NACK and r[3][1] == P.NACK_AFE_FAULT
    flags, _, _, _, pec_errors, _, _ = rig.status()
    assert flags & P.FLAG_AFE_FAULT and pec_errors >= 3
    rig.model.corrupt_reads = False
    rig.cycle()
    assert not rig.status()[0] & P.FLAG_AFE_FAULT


def test_unused_channels_stay_out_of_min_max_sum():
    rig = started([3300, 3310, 3320, 3330, 3340, 3350, 3360])
    rig.cells_uv[8] = 40 * MV  # under the wiring threshold, still not a cell
    rig.sample()
    rig.cells()
    app = rig.app
    assert app.min_cell_100uv == 33000 and app.max_cell_100uv == 33600
    assert app.sum_cells_mv == sum(range(3300, 3361, 10))


def test_one_corrupted_group_is_retried_and_counted():
    rig = started([3300 + i for i in range(12)])
    rig.cycle()
    before = rig.status()[4]
    rig.sample()
    rig.model.inject_pec_errors(1)  # the first group read after this SAMPLE comes back with a bad PEC
    assert rig.cells() == [33000 + 10 * i for i in range(12)]
    flags, _, _, _, pec_errors, _, _ = rig.status()
    assert pec_errors == before + 1
    assert not flags & P.FLAG_AFE_FAULT


def test_bad_requests_get_a_reason_and_change_nothing():
    rig = started([3400, 3300, 3300, 3300])
    rig.cycle()
    r = rig.request(1, P.BALANCE, bytes([0x10, 0x27, 5]))  # 3 bytes, needs 4
    assert r[1] == P.NACK and r[3] == bytes([P.BALANCE, P.NACK_BAD_LENGTH])
    buf = bytearray(P.BALANCE_LEN)
    P.pack_balance_into(buf, 0, 60000, 600)  # 6.0 V target: not a cell voltage
    r = rig.request(1, P.BALANCE, bytes(buf))
    assert r[1] == P.NACK and r[3] == bytes([P.BALANCE, P.NACK_BAD_VALUE])
    r = rig.request(1, 0x42)
    assert r[1] == P.NACK and r[3] == bytes([0x42, P.NACK_UNKNOWN_TYPE])
    rig.cycle()
    assert rig.model.discharge_mask == 0 and rig.status()[2] == 0


def test_a_repeated_sample_id_is_one_instant():
    rig = started([3300] * 12)
    rig.cycle()
    n_adcv = sum(1 for _, code in rig.model.commands if code & 0x668 == 0x260)
    rig.sid += 1
    for _ in range(2):  # the host sends every SAMPLE twice
        rig.host.send(P.ADDR_BROADCAST, P.SAMPLE, bytes([rig.sid]))
        rig.run(1)
    rig.cells()
    assert sum(1 for _, code in rig.model.commands if code & 0x668 == 0x260) == n_adcv + 1


def test_collect_gets_cells_temps_and_status_with_its_seq():
    rig = started([3300 + i for i in range(12)])
    rig.cycle()
    rig.sample()
    rig.run(3)  # the host's settle time
    seq = rig.host.send(P.ADDR_BROADCAST, P.COLLECT, bytes([7]))
    got = []
    for _ in range(20):
        rig.run(1)
        got += rig.host.take_all(seq)
    assert sorted(r[1] for r in got) == [P.CELLS, P.TEMPS, P.STATUS]
    cells = [r for r in got if r[1] == P.CELLS][0][3]
    assert cells[0] == rig.sid and cells[1] == 12
    assert P.get_u16(cells, 2) == 33000 and P.get_u16(cells, 2 + 2 * 11) == 33110
    temps = [r for r in got if r[1] == P.TEMPS][0][3]
    assert temps[0] == rig.sid  # this sample's id (values from the conversions after the last one)
    # A COLLECT whose bitmap selects only module 2 is not for us: no answer.
    buf = bytearray(4)
    n = P.pack_collect_into(buf, 0, 7, [0, 0, 1], 2)
    seq = rig.host.send(P.ADDR_BROADCAST, P.COLLECT, bytes(buf[:n]))
    rig.run(20)
    assert rig.host.take_all(seq) == []


def test_open_wire_checks_never_overlap_a_sample():
    rig = started([3300] * 12)
    rig.configure(12, ow_period_s=1)
    for _ in range(15):
        rig.cycle()
    cmds = rig.model.commands
    adow = [t for t, c in cmds if c & 0x628 == 0x228]
    adcv = [t for t, c in cmds if c & 0x668 == 0x260]
    assert len(adow) >= 8  # checks did run (4 conversions each)
    for t in adcv:
        assert all(not (a <= t < a + 2335) for a in adow)  # no SAMPLE conversion inside an open-wire one


def test_sleep_memory_restores_config_only_after_a_pin_wake():
    rig = started([3300] * 6)
    assert rig.status()[6] == 6
    rig.board._boot(woke_from_pin=False)  # a reset: settings (cell_count=12 here) are the truth
    rig.enumerate()
    assert rig.status()[6] == 12
    rig.configure(6)
    rig.board._boot(woke_from_pin=True)  # woken from deep sleep: the host's CONFIG is kept
    rig.enumerate()
    assert rig.status()[6] == 6
    assert rig.board.sleep_memory[0] == 0xB5
    rig.board.sleep_memory[3] ^= 0xFF  # a corrupted record is not trusted
    rig.board._boot(woke_from_pin=True)
    rig.enumerate()
    assert rig.status()[6] == 12


def test_a_hung_mcu_leaves_the_afe_to_stop_bleeding_by_itself():
    rig = _cell_1_bleeding()
    rig.clock.advance(29_000)  # the MCU stops running its loop: nobody talks to the AFE
    assert rig.model.asleep  # its watchdog ran out ...
    rig.clock.advance(1_500)
    assert rig.model.discharge_mask == 0  # ... and the armed discharge timer (30 s) opened the switch


def test_packets_it_can_neither_use_nor_nack_are_counted_in_status():
    rig = started([3300] * 12)
    before = rig.status()[5]
    rig.host.send(P.ADDR_BROADCAST, P.SAMPLE)  # no sample id
    rig.host.send(P.ADDR_BROADCAST, P.SAMPLE, b"\x01\x02")
    rig.host.send(P.ADDR_BROADCAST, P.ENUMERATE)  # no hop count
    seq = rig.host.send(1, P.STATUS, bytes(P.STATUS_LEN))  # a reply travelling the wrong way
    rig.run(20)
    assert rig.host.take(seq) is None and rig.host.replies == []  # a broadcast is never answered with a NACK
    assert rig.status()[5] == before + 4
    assert rig.app.link.address == 1 and rig.app.sample_id == 0  # nothing acted on


def test_an_afe_reset_behind_the_mcus_back_is_repaired_at_the_next_sample():
    rig = _cell_1_bleeding()
    rig.model.power_on_reset()  # a supply dip: switch open, REFON and DCTO gone; the app does not know
    assert rig.model.discharge_mask == 0
    rig.cycle()
    assert rig.model.discharge_mask == 1 and rig.model.dcto_code != 0  # the configuration is rewritten each SAMPLE
    assert rig.model.config[0] & 0x04  # REFON back
