"""Settings store on a model of microcontroller.nvm: alternating pages, power cuts, migration, wear budget."""

import binascii
import struct

import pytest
from bms_settings import SCHEMA, SCHEMA_VERSION, Settings, factory_values, index_of
from settings_store import HDR_LEN, MAGIC, PAGE_SIZE, SettingsStore, record_len

SOC_LEN = 53
DAY = 86400000


class PowerCut(Exception):
    pass


class FlashNvm:
    """``microcontroller.nvm`` as the nRF52840 port does it: a slice assignment reads every 4 KiB page it
    touches, erases it (all 0xFF) and programs the whole page again. ``cut_at`` cuts the power after that
    many programmed bytes (0 = right after the erase)."""

    def __init__(self, size=8192, page=PAGE_SIZE):
        self.mem = bytearray(b"\xff" * size)
        self.page = page
        self.erases = [0] * (size // page)
        self.cut_at = None
        self.programmed = 0

    def __len__(self):
        return len(self.mem)

    def __getitem__(self, k):
        return self.mem[k]

    def __setitem__(self, k, data):
        start, stop, step = k.indices(len(self.mem))
        assert step == 1 and stop - start == len(data)
        image = bytearray(self.mem)
        image[start:stop] = data
        for p in range(start // self.page, (stop - 1) // self.page + 1):
            base = p * self.page
            self.mem[base : base + self.page] = b"\xff" * self.page
            self.erases[p] += 1
            n = self.page
            if self.cut_at is not None:
                n = max(0, min(n, self.cut_at - self.programmed))
            self.mem[base : base + n] = image[base : base + n]
            self.programmed += n
            if n < self.page:
                raise PowerCut()


def _boot(nvm, **kw):
    s = Settings()
    st = SettingsStore(nvm, SOC_LEN, **kw)
    st.load(s)
    return s, st


def test_empty_store_gives_factory_defaults_and_says_so():
    s, st = _boot(FlashNvm())
    assert s.values() == factory_values()
    assert st.source == "none" and st.note == "store empty: factory defaults"
    s, st = _boot(bytearray(8192))  # zero-filled: also empty, not "corrupt"
    assert st.note == "store empty: factory defaults"


def test_records_alternate_between_the_two_pages_one_erase_each():
    nvm = FlashNvm()
    s, st = _boot(nvm)
    for k in range(6):
        s.set("capacity_mah", 50000 + k)
        st.write_now(s)
        assert nvm.erases == [k // 2 + 1, (k + 1) // 2]  # A, B, A, ...
        assert st.erases == nvm.erases
        s2, st2 = _boot(nvm)
        assert s2.get("capacity_mah") == 50000 + k
        assert st2.source == "AB"[k % 2] and st2.note == ""
        assert st2.erases == nvm.erases  # counted across power loss: stored in the records


def test_power_cut_at_every_byte_of_a_write_keeps_the_previous_settings():
    for first_slot in (0, 1):
        nvm = FlashNvm()
        s, st = _boot(nvm)
        if first_slot == 1:
            s.set("capacity_mah", 11111)
            st.write_now(s)
        s.set("capacity_mah", 22222)
        st.write_now(s)  # the previous good settings
        good = bytes(nvm.mem)
        s.set("capacity_mah", 33333)
        s.set("ov_trip_mv", 4240)
        end = None
        for cut in range(PAGE_SIZE + 1):
            nvm.mem[:] = good
            nvm.cut_at = cut
            nvm.programmed = 0
            # the write goes to the page not holding the good record (B after one write, A after two)
            st.next_slot = 0 if first_slot == 1 else 1
            st.seq = 2 if first_slot == 1 else 1
            with pytest.raises(PowerCut) if cut < PAGE_SIZE else _nothing():
                st.write_now(s)
            nvm.cut_at = None
            r, rst = _boot(nvm)
            cap = r.get("capacity_mah")
            assert cap in (22222, 33333), cut
            if cap == 33333:
                assert r.get("ov_trip_mv") == 4240
                end = cut if end is None else end
            else:
                assert end is None, "went back to the old record after the new one was whole"
                assert r.get("ov_trip_mv") == 4250
        # the new record counts from the moment its last byte (the CRC) is programmed, not before
        assert end == record_len(len(SCHEMA), SOC_LEN)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_corrupt_record_falls_back_to_the_other_and_says_so():
    nvm = FlashNvm()
    s, st = _boot(nvm)
    s.set("capacity_mah", 40000)
    st.write_now(s)  # A
    s.set("capacity_mah", 41000)
    st.write_now(s)  # B (newest)
    nvm.mem[PAGE_SIZE + HDR_LEN + 7] ^= 0x01  # one bit flips in B
    r, rst = _boot(nvm)
    assert r.get("capacity_mah") == 40000
    assert rst.source == "A" and "record B corrupt" in rst.note
    s.set("capacity_mah", 42000)
    rst.write_now(r)  # the next write replaces the corrupt record, not the good one
    r2, rst2 = _boot(nvm)
    assert rst2.source == "B" and rst2.note == ""


def _craft(version, pairs, soc=b"", slot=0, seq=1):
    """A record by the layout in docs/settings.md (independent of the store's writer)."""
    body = struct.pack("<HBBIIIHH", MAGIC, version, slot, seq, 1, 0, len(pairs), len(soc))
    for sid, v in pairs:
        body += struct.pack("<Bi", sid, v)
    body += soc
    return body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)


def test_older_version_migrates_what_it_can():
    nvm = FlashNvm()
    pairs = [(index_of("chemistry"), 0), (index_of("capacity_mah"), 280000), (index_of("ov_trip_mv"), 3600),
             (index_of("ov_warn_mv"), 3550), (250, 7)]  # 250: a setting this firmware no longer has
    rec = _craft(SCHEMA_VERSION - 1, pairs, soc=b"\x00" * 10)
    nvm.mem[: len(rec)] = rec
    s, st = _boot(nvm)
    assert s.get("chemistry") == 0 and s.get("capacity_mah") == 280000 and s.get("ov_trip_mv") == 3600
    assert s.get("uv_trip_mv") == 2500  # not stored: the LFP default, consistent with the chemistry
    assert "migrated from v0" in st.note and "1 dropped" in st.note
    assert not st.soc_valid and "SOC record of another version" in st.note


def test_stored_values_that_break_a_rule_give_defaults_and_say_which():
    nvm = FlashNvm()
    rec = _craft(SCHEMA_VERSION, [(index_of("ov_trip_mv"), 4000)], soc=b"\x00" * SOC_LEN)
    nvm.mem[: len(rec)] = rec
    s, st = _boot(nvm)
    assert s.values() == factory_values()
    assert "ov_release_mv" in st.note and "factory defaults" in st.note


def test_settings_changes_coalesce_and_wait_to_settle():
    nvm = FlashNvm()
    s, st = _boot(nvm)
    t = 1000
    for k in range(10):
        s.set("capacity_mah", 60000 + k)
        st.settings_changed(t)
        assert not st.step(t, s)
        t += 500
    assert not st.step(t + 1000, s)
    assert st.step(t + 2000, s)
    assert sum(nvm.erases) == 1
    assert _boot(nvm)[0].get("capacity_mah") == 60009


def test_wear_budget_defers_and_never_drops():
    nvm = FlashNvm()
    s, st = _boot(nvm, budget_per_day=4, burst=16, boot_credit=4)
    t = 0
    writes = 0
    for minute in range(10 * 1440):  # ten days, a save asked every minute
        t = minute * 60000
        st.request_soc_save(t)
        writes += st.step(t, s)
    assert writes <= 4 + 10 * 4
    assert writes >= 10 * 4
    assert st.deferred > 0
    # one day later with no request the credit is back: a pending save is written, not lost
    s.set("capacity_mah", 77777)
    st.settings_changed(t)
    t += DAY // 4 + 3000
    assert st.step(t, s)
    assert _boot(nvm)[0].get("capacity_mah") == 77777


def test_single_page_store_warns():
    s, st = _boot(bytearray(b"\xff" * 4096))
    assert st.single_page and "single 4 KiB page" in st.note
    s.set("capacity_mah", 12345)
    st.write_now(s)
    assert _boot(st._nvm)[0].get("capacity_mah") == 12345


def test_change_persists_and_reaches_the_protection_limits():
    from protection import OV, Protection

    nvm = FlashNvm()
    s, st = _boot(nvm)
    s.set_many((("ov_trip_mv", 4200), ("ov_warn_mv", 4180), ("full_charge_mv", 4150)))
    st.settings_changed(0)
    assert st.step(5000, s)
    r, _ = _boot(nvm)  # after a reset or power loss
    p = Protection()
    p.load(r)
    assert p.limit(OV, "trip") == 4200 and p.limit(OV, "warn") == 4180
