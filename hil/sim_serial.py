"""In-memory serial stream pair: the host's USB CDC port and the PC's pyserial port, joined in memory.

``SimStream`` is what the firmware sees (``in_waiting``, ``read``, ``readinto``, ``write``: the shape of
``usb_cdc.Serial``). ``SimSerial`` is what ``hil.bmsctl`` sees (the subset of ``serial.Serial`` it uses:
``write``, ``readline``, ``read``, ``in_waiting``, ``reset_input_buffer``, ``close``, ``timeout``).

There is no thread: while the PC side waits for a line it calls ``pump()`` — normally one step of the
simulated host (advance a ``hil.clock.VirtualClock``, ``console.poll``, ``console.write_status``) — until
a line arrives or ``timeout`` seconds of *simulated* time have passed.
"""

from collections import deque


class _Pipe:
    def __init__(self) -> None:
        self.buf = deque()

    def put(self, data) -> None:
        self.buf.extend(bytes(data))

    def take(self, n: int) -> bytes:
        n = min(n, len(self.buf))
        return bytes(self.buf.popleft() for _ in range(n))


class SimStream:
    """The firmware end (``usb_cdc.data``-like)."""

    def __init__(self, rx: _Pipe, tx: _Pipe) -> None:
        self._rx = rx
        self._tx = tx
        self.connected = True  # like usb_cdc.Serial.connected (a terminal has the port open)
        self.out_waiting = 0  # like usb_cdc.Serial.out_waiting (bytes not yet taken by the PC)
        self.timeout = -1.0  # usb_cdc's defaults: wait forever
        self.write_timeout = -1.0

    @property
    def in_waiting(self) -> int:
        return len(self._rx.buf)

    def read(self, n: int = 1) -> bytes:
        return self._rx.take(n)

    def readinto(self, buf, nbytes=None) -> int:
        n = len(buf) if nbytes is None else nbytes
        data = self._rx.take(n)
        buf[: len(data)] = data
        return len(data)

    def write(self, data) -> int:
        if not self.connected:
            raise OSError(5, "USB not connected")
        self._tx.put(data)
        return len(data)


class SimSerial:
    """The PC end (a ``serial.Serial`` stand-in). ``pump`` advances the simulated host by one step and
    returns the simulated milliseconds it took."""

    def __init__(self, rx: _Pipe, tx: _Pipe, pump=None, timeout: float = 2.0) -> None:
        self._rx = rx
        self._tx = tx
        self.pump = pump
        self.timeout = timeout
        self.is_open = True

    @property
    def in_waiting(self) -> int:
        return len(self._rx.buf)

    def write(self, data) -> int:
        self._tx.put(data)
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int = 1) -> bytes:
        return self._rx.take(n)

    def reset_input_buffer(self) -> None:
        self._rx.buf.clear()

    def readline(self) -> bytes:
        """One line including ``\\n``, or what arrived before the (simulated) timeout."""
        waited_ms = 0
        limit_ms = int(self.timeout * 1000)
        while True:
            buf = self._rx.buf
            if 0x0A in buf:
                out = bytearray()
                while True:
                    b = buf.popleft()
                    out.append(b)
                    if b == 0x0A:
                        return bytes(out)
            if self.pump is None or waited_ms >= limit_ms:
                return self._rx.take(len(buf))
            waited_ms += max(1, self.pump() or 1)

    def close(self) -> None:
        self.is_open = False


def stream_pair(pump=None, timeout: float = 2.0):
    """``(firmware_end, pc_end)`` joined in memory."""
    to_host = _Pipe()
    to_pc = _Pipe()
    return SimStream(to_host, to_pc), SimSerial(to_pc, to_host, pump, timeout)
