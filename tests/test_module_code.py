"""``module_fw/code.py`` wiring under Blinka, with the simulated buses put in place of the real ones."""

import os
import runpy
import sys
import types

import board
import busio
import digitalio
import microcontroller
import pytest

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    tomllib = None

import bms_packet as P
from hil.clock import VirtualClock
from hil.ltc6811_model import LTC6811Model
from hil.module_services_sim import HostProbe, make_alarm_module
from hil.sim_pins import SimPin
from hil.sim_spi import SimSPI
from hil.sim_uart import SimLink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = os.path.join(ROOT, "module_fw", "code.py")
SETTINGS = os.path.join(ROOT, "module_fw", "settings.toml")


@pytest.fixture
def wired(monkeypatch):
    return _wire(monkeypatch)


def _wire(monkeypatch, **overrides):
    """Run code.py's build() with settings.toml (and ``overrides``) in the environment and simulated parts behind
    busio/digitalio."""
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    with open(SETTINGS, "rb") as f:
        settings = tomllib.load(f)
    settings.update(overrides)
    for k, v in settings.items():
        monkeypatch.setenv(k, str(v))  # os.getenv on CircuitPython returns the typed value; code.py takes both
    clock = VirtualClock()
    cells_uv = [3_300_000 + 2_000 * i for i in range(12)]
    model = LTC6811Model(clock, lambda: cells_uv)
    up = SimLink(clock, baudrate=int(settings["LINK_BAUD"]), name="up")
    down = SimLink(clock, baudrate=int(settings["LINK_BAUD"]), name="down")
    made = {"uarts": [], "spi": [], "pins": [], "spi_objs": []}

    def pin_name(p):
        return p

    for v in settings.values():
        if isinstance(v, str):
            monkeypatch.setattr(board, v, v, raising=False)  # board.GP0 -> "GP0"

    def fake_spi(clk, MOSI=None, MISO=None):
        spi = SimSPI(model)
        made["spi"].append((clk, MOSI, MISO))
        made["spi_objs"].append(spi)
        return spi

    def fake_uart(tx, rx, *, baudrate, timeout, receiver_buffer_size, rs485_dir=None):
        end = {settings["UP_TX"]: up.b, settings["DOWN_TX"]: down.a}[tx]
        made["uarts"].append((tx, rx, baudrate, timeout, receiver_buffer_size, rs485_dir))
        return end

    def fake_pin(p):
        pin = SimPin(pin_name(p), clock)
        made["pins"].append(pin)
        return pin

    monkeypatch.setattr(busio, "SPI", fake_spi)
    monkeypatch.setattr(busio, "UART", fake_uart)
    monkeypatch.setattr(digitalio, "DigitalInOut", fake_pin)
    monkeypatch.setattr(microcontroller, "cpu", types.SimpleNamespace(uid=bytearray(b"\x01\x02\x03\x04\x05")),
                        raising=False)
    alarm = make_alarm_module()
    monkeypatch.setitem(sys.modules, "alarm", alarm)
    monkeypatch.delitem(sys.modules, "module_services", raising=False)
    ns = runpy.run_path(CODE, run_name="code")  # not __main__: build, do not run forever
    app = ns["build"]()
    return types.SimpleNamespace(app=app, clock=clock, model=model, cells_uv=cells_uv, up=up, down=down,
                                 made=made, alarm=alarm, settings=settings)


def step(w, ms):
    for _ in range(ms):
        w.clock.advance(1)
        w.app.step(w.clock.ms)


def ask(w, host, dst, ptype, payload=b""):
    seq = host.send(dst, ptype, payload)
    for _ in range(50):
        step(w, 1)
        r = host.take(seq)
        if r is not None:
            return r
    raise AssertionError("no reply to type 0x%02x" % ptype)


def test_code_py_wires_pins_from_settings(wired):
    s = wired.settings
    assert wired.made["spi"] == [(s["AFE_SCK"], s["AFE_MOSI"], s["AFE_MISO"])]
    ups = [u for u in wired.made["uarts"] if u[0] == s["UP_TX"]]
    assert ups == [(s["UP_TX"], s["UP_RX"], 250000, 0, 512, s["UP_DIR"])]
    assert [p.name for p in wired.made["pins"]] == [s["AFE_CS"]]
    assert wired.app.cell_count == 12 and wired.app.uid == 0x04030201


def test_code_py_board_answers_a_host(wired):
    host = HostProbe(wired.up.a)
    r = ask(wired, host, P.ADDR_BROADCAST, P.ENUMERATE, bytes([0]))
    assert (r[0], r[1]) == (1, P.ENUMERATED)
    host.send(P.ADDR_BROADCAST, P.SAMPLE, bytes([9]))
    r = ask(wired, host, 1, P.GET_CELLS)
    out = [0] * 12
    assert P.unpack_cells_into(r[3], 0, len(r[3]), out) == 12
    assert out == [33000 + 20 * i for i in range(12)]


def test_code_py_board_sleeps_on_the_up_rx_pin(wired):
    step(wired, 2100)
    assert len(wired.alarm.deep_sleeps) == 1
    (pin_alarm,) = wired.alarm.deep_sleeps[0]
    assert pin_alarm.pin == wired.settings["UP_RX"] and pin_alarm.value is False
    assert wired.model.asleep
    # every pin is let go first (the UP UART holds the wake pin)
    assert wired.up.b.deinited and wired.down.a.deinited
    assert all(s.deinited for s in wired.made["spi_objs"]) and all(p.deinited for p in wired.made["pins"])


def test_code_py_takes_the_module_settings_from_settings_toml(monkeypatch):
    w = _wire(monkeypatch, CELL_COUNT=7, NTC_BETA=3950, BLEED_MA=150, BALANCE_BUDGET_MW=2000, OW_PERIOD_S=10,
              SILENCE_MS=5000, TEMP_WARN_DC=550, TEMP_LIMIT_DC=650)
    a = w.app
    assert (a.cell_count, a._ntc.beta, a.bleed_ma, a.budget_mw, a.ow_period_s) == (7, 3950, 150, 2000, 10)
    assert (a.silence_ms, a.temp_warn_dc, a.temp_limit_dc) == (5000, 550, 650)
