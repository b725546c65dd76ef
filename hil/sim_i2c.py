"""A simulated ``busio.I2C`` for the virtual rig (PC only).

``SimI2C`` duck-types the methods ``adafruit_bus_device.i2c_device.I2CDevice`` calls: ``try_lock``,
``unlock``, ``writeto``, ``readfrom_into``, ``writeto_then_readfrom`` (with ``start``/``end`` slices),
plus ``scan`` and ``deinit``. Devices attach by address with ``attach(address, device)``; a device
implements ``i2c_write(data: bytes)`` and ``i2c_read(n: int) -> bytes`` (a register device keeps its
own pointer, as real chips do).

Faults: ``nack`` (a set of addresses that do not answer: ``OSError`` errno 19, like a missing or
unpowered chip). ``transactions`` counts every transfer (for tests and benches).
"""

import errno

from hil.sim_deinit import SimDeinit


class SimI2C(SimDeinit):
    def __init__(self, clock=None, frequency: int = 400_000) -> None:
        self.clock = clock
        self.frequency = frequency
        self.devices = {}
        self.nack = set()
        self.transactions = 0
        self._locked = False
        self.deinited = False

    def attach(self, address: int, device) -> None:
        self.devices[address] = device

    # -- locking (busio.I2C) -----------------------------------------------------------------
    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def _device(self, address: int):
        if self.deinited:
            raise ValueError("I2C bus deinitialized")
        if not self._locked:
            raise RuntimeError("I2C bus used without try_lock()")
        dev = self.devices.get(address)
        if dev is None or address in self.nack:
            raise OSError(errno.ENODEV, "No I2C device at address: 0x%x" % address)
        self.transactions += 1
        return dev

    # -- transfers ---------------------------------------------------------------------------
    def writeto(self, address: int, buffer, *, start: int = 0, end=None) -> None:
        dev = self._device(address)
        if end is None:
            end = len(buffer)
        dev.i2c_write(bytes(buffer[start:end]))

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end=None) -> None:
        dev = self._device(address)
        if end is None:
            end = len(buffer)
        data = dev.i2c_read(end - start)
        buffer[start:end] = data

    def writeto_then_readfrom(self, address: int, out_buffer, in_buffer, *, out_start: int = 0, out_end=None,
                              in_start: int = 0, in_end=None) -> None:
        dev = self._device(address)
        if out_end is None:
            out_end = len(out_buffer)
        if in_end is None:
            in_end = len(in_buffer)
        dev.i2c_write(bytes(out_buffer[out_start:out_end]))
        in_buffer[in_start:in_end] = dev.i2c_read(in_end - in_start)

    def scan(self) -> list:
        return sorted(a for a in self.devices if a not in self.nack)
