"""Driver against the chip model over random inputs (hypothesis): values survive the wire, bad PECs never pass."""

from hypothesis import given, settings
from hypothesis import strategies as st

import ltc6811
from hil.clock import VirtualClock
from hil.ltc6811_model import LTC6811Model
from hil.sim_pins import SimPin
from hil.sim_spi import SimSPI
from ltc6811 import LTC6811, PECError


def chip(cells):
    clock = VirtualClock()
    model = LTC6811Model(clock, lambda: cells)
    cs = SimPin("cs", clock)
    afe = LTC6811(SimSPI(model, cs=cs), cs)
    afe.wake()
    return clock, model, afe


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(st.integers(0, 5_000_000), min_size=12, max_size=12))
def test_every_cell_reads_back_to_100uv(cells):
    clock, _, afe = chip(cells)
    afe.start_cells()
    clock.advance(ltc6811.conversion_ms())
    buf = [0] * 12
    assert afe.read_cells_into(buf) == 0
    for got, uv in zip(buf, cells, strict=True):
        assert abs(got * 100 - uv) <= 50


@settings(max_examples=60, deadline=None)
@given(bad=st.integers(0, 8), retries=st.integers(0, 3))
def test_bad_pecs_are_retried_or_raised_never_accepted(bad, retries):
    cells = [3_600_000] * 12
    clock, model, afe = chip(cells)
    afe.retries = retries
    afe.start_cells()
    clock.advance(ltc6811.conversion_ms())
    model.inject_pec_errors(bad)
    buf = [0] * 12
    # The bad answers come in a row, all on the first group: it fails only when they outnumber its tries.
    if bad > retries:
        try:
            afe.read_cells_into(buf)
        except PECError:
            return
        raise AssertionError("a group with every try corrupted was accepted")
    assert afe.read_cells_into(buf) == 0
    assert buf == [36000] * 12  # what came through is the real value
    assert afe.pec_errors == bad
