"""Is an image file whole? The size its header declares against the bytes it holds, before ITK reads it.

ITK reads a truncated ``.nii.gz`` zero-filled without a word (a tumour half black still gets a
class), and a header may declare a volume far larger than the file to make the reader allocate
it. So before an image file is handed to SimpleITK its header is parsed here, the voxel data it
declares is compared with the data present (decompressed as a stream, chunk by chunk, which also
checks the gzip CRC and length), and a file that lacks data or whose compression is corrupt is
refused naming the file. Nothing the size of the image is allocated here.

Formats: NIfTI-1/2 (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr`` with one data file, raw or
gzip encoding) and MetaImage (``.mha``, ``.mhd`` with one data file, raw or zlib-compressed).
Variants whose layout these checks do not model (NRRD byte/line skips, file lists, other
encodings) are left to ITK.
"""

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

from LVIPredictorLib.errors import InputError

_CHUNK = 1 << 20
# No MR volume needs 2**33 voxels (8 G); a header declaring more is corrupt or hostile.
MAX_VOXELS = 1 << 33


@dataclass
class NiftiLayout:
    order: str                 # "<" or ">"
    datatype: int
    bitpix: int
    dims: Tuple[int, ...]      # the used dimensions (dim[1..dim[0]])
    offset: int                # vox_offset: where the voxels begin

    @property
    def n_voxels(self) -> int:
        n = 1
        for d in self.dims:
            n *= max(1, d)
        return n


def nifti_layout(header: bytes) -> Optional[NiftiLayout]:
    """The layout a NIfTI-1 or NIfTI-2 header declares; None if these bytes are no NIfTI header."""
    if len(header) < 348:
        return None
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0]
        if size == 348:
            dims = struct.unpack(order + "8h", header[40:56])
            datatype, bitpix = struct.unpack(order + "2h", header[70:74])
            offset = struct.unpack(order + "f", header[108:112])[0]
            break
        if size == 540 and len(header) >= 540:
            datatype, bitpix = struct.unpack(order + "2h", header[12:16])
            dims = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            break
    else:
        return None
    n_dims = dims[0]
    used = tuple(int(d) for d in dims[1:1 + n_dims]) if 1 <= n_dims <= 7 else ()
    return NiftiLayout(order, int(datatype), int(bitpix), used, int(offset))


def check_image_file(path: str) -> None:
    """Refuse (InputError naming ``path``) an image file whose data is missing, short or corrupt."""
    lower = path.lower()
    if lower.endswith((".nii", ".nii.gz")):
        _check_nifti(path, lower.endswith(".gz"))
    elif lower.endswith((".nrrd", ".nhdr")):
        _check_nrrd(path)
    elif lower.endswith((".mha", ".mhd")):
        _check_metaimage(path)


def _check_nifti(path: str, compressed: bool) -> None:
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, "cannot be read as an image (not a valid {}NIfTI file: {})".format(
            "gzip-compressed " if compressed else "", exc))
    layout = nifti_layout(header)
    if layout is None:
        raise InputError(path, "cannot be read as an image (no valid NIfTI header)")
    if not layout.dims or any(d < 1 for d in layout.dims) or layout.bitpix <= 0 or layout.bitpix % 8:
        raise InputError(path, "has a corrupt NIfTI header (dimensions {}, {} bits per voxel)".format(
            list(layout.dims), layout.bitpix))
    if layout.offset < 348:
        raise InputError(path, "has a corrupt NIfTI header (voxel data offset {} inside the header)".format(
            layout.offset))
    _check_declared(path, layout.n_voxels, layout.bitpix // 8, layout.offset,
                    "dimensions {}".format("x".join(str(d) for d in layout.dims)),
                    gzip_from=0 if compressed else None)


def _check_declared(path, n_voxels, voxel_bytes, data_offset, what, gzip_from=None, zlib_from=None,
                    data_path=None):
    """Compare the declared data size with the data present in ``data_path`` (default ``path``): the bytes
    from ``data_offset`` on, where a gzip or zlib stream starting at raw byte ``gzip_from``/``zlib_from``
    is measured decompressed (``data_offset`` then counts in the decompressed stream)."""
    if n_voxels > MAX_VOXELS:
        raise InputError(path, "declares {} voxels ({}); no MR volume is that large: the header is corrupt".format(
            n_voxels, what))
    needed = n_voxels * voxel_bytes
    data_path = data_path or path
    if gzip_from is not None:
        present = _gzip_length(path, data_path, gzip_from) - data_offset
        where = "decompressed "
    elif zlib_from is not None:
        present = _zlib_length(path, data_path, zlib_from) - data_offset
        where = "decompressed "
    else:
        present = os.path.getsize(data_path) - data_offset
        where = ""
    if present < needed:
        raise InputError(path, "is truncated: its header declares {} ({} bytes of voxel data) but the file holds "
                               "{} {}bytes of it".format(what, needed, max(0, present), where))


