"""Write minimal Gatan DigitalMicrograph DM3/DM4 files for the io tests.

Follows the published tag-file layout (Gatan DM3/DM4 format notes; the layout the
rosettasciio and ImageJ readers parse):

* header: version (int32 BE, 3 or 4), root length (uint32 BE in DM3, uint64 BE in DM4),
  byte order (int32 BE, 1 = data little-endian);
* tag group: sorted (1 byte), open (1 byte), number of tags (4/8 bytes BE), then tags;
* tag: type (1 byte: 20 group, 21 data), name length (int16 BE), name, in DM4 the tag's
  byte length (uint64 BE), then the group or the data: ``%%%%``, info-array length,
  info array (4/8-byte BE integers: encoded type, then for arrays element type and
  count), payload in the header's byte order;
* the file ends with 8 zero bytes (DM4) or 4 (DM3).

The tree written is the one DigitalMicrograph saves, reduced to what a reader needs:
root -> ImageList -> (unnamed image group) -> ImageData {Calibrations {Brightness,
Dimension (one unnamed group per axis, X first: Origin, Scale, Units)}, Data, DataType,
Dimensions (X first), PixelDepth}, ImageTags, Name; optionally a thumbnail as image 0
listed under root -> Thumbnails, as DigitalMicrograph does.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

GROUP, DATA = 20, 21
# DM tag element types
LONG, ULONG, FLOAT, BOOL, USHORT, ARRAY = 3, 5, 6, 8, 4, 20
# numpy dtype -> (ImageData.DataType code, Data array element type)
IMAGE_TYPES = {
    np.dtype("int16"): (1, 2), np.dtype("float32"): (2, 6), np.dtype("uint8"): (6, 10),
    np.dtype("int32"): (7, 3), np.dtype("uint16"): (10, 4), np.dtype("uint32"): (11, 5),
    np.dtype("float64"): (12, 7),
}


class _Data:
    """A data tag: info array (encoded types) and its little-endian payload."""

    def __init__(self, info: list[int], payload: bytes):
        self.info, self.payload = info, payload


def _scalar(code: int, fmt: str, value) -> _Data:
    return _Data([code], struct.pack("<" + fmt, value))


def _text(value: str) -> _Data:
    """A string as DigitalMicrograph stores it: an array of UTF-16 code units."""
    units = np.frombuffer(value.encode("utf-16-le"), "<u2")
    return _Data([ARRAY, USHORT, units.size], units.tobytes())


def _encode(tags: list, version: int) -> bytes:
    """Encode a tag group's content (sorted, open, count, tags)."""
    q = ">Q" if version == 4 else ">L"
    out = [struct.pack(">BB", 0, 1), struct.pack(q, len(tags))]
    for name, value in tags:
        raw_name = name.encode("latin-1")
        if isinstance(value, _Data):
            body = b"%%%%" + struct.pack(q, len(value.info))
            body += b"".join(struct.pack(q, v) for v in value.info) + value.payload
            kind = DATA
        else:
            body, kind = _encode(value, version), GROUP
        out.append(struct.pack(">BH", kind, len(raw_name)) + raw_name)
        if version == 4:
            out.append(struct.pack(">Q", len(body)))
        out.append(body)
    return b"".join(out)


def _image_group(image: np.ndarray, scales: tuple, units: tuple, name: str) -> list:
    """Tags of one image; ``scales``/``units`` in (rows, cols) order, written X first."""
    data_type, element = IMAGE_TYPES[image.dtype]
    rows, cols = image.shape
    dimension = [("", [("Origin", _scalar(FLOAT, "f", 0.0)),
                       ("Scale", _scalar(FLOAT, "f", scale)), ("Units", _text(unit))])
                 for scale, unit in zip(scales[::-1], units[::-1])]
    calibrations = [
        ("Brightness", [("Origin", _scalar(FLOAT, "f", 0.0)),
                        ("Scale", _scalar(FLOAT, "f", 1.0)), ("Units", _text("Counts"))]),
        ("Dimension", dimension),
        ("DisplayCalibratedUnits", _scalar(BOOL, "B", 1)),
    ]
    image_data = [
        ("Calibrations", calibrations),
        ("Data", _Data([ARRAY, element, image.size],
                       image.astype(image.dtype.newbyteorder("<")).tobytes())),
        ("DataType", _scalar(LONG, "l", data_type)),
        ("Dimensions", [("", _scalar(ULONG, "L", cols)), ("", _scalar(ULONG, "L", rows))]),
        ("PixelDepth", _scalar(LONG, "l", image.dtype.itemsize)),
    ]
    return [("ImageData", image_data), ("ImageTags", []), ("Name", _text(name))]


def write_dm(path, image, scales=(1.0, 1.0), units=("nm", "nm"), *, version=4,
             thumbnail=True, name="tempipe test") -> Path:
    """Write ``image`` (rows, cols) as a DM3 or DM4 file with the given axis calibration.

    Parameters
    ----------
    path : path-like
        File to write (the suffix is the caller's choice).
    image : (M, N) ndarray
        int16, uint8, int32, uint16, uint32, float32 or float64.
    scales, units : tuple
        Calibration of the row axis then the column axis (DM stores X, the columns, first).
    version : {3, 4}
        DM file version.
    thumbnail : bool
        Also store an 8 x 8 uint8 thumbnail as image 0, listed under ``Thumbnails``.
    """
    image = np.asarray(image)
    images = []
    root = []
    if thumbnail:
        thumb = np.full((8, 8), 7, np.uint8)
        images.append(("", _image_group(thumb, (1.0, 1.0), ("", ""), "thumbnail")))
        root.append(("Thumbnails", [("", [("ImageIndex", _scalar(ULONG, "L", 0))])]))
    images.append(("", _image_group(image, scales, units, name)))
    root.insert(0, ("ImageList", images))
    body = _encode(root, version)
    length = ">Q" if version == 4 else ">L"
    header = struct.pack(">l", version) + struct.pack(length, len(body)) + struct.pack(">l", 1)
    path = Path(path)
    path.write_bytes(header + body + b"\0" * (8 if version == 4 else 4))
    return path
