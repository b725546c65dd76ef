"""The status line byte vector in docs/usb.md."""

import os

from bms_settings import Settings
from usb_console import UsbConsole

from hil.sim_serial import stream_pair

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "usb.md")


class _Facade:
    def __init__(self):
        self.settings = Settings()

    def settings_changed(self, now_ms):
        pass

    def fill_status(self, st):
        st.state = "charging"
        st.pack_mv, st.current_ma, st.soc_pct, st.soc_source = 16420, 12500, 64, "sleep_memory"
        st.charge_mah, st.capacity_mah, st.learned_mah = 64000, 100000, 0
        st.charged_mah, st.discharged_mah, st.cycles = 152340, 140002, 1
        st.chg_on, st.dsg_on, st.balancing = True, True, 0
        for i, v in enumerate((4101, 4105, 0xFFFF, 4110)):
            st.cells_mv[i] = v
        st.n_cells = 4
        st.temps_dc[0], st.temps_dc[1], st.n_temps = 312, -32768, 2
        st.warnings, st.faults, st.latched = 1, 0, 0
        st.nvm_erases0, st.nvm_erases1, st.nvm_pending, st.note = 12, 11, 0, ""


def test_status_line_matches_the_documented_vector():
    with open(DOC) as f:
        doc_line = [ln for ln in f.read().splitlines() if ln.startswith('{"type":"status","t":123456')][0]
    fw, pc = stream_pair()
    con = UsbConsole(fw, _Facade())
    n = con.write_status(123456)
    assert pc.readline() == (doc_line + "\n").encode()
    assert n == len(doc_line) + 1
