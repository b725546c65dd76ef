"""
`settings_store`
================================================================================

Settings (and the SOC record) in ``microcontroller.nvm``: two alternating records, each with a
sequence number, the schema version and a CRC-32, in two different 4 KiB flash pages
(DESIGN.md §4, §7; ``docs/settings.md``).

Facts of the target this is built around: every slice assignment to ``nvm`` erases and rewrites the
whole 4 KiB page it touches (no commit, no wear levelling, nothing atomic); the nRF52840 has 8 KiB
(two pages), the RP2040 4 KiB (one page); the flash lasts about 10 000 erase cycles.

* each record is written with ONE slice assignment, into the page that does NOT hold the newest good
  record, so a power cut in the middle of a write (erase or program) leaves the other page intact;
* on load the valid record with the highest sequence number wins; a corrupt page or a record of another
  schema version is reported in :attr:`SettingsStore.note` (values of known IDs are migrated, the rest
  get their defaults, and all must pass the cross-field rules or factory defaults are used);
* page erases are counted per page (and stored in each record, so the count survives power loss) and
  budgeted by a token bucket: ``budget_per_day`` record writes a day on average (default 4, i.e. 2
  erases per page per day, 7 300 per page in 10 years), at most ``burst`` in a row. A write the budget
  does not allow is deferred (coalesced with later ones), never dropped; settings changes are written
  ``settle_ms`` after the last change so a burst of edits costs one erase.

On a 4 KiB store both records share the one page (a power cut during a write can lose both: the note
says so). Hardware comes in as the ``nvm`` object (``microcontroller.nvm`` or a ``bytearray`` on a PC).

API::

    store = SettingsStore(nvm, soc_len)           # soc_len = soc.RECORD_LEN
    store.load(settings)                          # at boot: settings values + store.soc_buf/soc_valid
    store.settings_changed(now_ms)                # after a successful Settings.set*
    store.soc_buf                                 # memoryview: soc.pack_into(store.soc_buf), then
    store.request_soc_save(now_ms)                # a SOC save (anchor, trip, sleep, periodic)
    store.step(now_ms, settings) -> bool          # each loop: writes when due and allowed
    store.erases, store.writes, store.deferred, store.pending, store.note, store.source
"""

import binascii
import struct

from adafruit_ticks import ticks_diff
from bms_settings import SCHEMA, SCHEMA_VERSION, check_values, factory_values, index_of
from micropython import const

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

PAGE_SIZE = const(4096)
MAGIC = const(0x4D42)  # "BM"
_HDR = "<HBBIIIHH"  # magic, version, slot, seq, erases page 0, erases page 1, n settings, soc_len
HDR_LEN = struct.calcsize(_HDR)  # 20
_PAIR_LEN = const(5)  # setting ID u8 + value i32
_RATED_ERASES = const(10000)
_DAY_MS = const(86400000)

_SINGLE_PAGE_NOTE = "single 4 KiB page: a power cut during a write can lose both records"
_PENDING_SETTINGS = const(1)
_PENDING_SOC = const(2)


def record_len(n_settings: int, soc_len: int) -> int:
    return HDR_LEN + _PAIR_LEN * n_settings + soc_len + 4


