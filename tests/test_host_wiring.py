"""code.py's wiring under Blinka with the simulated buses in place of the real ones; safemode.py; boot.py."""

import importlib.util
import os
import sys
import tomllib
import types

import analogio
import board
import busio
import digitalio
import pytest

from hil.chain_rig import ChainRig
from hil.host_services_sim import SimHostServices
from hil.ina228_model import INA228Model
from hil.sim_i2c import SimI2C
from hil.sim_pins import SimPin
from host_app import ST_RUNNING
from pack import NTC_TABLE

HOST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host_fw")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def settings_toml():
    with open(os.path.join(HOST, "settings.toml"), "rb") as f:
        return tomllib.load(f)


class FakeAnalogIn:
    def __init__(self, pin):
        self.pin = pin
        self.value = NTC_TABLE[14][0]  # 30.0 degC


@pytest.fixture
def wired(monkeypatch):
    """Patch Blinka's board/busio/digitalio/analogio and os.getenv; returns a function building the rig."""
    env = settings_toml()
    monkeypatch.setattr(os, "getenv", lambda k, d=None: env.get(k, d))
    for key, value in env.items():
        if key.endswith(("_PIN", "_TX", "_RX", "_DIR", "_SCL", "_SDA", "_ALERT")) and value:
            monkeypatch.setattr(board, value, value, raising=False)
    made = {}

    def build_host(uart, dir_pin, clock):
        i2c = SimI2C(clock)
        made["ina"] = INA228Model(shunt_uohm=env["SHUNT_UOHM"]).attach_to(i2c)
        made["uart_args"] = []

        def uart_factory(tx, rx, **kw):
            made["uart_args"].append((tx, rx, kw))
            return uart

        def pin_factory(p):
            if p == env["LINK_DIR"]:
                return dir_pin
            if p == env["INA228_ALERT"]:
                return SimPin(p, clock, source=lambda: made["ina"].alert_pin)
            if p == env["BUTTON_PIN"]:
                return SimPin(p, clock, level=True)
            made[p] = SimPin(p, clock)
            return made[p]

        monkeypatch.setattr(busio, "UART", uart_factory)
        monkeypatch.setattr(busio, "I2C", lambda scl, sda, **kw: i2c)
        monkeypatch.setattr(digitalio, "DigitalInOut", pin_factory)
        monkeypatch.setattr(analogio, "AnalogIn", FakeAnalogIn)
        code = load("host_code", os.path.join(HOST, "code.py"))
        made["services"] = SimHostServices(clock)
        app = code.build(made["services"])
        pairs = [("modules", 8), ("cells_total", 96)] + [("mod%d_cells" % i, 12) for i in range(1, 9)]
        app.settings.set_many(pairs)
        return app

    return env, made, build_host


def test_code_py_wiring_runs_the_pack(wired):
    env, made, build_host = wired
    rig = ChainRig(8, host_factory=build_host)
    app = rig.host
    assert made["uart_args"][0][0] == env["LINK_TX"] and made["uart_args"][0][2]["baudrate"] == env["LINK_BAUD"]
    assert rig.run_until(lambda: app.state == ST_RUNNING, 5000, step_us=2000), app.state_text
    chg, dsg = made[env["CHG_PIN"]], made[env["DSG_PIN"]]
    assert chg.value and dsg.value
    assert app.pack.n_cells == 96 and app.pack.fet_temp_dc == 300
    assert made["services"].watchdog_running and made["services"].feeds > 0
    # the INA228 was configured for the shunt in settings.toml and its SC limit from the settings schema
    assert made["ina"].regs[0x0C] == app.settings.get("sc_trip_ma") * env["SHUNT_UOHM"] // 5000
    made["ina"].set_current(-(app.settings.get("sc_trip_ma") + 1000))
    rig.run_ms(10, step_us=2000)
    assert not chg.value and not dsg.value


def test_watchdog_starves_when_the_chain_master_stops(wired):
    env, made, build_host = wired
    rig = ChainRig(8, host_factory=build_host)
    app = rig.host
    assert rig.run_until(lambda: app.state == ST_RUNNING, 5000, step_us=2000)
    app.chain.step = lambda now_ms: None  # a hung chain master: the loop runs but nothing progresses
    rig.run_ms(env["WATCHDOG_S"] * 1000 + 3000, step_us=5000)
    assert made["services"].poll(), "an unhealthy loop must let the watchdog reset the board"


