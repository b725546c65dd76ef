"""The module board's services on a PC, and a whole simulated module board (PC only).

``SimModuleServices`` duck-types ``module_services.ModuleServices``: a 256-byte ``sleep_memory``, the wake
reason, and a ``deep_sleep()`` that records the request (pin, level, time) instead of stopping the CPU.

``SimModuleBoard`` puts one module together the way ``module_fw/code.py`` does, on simulated parts: an
``LTC6811Model`` on a ``SimSPI`` with a ``SimPin`` chip select, the real ``LTC6811`` driver, the real
``ModuleLink`` on two ``SimUART`` ends, and the real ``ModuleApp``. Its ``step()`` also plays the RP2040's deep
sleep: after the app asks for it the board does nothing until a start bit reaches its UP receive line
(``rx_activity_latched``, the pin alarm), then it restarts the app from scratch with the same sleep memory,
as waking from deep sleep restarts ``code.py``; the bytes that arrived while it slept are lost.
"""

from hil.ltc6811_model import LTC6811Model
from hil.sim_pins import SimPin
from hil.sim_spi import SimSPI


class SimModuleServices:
    """Board services of one simulated module (see ``module_fw/lib/module_services.py``)."""

    def __init__(self, clock=None, *, sleep_memory=None, woke_from_pin: bool = False, up_rx_pin="UP_RX") -> None:
        self.clock = clock
        self.sleep_memory = sleep_memory if sleep_memory is not None else bytearray(256)
        self.woke_from_pin = woke_from_pin
        self.up_rx_pin = up_rx_pin
        self.deep_sleep_requested = False
        self.deep_sleep_ms = None
        self.alarm = None  # (pin, value) of the pin alarm the app armed
        self.watchdog_feeds = 0

    def feed_watchdog(self) -> None:
        self.watchdog_feeds += 1

    def deep_sleep(self) -> None:
        # What alarm.pin.PinAlarm(pin, value=False) + exit_and_deep_sleep_until_alarms would arm.
        self.deep_sleep_requested = True
        self.alarm = (self.up_rx_pin, False)
        self.deep_sleep_ms = self.clock.total_ms if self.clock is not None else None


def make_alarm_module(sleep_memory=None, woke_from_pin: bool = False):
    """A stand-in for CircuitPython's ``alarm`` module (``alarm.pin.PinAlarm``, ``sleep_memory``, ``wake_alarm``,
    ``exit_and_deep_sleep_until_alarms``) so the real ``module_services.ModuleServices`` runs on a PC.

    ``exit_and_deep_sleep_until_alarms`` records its alarms in ``deep_sleeps`` and returns (a board never returns).
    """
    import types

    alarm = types.ModuleType("alarm")
    pin = types.ModuleType("alarm.pin")

    class PinAlarm:
        def __init__(self, pin_, *, value: bool, edge: bool = False, pull: bool = False) -> None:
            self.pin = pin_
            self.value = value
            self.edge = edge
            self.pull = pull

    pin.PinAlarm = PinAlarm
    alarm.pin = pin
    alarm.sleep_memory = sleep_memory if sleep_memory is not None else bytearray(256)
    alarm.wake_alarm = PinAlarm("woken", value=False) if woke_from_pin else None
    alarm.deep_sleeps = []

    def exit_and_deep_sleep_until_alarms(*alarms, preserve_dios=()):
        alarm.deep_sleeps.append(alarms)

    alarm.exit_and_deep_sleep_until_alarms = exit_and_deep_sleep_until_alarms
    return alarm


