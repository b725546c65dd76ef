"""
`soc_persist`
================================================================================

Keeps the SOC state (``soc.SocCounter``) across resets and power loss (DESIGN.md §4, §7; ``docs/soc.md``):

* every cycle into ``alarm.sleep_memory`` (256 bytes of RAM that survive resets and deep sleep, not
  power loss): magic, a generation number that grows with every copy, the SOC record, CRC-16;
* rarely into ``nvm`` through ``settings_store.SettingsStore`` (the SOC record rides in the settings
  record): on an anchor (full, empty, learned capacity), on a trip, before deep sleep, and otherwise every
  ``soc_save_min`` minutes if the charge moved by 1 % or more — each subject to the store's wear budget.
  Nothing is written when nothing worth keeping has changed (so a reboot loop wears nothing);
* at boot :meth:`SocPersist.restore` takes whichever valid copy has the higher generation: after a reset
  that is ``sleep_memory`` (exact), after a power loss the ``nvm`` copy (its error is what happened since
  that write; a capacity-learning run in progress is cancelled because its count is no longer exact).

Hardware comes in as objects: ``sleep_memory`` is ``alarm.sleep_memory`` (a ``bytearray`` on a PC).

API::

    p = SocPersist(soc, sleep_memory, store)     # store.soc_len must be SocPersist.NVM_LEN
    p.restore() -> str                           # after store.load(): "sleep_memory", "nvm" or "none"
    p.step(now_ms, events, trip_active)          # every cycle, after soc.update(); events = its return
    p.before_sleep(now_ms, settings) -> bool     # asks for a save and tries it now (budget permitting)
"""

import struct

from adafruit_ticks import ticks_diff
from bms_link import crc16_ccitt
from micropython import const
from soc import EV_EMPTY, EV_FULL, EV_LEARNED, RECORD_LEN

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

_SLEEP_MAGIC = const(0x534F)  # "OS"
_SLEEP_VERSION = const(1)
# sleep_memory layout at ``offset``: magic u16, version u8, pad u8, gen u32, SOC record, crc16 u16
_SM_HDR = "<HBBI"
SLEEP_LEN = 8 + RECORD_LEN + 2
NVM_LEN = 4 + RECORD_LEN  # gen u32 + SOC record, inside the settings record


class SocPersist:
    def __init__(self, soc, sleep_memory, store, offset: int = 0, save_min: int = 360) -> None:
        if store.soc_len != NVM_LEN:
            raise ValueError("store.soc_len must be soc_persist.NVM_LEN")
        if offset + SLEEP_LEN > len(sleep_memory):
            raise ValueError("sleep_memory too small")
        self.soc = soc
        self._sm = sleep_memory
        self._off = offset
        self.store = store
        self.save_min = save_min
        self._buf = bytearray(SLEEP_LEN)
        self.gen = 0
        self.source = "none"
        self._trip = False
        self._saved_ms = 0
        self._have_saved_ms = False
        self._mark()

    def _mark(self) -> None:
        """Remember what the nvm copy holds (to skip writes that would keep nothing new)."""
        s = self.soc
        self._saved_mah = s.charge_mah
        self._saved_cycles = s.cycles
        self._saved_learned = s.learned_mah
        self._saved_full = s.full_seen

    def _changed(self, min_mah: int) -> bool:
        s = self.soc
        d = s.charge_mah - self._saved_mah
        if d < 0:
            d = -d
        return (
            d >= min_mah
            or s.cycles != self._saved_cycles
            or s.learned_mah != self._saved_learned
            or s.full_seen != self._saved_full
        )

    def restore(self) -> str:
        sm_gen = -1
        b = self._buf
        b[:] = self._sm[self._off : self._off + SLEEP_LEN]
        magic, version, _, gen = struct.unpack_from(_SM_HDR, b, 0)
        (crc,) = struct.unpack_from("<H", b, SLEEP_LEN - 2)
        if magic == _SLEEP_MAGIC and version == _SLEEP_VERSION and crc16_ccitt(b, end=SLEEP_LEN - 2) == crc:
            sm_gen = gen
        nvm_gen = -1
        if self.store.soc_valid:
            (nvm_gen,) = struct.unpack_from("<I", self.store.soc_buf, 0)
        self.source = "none"
        if sm_gen >= 0 and sm_gen >= nvm_gen and self.soc.unpack_from(b, 8):
            self.gen = sm_gen
            self.source = "sleep_memory"
        elif nvm_gen >= 0 and self.soc.unpack_from(self.store.soc_buf, 4):
            self.gen = nvm_gen
            self.soc.cancel_learning()
            self.source = "nvm"
        self._mark()
        return self.source

    def _pack(self) -> None:
        b = self._buf
        self.gen += 1
        struct.pack_into(_SM_HDR, b, 0, _SLEEP_MAGIC, _SLEEP_VERSION, 0, self.gen)
        self.soc.pack_into(b, 8)
        struct.pack_into("<H", b, SLEEP_LEN - 2, crc16_ccitt(b, end=SLEEP_LEN - 2))
        self._sm[self._off : self._off + SLEEP_LEN] = b
        # keep the nvm copy current, so a deferred write stores the state at write time
        # (packed again rather than copied from a memoryview slice, which would allocate)
        nv = self.store.soc_buf
        struct.pack_into("<I", nv, 0, self.gen)
        self.soc.pack_into(nv, 4)

    def _request(self, now_ms: int) -> None:
        self.store.request_soc_save(now_ms)
        self._saved_ms = now_ms
        self._mark()

    def step(self, now_ms: int, events: int = 0, trip_active: bool = False) -> None:
        self._pack()
        if not self._have_saved_ms:
            self._have_saved_ms = True
            self._saved_ms = now_ms
        cap = self.soc.capacity_mah
        if events & (EV_FULL | EV_EMPTY | EV_LEARNED):
            self._request(now_ms)
        elif trip_active and not self._trip and self._changed(cap // 1000 + 1):
            self._request(now_ms)
        elif ticks_diff(now_ms, self._saved_ms) >= self.save_min * 60000:
            if self._changed(cap // 100):
                self._request(now_ms)
            else:
                self._saved_ms = now_ms  # nothing worth a flash erase: start the next period
        self._trip = trip_active

    def before_sleep(self, now_ms: int, settings) -> bool:
        self._pack()
        if self._changed(self.soc.capacity_mah // 1000 + 1):
            self._request(now_ms)
        return self.store.step(now_ms, settings)
