"""The PC client against the simulated host through the in-memory serial pair."""

import io
import json
import subprocess
import sys

from test_usb_console import Rig

from hil.bmsctl import BmsClient, BmsError, main
from hil.sim_serial import stream_pair


def _run(rig, *argv):
    out = io.StringIO()
    code = main(list(argv), ser=rig.pc, out=out)
    return code, out.getvalue()


def test_status_human_and_json():
    rig = Rig()
    code, text = _run(rig, "status")
    assert code == 0
    assert "discharging" in text and "-5.00 A" in text and "absent" in text and "--" in text
    code, text = _run(rig, "--json", "status")
    st = json.loads(text)
    assert code == 0 and st["type"] == "status" and st["cells_mv"][11] is None
    # --json after the command works the same, as people type it
    code, text = _run(rig, "status", "--json")
    assert code == 0 and json.loads(text)["type"] == "status"


def test_set_get_and_refusal_with_exit_codes():
    rig = Rig()
    code, text = _run(rig, "set", "dsg_oc_trip_ma=120000")
    assert code == 0 and "dsg_oc_trip_ma = 120000" in text
    code, text = _run(rig, "get", "dsg_oc_trip_ma")
    assert code == 0 and text.strip() == "dsg_oc_trip_ma = 120000 mA"
    code, text = _run(rig, "set", "sc_trip_ma=50000")
    assert code == 1 and "refused: rule dsg_oc_trip_ma < sc_trip_ma" in text
    code, text = _run(rig, "--json", "get", "sc_trip_ma")
    assert json.loads(text)["value"] == 300000


def test_schema_preset_log_reset_and_factory_reset():
    rig = Rig()
    code, text = _run(rig, "schema")
    assert code == 0 and "ov_trip_mv" in text and "capacity_mah" in text
    assert _run(rig, "preset", "LTO")[0] == 0 and rig.host.settings.get("ov_trip_mv") == 2850
    assert _run(rig, "factory-reset", "--yes")[0] == 0 and rig.host.settings.get("ov_trip_mv") == 4250
    code, text = _run(rig, "reset-latch")
    assert code == 1 and "nothing latched" in text
    code, text = _run(rig, "log")
    assert code == 0


def test_calibration_through_the_client():
    rig = Rig()
    rig.host.raw_ma = -12
    assert _run(rig, "cal", "zero")[0] == 0
    rig.lines(cycles=6)
    assert rig.host.settings.get("cal_offset_ma") == -12
    assert _run(rig, "cal", "gain")[0] == 2


def test_no_answer_is_an_error_not_a_hang():
    fw, pc = stream_pair(pump=lambda: 200, timeout=1.0)  # a host that never answers
    out = io.StringIO()
    assert main(["get", "ov_trip_mv"], ser=pc, out=out) == 2
    assert "no answer" in out.getvalue()


def test_client_skips_console_noise():
    fw, pc = stream_pair()
    fw.write(b"Adafruit CircuitPython 9.2 banner\n{\"type\":\"status\",\"t\":1}\n")
    fw.write(b'{"type":"reply","cmd":"get","ok":true,"name":"x","value":1}\n')
    c = BmsClient(pc)
    pc.reset_input_buffer = lambda: None  # keep what was queued above
    assert c.command("get x")["value"] == 1
    try:
        c.command("get x")
        raise AssertionError("expected BmsError")
    except BmsError:
        pass


def test_module_runs_from_the_command_line():
    r = subprocess.run([sys.executable, "-m", "hil.bmsctl", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "status" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hil.bmsctl", "status"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "no port" in r.stdout


def test_status_names_the_mosfet_sensor_and_counts_unknown_cells():
    rig = Rig()
    code, text = _run(rig, "status")
    assert code == 0 and "MOSFET " in text and "modules " in text
    assert "1 unknown (--)" in text


def test_event_lines_read_as_sentences_with_units_and_places():
    from hil.bmsctl import _fmt_event

    assert _fmt_event({"t": 12345, "kind": "trip", "cause": "ov", "value": 4300, "where": 56}) == \
        "    12.345 s  trip       ov 4300 mV at cell 56"
    assert "dsg_ot 61.5 C at sensor 3" in _fmt_event({"t": 0, "kind": "trip", "cause": "dsg_ot", "value": 615,
                                                      "where": 3})
    assert "missing value 2 at module 7" in _fmt_event({"t": 0, "kind": "trip", "cause": "missing", "value": 2,
                                                        "where": 7})
    assert "-> RUNNING" in _fmt_event({"t": 0, "kind": "state", "cause": "RUNNING", "value": 0, "where": 0})


def test_set_without_equals_is_a_usage_error_before_anything_is_sent():
    rig = Rig()
    code, text = _run(rig, "set", "ov_trip_mv", "4200")
    assert code == 2 and "NAME=VALUE" in text
    assert rig.host.settings.get("ov_trip_mv") == 4250
