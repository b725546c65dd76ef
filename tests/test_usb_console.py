"""USB console against a small fake host facade (real Settings, store, SOC, calibration and Protection)."""

import json

from bms_settings import SCHEMA, Settings
from calibration import Calibrator, apply
from hypothesis import given, settings
from hypothesis import strategies as st
from protection import KIND_NAMES, N_COND, OV, Protection, cond_name
from settings_store import SettingsStore
from soc import SocCounter
from soc_persist import NVM_LEN, SocPersist
from test_settings_store import FlashNvm
from usb_console import LINE_MAX, STATUS_MAX, UsbConsole

from hil.sim_serial import stream_pair


class FakeHost:
    """The host facade usb_console needs, over real pure parts and no chain."""

    condition_names = tuple(cond_name(c) for c in range(N_COND))

    def __init__(self, nvm=None, sleep_memory=None):
        self.nvm = nvm if nvm is not None else FlashNvm()
        self.settings = Settings()
        self.store = SettingsStore(self.nvm, NVM_LEN)
        self.store.load(self.settings)
        g = self.settings.get
        self.soc = SocCounter(g("capacity_mah"), g("full_charge_mv"), g("cutoff_mv"), g("tail_current_ma"),
                              g("full_hold_ms"), g("empty_hold_ms"))
        self.persist = SocPersist(self.soc, sleep_memory if sleep_memory is not None else bytearray(256), self.store)
        self.persist.restore()
        self.protection = Protection()
        self.protection.load(self.settings)
        self.cal = Calibrator()
        self.raw_ma = -5000
        self.cells_mv = [3700] * 11 + [0xFFFF]
        self.temps_dc = [251, -32768]
        self.sc_input = 0
        self.changed_calls = 0

    # facade -------------------------------------------------------------------------------
    def settings_changed(self, now_ms):
        self.changed_calls += 1
        self.store.settings_changed(now_ms)
        self.protection.load(self.settings)

    def current_ma(self):
        g = self.settings.get
        return apply(self.raw_ma, g("cal_offset_ma"), g("cal_gain_ppm"))

    def fill_status(self, s):
        s.state = "discharging" if self.current_ma() < 0 else "idle"
        s.pack_mv = sum(v for v in self.cells_mv if v != 0xFFFF)
        s.current_ma = self.current_ma()
        s.soc_pct = self.soc.soc_pct
        s.charge_mah = self.soc.charge_mah
        s.capacity_mah = self.soc.capacity_mah
        s.charged_mah = self.soc.charged_mah
        s.discharged_mah = self.soc.discharged_mah
        s.cycles = self.soc.cycles
        s.chg_on = self.protection.charge_allowed
        s.dsg_on = self.protection.discharge_allowed
        s.n_cells = len(self.cells_mv)
        for i, v in enumerate(self.cells_mv):
            s.cells_mv[i] = v
        s.n_temps = len(self.temps_dc)
        for i, v in enumerate(self.temps_dc):
            s.temps_dc[i] = v
        s.warnings = self.protection.warnings
        s.faults = self.protection.tripped
        s.latched = self.protection.latched
        s.nvm_erases0, s.nvm_erases1 = self.store.erases
        s.nvm_pending = self.store.pending
        s.soc_source = self.persist.source
        s.note = self.store.note

    def reset_latch(self, now_ms):
        if not self.protection.latched:
            return "nothing latched"
        if not self.protection.reset(now_ms, self._values()):
            return "short circuit still present"
        return ""

    def event_log(self):
        ev = self.protection.events
        out = []
        for n in range(len(ev)):
            t, kind, cause, value, where = ev.get(n)
            out.append({"t": t, "kind": KIND_NAMES[kind], "cause": cond_name(cause), "value": value, "where": where})
        return out

    def calibrate(self, kind, true_ma):
        try:
            if kind == "zero":
                self.cal.start_zero(5)
            else:
                self.cal.start_gain(true_ma, 5)
        except ValueError as e:
            return str(e)
        return ""

    def set_soc(self, pct):
        try:
            self.soc.set_soc_pct(pct)
        except ValueError as e:
            return str(e)
        return ""

    # the loop -----------------------------------------------------------------------------
    def _values(self):
        known = [v for v in self.cells_mv if v != 0xFFFF]
        cur = self.current_ma()
        v = [0] * N_COND
        v[0], v[1] = max(known), min(known)
        v[2], v[3], v[4] = max(cur, 0), max(-cur, 0), self.sc_input
        v[5] = v[6] = v[7] = v[8] = 250
        v[9] = 300
        return v

    def step(self, now_ms):
        self.protection.update(now_ms, self._values())
        if self.cal.busy and self.cal.feed(self.raw_ma, self.settings.get("cal_offset_ma")):
            if self.cal.name:
                self.settings.set(self.cal.name, self.cal.value)
                self.settings_changed(now_ms)
        ev = self.soc.update(self.current_ma(), now_ms, min(self._values()[1], 4000), self._values()[0])
        self.persist.step(now_ms, ev, self.protection.tripped != 0)
        self.store.step(now_ms, self.settings)


