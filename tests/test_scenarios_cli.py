"""`python -m hil.sim`: lists the scenarios, refuses impossible packs with the reason, writes the whole report; the
live view renders a real snapshot."""

import json

from rich.console import Console

from hil import sim
from hil.live import LiveView
from hil.rig import Rig


def test_list_names_every_scenario(capsys):
    assert sim.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("full_cycle", "ov_charge", "uv_discharge", "over_current", "short_circuit", "module_unplug",
                 "open_wire", "hot_board", "sensor_absent", "host_silent"):
        assert name in out
    assert "(default)" in out


def test_impossible_pack_and_unknown_scenario_are_refused(capsys):
    assert sim.main(["--cells", "60", "--modules", "4", "--no-live"]) == 2
    assert "4..12" in capsys.readouterr().err
    assert sim.main(["no_such_scenario"]) == 2
    assert sim.main(["--scenario", "no_such_scenario"]) == 2


def test_cli_writes_the_report_with_plots(tmp_path, capsys):
    rc = sim.main(["--scenario", "over_current", "--cells", "8", "--modules", "2", "--chemistry", "NMC", "--seed", "4",
                   "--no-live", "--out", str(tmp_path)])
    assert rc == 0
    d = tmp_path / "over_current"
    summary = json.loads((d / "summary.json").read_text())
    assert summary["cells"] == 8 and summary["chemistry"] == "NMC"
    assert [t["cause"] for t in summary["trips"]] == ["dsg_oc"]
    for png in ("cell_voltages.png", "current.png", "soc.png", "temperatures.png", "balancing.png"):
        assert (d / png).read_bytes()[:4] == b"\x89PNG"
    assert "trip dsg_oc" in (d / "events.log").read_text()
    assert "PASSED" in capsys.readouterr().out


def test_live_view_renders_pack_modules_and_faults():
    rig = Rig(cells=8, modules=2, soc=0.5)
    rig.run_for(2.0)
    rig.inject("hot_board", module=2, offset_c=10.0)
    rig.run_for(5.0)
    console = Console(record=True, width=120)
    console.print(LiveView("demo", 100.0)._render(rig.snapshot()))
    text = console.export_text()
    assert "demo" in text and "module" in text and "board m2 +10" in text
