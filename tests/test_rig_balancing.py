"""Balancing on the virtual rig with the module firmware exactly as shipped (no rig overrides): the host's policy
and the modules' balancer together take a 12-cell module from a few mV of spread to within 1 mV."""

import inspect

from module_app import ModuleApp

from hil.pack_model import Spread
from hil.rig import Rig

LSB_MV = 0.1  # the AFE's resolution: the BMS knows each cell to half of this either way


def test_default_modules_balance_a_12_cell_module_from_6_mv_to_1_mv():
    # A small NMC pack at mid SOC: a few mV of spread is a few mAh, so the run is short.  At rest, SOC above the
    # (lowered) rest SOC, and a 2 mV start threshold, so the host's own policy starts and stops the session.
    rig = Rig(cells=12, modules=1, chemistry="NMC", soc=0.6, seed=6, capacity_ah=0.2,
              spread=Spread(capacity_pct=0.0, soc_pct=0.25, r_pct=0.0),
              settings={"bal_start_mv": 2, "bal_rest_soc_pct": 50})
    default = inspect.signature(ModuleApp.__init__).parameters["hysteresis_100uv"].default
    assert rig.fw.boards[0].app.hysteresis_100uv == default, "the rig must run the module's own default"
    start_mv = rig.pack.spread_mv()
    assert start_mv > 5.0
    low = min(range(12), key=lambda i: rig.pack.cells[i].ocv_v())

    assert rig.run_until(lambda r: r.fw.balancing(), 10.0)
    assert rig.run_until(lambda r: not r.fw.balancing(), 120.0), (
        "balancing stalled at %.2f mV" % rig.pack.spread_mv())
    rig.run_for(2.0)
    host = rig.fw.host_cells_mv()
    assert max(host) - min(host) <= 1.0 + 1e-9  # what the BMS measures
    assert rig.pack.spread_mv() <= 1.0 + LSB_MV  # the truth, to the AFE's resolution
    assert rig.pack.bleed_as[low] == 0  # the lowest cell sets the target: it never bleeds
    assert rig.pack.bleeding_cells() == 0 and not rig.fw.balancing()
    # and it stays there: no new session on a settled pack
    rig.run_for(30.0)
    assert not rig.fw.balancing() and rig.pack.bleeding_cells() == 0
