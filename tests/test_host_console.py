"""The USB console with HostApp as its facade, on the 8-module rig: status, log, reset_latch, calibration."""

import json

from hil.sim_serial import stream_pair
from test_host_app import HostRig
from usb_console import UsbConsole


def rig_with_console():
    h = HostRig()
    fw, pc = stream_pair()
    h.app.console = UsbConsole(fw, h.app)
    h.start()
    return h, pc


def lines(pc):
    out = []
    while pc.in_waiting:
        line = pc.readline()
        if line:
            out.append(json.loads(line))
    return out


def command(h, pc, text):
    lines(pc)
    pc.write((text + "\n").encode())
    h.run(300)
    return [m for m in lines(pc) if m.get("type") != "status"]


def test_status_line_shows_the_pack():
    h, pc = rig_with_console()
    h.ina.set_current(-12000)
    h.run(1000)
    st = [m for m in lines(pc) if m.get("type") == "status"][-1]
    assert st["state"] == "discharging"
    assert st["pack_mv"] == 96 * 3700 and abs(st["current_ma"] + 12000) <= 2
    assert len(st["cells_mv"]) == 96


def test_reset_latch_and_log_over_the_console():
    h, pc = rig_with_console()
    h.ina.set_current(-(h.settings.get("sc_trip_ma") + 10000))
    h.run(20)
    rep = command(h, pc, "reset_latch")
    assert rep and rep[-1]["ok"] is False and "still present" in rep[-1]["error"]
    h.ina.set_current(0)
    rep = command(h, pc, "reset_latch")
    assert rep and rep[-1]["ok"] is True
    assert h.until(lambda: h.chg.value and h.dsg.value, 2000)
    rep = command(h, pc, "log")
    text = json.dumps(rep)
    assert '"trip"' in text and '"sc"' in text and '"reset"' in text


def test_zero_calibration_over_the_console():
    h, pc = rig_with_console()
    h.ina.set_current(250)  # an offset with no load
    rep = command(h, pc, "cal zero")
    assert rep and rep[-1]["ok"] is True
    h.run(3000)
    assert abs(h.settings.get("cal_offset_ma") - 250) <= 2
    assert abs(h.app.current_ma) <= 2