def _gzip_length(path, data_path, skip_raw):
    """Decompressed length of the gzip stream in ``data_path`` starting at raw byte ``skip_raw``."""
    total = 0
    try:
        with open(data_path, "rb") as raw:
            if skip_raw:
                raw.seek(skip_raw)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    total += len(chunk)
    except EOFError:
        raise InputError(path, "is truncated: its gzip stream ends early (the file was cut short while copying "
                               "or downloading)")
    except (OSError, zlib.error) as exc:
        raise InputError(path, "has corrupt gzip-compressed data ({})".format(exc))
    return total


def _zlib_length(path, data_path, offset):
    decompressor = zlib.decompressobj()
    total = 0
    try:
        with open(data_path, "rb") as raw:
            raw.seek(offset)
            for chunk in iter(lambda: raw.read(_CHUNK), b""):
                total += len(decompressor.decompress(chunk))
            total += len(decompressor.flush())
    except zlib.error as exc:
        raise InputError(path, "has corrupt compressed data ({})".format(exc))
    if not decompressor.eof:
        raise InputError(path, "is truncated: its compressed data ends early")
    return total


# ----------------------------------------------------------------------------- text headers (NRRD, MetaImage)

def _voxel_count(path, sizes, header_words):
    if not sizes or any(s < 1 for s in sizes):
        raise InputError(path, "has a corrupt {}".format(header_words))
    n = 1
    for s in sizes:
        n *= s
    return n


def _data_location(path, data_file, header_bytes):
    """(file holding the voxels, where they begin): after the header (LOCAL), or a detached file beside it;
    None for a list or pattern of files, which these checks leave to ITK."""
    if data_file.upper() == "LOCAL":
        return path, header_bytes
    if data_file.split()[0].upper() == "LIST" or "%" in data_file:
        return None
    data_path = os.path.join(os.path.dirname(path), data_file)
    if not os.path.isfile(data_path):
        raise InputError(path, "names a data file {} that does not exist".format(data_file))
    return data_path, 0


_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}


def _read_text_header(path, stop):
    """(fields, bytes up to and including the end of the header) of a text header; ``stop(line)`` ends it."""
    fields, consumed = {}, 0
    with open(path, "rb") as handle:
        for raw in iter(lambda: handle.readline(1 << 16), b""):
            consumed += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            if stop(line):
                return fields, consumed, line
            for sep in (":=", ":", "="):
                if sep in line and not line.startswith("#"):
                    key, value = line.split(sep, 1)
                    fields[key.strip().lower()] = value.strip()
                    break
            if consumed > (1 << 20):
                break
    return fields, consumed, None


def _check_nrrd(path):
    fields, header_bytes, _ = _read_text_header(path, lambda line: line == "")
    if not fields:
        return  # not a text header we know: ITK says what it is
    if any(k in fields for k in ("line skip", "lineskip", "byte skip", "byteskip")):
        return  # skips put the data where this check does not model
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
        voxel_bytes = next(n for n, names in _NRRD_TYPES.items() if fields["type"].lower() in names)
    except (KeyError, ValueError, StopIteration):
        return
    n = _voxel_count(path, sizes, "NRRD header (sizes {})".format(fields["sizes"]))
    location = _data_location(path, fields.get("data file") or fields.get("datafile") or "LOCAL", header_bytes)
    if location is None:
        return
    data_path, offset = location
    encoding = fields.get("encoding", "raw").lower()
    what = "sizes {}".format(" ".join(map(str, sizes)))
    if encoding == "raw":
        _check_declared(path, n, voxel_bytes, offset, what, data_path=data_path)
    elif encoding in ("gzip", "gz"):
        _check_declared(path, n, voxel_bytes, 0, what, gzip_from=offset, data_path=data_path)


# ----------------------------------------------------------------------------- MetaImage

_MET_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}


def _check_metaimage(path):
    fields, header_bytes, last = _read_text_header(path, lambda line: line.lower().startswith("elementdatafile"))
    if last is None:
        return
    fields["elementdatafile"] = last.split("=", 1)[-1].strip()
    try:
        sizes = [int(v) for v in fields["dimsize"].split()]
        voxel_bytes = _MET_TYPES[fields["elementtype"].upper()] * int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        return
    n = _voxel_count(path, sizes, "MetaImage header (DimSize {})".format(fields["dimsize"]))
    location = _data_location(path, fields["elementdatafile"], header_bytes)
    if location is None:
        return
    data_path, offset = location
    what = "DimSize {}".format(" ".join(map(str, sizes)))
    if fields.get("compresseddata", "false").lower() == "true":
        _check_declared(path, n, voxel_bytes, 0, what, zlib_from=offset, data_path=data_path)
    else:
        _check_declared(path, n, voxel_bytes, offset, what, data_path=data_path)
