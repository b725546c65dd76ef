"""Protection: debounce, hysteresis, latch, separate charge/discharge blocking, event ring. Runs on MicroPython."""

from protection import (
    CHG_OC,
    CHG_OT,
    CHG_UT,
    DSG_OC,
    DSG_OT,
    DSG_UT,
    EV_RELEASE,
    EV_RESET,
    EV_TRIP,
    EV_WARN,
    FET_OT,
    MISSING,
    N_COND,
    NO_TEMP,
    OV,
    PLAUS,
    SC,
    UNKNOWN,
    UV,
    EventLog,
    Protection,
)
from upy_check import raises


def nmc_limits():
    """NMC limits as a plain settings dict (the issue's starting facts)."""
    s = {}
    for name, unit, w, t, r, d, rd in (
        ("ov", "mv", 4200, 4250, 4050, 1000, 2000),
        ("uv", "mv", 3100, 3000, 3500, 1000, 2000),
        ("chg_oc", "ma", 45000, 50000, 10000, 500, 5000),
        ("dsg_oc", "ma", 90000, 100000, 20000, 500, 5000),
        ("chg_ot", "dc", 420, 450, 400, 2000, 5000),
        ("chg_ut", "dc", 30, 0, 50, 2000, 5000),
        ("dsg_ot", "dc", 570, 600, 550, 2000, 5000),
        ("dsg_ut", "dc", -170, -200, -150, 2000, 5000),
        ("fet_ot", "dc", 750, 850, 700, 1000, 5000),
    ):
        s["%s_warn_%s" % (name, unit)] = w
        s["%s_trip_%s" % (name, unit)] = t
        s["%s_release_%s" % (name, unit)] = r
        s["%s_delay_ms" % name] = d
        s["%s_release_ms" % name] = rd
    s["module_missing_ms"] = 1000
    s["plaus_tol_mv"] = 2000
    s["plaus_delay_ms"] = 3000
    s["sc_trip_ma"] = 300000
    s["temp_required"] = 1
    return s


def normal_values():
    v = [0] * N_COND
    v[OV] = 3700
    v[UV] = 3600
    v[CHG_OT] = v[CHG_UT] = v[DSG_OT] = v[DSG_UT] = 250
    v[FET_OT] = 300
    return v


def make(start_ms=0):
    p = Protection()
    p.load(nmc_limits())
    v = normal_values()
    p.update(start_ms, v)
    return p, v


def run(p, v, t0, t1, step=10):
    t = t0
    while t <= t1:
        p.update(t & 0x1FFFFFFF, v)
        t += step
    return t


def test_nothing_allowed_before_limits_load():
    p = Protection()
    p.update(0, normal_values())
    assert not p.charge_allowed and not p.discharge_allowed


def test_normal_pack_allows_both():
    p, v = make()
    run(p, v, 0, 5000)
    assert p.charge_allowed and p.discharge_allowed and p.tripped == 0 and p.warnings == 0


def test_ov_trips_after_debounce_not_before_and_keeps_discharge():
    p, v = make()
    v[OV] = 4260
    run(p, v, 10, 1000, 10)  # 990 ms beyond trip
    assert p.charge_allowed
    p.update(1010, v)  # 1000 ms
    assert not p.charge_allowed and p.discharge_allowed
    n = p.events.find(EV_TRIP, OV)
    assert n >= 0 and p.events.get(n)[3] == 4260


def test_ov_short_spike_does_not_trip():
    p, v = make()
    v[OV] = 4300
    run(p, v, 10, 900)
    v[OV] = 4100
    p.update(910, v)
    v[OV] = 4300
    run(p, v, 920, 1800)
    assert p.charge_allowed  # the spike restarted the debounce


def test_ov_releases_below_release_level_after_delay_only():
    p, v = make()
    v[OV] = 4300
    run(p, v, 0, 1100)
    assert not p.charge_allowed
    v[OV] = 4100  # below trip but above release: hysteresis holds the trip
    run(p, v, 1200, 10000)
    assert not p.charge_allowed
    v[OV] = 4040
    run(p, v, 10010, 12000)  # 1990 ms below release
    assert not p.charge_allowed
    p.update(12010, v)
    assert p.charge_allowed
    assert p.events.find(EV_RELEASE, OV) >= 0


def test_uv_blocks_discharge_only():
    p, v = make()
    v[UV] = 2950
    run(p, v, 0, 1100)
    assert p.charge_allowed and not p.discharge_allowed
    v[UV] = 3510
    run(p, v, 1200, 3300)
    assert p.discharge_allowed


