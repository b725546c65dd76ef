"""bmsctl against the whole simulated host (HostApp on the virtual rig) through the in-memory USB port."""

import io
import json

import pytest
from protection import DSG_OC
from usb_console import UsbConsole

from hil.bmsctl import main
from hil.rig import Rig
from hil.sim_serial import stream_pair


@pytest.fixture(scope="module")
def rig_port():
    rig = Rig(cells=8, modules=2, chemistry="LFP", seed=3)

    def pump():
        rig.run_for(0.2)
        return 200

    fw, pc = stream_pair(pump=pump, timeout=5.0)
    rig.fw.host.console = UsbConsole(fw, rig.fw.host)
    rig.run_for(10.0)  # wake, enumerate, first cycles
    return rig, pc


def _run(pc, *argv):
    out = io.StringIO()
    code = main(list(argv), ser=pc, out=out)
    return code, out.getvalue()


def test_status_shows_the_simulated_pack(rig_port):
    rig, pc = rig_port
    code, text = _run(pc, "--json", "status")
    st = json.loads(text)
    assert code == 0 and st["type"] == "status"
    assert len(st["cells_mv"]) == 8 and all(2500 < v < 3700 for v in st["cells_mv"])
    assert abs(st["pack_mv"] - sum(st["cells_mv"])) < 500
    code, text = _run(pc, "status")
    assert code == 0 and "cells (mV)" in text


def test_setting_change_reaches_the_hosts_protection(rig_port):
    rig, pc = rig_port
    code, text = _run(pc, "set", "dsg_oc_trip_ma=120000")
    assert code == 0, text
    rig.run_for(1.0)
    assert rig.fw.host.protection.limit(DSG_OC, "trip") == 120000
    code, text = _run(pc, "set", "dsg_oc_trip_ma=1000")
    assert code == 1 and "dsg_oc_release_ma < dsg_oc_warn_ma < dsg_oc_trip_ma" in text
    assert rig.fw.host.protection.limit(DSG_OC, "trip") == 120000


def test_sim_option_needs_no_board():
    out = io.StringIO()
    assert main(["--sim", "--json", "get", "cutoff_mv"], out=out) == 0
    assert json.loads(out.getvalue())["value"] == 2500  # the rig's LFP pack
