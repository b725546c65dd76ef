"""The byte vectors of docs/protocol.md, read from the document and checked against the code.

Every row of §4 gives a message's fields, its decoded packet and its frame on the wire. The test packs the
fields with the ``bms_packet`` helpers and checks both byte strings. It also checks the CRC independently,
the COBS step with ``bms_link``, and that the decoder gives the fields back.
"""

import os
import re

import bms_packet as P
import pytest
from bms_link import cobs_decode, cobs_encode, crc16_ccitt

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "protocol.md")


def _section(title_start):
    text = open(DOC, encoding="utf-8").read()
    i = text.index("\n## " + title_start)
    j = text.find("\n## ", i + 1)
    return text[i : j if j > 0 else len(text)]


def _rows(section, prefix="| "):
    rows = []
    for line in section.splitlines():
        if line.startswith(prefix) and ("`" in line or prefix != "| "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append(cells)
    return rows


def _hex(cell):
    return bytes.fromhex(cell.strip("`").replace(" ", ""))


def _fields(cell):
    out = {}
    for tok in cell.strip("`").split():
        k, v = tok.split("=")
        out[k] = v
    return out


def _int(v):
    return int(v, 16) if v.lower().startswith("0x") else int(v)


def _ints(v):
    return [_int(x) for x in v.split(",")]


def _payload(name, f):
    buf = bytearray(P.MAX_PAYLOAD)
    if name == "ENUMERATE":
        n = P.pack_enumerate_into(buf, 0, _int(f["hop"]))
    elif name == "ENUMERATED":
        major, minor = (int(x) for x in f["fw"].split("."))
        n = P.pack_enumerated_into(buf, 0, _int(f["addr"]), _int(f["channels"]), _int(f["cell_count"]), major, minor)
    elif name == "SAMPLE":
        n = P.pack_sample_into(buf, 0, _int(f["sample_id"]))
    elif name == "COLLECT":
        if "modules" in f:
            sel = bytearray(_int(f["of"]) + 1)
            for a in _ints(f["modules"]):
                sel[a] = 1
            n = P.pack_collect_into(buf, 0, _int(f["what"]), sel, _int(f["of"]))
        else:
            n = P.pack_collect_into(buf, 0, _int(f["what"]))
    elif name == "CELLS":
        cells = _ints(f["cells"])
        n = P.pack_cells_into(buf, 0, _int(f["sample_id"]), cells, len(cells))
    elif name == "TEMPS":
        temps = _ints(f["temps"])
        n = P.pack_temps_into(buf, 0, _int(f["sample_id"]), temps, len(temps), _int(f["die"]))
    elif name == "STATUS":
        n = P.pack_status_into(buf, 0, *(_int(f[k]) for k in (
            "flags", "open_wire", "balance", "wiring", "pec_errors", "link_errors", "cell_count")))
    elif name in ("CONFIG", "CONFIG_ACK"):
        n = P.pack_config_into(buf, 0, *(_int(f[k]) for k in (
            "cell_count", "ow_period_s", "silence_ms", "temp_warn_dc", "temp_limit_dc")))
    elif name == "BALANCE":
        n = P.pack_balance_into(buf, 0, _int(f["target_100uv"]), _int(f["timeout_s"]))
    elif name == "BALANCE_ACK":
        n = P.pack_balance_ack_into(buf, 0, _int(f["balance"]))
    elif name == "IDENTITY":
        major, minor = (int(x) for x in f["fw"].split("."))
        n = P.pack_identity_into(buf, 0, major, minor, _int(f["channels"]), _int(f["uid"]))
    elif name == "NACK":
        n = P.pack_nack_into(buf, 0, _int(f["req_type"]), _int(f["reason"]))
    else:
        n = 0
    return bytes(buf[:n])


VECTORS = _rows(_section("4."))
NAMES = {name for name, *_ in VECTORS}


def test_every_message_of_the_table_has_a_vector():
    table = _rows(_section("3."), prefix="| 0x")
    assert len(table) == 12
    names = set()
    for row in table:
        names.add(row[1])
        m = re.match(r"0x[0-9A-F]{2} (\w+)", row[4])
        if m:
            names.add(m.group(1))
    assert {"PING", "PONG", "SLEEP", "IDENTIFY", "IDENTITY", "COLLECT"} <= names
    assert names - NAMES == set()
    assert len(VECTORS) >= 20


@pytest.mark.parametrize("row", VECTORS, ids=[r[0] + "-" + r[1][:24] for r in VECTORS])
def test_vector(row):
    name, fields, decoded_cell, frame_cell = row
    f = _fields(fields)
    decoded = _hex(decoded_cell)
    frame = _hex(frame_cell)
    ptype = getattr(P, name)
    dst, src, seq = int(f["dst"], 16), int(f["src"], 16), int(f["seq"], 16)
    payload = _payload(name, f)
    # the decoded packet, byte by byte, from the documented layout
    body = bytes([dst, src, ptype, seq, len(payload)]) + payload
    crc = crc16_ccitt(body)
    assert decoded == body + bytes([crc & 0xFF, crc >> 8])
    # the frame: COBS of the decoded packet and one 0x00
    assert frame == cobs_encode(decoded) + b"\x00"
    assert cobs_decode(frame[:-1]) == decoded
    # the code builds the same bytes and the decoder gives the fields back
    assert P.build_frame(dst, src, ptype, seq, payload) == frame
    assert P.parse_frame(frame) == (dst, src, ptype, seq, payload)
    got = list(P.PacketDecoder().iter_feed(frame))
    assert len(got) == 1


def test_a_reply_is_its_request_type_with_the_top_bit():
    pairs = [("ENUMERATE", "ENUMERATED"), ("PING", "PONG"), ("GET_CELLS", "CELLS"), ("GET_TEMPS", "TEMPS"),
             ("GET_STATUS", "STATUS"), ("CONFIG", "CONFIG_ACK"), ("BALANCE", "BALANCE_ACK"), ("IDENTIFY", "IDENTITY")]
    for req, rep in pairs:
        assert getattr(P, rep) == getattr(P, req) | P.REPLY


def test_documented_sizes_match_the_code():
    sec = _section("2.")
    assert "payload at most %d" % P.MAX_PAYLOAD in sec
    assert "packet at most %d" % P.MAX_PACKET in sec
    assert "frame at most %d" % P.MAX_FRAME in sec
    sizes = _section("5.")
    for label, build in (
        ("CELLS, 12 cells", lambda: P.build_frame(0, 1, P.CELLS, 0, bytes(26))),
        ("STATUS", lambda: P.build_frame(0, 1, P.STATUS, 0, bytes(13))),
        ("TEMPS, 1 sensor", lambda: P.build_frame(0, 1, P.TEMPS, 0, bytes(6))),
    ):
        assert "| %s | %d |" % (label, len(build())) in sizes, label


def test_cobs_table_of_section_1():
    rows = [r for r in _rows(_section("1.")) if "…" not in r[0]]
    assert len(rows) >= 6
    for dec_cell, enc_cell in rows:
        assert cobs_encode(_hex(dec_cell)) == _hex(enc_cell)
