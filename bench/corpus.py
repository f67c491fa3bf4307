#!/usr/bin/env python3
"""Generate the benchmark corpus: media files with the real magic bytes and headers
media-origin's sniffer accepts (the same as tests/it/common/mod.rs `fixtures`), followed by a
deterministic pseudo-random payload (so every run serves the same bytes and ETags).

    python3 bench/corpus.py OUT_DIR

writes OUT_DIR/small.jpg (48,000 B), image.png (1,000,000 B), video.mp4 (15,900,000 B, under
WhatsApp's 16 MB video limit) and doc.pdf (99,000,000 B, under the 100 MB document limit).
"""

import os
import random
import struct
import sys

CHUNK = 1 << 20


# PNG signature + IHDR chunk: 640x480, bit depth 8, colour type 2 (RGB), compression 0,
# filter 0, interlace 0, then a CRC (not checked by the sniffer; the fixture's placeholder).
PNG_HEAD = (
    b"\x89PNG\r\n\x1a\n"
    + struct.pack(">I", 13)
    + b"IHDR"
    + struct.pack(">II", 640, 480)
    + bytes([8, 2, 0, 0, 0])
    + bytes([0x12, 0x34, 0x56, 0x78])
)

# Real files made by ffmpeg (tests/fixtures/README.md): the upload gate reads a JPEG's frame
# header and an MP4's track list, so the heads must be whole files. Random bytes follow the
# JPEG's end-of-image marker, and fill a `free` box after the MP4's boxes.
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
with open(os.path.join(FIXTURES, "tiny.jpg"), "rb") as f:
    JPEG_HEAD = f.read()
with open(os.path.join(FIXTURES, "h264_aac.mp4"), "rb") as f:
    MP4_BASE = f.read()
MP4_SIZE = 15_900_000
MP4_HEAD = MP4_BASE + struct.pack(">I", MP4_SIZE - len(MP4_BASE)) + b"free"

PDF_HEAD = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"

FILES = [
    # name, head, size, seed
    ("small.jpg", JPEG_HEAD, 48_000, 1),
    ("image.png", PNG_HEAD, 1_000_000, 2),
    ("video.mp4", MP4_HEAD, MP4_SIZE, 3),
    ("doc.pdf", PDF_HEAD, 99_000_000, 4),
]


def write(path: str, head: bytes, size: int, seed: int) -> None:
    rng = random.Random(seed)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(head)
        left = size - len(head)
        while left > 0:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n
    os.replace(tmp, path)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: corpus.py OUT_DIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, head, size, seed in FILES:
        path = os.path.join(out, name)
        if os.path.exists(path) and os.path.getsize(path) == size:
            continue
        write(path, head, size, seed)
    for name, _, size, _ in FILES:
        print(f"{name}\t{size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
