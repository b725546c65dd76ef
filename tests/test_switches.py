"""Switches: MOSFET pair and main contactor with precharge, seen through the simulated pins."""

import pytest

from hil.clock import VirtualClock
from hil.host_services_sim import PrechargeBusModel
from hil.sim_pins import SimPin
from switches import CLOSED, PRECHARGE_FAULT, ContactorSwitches, MosfetSwitches

PACK_MV = 320000


def test_mosfets_switch_each_path_alone():
    clock = VirtualClock()
    chg, dsg = SimPin("chg", clock), SimPin("dsg", clock)
    sw = MosfetSwitches(chg, dsg)
    assert chg.value is False and dsg.value is False  # safe state from construction
    sw.update(0, True, True)
    assert chg.value and dsg.value and sw.connected
    sw.update(200, False, True)
    assert not chg.value and dsg.value and sw.discharge_closed and not sw.charge_closed
    sw.open_all()
    assert not chg.value and not dsg.value


def test_mosfets_active_low_drive():
    chg, dsg = SimPin("chg"), SimPin("dsg")
    sw = MosfetSwitches(chg, dsg, active_high=False)
    assert chg.value is True  # off = high
    sw.update(0, True, False)
    assert chg.value is False and dsg.value is True


def contactor_rig(stuck=False, retries=2):
    clock = VirtualClock(start_ms=(1 << 29) - 700)  # across the tick wrap
    main, pre = SimPin("main", clock), SimPin("pre", clock)
    bus = PrechargeBusModel(clock, main, pre, lambda: PACK_MV, tau_ms=300)
    bus.stuck = stuck
    sw = ContactorSwitches(main, pre, margin_mv=5000, precharge_ms=3000, retries=retries, pause_ms=2000,
                           overlap_ms=100)
    return clock, main, pre, bus, sw


def run(clock, sw, bus, ms, on=True):
    end = clock.total_ms + ms
    while clock.total_ms < end:
        sw.update(clock.ms, on, on, PACK_MV, bus.bus_mv)
        clock.advance(10)


def test_precharge_success_closes_main_after_bus_rises():
    clock, main, pre, bus, sw = contactor_rig()
    run(clock, sw, bus, 5000)
    assert sw.state == CLOSED and main.value and not pre.value
    assert sw.charge_closed and sw.discharge_closed
    t_pre = [t for t, v in pre.history if v][0]
    t_main = [t for t, v in main.history if v][0]
    # RC: 320 V within 5 V takes tau x ln(64) = 1.25 s
    assert 1100 <= t_main - t_pre <= 1400
    # precharge opens only after the main has closed (overlap), never both open under load
    t_pre_off = [t for t, v in pre.history if not v][-1]
    assert t_pre_off - t_main >= 100


def test_precharge_that_never_rises_faults_after_retries():
    clock, main, pre, bus, sw = contactor_rig(stuck=True, retries=2)
    run(clock, sw, bus, 30000)
    assert sw.state == PRECHARGE_FAULT and sw.fault
    assert not main.value and not pre.value
    closes = [t for t, v in pre.history if v]
    assert len(closes) == 3  # first attempt + 2 retries, then no more
    assert not any(v for t, v in main.history)  # main never closed onto an uncharged bus
    # attempts are bounded: each precharge lasts 3 s, pauses 2 s
    assert closes[1] - closes[0] == pytest.approx(5000, abs=20)
    sw.reset()
    bus.stuck = False
    run(clock, sw, bus, 5000)
    assert sw.state == CLOSED


def test_request_off_opens_everything_and_unknown_pack_waits():
    clock, main, pre, bus, sw = contactor_rig()
    run(clock, sw, bus, 5000)
    run(clock, sw, bus, 20, on=False)
    assert not main.value and not pre.value and not sw.connected
    sw.update(clock.ms, True, True, -0x20000000, 0)  # pack voltage unknown: do not start
    assert not pre.value


def test_enable_outputs_follow_direction():
    clock = VirtualClock()
    main, pre, ce, de = (SimPin(n, clock) for n in ("main", "pre", "ce", "de"))
    bus = PrechargeBusModel(clock, main, pre, lambda: PACK_MV, tau_ms=100)
    sw = ContactorSwitches(main, pre, margin_mv=5000, precharge_ms=3000, retries=1, chg_en_pin=ce, dsg_en_pin=de)
    end = clock.total_ms + 3000
    while clock.total_ms < end:
        sw.update(clock.ms, False, True, PACK_MV, bus.bus_mv)  # charging blocked (OV)
        clock.advance(10)
    assert main.value and de.value and not ce.value


def test_bad_contactor_settings_refused():
    with pytest.raises(ValueError):
        ContactorSwitches(SimPin(), SimPin(), margin_mv=0, precharge_ms=1000, retries=1)


def test_precharge_fault_latches_through_requests_off_and_on_until_reset():
    clock, main, pre, bus, sw = contactor_rig(stuck=True, retries=0)
    run(clock, sw, bus, 4000)
    assert sw.fault
    attempts = len([t for t, v in pre.history if v])
    run(clock, sw, bus, 1000, on=False)  # the app stops asking (FAULT) ...
    sw.open_all()
    bus.stuck = False
    run(clock, sw, bus, 10000)  # ... and asks again: no new attempt without a user reset
    assert sw.fault and not main.value and not pre.value
    assert len([t for t, v in pre.history if v]) == attempts
    sw.reset()
    run(clock, sw, bus, 5000)
    assert sw.state == CLOSED
