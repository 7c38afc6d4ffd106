"""Whole MR studies for tests, as PACS exports them: several series in one folder, file names that say
nothing, and an enhanced (multi-frame) MR writer. pydicom only; small matrices so tests stay fast.

Voxel values follow :func:`dicom_factory.expected_value` (1000 * phase + 10 * slice + column % 10),
so a test can tell which series, phase and slice a reader returned.
"""

import datetime
import os

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicom_factory import AXIAL, expected_value, save_dataset, write_mr_series

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"

# Acquisition attributes a Siemens 1.5 T breast protocol writes (the phantom's dicom_writer uses the same).
FS_T2 = dict(SeriesDescription="t2_tse_fs_tra", SequenceName="*tse2d1_15", ScanningSequence="SE",
             SequenceVariant=["SK", "SP", "OSP"], ScanOptions=["FS", "PFP"], MRAcquisitionType="2D",
             EchoTime=71.0, RepetitionTime=4800.0, ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "NORM"])
T2_NO_FAT_SAT = dict(FS_T2, SeriesDescription="t2_tse_tra", ScanOptions=["PFP"], EchoTime=90.0, RepetitionTime=5200.0)
DCE = dict(SeriesDescription="fl3d_dyn_tra", SequenceName="*fl3d1", ScanningSequence="GR",
           SequenceVariant=["SP", "SS"], ScanOptions=["FS"], MRAcquisitionType="3D", EchoTime=1.6,
           RepetitionTime=4.53, ImageType=["ORIGINAL", "PRIMARY", "M", "ND", "NORM"])