def test_missing_ina228_holds_both_paths_open(wired, monkeypatch):
    env, made, build_host = wired

    def no_ina(uart, dir_pin, clock):
        app = build_host(uart, dir_pin, clock)
        return app

    monkeypatch.setattr(INA228Model, "attach_to", lambda self, i2c: self)  # nothing answers at 0x40
    rig = ChainRig(8, host_factory=no_ina)
    app = rig.host
    rig.run_ms(8000, step_us=2000)
    assert type(app.current).__name__ == "AbsentCurrentSensor"
    assert not made[env["CHG_PIN"]].value and not made[env["DSG_PIN"]].value
    assert app.state_text == "Sensor fault"


class FakeMC:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1


def run_safemode(reason, mem, env, monkeypatch):
    mod = load("host_safemode", os.path.join(HOST, "safemode.py"))
    pins = {}

    def pin_factory(p):
        pins[p] = SimPin(p)
        return pins[p]

    fake_board = types.SimpleNamespace(**{v: v for v in env.values() if isinstance(v, str) and v})
    fake_dio = types.SimpleNamespace(DigitalInOut=pin_factory)
    sup = types.SimpleNamespace(runtime=types.SimpleNamespace(safe_mode_reason="SafeModeReason." + reason))
    mc = FakeMC()
    mod.run(lambda k: env.get(k), fake_board, fake_dio, sup, mem, mc, sleep=lambda s: None)
    return pins, mc


def test_safemode_after_brownout_outputs_off_records_and_restarts(monkeypatch):
    env = settings_toml()
    mem = bytearray(256)
    pins, mc = run_safemode("BROWNOUT", mem, env, monkeypatch)
    assert pins[env["CHG_PIN"]].value is False and pins[env["DSG_PIN"]].value is False
    assert mc.resets == 1
    from host_services import clear_safemode_note, read_safemode_note

    assert read_safemode_note(mem) == (1, 1)  # BROWNOUT, first time
    run_safemode("BROWNOUT", mem, env, monkeypatch)
    assert read_safemode_note(mem) == (1, 2)
    clear_safemode_note(mem)
    assert read_safemode_note(mem) == (0, 0)


def test_safemode_stays_for_user_and_after_repeated_crashes(monkeypatch):
    env = settings_toml()
    _, mc = run_safemode("USER", bytearray(256), env, monkeypatch)
    assert mc.resets == 0
    mem = bytearray(256)
    resets = 0
    for _ in range(5):
        _, mc = run_safemode("HARD_FAULT", mem, env, monkeypatch)
        resets += mc.resets
    assert resets == 3  # a crash loop stops after three tries, outputs off


def test_boot_enables_the_data_port(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "usb_cdc", types.SimpleNamespace(enable=lambda **kw: calls.append(kw)))
    load("host_boot", os.path.join(HOST, "boot.py"))
    assert calls == [{"console": True, "data": True}]


def test_code_py_first_start_soc_from_the_rest_voltage(wired):
    # A new NMC pack resting at 3.99 V per cell, nothing stored anywhere: the SOC shows about 80 % from the
    # first cycle (the chemistry's rest-voltage curve), not 50 % until the first full or empty anchor.
    from test_host_app import SettableModule, _link

    env, made, build_host = wired

    def module(i, up, down, clk):
        m = SettableModule(_link(up, down), uid=0x1000 + i)
        m.cells_mv = [3990] * 12
        return m

    rig = ChainRig(8, host_factory=build_host, module_factory=module)
    app = rig.host
    assert app.soc_persist is not None and app.soc_persist.source == "none"
    assert rig.run_until(lambda: app.state == ST_RUNNING, 5000, step_us=2000), app.state_text
    rig.run_ms(400, step_us=2000)
    assert app.soc.soc_pct == 80


@pytest.mark.parametrize("raw,fitted", [(65535, True), (100, True), (None, False)])
def test_mosfet_ntc_fitted_but_open_or_shorted_holds_both_paths_open(wired, monkeypatch, raw, fitted):
    """FET_NTC_PIN set in settings.toml = the sensor is fitted: open (65535) or shorted (100) is a sensor
    fault. An empty FET_NTC_PIN = not fitted: no MOSFET temperature, and the pack runs."""
    env, made, build_host = wired
    if fitted:
        monkeypatch.setattr(FakeAnalogIn, "__init__", lambda self, pin: setattr(self, "value", raw))
    else:
        env["FET_NTC_PIN"] = ""
    rig = ChainRig(8, host_factory=build_host)
    app = rig.host
    rig.run_ms(5000, step_us=2000)
    chg, dsg = made[env["CHG_PIN"]], made[env["DSG_PIN"]]
    if fitted:
        assert not chg.value and not dsg.value and app.state_text == "Sensor fault"
    else:
        assert app.fet_temp is None and chg.value and dsg.value and app.protection.tripped == 0