class Rig:
    def __init__(self, host=None):
        self.t = 0
        self.host = host or FakeHost()
        self.fw, self.pc = stream_pair(pump=self.cycle)
        self.con = UsbConsole(self.fw, self.host)

    def cycle(self):
        self.t += 200
        self.con.poll(self.t)
        self.host.step(self.t)
        self.con.write_status(self.t)
        return 200

    def send(self, line):
        self.pc.write(line if isinstance(line, bytes) else (line + "\n").encode())

    def lines(self, cycles=1):
        for _ in range(cycles):
            self.cycle()
        out = []
        while True:
            raw = self.pc.readline() if self.pc.in_waiting else b""
            if not raw:
                return out
            out.append(json.loads(raw))

    def ask(self, line):
        self.pc.reset_input_buffer()
        self.send(line)
        replies = [m for m in self.lines() if m["type"] == "reply"]
        assert len(replies) == 1, replies
        return replies[0]


def test_status_line_per_cycle_with_the_pack_picture():
    r = Rig()
    msgs = r.lines(cycles=3)
    st = [m for m in msgs if m["type"] == "status"]
    assert len(st) == 3
    s = st[-1]
    assert s["state"] == "discharging" and s["current_ma"] == -5000
    assert s["cells_mv"][:11] == [3700] * 11 and s["cells_mv"][11] is None  # unknown is not zero
    assert s["cell_min_mv"] == 3700 and s["cell_max_mv"] == 3700
    assert s["temps_dc"] == [251, None]  # an absent sensor is shown absent
    assert s["power_w"] == -(40700 * 5000 // 1000000)
    assert s["chg"] is True and s["dsg"] is True
    assert s["warnings"] == [] and s["faults"] == []
    assert s["nvm_erases"] == [0, 0] and "factory defaults" in s["note"]
    for key in ("soc_pct", "charge_mah", "capacity_mah", "charged_mah", "discharged_mah", "cycles", "soc_src"):
        assert key in s


def test_worst_case_status_fits_the_buffer():
    h = FakeHost()
    h.cells_mv = [4999] * 96
    h.temps_dc = [-399] * 17
    r = Rig(h)
    r.host.protection.tripped = (1 << N_COND) - 1
    r.host.protection.warnings = (1 << N_COND) - 1
    n = r.con.write_status(0)
    assert 0 < n < STATUS_MAX
    msgs = r.lines()
    assert len(msgs[0]["cells_mv"]) == 96 and len(msgs[0]["faults"]) == N_COND


def test_get_and_set_a_setting_persists_and_reaches_protection():
    r = Rig()
    rep = r.ask("get ov_trip_mv")
    assert rep["ok"] and rep["value"] == 4250 and rep["unit"] == "mV"
    rep = r.ask("set ov_trip_mv=4200 ov_warn_mv=4180 full_charge_mv=4150")
    assert rep["ok"] and rep["values"]["ov_trip_mv"] == 4200
    assert r.host.protection.limit(OV, "trip") == 4200
    r.lines(cycles=15)  # settle: the store writes once
    assert sum(r.host.nvm.erases) == 1
    again = FakeHost(nvm=r.host.nvm)  # after a power loss
    assert again.settings.get("ov_trip_mv") == 4200 and again.protection.limit(OV, "trip") == 4200


def test_bad_value_refused_with_the_rule_and_nothing_changes():
    r = Rig()
    before = r.host.settings.values()
    rep = r.ask("set ov_trip_mv 4000")
    assert not rep["ok"] and "uv_trip_mv < uv_release_mv < ov_release_mv < ov_trip_mv" in rep["error"]
    rep = r.ask("set cells_total=16")
    assert not rep["ok"] and "cells_total = sum of modN_cells" in rep["error"]
    assert r.host.settings.values() == before and r.host.changed_calls == 0


def test_schema_lists_every_setting():
    rep = Rig().ask("schema")
    assert rep["ok"] and len(rep["schema"]) == len(SCHEMA)
    row = dict(zip(rep["fields"], rep["schema"][0], strict=True))
    assert row["name"] == "ov_warn_mv" and row["unit"] == "mV" and row["value"] == row["default"]


def test_preset_and_factory_reset():
    r = Rig()
    assert r.ask("preset lfp")["ok"]
    assert r.host.settings.get("ov_trip_mv") == 3650
    assert not r.ask("factory_reset")["ok"]
    assert r.host.settings.get("chemistry") == 0
    assert r.ask("factory_reset confirm")["ok"]
    assert r.host.settings.get("chemistry") == 1


def test_malformed_commands_get_error_lines_and_the_console_keeps_working():
    r = Rig()
    bad = [b"frobnicate\n", b"get\n", b"get nope\n", b"set ov_trip_mv=abc\n", b"set =\n", b"set a=b=c\n",
           b"set\n", b"\xff\xfe\x00garbage\n", b"x" * (LINE_MAX + 50) + b"\n", b"cal\n", b"cal gain x\n",
           b"soc\n", b"soc 150\n", b"preset XYZ\n", b"stream maybe\n", b"\x1b[A\n"]
    for line in bad:
        r.pc.reset_input_buffer()
        r.send(line)
        replies = [m for m in r.lines() if m["type"] == "reply"]
        assert len(replies) == 1 and replies[0]["ok"] is False and replies[0]["error"], (line, replies)
    assert r.ask("get cutoff_mv")["value"] == 3000
    assert r.ask("\r\n\r\nhelp\r")["ok"]


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_and_every_line_is_json(data):
    r = Rig()
    r.con.streaming = False
    r.send(data + b"\n")
    for _ in range(3):
        r.cycle()
    while r.pc.in_waiting:
        msg = json.loads(r.pc.readline())
        assert msg["type"] in ("reply", "status")  # random bytes may spell "status"
    assert r.ask("get ov_trip_mv")["ok"]


def test_short_circuit_latch_reset_only_when_gone_and_logged():
    r = Rig()
    r.host.sc_input = 1
    st = [m for m in r.lines(cycles=2) if m["type"] == "status"][-1]
    assert "sc" in st["faults"] and "sc" in st["latched"] and st["dsg"] is False
    rep = r.ask("reset_latch")
    assert not rep["ok"] and "still present" in rep["error"]
    r.host.sc_input = 0
    assert r.ask("reset_latch")["ok"]
    st = [m for m in r.lines(cycles=1) if m["type"] == "status"][-1]
    assert st["faults"] == [] and st["dsg"] is True
    kinds = [(e["kind"], e["cause"]) for e in r.ask("log")["events"]]
    assert ("trip", "sc") in kinds and ("reset", "sc") in kinds


def test_calibration_commands_store_offset_and_gain():
    r = Rig()
    r.host.raw_ma = 37  # no load, the sensor reads 37 mA
    assert r.ask("cal zero")["ok"]
    r.lines(cycles=6)
    assert r.host.settings.get("cal_offset_ma") == 37
    r.host.raw_ma = 10137  # a known 10 A: the sensor reads 10.1 A after the offset
    assert r.ask("cal gain 10000")["ok"]
    r.lines(cycles=6)
    assert r.host.settings.get("cal_gain_ppm") == 990099
    st = [m for m in r.lines(cycles=1) if m["type"] == "status"][-1]
    assert st["current_ma"] in (9999, 10000)
    assert not r.ask("cal gain 10")["ok"]


def test_stream_off_and_status_on_demand():
    r = Rig()
    assert r.ask("stream off")["ok"]
    assert r.lines(cycles=3) == []
    r.send("status")
    msgs = r.lines()
    assert len(msgs) == 1 and msgs[0]["type"] == "status"


def test_soc_command_and_unplugged_usb_never_crash():
    r = Rig()
    assert r.ask("soc 80")["ok"]
    st = [m for m in r.lines(cycles=1) if m["type"] == "status"][-1]
    assert st["soc_pct"] in (79, 80)
    r.fw.connected = False
    r.send("get ov_trip_mv")
    r.lines(cycles=2)  # writes fail with OSError: swallowed


def test_facade_without_optional_methods_says_not_supported():
    class Minimal:
        def __init__(self):
            self.settings = Settings()

        def settings_changed(self, now_ms):
            pass

        def fill_status(self, st):
            pass

    fw, pc = stream_pair()
    con = UsbConsole(fw, Minimal())
    for cmd in ("reset_latch", "log", "cal zero", "soc 50"):
        pc.write((cmd + "\n").encode())
        con.poll(0)
        rep = json.loads(pc.readline())
        assert rep["ok"] is False and rep["error"] == "not supported", cmd


def test_never_waits_on_a_port_nobody_reads():
    r = Rig()
    assert r.fw.timeout == 0 and r.fw.write_timeout == 0.05  # usb_cdc's wait-forever defaults replaced
    r.fw.connected = False  # no terminal open (DTR low)
    assert r.con.write_status(0) == 0 and r.con.skipped == 1
    r.fw.connected = True
    r.fw.out_waiting = 64  # the PC holds the port open but does not read
    assert r.con.write_status(0) == 0 and r.con.skipped == 2
    r.fw.out_waiting = 0
    assert r.con.write_status(0) > 0


def test_status_shows_flash_erases_store_note_and_soc_source_from_the_facades_parts():
    class Bare(FakeHost):
        def fill_status(self, s):  # a facade that leaves the storage fields alone
            s.n_cells = 0

    nvm = FlashNvm()
    nvm.mem[5] ^= 0x55  # garbage in page A
    h = Bare(nvm=nvm)
    r = Rig(h)
    st = [m for m in r.lines(cycles=1) if m["type"] == "status"][-1]
    assert st["nvm_erases"] == [0, 0] and "record A corrupt" in st["note"] and st["soc_src"] == "none"
    h.store.write_now(h.settings)
    h.store.write_now(h.settings)
    h.store.settings_changed(r.t)
    st = [m for m in r.lines(cycles=1) if m["type"] == "status"][-1]
    assert st["nvm_erases"] == [1, 1] and st["nvm_pending"] == 1 and "note" not in st
