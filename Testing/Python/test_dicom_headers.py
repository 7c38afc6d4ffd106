"""The fast header walker agrees with pydicom; the direct pixel read agrees with GDCM."""

import glob
import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from dicom_factory import save_dataset, write_mr_series
from LVIPredictorLib.dicom import headers
from LVIPredictorLib.dicom import pixels
from LVIPredictorLib.errors import InputError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_DICOM = os.path.join(REPO, "Resources", "SampleData", "LVI-Sample-001", "dicom")


def _outcome(read, path):
    try:
        return read(path)
    except InputError as error:
        return ("error", error.problem)


def _real_test_files():
    folders = {os.path.dirname(get_testdata_file("MR_small.dcm")), os.path.dirname(get_testdata_file("MR2_UNCR.dcm"))}
    return sorted(p for folder in folders for p in glob.glob(os.path.join(folder, "*.dcm")))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_walker_and_pydicom_agree_on_every_file_shipped_with_pydicom_and_pydicom_data():
    files = _real_test_files()
    walked = [p for p in files if headers._read_header_fast(p) is not None]
    # Most files are walked (big endian, deflate and odd encodings go to pydicom): a real comparison.
    assert len(files) > 100 and len(walked) > 0.6 * len(files)
    for path in files:
        assert _outcome(headers.read_header, path) == _outcome(headers.read_header_pydicom, path), path
    for name in ("MR_small_bigendian.dcm", "ExplVR_BigEnd.dcm", "image_dfl.dcm"):
        assert headers._read_header_fast(get_testdata_file(name)) is None


def test_walker_reads_the_phantom_series_and_notes_where_the_pixels_are():
    paths = sorted(glob.glob(os.path.join(SAMPLE_DICOM, "*", "*.dcm")))[:40]
    for path in paths:
        fast = headers._read_header_fast(path)
        assert fast is not None and fast == headers.read_header_pydicom(path)
        ds = pydicom.dcmread(path)
        with open(path, "rb") as handle:
            handle.seek(fast.pixels.offset)
            assert handle.read(fast.pixels.length) == ds.PixelData


def _with_sequences_and_private_data(path, implicit=False):
    """Add what real headers carry before the pixels: nested undefined-length sequences, a private block."""
    ds = pydicom.dcmread(path)
    inner = Dataset()
    inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = ds.SOPClassUID, "1.2.3.4"
    inner.ImagePositionPatient = [9.0, 9.0, 9.0]  # nested: must not be taken for the slice's own
    outer = Dataset()
    outer.ReferencedImageSequence = Sequence([inner])
    ds.SourceImageSequence = Sequence([outer, Dataset()])
    # Many scanners write sequences and items with undefined length (closed by delimiters).
    ds["SourceImageSequence"].is_undefined_length = True
    outer["ReferencedImageSequence"].is_undefined_length = True
    for item in (inner, outer):
        item.is_undefined_length_sequence_item = True
    ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
    ds.add_new(0x00291010, "OB", b"\x01\x02" * 3000)  # a large private blob
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    save_dataset(ds, path)


@pytest.mark.parametrize("implicit", [False, True])
def test_walker_skips_nested_sequences_and_private_blocks(tmp_path, implicit):
    written = write_mr_series(tmp_path, n_slices=2, rows=6, columns=5)
    for path in written.files:
        _with_sequences_and_private_data(path, implicit)
        assert b"\xfe\xff\xdd\xe0" in open(path, "rb").read()  # a sequence delimiter was written
        fast = headers._read_header_fast(path)
        assert fast is not None and fast == headers.read_header_pydicom(path)
        assert fast.position == tuple(float(v) for v in pydicom.dcmread(path).ImagePositionPatient)


def test_a_damaged_header_gets_the_pydicom_error(tmp_path):
    written = write_mr_series(tmp_path, n_slices=2)
    path = written.files[0]
    data = bytearray(open(path, "rb").read())
    data[200:260] = b"\xff" * 60  # inside the dataset, before the pixels
    open(path, "wb").write(bytes(data))
    assert _outcome(headers.read_header, path) == _outcome(headers.read_header_pydicom, path)


# ----------------------------------------------------------------------------- pixels

def _rewrite(path, values, **attributes):
    ds = pydicom.dcmread(path)
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.PixelData = values.tobytes()
    save_dataset(ds, path)


def _headers(files):
    return [headers.read_header(p) for p in sorted(files)]


def _gdcm(files):
    return sitk.GetArrayFromImage(pixels.read_with_gdcm(sorted(files), "test"))


LAYOUTS = {
    # name: (stored numpy type, attributes, values that probe the stored-bits rule)
    "uint16 in 12 bits, garbage above": ("<u2", dict(BitsStored=12, HighBit=11), [0xF005, 4095, 0, 0x1000]),
    "int16 in 12 bits, sign-extended": ("<u2", dict(BitsStored=12, HighBit=11, PixelRepresentation=1),
                                        [0x0FFF, 0x0800, 0xF800, 5]),
    "uint8": ("u1", dict(BitsAllocated=8, BitsStored=8, HighBit=7), [0, 255, 7, 128]),
    "int32": ("<i4", dict(BitsAllocated=32, BitsStored=32, HighBit=31, PixelRepresentation=1),
              [-70000, 70000, 0, -1]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_direct_pixel_read_gives_what_gdcm_gives(tmp_path, layout):
    dtype, attributes, probes = LAYOUTS[layout]
    written = write_mr_series(tmp_path, n_slices=3, rows=4, columns=6)
    rng = np.random.default_rng(0)
    for index, path in enumerate(written.files):
        values = rng.integers(0, 100, size=(4, 6)).astype(dtype)
        values.flat[:len(probes)] = np.array(probes, dtype=np.int64).astype(dtype)
        _rewrite(path, values, **attributes)
    headers = _headers(written.files)
    direct = pixels.read_native(headers)
    assert direct is not None
    expected = _gdcm(written.files)
    assert direct.dtype == expected.dtype and np.array_equal(direct, expected)


@pytest.mark.parametrize("attributes", [dict(RescaleSlope=2.5, RescaleIntercept=-10),
                                        dict(PhotometricInterpretation="MONOCHROME1")])
def test_rescaled_or_inverted_pixels_are_left_to_gdcm(tmp_path, attributes):
    written = write_mr_series(tmp_path, n_slices=2, rows=4, columns=4)
    for path in written.files:
        _rewrite(path, np.arange(16, dtype="<u2").reshape(4, 4), **attributes)
    headers = _headers(written.files)
    assert pixels.read_native(headers) is None
    image = pixels.read_pixels(headers, "test")
    assert np.array_equal(sitk.GetArrayFromImage(image), _gdcm(written.files))


def test_truncated_pixel_data_is_named_by_the_gdcm_path(tmp_path):
    written = write_mr_series(tmp_path, n_slices=3)
    headers = _headers(written.files)
    broken = headers[1].path
    size = os.path.getsize(broken)
    with open(broken, "r+b") as handle:
        handle.truncate(size - 40)
    assert pixels.read_native(headers) is None
    with pytest.raises(InputError) as caught:
        pixels.read_pixels(headers, "test")
    assert caught.value.source == broken and "cannot be decoded" in caught.value.problem
