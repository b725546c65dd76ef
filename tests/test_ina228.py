"""The INA228 through the real adafruit_ina228 driver, against the register model on a simulated I2C bus."""

import adafruit_ina228
import pytest

from current_sensor import CurrentSensor
from hil.ina228_model import INA228Model
from hil.sim_i2c import SimI2C
from hil.sim_pins import SimPin
from protection import UNKNOWN


def rig(shunt_uohm=250, max_current_ma=300000, sc_trip_ma=400000, with_pin=True, **kw):
    bus = SimI2C()
    model = INA228Model(shunt_uohm=shunt_uohm).attach_to(bus)
    ina = adafruit_ina228.INA228(bus)
    pin = SimPin("alert", source=lambda: model.alert_pin) if with_pin else None
    sensor = CurrentSensor(ina, shunt_uohm=shunt_uohm, max_current_ma=max_current_ma, sc_trip_ma=sc_trip_ma,
                           alert_pin=pin, **kw)
    return bus, model, ina, sensor


def test_driver_finds_the_model_by_its_ids():
    bus = SimI2C()
    INA228Model().attach_to(bus)
    ina = adafruit_ina228.INA228(bus)
    assert ina.device_id == 0x228


def test_missing_chip_is_a_clear_error():
    bus = SimI2C()
    with pytest.raises(ValueError, match="No I2C device"):
        adafruit_ina228.INA228(bus)


def test_current_integer_ma_charge_positive_and_matches_driver():
    _, model, ina, s = rig()
    for ma in (0, 1250, 52000, -123750, 299000, -299000):
        model.set_current(ma)
        assert s.read()
        assert abs(s.current_ma - ma) <= 2  # 312.5 nV / 250 uOhm = 1.25 mA per LSB
        assert abs(ina.current * 1000 - s.current_ma) <= 700 + abs(ma) // 500  # the driver agrees (float path)


def test_invert_flips_sign():
    _, model, _, s = rig(invert=True)
    model.set_current(10000)
    s.read()
    assert abs(s.current_ma + 10000) <= 2


def test_small_shunt_uses_the_fine_range():
    _, model, ina, s = rig(shunt_uohm=100, max_current_ma=100000, sc_trip_ma=200000)  # 20 mV full scale
    assert s.adc_range == 1 and ina.adc_range == 1
    model.set_current(1000)
    s.read()
    assert abs(s.current_ma - 1000) <= 1


def test_shunt_beyond_sensor_range_refused():
    with pytest.raises(ValueError, match="beyond"):
        rig(shunt_uohm=1000, sc_trip_ma=400000)


def test_calibration_register_from_settings():
    _, model, ina, _ = rig(shunt_uohm=250, max_current_ma=300000)
    # SHUNT_CAL = 13107.2e6 x (300 A / 2^19) x 250e-6 Ohm
    assert abs(model.regs[0x02] - int(13107.2e6 * 300 / (1 << 19) * 250e-6)) <= 1


def test_short_circuit_limit_registers_and_alert_pin_latch():
    _, model, _, s = rig(sc_trip_ma=400000)
    # 400 A x 250 uOhm = 100 mV = 20000 x 5 uV
    assert model.regs[0x0C] == 20000 and model.regs[0x0D] == (-20000) & 0xFFFF
    assert s.limit_ma == 400000
    assert model.regs[0x0B] & 0x8000  # latched
    model.set_current(100000)
    s.read()
    assert not s.sc_alert
    model.set_current(-450000)  # a short on discharge
    model.set_current(0)  # gone a microsecond later: the latch holds the pin
    s.read()
    assert s.sc_alert
    s.read()
    assert s.sc_alert  # the loop's reads do not clear it
    s.clear_alert()
    assert not s.sc_alert


def test_alert_without_pin_polls_flags():
    _, model, _, s = rig(with_pin=False)
    model.set_current(500000)
    s.read()
    assert s.sc_alert
    model.set_current(0)
    s.read()
    assert s.sc_alert
    s.clear_alert()
    assert not s.sc_alert


def test_bus_voltage_in_range_and_unknown_beyond():
    _, model, _, s = rig()
    model.set_bus(52800)
    s.read()
    assert abs(s.bus_mv - 52800) <= 1
    model.set_bus(90000)  # beyond the INA228's 85 V
    s.read()
    assert s.bus_mv == UNKNOWN


def test_bus_divider_and_disconnected():
    _, model, _, s = rig(vbus_ratio=5)
    model.set_bus(64000)
    s.read()
    assert abs(s.bus_mv - 320000) <= 5
    _, model, _, s = rig(vbus_ratio=0)
    s.read()
    assert s.bus_mv == UNKNOWN


def test_i2c_failure_is_unknown_not_zero():
    bus, model, _, s = rig()
    model.set_current(5000)
    s.read()
    bus.nack.add(0x40)
    assert not s.read()
    assert s.current_ma == UNKNOWN and not s.ok and s.errors == 1
    bus.nack.clear()
    assert s.read() and abs(s.current_ma - 5000) <= 2


def test_only_the_shunt_limits_raise_the_alert():
    _, model, _, s = rig()
    model.set_bus(84000)  # a high pack voltage is not a short circuit
    model.set_current(250000)  # a large but allowed current either
    s.read()
    assert not s.sc_alert


@pytest.mark.parametrize("shunt_uohm,sc_trip_ma", [(250, 600000), (100, 400000)])
def test_current_exact_up_to_full_scale_in_both_ranges(shunt_uohm, sc_trip_ma):
    # Near full scale (163.84 mV or 40.96 mV across the shunt) the integer scaling must still be exact to
    # the rounding of one ADC step; the board's small ints end at 2^30, so no product may need more.
    _, model, _, s = rig(shunt_uohm=shunt_uohm, max_current_ma=sc_trip_ma, sc_trip_ma=sc_trip_ma)
    full_nv = 40960000 if s.adc_range else 163840000
    step_ma = (78.125 if s.adc_range else 312.5) / shunt_uohm
    for frac in (-0.999, -0.5, 0.001, 0.5, 0.999):
        ma = int(frac * full_nv / shunt_uohm)
        model.set_current(ma)
        assert s.read()
        assert abs(s.current_ma - ma) <= step_ma + 1


def test_short_circuit_limit_can_follow_a_setting_change():
    # code.py programs sc_trip_ma once at start; after the setting changes the app calls set_sc_trip_ma
    _, model, _, s = rig(sc_trip_ma=400000)
    s.set_sc_trip_ma(200000)
    assert model.regs[0x0C] == 10000 and model.regs[0x0D] == (-10000) & 0xFFFF and s.limit_ma == 200000
    model.set_current(-250000)  # beyond the new limit, within the old one
    model.set_current(0)
    assert s.sc_alert
    s.clear_alert()
    with pytest.raises(ValueError, match="beyond the range"):
        s.set_sc_trip_ma(700000)  # 175 mV: more than the +-163.84 mV range
    assert s.limit_ma == 200000  # the old limit stays
