"""NTC divider to 0.1 C integers (shared/bms_ntc.py). Runs on MicroPython too."""

import math

from bms_ntc import NTC, TEMP_ABSENT

VREF = 30000  # 3.0 V in 100 uV


def divider_100uv(temp_c, beta=3435.0, vref=VREF):
    """The circuit itself: 10 kOhm NTC (beta model) under a 10 kOhm pull-up."""
    r = 10000.0 * math.exp(beta * (1.0 / (temp_c + 273.15) - 1.0 / 298.15))
    return int(vref * r / (r + 10000.0) + 0.5)


def test_25c_is_half_the_reference():
    assert abs(NTC().temp_dc(15000, VREF) - 250) <= 1


def test_matches_the_beta_model_within_0_3c_from_minus_40_to_125():
    ntc = NTC()
    for t in range(-39, 125, 3):
        got = ntc.temp_dc(divider_100uv(t), VREF)
        assert abs(got - t * 10) <= 3, (t, got)


def test_ratiometric_reference_tolerance_cancels():
    ntc = NTC()
    for vref in (29850, 30150):
        got = ntc.temp_dc(divider_100uv(60, vref=vref), vref)
        assert abs(got - 600) <= 3, (vref, got)


def test_open_sensor_reads_the_reference_and_is_absent():
    assert NTC().temp_dc(VREF, VREF) == TEMP_ABSENT
    assert NTC().temp_dc(VREF - 20, VREF) == TEMP_ABSENT


def test_shorted_sensor_is_absent():
    assert NTC().temp_dc(0, VREF) == TEMP_ABSENT
    assert NTC().temp_dc(30, VREF) == TEMP_ABSENT


def test_unknown_or_missing_reference_is_absent():
    ntc = NTC()
    assert ntc.temp_dc(0xFFFF, VREF) == TEMP_ABSENT
    assert ntc.temp_dc(15000, 0xFFFF) == TEMP_ABSENT
    assert ntc.temp_dc(100, 200) == TEMP_ABSENT  # reference off


def test_other_beta_needs_its_own_table():
    b3950 = NTC(beta=3950)
    assert abs(b3950.temp_dc(divider_100uv(70, beta=3950.0), VREF) - 700) <= 3
    # Read with the wrong table, 70 C is off by degrees: the beta is a real setting.
    assert abs(NTC().temp_dc(divider_100uv(70, beta=3950.0), VREF) - 700) > 20


def test_returns_int():
    assert isinstance(NTC().temp_dc(12000, VREF), int)
