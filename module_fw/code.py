"""Module board: wiring only. Pins and defaults come from settings.toml; ModuleApp does the work.

On the RP2040, waking from deep sleep restarts this file from the top (the app reads what it kept in
alarm.sleep_memory and passes the wake on down the chain).
"""

import os

import board
import busio
import digitalio
import microcontroller
from adafruit_ticks import ticks_ms

from ltc6811 import LTC6811
from module_app import ModuleApp
from module_link import ModuleLink
from module_services import ModuleServices


def _pin(key: str):
    return getattr(board, os.getenv(key))


def _int(key: str, default: int) -> int:
    value = os.getenv(key)
    return default if value is None else int(value)


def build() -> ModuleApp:
    """Build the board's objects from settings.toml and return the app (not yet running)."""
    baud = _int("LINK_BAUD", 250000)
    spi = busio.SPI(_pin("AFE_SCK"), MOSI=_pin("AFE_MOSI"), MISO=_pin("AFE_MISO"))
    cs = digitalio.DigitalInOut(_pin("AFE_CS"))
    up = busio.UART(
        _pin("UP_TX"), _pin("UP_RX"), baudrate=baud, timeout=0, receiver_buffer_size=512, rs485_dir=_pin("UP_DIR")
    )
    down = busio.UART(
        _pin("DOWN_TX"), _pin("DOWN_RX"), baudrate=baud, timeout=0, receiver_buffer_size=512,
        rs485_dir=_pin("DOWN_DIR"),
    )
    afe = LTC6811(spi, cs, baudrate=_int("AFE_SPI_HZ", 1000000))
    link = ModuleLink(up, down)
    services = ModuleServices(_pin("UP_RX"), release=(up, down, spi, cs), watchdog_s=_int("WATCHDOG_S", 0))
    return ModuleApp(
        afe,
        link,
        services,
        cell_count=_int("CELL_COUNT", 12),
        ow_period_s=_int("OW_PERIOD_S", 30),
        silence_ms=_int("SILENCE_MS", 2000),
        temp_warn_dc=_int("TEMP_WARN_DC", 600),
        temp_limit_dc=_int("TEMP_LIMIT_DC", 700),
        budget_mw=_int("BALANCE_BUDGET_MW", 3000),
        bleed_ma=_int("BLEED_MA", 200),
        ntc_beta=_int("NTC_BETA", 3435),
        uid=int.from_bytes(bytes(microcontroller.cpu.uid[:4]), "little"),
    )


if __name__ == "__main__":
    build().run(ticks_ms)
