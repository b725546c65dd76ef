"""Host board: build the real objects from ``settings.toml`` (pins, buses) and run ``HostApp``.

Wiring only; every decision is in ``lib/``. See ``docs/host.md``. ``build(services)`` is separate from
``main()`` so a PC test can run this exact wiring under Blinka with simulated buses in place.
"""

import os
import time

import adafruit_ina228
import analogio
import board
import busio
import digitalio
from adafruit_ticks import ticks_ms
from balance_policy import BalancePolicy
from bms_settings import Settings
from chain import ChainMaster
from current_sensor import AbsentCurrentSensor, CurrentSensor
from host_app import HostApp
from host_services import HostServices
from indicators import Indicators
from pack import ntc_temp_dc
from settings_store import SettingsStore
from soc import SocCounter
from soc_persist import NVM_LEN, SocPersist
from switches import ContactorSwitches, MosfetSwitches
from usb_console import UsbConsole


def env_int(name: str, default: int) -> int:
    v = os.getenv(name)
    return default if v is None or v == "" else int(v)


def env_str(name: str, default: str = "") -> str:
    v = os.getenv(name)
    return default if v is None else str(v)


def pin(name: str):
    """The ``board`` pin named by setting ``name``, or None when the setting is empty."""
    n = env_str(name)
    if not n:
        return None
    if not hasattr(board, n):
        raise ValueError("settings.toml: %s = %r is not a pin of this board" % (name, n))
    return getattr(board, n)


def output(name: str):
    p = pin(name)
    return digitalio.DigitalInOut(p) if p is not None else None


def input_pullup(name: str):
    p = pin(name)
    if p is None:
        return None
    io = digitalio.DigitalInOut(p)
    io.switch_to_input(pull=digitalio.Pull.UP)
    return io


def build(services) -> HostApp:
    settings = Settings()
    store = None
    if services.nvm is not None:
        store = SettingsStore(services.nvm, NVM_LEN)
        store.load(settings)

    uart = busio.UART(pin("LINK_TX"), pin("LINK_RX"), baudrate=env_int("LINK_BAUD", 250000), timeout=0,
                      receiver_buffer_size=1024)
    dir_pin = output("LINK_DIR")
    if dir_pin is not None:
        dir_pin.switch_to_output(value=False)
    chain = ChainMaster(uart, dir_pin=dir_pin, baudrate=env_int("LINK_BAUD", 250000),
                        max_modules=env_int("MAX_MODULES", 8))

    i2c = busio.I2C(pin("I2C_SCL"), pin("I2C_SDA"))
    try:
        ina = adafruit_ina228.INA228(i2c, address=env_int("INA228_ADDRESS", 0x40))
        current = CurrentSensor(ina, shunt_uohm=env_int("SHUNT_UOHM", 250), max_current_ma=env_int("SHUNT_MAX_MA",
                                300000), sc_trip_ma=settings.get("sc_trip_ma"), alert_pin=input_pullup("INA228_ALERT"),
                                invert=bool(env_int("CURRENT_INVERT", 0)), vbus_ratio=env_int("VBUS_RATIO", 1))
    except (ValueError, RuntimeError, OSError) as e:
        print("host: INA228:", e)  # runs on, with both paths held open as a sensor fault
        current = AbsentCurrentSensor(str(e))

    high = bool(env_int("OUTPUT_ACTIVE_HIGH", 1))
    if env_str("SWITCH_MODE", "mosfet") == "contactor":
        switches = ContactorSwitches(output("MAIN_PIN"), output("PRECHARGE_PIN"),
                                     margin_mv=env_int("PRECHARGE_MARGIN_MV", 10000),
                                     precharge_ms=env_int("PRECHARGE_MS", 5000),
                                     retries=env_int("PRECHARGE_RETRIES", 2),
                                     pause_ms=env_int("PRECHARGE_PAUSE_MS", 10000),
                                     chg_en_pin=output("CHG_EN_PIN"), dsg_en_pin=output("DSG_EN_PIN"),
                                     active_high=high)
    else:
        switches = MosfetSwitches(output("CHG_PIN"), output("DSG_PIN"), active_high=high)

    indicators = Indicators(output("LED_PIN"), output("BUZZER_PIN"))
    fet_temp = None  # not fitted: no MOSFET temperature (shown absent)
    ntc_pin = pin("FET_NTC_PIN")
    if ntc_pin is not None:
        # Fitted: from now on an open or shorted reading is a sensor fault that opens both paths.
        adc = analogio.AnalogIn(ntc_pin)

        def fet_temp():
            return ntc_temp_dc(adc.value)

    soc = SocCounter(settings.get("capacity_mah"), settings.get("full_charge_mv"), settings.get("cutoff_mv"),
                     settings.get("tail_current_ma"), settings.get("full_hold_ms"), settings.get("empty_hold_ms"),
                     chemistry=settings.get("chemistry"))  # first start: SOC from the rest voltage, not 50 %
    persist = None
    if store is not None and services.sleep_memory is not None:
        persist = SocPersist(soc, services.sleep_memory, store, save_min=settings.get("soc_save_min"))
        persist.restore()
    balance = BalancePolicy(settings.get("bal_start_mv"), settings.get("bal_rest_soc_pct"),
                            settings.get("rest_current_ma"), settings.get("bal_timeout_s"),
                            settings.get("tail_current_ma"))

    app = HostApp(chain, settings, switches=switches, current=current, indicators=indicators, services=services,
                  fet_temp=fet_temp, soc=soc, soc_persist=persist, balance=balance, store=store,
                  button=input_pullup("BUTTON_PIN"), max_modules=env_int("MAX_MODULES", 8))
    try:
        import usb_cdc  # noqa: PLC0415 - not on every board / not under Blinka

        stream = usb_cdc.data or usb_cdc.console
    except ImportError:
        stream = None
    if stream is not None:
        app.console = UsbConsole(stream, app)
    return app


def main() -> None:
    services = HostServices(env_int("WATCHDOG_S", 4))
    try:
        app = build(services)
    except Exception as e:  # noqa: BLE001 - bad wiring settings: say why, outputs stay at reset (off)
        print("host: cannot start:", e)
        time.sleep(10)
        services.reload()
        return
    print("host: reset reason", services.reset_reason, "safe-mode note", services.safemode_note)
    try:
        while True:
            app.step(ticks_ms())
    except KeyboardInterrupt:
        # Ctrl-C from a developer: paths open, and no watchdog reset while they use the REPL.
        app.switches.open_all()
        services.stop_watchdog()
        print("host: stopped, paths open")
    except Exception as e:  # noqa: BLE001 - never leave a path closed behind a crash
        app.switches.open_all()
        print("host: crashed:", e)
        time.sleep(1)
        services.hard_reset()


if __name__ == "__main__":
    main()
