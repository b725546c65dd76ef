"""Balancing policy: after full charge or at rest high, lowest + 1 mV, stop at 1 mV, renew. Runs on MicroPython too."""

from balance_policy import NONE, SEND, STOP, BalancePolicy

WRAP = (1 << 29) - 3000


def _bp():
    return BalancePolicy(start_mv=10, rest_soc_pct=95, rest_current_ma=1000, timeout_s=30)


def test_no_balancing_before_full_charge_when_not_at_rest():
    bp = _bp()
    assert bp.decide(0, 33000, 33500, 80, False, False, 0) == NONE
    assert bp.decide(0, 33000, 33500, 99, False, False, -5000) == NONE
    assert not bp.balancing


def test_after_full_charge_targets_lowest_plus_1mv():
    bp = _bp()
    assert bp.decide(0, 41500, 42000, 100, True, False, 500) == SEND
    assert bp.balancing and bp.target_100uv == 41510 and bp.timeout_s == 30


def test_at_rest_above_soc_setting_balances():
    bp = _bp()
    assert bp.decide(0, 41500, 42000, 96, False, False, 200) == SEND


def test_small_spread_does_not_start_hysteresis():
    bp = _bp()
    assert bp.decide(0, 41500, 41590, 100, True, False, 0) == NONE


def test_stops_at_1mv_spread():
    bp = _bp()
    bp.decide(0, 41500, 42000, 100, True, False, 0)
    assert bp.decide(200, 41500, 41511, 100, True, False, 0) == NONE
    assert bp.decide(400, 41500, 41510, 100, True, False, 0) == STOP
    assert not bp.balancing
    assert bp.decide(600, 41500, 41550, 100, True, False, 0) == NONE


def test_trip_or_unknown_cell_stops_at_once():
    bp = _bp()
    bp.decide(0, 41500, 42000, 100, True, False, 0)
    assert bp.decide(200, 41500, 42000, 100, True, True, 0) == STOP
    bp.decide(400, 41500, 42000, 100, True, False, 0)
    assert bp.balancing
    assert bp.decide(600, 41500, 0xFFFF, 100, True, False, 0) == STOP


def test_renews_before_module_timeout_across_tick_wrap():
    bp = _bp()
    t = WRAP
    assert bp.decide(t, 41500, 42000, 100, True, False, 0) == SEND
    sends = 0
    for k in range(1, 301):  # 60 s at 200 ms
        now = (t + k * 200) % (1 << 29)
        a = bp.decide(now, 41500, 42000, 100, True, False, 0)
        if a == SEND:
            sends += 1
        assert a != STOP
    assert sends == 4  # every 15 s (half the 30 s timeout)


def test_retargets_when_lowest_cell_moves_2mv():
    bp = _bp()
    bp.decide(0, 41500, 42000, 100, True, False, 0)
    assert bp.decide(200, 41490, 42000, 100, True, False, 0) == NONE
    assert bp.decide(400, 41480, 42000, 100, True, False, 0) == SEND
    assert bp.target_100uv == 41490


def _bp_tail():
    return BalancePolicy(start_mv=10, rest_soc_pct=95, rest_current_ma=1000, timeout_s=30, tail_current_ma=2000)


def test_no_balancing_under_load_after_a_full_charge():
    # 30 A discharge: IR drops, not charge, make the spread; 5 A charge likewise
    bp = _bp_tail()
    assert bp.decide(0, 33000, 33500, 100, True, False, -30000) == NONE
    assert bp.decide(200, 33000, 33500, 100, True, False, 5000) == NONE
    assert bp.decide(400, 33000, 33500, 100, True, False, -1001) == NONE
    assert not bp.balancing


def test_balances_at_rest_and_in_the_charge_tail():
    bp = _bp_tail()
    assert bp.decide(0, 33000, 33500, 100, True, False, -1000) == SEND  # rest window, either sign
    bp = _bp_tail()
    assert bp.decide(0, 33000, 33500, 100, True, False, 2000) == SEND  # charge tail up to tail_current_ma


def test_a_load_stops_balancing_and_its_end_resumes_it_below_the_start_threshold():
    bp = _bp_tail()
    assert bp.decide(0, 41500, 42000, 100, True, False, 0) == SEND
    assert bp.decide(200, 41500, 42000, 100, True, False, -30000) == STOP
    assert not bp.balancing
    assert bp.decide(400, 41500, 41550, 100, True, False, -30000) == NONE
    # back at rest with 5 mV left (below the 10 mV start): the interrupted session goes on to 1 mV
    assert bp.decide(600, 41500, 41550, 100, True, False, 0) == SEND
    assert bp.balancing and bp.target_100uv == 41510
    assert bp.decide(800, 41500, 41510, 100, True, False, 0) == STOP
    # finished: a later load and rest with a small spread start nothing
    assert bp.decide(1000, 41500, 41550, 100, True, False, -30000) == NONE
    assert bp.decide(1200, 41500, 41550, 100, True, False, 0) == NONE


def test_a_trip_during_a_load_pause_cancels_the_resume():
    bp = _bp_tail()
    bp.decide(0, 41500, 42000, 100, True, False, 0)
    assert bp.decide(200, 41500, 42000, 100, True, False, -30000) == STOP
    assert bp.decide(400, 41500, 41550, 100, True, True, 0) == NONE
    assert bp.decide(600, 41500, 41550, 100, True, False, 0) == NONE