def test_current_limits_block_their_direction():
    p, v = make()
    v[CHG_OC] = 51000
    run(p, v, 0, 600)
    assert not p.charge_allowed and p.discharge_allowed
    v[CHG_OC] = 0
    v[DSG_OC] = 120000
    run(p, v, 610, 1200)
    assert not p.discharge_allowed


def test_temperature_windows():
    cases = ((CHG_OT, 460, False, True), (CHG_UT, -10, False, True), (DSG_OT, 610, True, False),
             (DSG_UT, -210, True, False), (FET_OT, 900, False, False))
    for cond, bad, chg, dsg in cases:
        p, v = make()
        v[cond] = bad
        run(p, v, 0, 2100)
        assert p.charge_allowed == chg and p.discharge_allowed == dsg, cond


def test_warning_before_trip():
    p, v = make()
    v[OV] = 4210
    run(p, v, 0, 1100)
    assert p.is_warning(OV) and not p.is_tripped(OV) and p.charge_allowed
    assert p.events.find(EV_WARN, OV) >= 0


def test_unknown_value_never_trips_and_never_releases():
    p, v = make()
    v[DSG_OT] = UNKNOWN  # absent sensor
    run(p, v, 0, 10000)
    assert p.tripped == 0
    v[DSG_OT] = 650
    run(p, v, 10010, 12100)
    assert not p.discharge_allowed
    v[DSG_OT] = UNKNOWN  # the sensor vanished while hot: stay tripped
    run(p, v, 12110, 30000)
    assert not p.discharge_allowed


def test_missing_module_blocks_both_and_recovers():
    p, v = make()
    v[MISSING] = 1
    run(p, v, 0, 990)
    assert p.charge_allowed
    p.update(1000, v)
    assert not p.charge_allowed and not p.discharge_allowed
    v[MISSING] = 0
    run(p, v, 1010, 2100)
    assert p.charge_allowed and p.discharge_allowed


def test_short_circuit_latches_until_reset():
    p, v = make()
    v[SC] = 1
    p.update(0, v)
    assert not p.charge_allowed and not p.discharge_allowed
    v[SC] = 0
    run(p, v, 10, 60000, 100)
    assert not p.discharge_allowed  # no auto-release
    v[SC] = 1
    assert not p.reset(60100, v)  # alert still active: reset refused
    v[SC] = 0
    assert p.reset(60200, v)
    assert p.charge_allowed and p.discharge_allowed
    assert p.events.find(EV_RESET, SC) >= 0


def test_plausibility():
    p, v = make()
    v[PLAUS] = 2500
    run(p, v, 0, 3100)
    assert not p.charge_allowed and not p.discharge_allowed


def test_wraparound_of_ticks():
    p = Protection()
    p.load(nmc_limits())
    v = normal_values()
    start = (1 << 29) - 500
    v[OV] = 4300
    t = start
    for _ in range(100):  # 0..990 ms across the wrap
        p.update(t & 0x1FFFFFFF, v)
        t += 10
    assert p.charge_allowed
    p.update(t & 0x1FFFFFFF, v)
    assert not p.charge_allowed


def test_bad_limits_refused_with_name():
    s = nmc_limits()
    s["ov_release_mv"] = 4300
    e = raises(ValueError, Protection().load, s)
    assert "ov" in str(e)
    s = nmc_limits()
    del s["uv_trip_mv"]
    e = raises(ValueError, Protection().load, s)
    assert "uv_trip_mv" in str(e)


def test_event_ring_is_bounded_and_ordered():
    log = EventLog(4)
    for i in range(10):
        log.add(i, EV_TRIP, i, i * 10, 0)
    assert len(log) == 4 and log.seq == 10
    assert log.get(0)[0] == 6 and log.get(3)[0] == 9
    raises(IndexError, log.get, 4)


def test_cell_and_temperature_trips_hold_while_a_module_is_missing():
    # OV on a cell of module 5; module 5 stops answering: the highest *known* cell is fine, but the
    # over-voltage cell is only unknown, not fixed. The trip must not release until every module answers.
    p, v = make()
    v[OV] = 4300
    v[DSG_OT] = 650
    run(p, v, 0, 2100)
    assert p.is_tripped(OV) and p.is_tripped(DSG_OT)
    v[OV] = 3700  # the known cells only
    v[DSG_OT] = 250  # the hot sensor's module is the missing one
    v[MISSING] = 1
    run(p, v, 2110, 30000)
    assert p.is_tripped(OV) and p.is_tripped(DSG_OT) and p.is_warning(OV)
    v[MISSING] = 0  # back, and really fine now: the release delays count from here
    run(p, v, 30010, 30010 + 1990)
    assert p.is_tripped(OV)
    run(p, v, 32010, 40000)
    assert not p.is_tripped(OV) and not p.is_tripped(DSG_OT)


