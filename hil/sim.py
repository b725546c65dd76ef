"""Placeholder for the scenario runner (issue 8): frames one packet through the link codec."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))

from bms_link import cobs_decode, cobs_encode, crc16_ccitt  # noqa: E402


def main():
    raw = bytes([0x00, 0x01, 0x82, 0x07, 0x00])
    crc = crc16_ccitt(raw)
    frame = cobs_encode(raw + bytes([crc & 0xFF, crc >> 8])) + b"\x00"
    assert cobs_decode(frame[:-1])[:-2] == raw
    print("link codec ok: %s" % frame.hex(" "))


if __name__ == "__main__":
    main()
