"""The integer MOSFET-thermistor table agrees with adafruit_thermistor's float formula for the same circuit."""

import adafruit_thermistor
import pytest

from pack import NTC_OPEN_RAW, NTC_SHORT_RAW, UNKNOWN, ntc_temp_dc


class FakeAdc:
    value = 0


def library_dc(raw):
    t = object.__new__(adafruit_thermistor.Thermistor)  # no analogio pin on a PC: give it a fake ADC
    t.pin = FakeAdc()
    t.pin.value = raw
    t.series_resistor = 10000
    t.nominal_resistance = 10000
    t.nominal_temperature = 25
    t.b_coefficient = 3950
    t.high_side = False  # NTC to ground, pull-up to the reference
    return t.temperature * 10


@pytest.mark.parametrize("raw", range(2100, 63900, 397))
def test_table_within_half_a_degree_of_the_library(raw):
    assert abs(ntc_temp_dc(raw) - library_dc(raw)) <= 5


def test_unplugged_and_shorted_sensor_read_absent():
    assert ntc_temp_dc(NTC_OPEN_RAW) == UNKNOWN and ntc_temp_dc(65535) == UNKNOWN
    assert ntc_temp_dc(NTC_SHORT_RAW) == UNKNOWN and ntc_temp_dc(0) == UNKNOWN
