#!/usr/bin/env python3
"""Writes the seed corpus of ws_frame_fuzz (tests/fuzz/corpus/ws_frame/).

Each input is two bytes of settings, then client frames: byte 0 picks the
chunking (low 2 bits: 1 byte, up to 8, up to 256, up to 64 KiB), byte 1 the
message size limit (0 to 200: that many bytes; 201 to 255: 1 to 55 KiB). See
ws_frame_fuzz.cc.
"""
import os
import struct

KEY = b"\x12\x34\x56\x78"


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, announced=None):
    n = len(payload) if announced is None else announced
    out = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        out += bytes([bit | n])
    elif n <= 0xFFFF:
        out += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask:
        out += KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return out


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


LIMIT_1K = 201  # 1 KiB

SEEDS = {
    "text": (3, LIMIT_1K, frame(1, b"hello")),
    "text_16bit_length": (2, LIMIT_1K, frame(1, b"x" * 300)),
    "binary": (1, LIMIT_1K, frame(2, bytes(range(16)))),
    "fragmented_with_ping": (0, LIMIT_1K,
                             frame(1, b"hel", fin=False) + frame(9, b"are you there") +
                             frame(0, b"lo ", fin=False) + frame(0, b"world")),
    "ping_pong": (1, LIMIT_1K, frame(9, b"ping") + frame(10, b"")),
    "close": (2, LIMIT_1K, frame(8, close(1000, b"bye"))),
    "close_one_byte": (3, LIMIT_1K, frame(8, b"x")),
    "close_bad_utf8": (3, LIMIT_1K, frame(8, close(1000, b"\xff\xfe"))),
    "oversize_header": (0, 0, frame(1, announced=1 << 30)[:10]),
    "fragments_over_limit": (2, 32, frame(1, b"a" * 20, fin=False) + frame(0, b"b" * 20)),
    "unmasked": (3, LIMIT_1K, frame(1, b"hi", mask=False)),
    "reserved_bit": (3, LIMIT_1K, frame(1, b"hi", rsv=0x40)),
    "long_ping": (1, LIMIT_1K, frame(9, b"p" * 126)),
}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ws_frame")
    os.makedirs(out_dir, exist_ok=True)
    for name, (chunking, limit, stream) in SEEDS.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(bytes([chunking, limit]) + stream)


if __name__ == "__main__":
    main()