class SimModuleBoard:
    """One module board on simulated buses; ``step(now_ms)`` runs its app (or its deep sleep).

    :param clock: the rig's ``VirtualClock``
    :param up_uart: ``SimUART`` of the UP port (toward the host)
    :param down_uart: ``SimUART`` of the DOWN port (or None: the end of the chain)
    :param cells_uv: callable → 12 cell voltages (uV) for the chip model
    :param gpio_uv: callable → GPIO1..5 (uV), or None for the model's own thermistors
    :param app_kwargs: keyword arguments for ``ModuleApp`` (``cell_count``, ...)
    """

    def __init__(self, clock, up_uart, down_uart, cells_uv, gpio_uv=None, *, model=None, boot_ms: int = 0,
                 **app_kwargs) -> None:
        self.clock = clock
        self.up_uart = up_uart
        self.down_uart = down_uart if down_uart is not None else _NullUART()
        self.model = model if model is not None else LTC6811Model(clock, cells_uv, gpio_uv)
        self.cs = SimPin("AFE_CS", clock)
        self.spi = SimSPI(self.model, cs=self.cs)
        self.app_kwargs = app_kwargs
        self.boot_ms = boot_ms  # wake-to-running time of code.py after deep sleep
        self._boot_at = None
        self._armed = False
        self.sleep_memory = bytearray(256)
        self.boots = 0
        self.app = None
        self.services = None
        self._boot(woke_from_pin=False)

    def _boot(self, woke_from_pin: bool) -> None:
        from ltc6811 import LTC6811
        from module_app import ModuleApp
        from module_link import ModuleLink

        self.boots += 1
        self.services = SimModuleServices(self.clock, sleep_memory=self.sleep_memory, woke_from_pin=woke_from_pin)
        self.afe = LTC6811(self.spi, self.cs)
        self.link = ModuleLink(self.up_uart, self.down_uart)
        self.app = ModuleApp(self.afe, self.link, self.services, **self.app_kwargs)
        self.up_uart.sleeping = False

    @property
    def sleeping(self) -> bool:
        return self.services.deep_sleep_requested

    def step(self, now_ms: int) -> None:
        if self.services.deep_sleep_requested:
            uart = self.up_uart
            if not self._armed:
                # Entering deep sleep: the MCU is off, what arrives is lost; the pin alarm starts clear.
                self._armed = True
                uart.sleeping = True
                uart.reset_input_buffer()
                uart.rx_activity_latched()
                return
            if self._boot_at is None:
                if uart.rx_activity_latched():
                    self._boot_at = self.clock.total_ms + self.boot_ms
                else:
                    return
            if self.clock.total_ms < self._boot_at:
                return
            self._boot_at = None
            self._armed = False
            uart.reset_input_buffer()
            self._boot(woke_from_pin=True)
            now_ms = self.clock.ms
        self.app.step(now_ms)


class _NullUART:
    """The DOWN port of the last module: nothing attached."""

    in_waiting = 0
    sleeping = False

    def write(self, buf) -> int:
        return len(buf)

    def readinto(self, buf, nbytes=None):
        return None

    def read(self, nbytes=None):
        return None

    def reset_input_buffer(self) -> None:
        pass

    def deinit(self) -> None:
        pass


class HostProbe:
    """The host's end of a module's UP cable, for tests: send one request, collect replies (PC only)."""

    def __init__(self, uart) -> None:
        from bms_packet import PacketDecoder

        self.uart = uart
        self.decoder = PacketDecoder()
        self.replies = []  # (src, type, seq, payload bytes)
        self._seq = 0

    def send(self, dst: int, ptype: int, payload=b"") -> int:
        from bms_packet import build_frame

        self._seq = (self._seq + 1) & 0xFF
        self.uart.write(build_frame(dst, 0, ptype, self._seq, payload))
        return self._seq

    def wake(self, zeros: int = 16) -> None:
        self.uart.write(bytes(zeros))

    def poll(self) -> None:
        data = self.uart.read()
        if not data:
            return
        i = 0
        while i < len(data):
            i = self.decoder.feed(data, i, len(data))
            d = self.decoder
            if d.ready:
                self.replies.append((d.src, d.type, d.seq, bytes(d.payload[: d.length])))

    def take_all(self, seq: int) -> list:
        """Every reply with ``seq`` so far (removed from ``replies``), in arrival order."""
        self.poll()
        got = [r for r in self.replies if r[2] == seq]
        self.replies = [r for r in self.replies if r[2] != seq]
        return got

    def take(self, seq: int):
        """The reply with ``seq`` (removed from ``replies``), or None."""
        self.poll()
        for r in self.replies:
            if r[2] == seq:
                self.replies.remove(r)
                return r
        return None