LOCALIZER = dict(SeriesDescription="localizer", SequenceName="*fl2d1", ScanningSequence="GR", EchoTime=5.0,
                 RepetitionTime=8.6, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
DIFFUSION = dict(SeriesDescription="ep2d_diff_b50_800_tra", ScanningSequence="EP", EchoTime=84.0,
                 RepetitionTime=5500.0, DiffusionBValue=800.0, ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"])


def write_study(folder, *, dce_phases=5, second_fs_t2=False, t2_no_fat_sat=True, localizer=True,
                fs_t2=True, diffusion=False, dce_per_series=False, dce=True):
    """A breast MR study in ``folder``; {role: WrittenSeries (or a list, one per phase)}."""
    written = {}
    if localizer:
        uid = generate_uid()
        # Three orthogonal planes in one series, as scanners write a localizer.
        written["localizer"] = [write_mr_series(folder, n_slices=1, orientation=o, series_uid=uid, series_number=1,
                                                tags=LOCALIZER, prefix="loc{}".format(i), rows=6, columns=6)
                                for i, o in enumerate((AXIAL, (0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1)))]
    if fs_t2:
        written["fs_t2"] = write_mr_series(folder, n_slices=4, rows=8, columns=10, slice_spacing=4.0,
                                           pixel_spacing=(0.7, 0.7), series_number=3, tags=FS_T2, prefix="a")
    if second_fs_t2:
        written["fs_t2_b"] = write_mr_series(folder, n_slices=5, rows=8, columns=10, slice_spacing=3.0,
                                             series_number=4, tags=dict(FS_T2, SeriesDescription="t2_tse_fs_sag"),
                                             prefix="b")
    if t2_no_fat_sat:
        written["t2"] = write_mr_series(folder, n_slices=4, rows=8, columns=10, slice_spacing=4.0, series_number=5,
                                        tags=T2_NO_FAT_SAT, prefix="c")
    if diffusion:
        written["diffusion"] = write_mr_series(folder, n_slices=3, rows=6, columns=6, n_phases=2, series_number=6,
                                               phase_tags=("AcquisitionTime",), tags=DIFFUSION, prefix="d")
    if dce and dce_per_series:
        written["dce"] = [write_mr_series(folder, n_slices=6, rows=9, columns=10, n_phases=1, phase_offset=p,
                                          series_number=10 + p, prefix="e{}".format(p),
                                          tags=dict(DCE, SeriesDescription="fl3d_dyn_{}".format(p)))
                          for p in range(dce_phases)]
    elif dce:
        written["dce"] = write_mr_series(folder, n_slices=6, rows=9, columns=10, n_phases=dce_phases, series_number=7,
                                         tags=dict(DCE, NumberOfTemporalPositions=dce_phases), prefix="e")
    shuffle_names(folder)
    return written


def shuffle_names(folder, seed=0):
    """Rename every file to a meaningless name, as PACS exports do (IM0001 ... in arrival order)."""
    names = sorted(os.listdir(folder))
    order = np.random.default_rng(seed).permutation(len(names))
    temporary = []
    for index, name in enumerate(names):
        target = os.path.join(folder, "tmp-{:05d}".format(order[index]))
        os.rename(os.path.join(folder, name), target)
        temporary.append(target)
    for path in temporary:
        os.rename(path, os.path.join(folder, "IM{}".format(os.path.basename(path)[4:])))


def write_enhanced_mr(path, *, n_slices=5, n_phases=3, rows=6, columns=7, pixel_spacing=(0.8, 0.9),
                      slice_spacing=2.0, origin=(-10.0, -12.0, 4.0), orientation=AXIAL, shuffle=True,
                      timing="index", acquisition=None, frame_rescale=None, series_uid=None):
    """One Enhanced MR Image Storage file: ``n_phases`` x ``n_slices`` frames, in a shuffled order,
    each placed by its PlanePositionSequence; phases by TemporalPositionIndex (``timing="index"``) or
    FrameAcquisitionDateTime only (``"datetime"``). ``acquisition`` sets the MR attributes (see
    FS_T2/DCE); ``frame_rescale`` (slope, intercept) goes in a per-frame PixelValueTransformationSequence.
    Returns (path, SeriesInstanceUID, positions of the slices)."""
    acquisition = acquisition or DCE
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row, column)
    positions = [tuple(round(float(v), 4) for v in np.array(origin) + k * slice_spacing * normal)
                 for k in range(n_slices)]
    jobs = [(p, k) for p in range(1, n_phases + 1) for k in range(n_slices)]
    order = np.random.default_rng(7).permutation(len(jobs)) if shuffle else range(len(jobs))
    frames = [jobs[i] for i in order]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_MR
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, generate_uid()
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality, ds.Manufacturer = "MR", "SIEMENS"
    ds.PatientName, ds.PatientID = "Test^Enhanced", "TEST0002"
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 20, 1
    ds.SeriesDescription = acquisition["SeriesDescription"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if n_phases > 1:
        ds.NumberOfTemporalPositions = n_phases
    shared = Dataset()
    shared.PlaneOrientationSequence = Sequence([_item(ImageOrientationPatient=list(orientation))])
    shared.PixelMeasuresSequence = Sequence([_item(PixelSpacing=[pixel_spacing[1], pixel_spacing[0]],
                                                   SliceThickness=slice_spacing)])
    shared.MRTimingAndRelatedParametersSequence = Sequence([_item(RepetitionTime=acquisition["RepetitionTime"])])
    shared.MREchoSequence = Sequence([_item(EffectiveEchoTime=acquisition["EchoTime"])])
    contrast = "T2" if acquisition["EchoTime"] >= 50 else "T1"
    shared.MRImageFrameTypeSequence = Sequence([_item(FrameType=["ORIGINAL", "PRIMARY", "M", "NONE"],
                                                      AcquisitionContrast=contrast)])
    if "FS" in acquisition.get("ScanOptions", ()):
        shared.MRModifierSequence = Sequence([_item(SpectrallySelectedSuppression="FAT")])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    start = datetime.datetime(2024, 1, 1, 10, 0, 0)
    per_frame = []
    for phase, k in frames:
        content = _item(InStackPositionNumber=k + 1, StackID="1", DimensionIndexValues=[phase, k + 1],
                        FrameAcquisitionDateTime=(start + datetime.timedelta(seconds=60 * (phase - 1) + 0.2 * k))
                        .strftime("%Y%m%d%H%M%S.%f"))
        if timing == "index":
            content.TemporalPositionIndex = phase
        group = Dataset()
        group.FrameContentSequence = Sequence([content])
        group.PlanePositionSequence = Sequence([_item(ImagePositionPatient=list(positions[k]))])
        if frame_rescale is not None:
            group.PixelValueTransformationSequence = Sequence([_item(
                RescaleSlope=frame_rescale[0], RescaleIntercept=frame_rescale[1], RescaleType="US")])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    pixels = np.stack([np.fromfunction(lambda r, c, p=p, k=k: expected_value(p, k, c), (rows, columns), dtype=int)
                       for p, k in frames]).astype("<u2")
    ds.PixelData = pixels.tobytes()
    save_dataset(ds, path)
    return str(path), ds.SeriesInstanceUID, positions


def _item(**values):
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item
