"""Helpers of the bad-input tests: messages, 8-bit views, PNG bytes, cut files."""

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WHAT_TO_DO = r"(export|copy|crop|check|save|install|rename|bin)"  # every message says one


def messages_say(exc_info, name: str) -> str:
    """The message names the file and says what to do; return it."""
    text = str(exc_info.value)
    assert name in text, text
    assert re.search(WHAT_TO_DO, text, flags=re.IGNORECASE), text
    return text


def uint8(image):
    low, high = float(image.min()), float(image.max())
    return np.round((image - low) / (high - low) * 255).astype(np.uint8)


def png_bytes(array, mode=None, **save):
    buffer = io.BytesIO()
    im = Image.fromarray(array)
    (im.convert(mode) if mode else im).save(buffer, "PNG", **save)
    return buffer.getvalue()


def png_header_only(cols, rows):
    """A valid PNG signature + IHDR claiming cols x rows, with (almost) no pixel data."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 0, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def cut(path, fraction=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


def bt601(rgb):
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