class SettingsStore:
    """Two alternating CRC'd records in an nvm-like object, with erase counting and a wear budget."""

    def __init__(
        self,
        nvm,
        soc_len: int,
        page_size: int = PAGE_SIZE,
        budget_per_day: int = 4,
        burst: int = 16,
        boot_credit: int = 4,
        settle_ms: int = 2000,
    ) -> None:
        self._nvm = nvm
        self._page = page_size
        self.soc_len = soc_len
        self._n = len(SCHEMA)
        self._len = record_len(self._n, soc_len)
        size = len(nvm)
        if size >= 2 * page_size:
            self._offsets = (0, page_size)
            self.single_page = False
        else:
            self._offsets = (0, size // 2)
            self.single_page = True
        if self._len > self._offsets[1] or self._len > size - self._offsets[1]:
            raise ValueError("nvm too small for a settings record")
        self._rec = bytearray(self._len)
        self._soc = bytearray(soc_len)
        self.soc_buf = memoryview(self._soc)
        self.soc_valid = False
        self._interval_ms = _DAY_MS // budget_per_day
        self._cap_ms = burst * self._interval_ms
        self._credit_ms = boot_credit * self._interval_ms
        self._settle_ms = settle_ms
        self._last_ms = 0
        self._have_last = False
        self._changed_ms = 0
        self._held = False
        self.seq = 0
        self.next_slot = 0
        self.erases = [0, 0]
        self.writes = 0
        self.deferred = 0
        self.pending = 0
        self.source = "none"
        self.note = ""

    # -- reading ------------------------------------------------------------------------------
    def _parse(self, slot: int):
        """``(seq, version, erases0, erases1, n, soc_len, record)`` of a valid record, else "empty"/"corrupt"."""
        off = self._offsets[slot]
        nvm = self._nvm
        head = bytes(nvm[off : off + HDR_LEN])
        magic, version, rslot, seq, e0, e1, n, soc_len = struct.unpack_from(_HDR, head, 0)
        if magic != MAGIC:
            # erased flash reads 0xFF; a fresh RAM-backed or zero-filled store reads 0x00
            return "empty" if head == b"\xff" * HDR_LEN or head == bytes(HDR_LEN) else "corrupt"
        if rslot != slot or n > 255:
            return "corrupt"
        ln = record_len(n, soc_len)
        if off + ln > len(nvm):
            return "corrupt"
        rec = bytes(nvm[off : off + ln])
        (crc,) = struct.unpack_from("<I", rec, ln - 4)
        if binascii.crc32(rec[: ln - 4]) & 0xFFFFFFFF != crc:
            return "corrupt"
        return (seq, version, e0, e1, n, soc_len, rec)

    def load(self, settings) -> None:
        """Load the newest valid record into ``settings`` (and :attr:`soc_buf`); report in :attr:`note`."""
        notes = []
        got = [self._parse(0), self._parse(1)]
        best = -1
        for s in (0, 1):
            if isinstance(got[s], tuple) and (best < 0 or got[s][0] > got[best][0]):
                best = s
        for s in (0, 1):
            if got[s] == "corrupt":
                notes.append("record %s corrupt" % "AB"[s])
        self.soc_valid = False
        if best < 0:
            self.source = "none"
            self.seq = 0
            self.next_slot = 0
            if got[0] == "empty" and got[1] == "empty":
                notes.append("store empty: factory defaults")
            else:
                notes.append("no valid record: factory defaults")
            settings.load_values(factory_values())
        else:
            seq, version, e0, e1, n, soc_len, rec = got[best]
            self.source = "AB"[best]
            self.seq = seq
            self.next_slot = 1 - best
            self.erases[0] = max(self.erases[0], e0)
            self.erases[1] = max(self.erases[1], e1)
            notes.extend(self._load_settings(settings, rec, version, n))
            if soc_len == self.soc_len and version == SCHEMA_VERSION:
                off = HDR_LEN + _PAIR_LEN * n
                self._soc[:] = rec[off : off + soc_len]
                self.soc_valid = True
            else:
                notes.append("SOC record of another version dropped")
        if self.single_page:
            notes.append(_SINGLE_PAGE_NOTE)
        self.note = "; ".join(notes)

    def _load_settings(self, settings, rec, version, n):
        values = factory_values()
        chem_id = index_of("chemistry")
        known = 0
        dropped = 0
        seen = bytearray(self._n)
        # chemistry first: its preset gives consistent defaults for what the record lacks
        for k in range(n):
            sid, v = struct.unpack_from("<Bi", rec, HDR_LEN + _PAIR_LEN * k)
            if sid == chem_id and SCHEMA[sid][2] <= v <= SCHEMA[sid][3]:
                values = factory_values(v)
        for k in range(n):
            sid, v = struct.unpack_from("<Bi", rec, HDR_LEN + _PAIR_LEN * k)
            if sid < self._n and SCHEMA[sid][2] <= v <= SCHEMA[sid][3] and not SCHEMA[sid][0].startswith("_"):
                values[sid] = v
                seen[sid] = 1
                known += 1
            else:
                dropped += 1
        notes = []
        msg = check_values(values)
        if msg:
            settings.load_values(factory_values())
            notes.append("stored settings break a rule (%s): factory defaults" % msg)
            return notes
        settings.load_values(values)
        missing = self._n - sum(seen)
        if version != SCHEMA_VERSION or dropped or missing:
            notes.append(
                "settings migrated from v%d: %d kept, %d dropped, %d defaults" % (version, known, dropped, missing)
            )
        return notes

    # -- writing ------------------------------------------------------------------------------
    def settings_changed(self, now_ms: int) -> None:
        self.pending |= _PENDING_SETTINGS
        self._changed_ms = now_ms

    def request_soc_save(self, now_ms: int) -> None:
        self.pending |= _PENDING_SOC

    def _accrue(self, now_ms: int) -> None:
        if self._have_last:
            dt = ticks_diff(now_ms, self._last_ms)
            if dt > 0:
                self._credit_ms += dt
                if self._credit_ms > self._cap_ms:
                    self._credit_ms = self._cap_ms
        self._have_last = True
        self._last_ms = now_ms

    @property
    def credit(self) -> int:
        """Whole record writes the budget allows right now."""
        return self._credit_ms // self._interval_ms

    def step(self, now_ms: int, settings) -> bool:
        """Write the pending record when it is due and the budget allows; returns True if it wrote."""
        self._accrue(now_ms)
        if not self.pending:
            return False
        if self.pending & _PENDING_SETTINGS and ticks_diff(now_ms, self._changed_ms) < self._settle_ms:
            return False
        if self._credit_ms < self._interval_ms:
            if not self._held:  # count each write the budget holds back once
                self._held = True
                self.deferred += 1
            return False
        self._held = False
        self._credit_ms -= self._interval_ms
        self.write_now(settings)
        return True

    def write_now(self, settings) -> None:
        """Write one record now (outside the budget: for tests and a factory reset)."""
        slot = self.next_slot
        off = self._offsets[slot]
        page = off // self._page
        self.erases[page] += 1
        self.seq += 1
        rec = self._rec
        struct.pack_into(
            _HDR, rec, 0, MAGIC, SCHEMA_VERSION, slot, self.seq, self.erases[0], self.erases[1], self._n, self.soc_len
        )
        for i in range(self._n):
            struct.pack_into("<Bi", rec, HDR_LEN + _PAIR_LEN * i, i, settings.value_at(i))
        off_soc = HDR_LEN + _PAIR_LEN * self._n
        rec[off_soc : off_soc + self.soc_len] = self._soc
        struct.pack_into("<I", rec, self._len - 4, binascii.crc32(memoryview(rec)[: self._len - 4]) & 0xFFFFFFFF)
        self.pending = 0
        self.writes += 1
        self.next_slot = 1 - slot
        # one slice assignment: one page erase
        self._nvm[off : off + self._len] = rec
        self.source = "AB"[slot]
        # a fresh good record resolves what the boot note reported (a corrupt page, a migration)
        self.note = _SINGLE_PAGE_NOTE if self.single_page else ""
        if self.worn:
            self.note = "flash past %d erases" % _RATED_ERASES

    @property
    def worn(self) -> bool:
        return self.erases[0] >= _RATED_ERASES or self.erases[1] >= _RATED_ERASES
