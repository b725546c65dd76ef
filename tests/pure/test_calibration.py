"""Current calibration: zero offset and gain from one known current. Runs on MicroPython too."""

from bms_settings import SCHEMA, index_of
from calibration import GAIN_MAX_PPM, GAIN_MIN_PPM, OFFSET_MAX_MA, Calibrator, apply, gain_from, offset_from
from upy_check import raises


def test_identity_and_offset():
    assert apply(12345, 0, 1000000) == 12345
    assert apply(12345, 45, 1000000) == 12300
    assert apply(-500, -20, 1000000) == -480


def test_gain_matches_exact_within_one_ma_over_the_range():
    for gain in (500000, 987654, 1000001, 1234567, 1500000):
        for raw in (0, 1, 7, 999, 1000, 54321, -54321, 300000, -546000, 999999, 2000000):
            exact_num = raw * gain
            exact = exact_num // 1000000 if exact_num >= 0 else -((-exact_num) // 1000000)
            got = apply(raw, 0, gain)
            assert -1 <= got - exact <= 1, (raw, gain, got, exact)


def test_gain_from_known_current():
    g = gain_from(10100, 100, 10000)
    assert g == 1000000
    g = gain_from(10100, 0, 10000)
    assert 990098 <= g <= 990100
    assert -1 <= apply(10100, 0, g) - 10000 <= 1
    g = gain_from(-20500, 0, -20000)
    assert -1 <= apply(-20500, 0, g) + 20000 <= 1


def test_bad_calibrations_refused_with_reason():
    assert "at least" in str(raises(ValueError, gain_from, 500, 0, 500))
    assert "wrong sign" in str(raises(ValueError, gain_from, -10000, 0, 10000))
    assert "outside" in str(raises(ValueError, gain_from, 30000, 0, 10000))
    assert "too large" in str(raises(ValueError, offset_from, 2000000 * 10, 10))


def test_calibrator_averages_zero_readings():
    c = Calibrator()
    c.start_zero(4)
    for r in (10, 12, 14):
        assert not c.feed(r)
    assert c.feed(16)
    assert (c.name, c.value, c.error) == ("cal_offset_ma", 13, "")
    assert not c.busy


def test_calibrator_gain_uses_offset_and_reports_errors():
    c = Calibrator()
    c.start_gain(10000, 2)
    c.feed(10150, 100)
    assert c.feed(10050, 100)  # mean 10100 - offset 100 reads exactly the known 10000
    assert c.name == "cal_gain_ppm" and c.value == 1000000
    c.start_gain(10000, 1)
    assert c.feed(-10000, 0)
    assert c.name == "" and "wrong sign" in c.error


def test_zero_or_gain_taken_under_the_wrong_current_refused():
    # a "zero" with a 5 A load still connected would hide 5 A from every over-current trip
    assert "too large" in str(raises(ValueError, offset_from, 5000 * 10, 10))
    assert offset_from(-1500 * 10, 10) == -1500  # a real sensor offset is far smaller, but 1.5 A is still taken
    c = Calibrator()
    c.start_zero(2)
    c.feed(-5000)
    assert c.feed(-5000) and c.name == "" and "load connected" in c.error
    # a known current of 10 A that really was 12 A: a 20 % gain error is refused, 5 % is taken
    assert "outside" in str(raises(ValueError, gain_from, 12000, 0, 10000))
    assert gain_from(10500, 0, 10000) == 952380


def test_settings_ranges_allow_exactly_what_a_calibration_may_store():
    # a hand "set cal_offset_ma=..." must not store what "cal zero" refuses
    assert SCHEMA[index_of("cal_offset_ma")][2:4] == (-OFFSET_MAX_MA, OFFSET_MAX_MA)
    assert SCHEMA[index_of("cal_gain_ppm")][2:4] == (GAIN_MIN_PPM, GAIN_MAX_PPM)
