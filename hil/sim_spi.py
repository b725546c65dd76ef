"""Simulated ``busio.SPI`` (PC only): the methods ``adafruit_bus_device.spi_device.SPIDevice`` uses.

A transaction is what happens between ``try_lock`` and ``unlock`` (SPIDevice holds chip select low exactly
then). Every byte goes to the chip model one at a time, full duplex, with its clock time, so the model can
answer a read command within the same transaction. A wrong SPI mode or a clock above the chip's limit
garbles the bytes (the model sees nonsense and answers 0xFF), as on a real bus.
"""

from hil.sim_deinit import SimDeinit


class SimSPI(SimDeinit):
    """Duck-types ``busio.SPI`` for one ``hil.ltc6811_model.LTC6811Model`` (or anything with begin/transfer/end).

    :param model: the chip on the bus
    :param cs: optional ``SimPin``; when given, bytes clocked with it high are not seen by the chip
    :param int max_hz: fastest clock the chip accepts
    :param tuple mode: (polarity, phase) the chip needs
    :param bool record: keep every transaction's MOSI bytes in ``transactions`` (for tests)
    """

    def __init__(self, model, *, cs=None, max_hz: int = 1_000_000, mode=(1, 1), record: bool = False) -> None:
        self.model = model
        self.cs = cs
        self.max_hz = max_hz
        self.mode = mode
        self.record = record
        self.transactions = []
        self.baudrate = 100_000
        self.polarity = 0
        self.phase = 0
        self.bits = 8
        self._locked = False
        self._current = None
        self.deinited = False

    # -- busio.SPI surface ---------------------------------------------------------------------
    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        self._current = bytearray() if self.record else None
        self.model.begin()
        return True

    def unlock(self) -> None:
        if not self._locked:
            return
        self.model.end()
        if self.record and self._current:
            self.transactions.append(bytes(self._current))
        self._current = None
        self._locked = False

    def configure(self, *, baudrate: int = 100_000, polarity: int = 0, phase: int = 0, bits: int = 8) -> None:
        if not self._locked:
            raise RuntimeError("SPI: configure() without the lock")
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        self.bits = bits

    @property
    def frequency(self) -> int:
        return self.baudrate

    def write(self, buf, start: int = 0, end=None) -> None:
        end = len(buf) if end is None else end
        ok, byte_us = self._clocking()
        for i in range(start, end):
            self._byte(buf[i], ok, byte_us)

    def readinto(self, buf, start: int = 0, end=None, write_value: int = 0) -> None:
        end = len(buf) if end is None else end
        ok, byte_us = self._clocking()
        for i in range(start, end):
            buf[i] = self._byte(write_value, ok, byte_us)

    def write_readinto(self, buffer_out, buffer_in, out_start=0, out_end=None, in_start=0, in_end=None) -> None:
        out_end = len(buffer_out) if out_end is None else out_end
        in_end = len(buffer_in) if in_end is None else in_end
        if out_end - out_start != in_end - in_start:
            raise ValueError("buffer slices must be of equal length")
        ok, byte_us = self._clocking()
        for k in range(out_end - out_start):
            buffer_in[in_start + k] = self._byte(buffer_out[out_start + k], ok, byte_us)

    # -- the wire --------------------------------------------------------------------------------
    def _clocking(self):
        """(the chip can read this clocking, microseconds per byte): fixed for one bus call."""
        ok = (self.polarity, self.phase) == tuple(self.mode) and self.baudrate <= self.max_hz and self.bits == 8
        return ok, max(1, 8_000_000 // max(1, self.baudrate))

    def _byte(self, b: int, ok: bool, byte_us: int) -> int:
        if not self._locked:
            raise RuntimeError("SPI: transfer without the lock")
        if self.record:
            self._current.append(b)
        if self.cs is not None and self.cs.value:
            return 0xFF  # chip not selected
        return self.model.transfer(b, byte_us, ok)
