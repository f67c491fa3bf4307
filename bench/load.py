#!/usr/bin/env python3
"""Generate the corpus of the load test (bench/load.sh): the benchmark's 48 KB JPEG and 1 MB PNG
(bench/corpus.py, same bytes) and a few more images written the same way with other seeds and
sizes, so the readers mix assets served from the blob memory (up to 1 MiB) and one streamed from
storage (the 3 MB PNG).

    python3 bench/load.py OUT_DIR

prints one line per file: name, size, content type, SHA-256 (tab-separated).
"""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (bench/corpus.py)

TYPES = {".jpg": "image/jpeg", ".png": "image/png"}

FILES = [f for f in corpus.FILES if f[0] in ("small.jpg", "image.png")] + [
    # name, head, size, seed
    ("icon.png", corpus.PNG_HEAD, 2_500, 101),
    ("thumb-a.jpg", corpus.JPEG_HEAD, 6_000, 102),
    ("thumb-b.jpg", corpus.JPEG_HEAD, 21_000, 103),
    ("banner.jpg", corpus.JPEG_HEAD, 150_000, 104),
    ("poster.png", corpus.PNG_HEAD, 3_000_000, 105),
]


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(corpus.CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: load.py OUT_DIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, head, size, seed in FILES:
        path = os.path.join(out, name)
        if not (os.path.exists(path) and os.path.getsize(path) == size):
            corpus.write(path, head, size, seed)
        ctype = TYPES[os.path.splitext(name)[1]]
        print(f"{name}\t{size}\t{ctype}\t{sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