def test_a_missing_module_does_not_stop_trips_on_the_known_cells():
    p, v = make()
    v[MISSING] = 1
    v[UV] = 2900
    run(p, v, 0, 1010)
    assert p.is_tripped(UV)


def test_warning_has_its_own_debounce_and_clear_delay():
    p, v = make()
    v[OV] = 4210  # above warn, below trip
    run(p, v, 0, 990)
    assert not p.is_warning(OV)  # 990 ms: not yet
    p.update(1000, v)
    assert p.is_warning(OV)
    v[OV] = 3700
    run(p, v, 1010, 1010 + 1990)
    assert p.is_warning(OV)  # the clear waits the release delay too
    run(p, v, 3010, 3100)
    assert not p.is_warning(OV)


def test_every_transition_logged_with_time_cause_value_and_place():
    p, v = make()
    w = [0] * N_COND
    v[OV] = 4300
    w[OV] = 56
    t = 100
    while not p.is_tripped(OV):
        p.update(t, v, w)
        t += 10
    trip_t = t - 10
    ev = p.events.get(p.events.find(EV_TRIP, OV))
    assert ev == (trip_t, EV_TRIP, OV, 4300, 56)
    assert p.events.get(p.events.find(EV_WARN, OV))[3] == 4300
    v[OV] = 4000
    w[OV] = 9
    while p.is_tripped(OV):
        p.update(t, v, w)
        t += 10
    assert p.events.get(p.events.find(EV_RELEASE, OV)) == (t - 10, EV_RELEASE, OV, 4000, 9)


def test_missing_module_release_waits_one_second():
    p, v = make()
    v[MISSING] = 2
    run(p, v, 0, 1100)
    assert not p.charge_allowed
    v[MISSING] = 0
    run(p, v, 1110, 1110 + 990)
    assert not p.charge_allowed and not p.discharge_allowed
    run(p, v, 2110, 2200)
    assert p.charge_allowed and p.discharge_allowed


def test_plausibility_latches_until_a_reset_the_sensor_allows():
    # The check runs only with the load side connected, and the trip opens it: no reading can ever say
    # "over", so the trip is latched and the user reset reruns the check.
    p, v = make()
    v[PLAUS] = 2500
    run(p, v, 0, 3100)
    assert not p.charge_allowed and not p.discharge_allowed and p.latched == 1 << PLAUS
    v[PLAUS] = UNKNOWN  # paths open: nothing measured
    run(p, v, 3110, 60000, 100)
    assert not p.discharge_allowed
    v[PLAUS] = 0x7FFFFFF  # the current sensor still fails: the reset is refused
    assert not p.reset(60100, v) and not p.discharge_allowed
    v[PLAUS] = UNKNOWN
    assert p.reset(60200, v)
    assert p.charge_allowed and p.discharge_allowed and p.latched == 0
    assert p.events.find(EV_RESET, PLAUS) >= 0


def test_no_cell_temperature_blocks_charging_at_once_and_always_warns():
    # Every module answers and not one cell temperature is known: charging lithium below 0 degC plates it.
    p, v = make()
    v[CHG_OT] = v[CHG_UT] = v[DSG_OT] = v[DSG_UT] = UNKNOWN
    v[NO_TEMP] = 1
    p.update(10, v)
    assert not p.charge_allowed and p.discharge_allowed and p.is_warning(NO_TEMP)
    v[CHG_OT] = v[CHG_UT] = v[DSG_OT] = v[DSG_UT] = 250
    v[NO_TEMP] = 0  # one sensor reads again
    run(p, v, 20, 1010)
    assert not p.charge_allowed
    run(p, v, 1020, 1100)
    assert p.charge_allowed
    run(p, v, 1110, 2200)  # the warning clears a release delay after the trip
    assert not p.is_warning(NO_TEMP)
    # temp_required = 0 (the user's choice, e.g. a pack that never sees frost): a warning only.
    lim = nmc_limits()
    lim["temp_required"] = 0
    p.load(lim)
    v[NO_TEMP] = 1
    run(p, v, 3000, 10000, 100)
    assert p.charge_allowed and p.discharge_allowed and p.is_warning(NO_TEMP) and p.tripped == 0


def test_temp_required_is_a_required_setting():
    lim = nmc_limits()
    del lim["temp_required"]
    e = raises(ValueError, Protection().load, lim)
    assert "temp_required" in str(e)
