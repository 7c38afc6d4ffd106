"""Predictions back to PACS: a DICOM Structured Report (TID 1500 measurement report) and the VOI as a
DICOM Segmentation on the source series' own geometry, written with highdicom.

The report holds one measurement group (TID 1411, volumetric ROI) per prediction:

- the probability of LVI and the model's decision threshold (numeric, unit "1"), the VOI volume (mm3);
- the class as a qualitative evaluation (Present / Absent, SNOMED CT);
- the model as algorithm identification (TID 4019) of the measurements it made (the probability and
  the threshold), where TID 300 puts it: name = model id, version = LVIPredictor's, parameters = weights
  SHA-256, architecture, sequence(s), DCE phase, threshold rule, demo flag, and for a late-fusion model
  each member's own probability. The group itself carries no algorithm: its VOI was drawn by a person;
- the VOI: the segment of the DICOM SEG written with it, or — without a SEG — an ellipsoid with the
  VOI's centre, axes and second moments (SCOORD3D in the series' frame of reference). Both name the
  source series; every image read for the prediction is listed as evidence.

Observers (TID 1001): the person who drew the VOI (named when known, else "Unknown") and LVIPredictor
as the device. Concepts with a standard code use it, from the context group the template names where
it names one (the procedure from CID 100, laterality from CID 244); the three without one (LVI, its
probability, the threshold) use the private scheme ``99LVIPRED``, declared in the report's coding
scheme table. The report is not verified and not final (``UNVERIFIED``, ``PRELIMINARY``): a machine
wrote it.

Each SEG is one series per sequence (its own series number and description); its segment's anatomic
region is the breast, with the source series' Laterality as modifier when the source has one, and the
VOI's author is its ContentCreatorName when known.

Not supported: a SEG on one phase of a dynamic enhanced (multi-frame) file — highdicom places SEG frames
by the source frames' positions, which the phases share (the SR without a SEG works).

highdicom is imported only when writing, so the module loads without it. Written: highdicom 0.28 with
pydicom 3 (Python >= 3.10) and highdicom 0.22 with pydicom 2.4 (the last release for Python 3.9).
"""

import io as bytes_io
import os
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import pydicom
import SimpleITK as sitk

from LVIPredictorLib import __version__
from LVIPredictorLib.inference import statements
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorLib.errors import InputError

PRIVATE_SCHEME = "99LVIPRED"
SR_SERIES_NUMBER = 9901
# One SEG series per sequence, so a PACS shows the T2 and the DCE VOI apart.
SEG_SERIES_NUMBERS = {name: 9902 + index for index, name in enumerate(sequences.REGISTRY)}
UNKNOWN_PERSON = "Unknown^"  # a family name alone (a bare word is ambiguous as a PN)


def check_person_name(name, source=None):
    # type: (Optional[str], Optional[str]) -> Optional[str]
    """``name`` (who drew the VOI) as a DICOM person name, or None; refused when no PN can hold it."""
    if name is None:
        return None
    name = name.strip()
    groups = name.split("=")
    if (not name or len(groups) > 3 or any(g.count("^") > 4 or len(g) > 64 for g in groups)
            or "\\" in name or any(ord(c) < 32 for c in name)):
        raise InputError(source, "{!r} is not a DICOM person name: Family^Given (up to five parts split by "
                                 "'^', 64 characters, no backslash)".format(name))
    return name


# A fixed UID for LVIPredictor as the observing device (name-based UUID, "2.25." form).
DEVICE_UID = "2.25.{}".format(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/lvipredictor/LVIPredictor").int)


def _code(value, scheme, meaning):
    from pydicom.sr.coding import Code

    return Code(value, scheme, meaning)


def _codes():
    return {
        # CID 100 (Quantitative Diagnostic Imaging Procedures) has no breast MRI; its MRI entry is
        # body-region neutral, and the breast is said by the finding site.
        "procedure": _code("25056-3", "LN", "MRI unspecified body region"),
        "lesion": _code("52988006", "SCT", "Lesion"),
        "breast": _code("76752008", "SCT", "Breast"),
        "present": _code("52101004", "SCT", "Present"),
        "absent": _code("272519000", "SCT", "Absent"),
        "volume": _code("118565006", "SCT", "Volume"),
        "category": _code("49755003", "SCT", "Morphologically abnormal structure"),
        "neoplasm": _code("108369006", "SCT", "Neoplasm"),
        "unity": _code("1", "UCUM", "no units"),
        "person": _code("121006", "DCM", "Person"),
        "device": _code("121007", "DCM", "Device"),
        "mm3": _code("mm3", "UCUM", "cubic millimeter"),
        "lvi": _code("LVI", PRIVATE_SCHEME, "Lymphovascular invasion"),
        "probability": _code("LVIPROB", PRIVATE_SCHEME, "Probability of lymphovascular invasion"),
        "threshold": _code("LVITHR", PRIVATE_SCHEME, "Decision threshold for lymphovascular invasion"),
    }


@dataclass
class DicomSource:
    """A DICOM series a prediction was made on, with its VOI on the series' own grid."""

    sequence: str  # "t2" or "dce"
    info: object  # LVIPredictorLib.dicom.series.ImageInfo of the read
    image: sitk.Image
    mask: sitk.Image  # uint8, on ``image``'s grid, non-zero = VOI (after the label rule)

    @property
    def series_uid(self) -> str:
        return self.info.series_uid


def dicom_source(sequence, image, mask, info, label=None) -> DicomSource:
    """Check that ``image`` was read from DICOM and put its VOI (any grid) on the image grid."""
    if getattr(info, "kind", None) != "dicom" or not info.images:
        raise InputError(getattr(info, "source", None), "is not a DICOM series; a DICOM SR or SEG must reference "
                                                        "the DICOM images the prediction was made on (give the "
                                                        "DICOM folder instead of a NIfTI/NRRD file)")
    from LVIPredictorLib.inputs import readers

    if not readers.same_geometry(mask, image):
        mask = sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    voxels = sitk.GetArrayFromImage(mask)
    binary = (voxels == label) if label is not None else (voxels != 0)
    if not binary.any():
        raise InputError(info.source, "the VOI holds no voxel on the grid of series {}".format(info.series_uid))
    result = sitk.GetImageFromArray(binary.astype(np.uint8))
    result.CopyInformation(image)
    return DicomSource(sequence, info, image, result)


def segmentation_paths(path, names: Sequence[str]) -> Dict[str, str]:
    """{sequence: file} for the SEG(s): ``path`` for one series, ``<stem>-t2.dcm`` / ``<stem>-dce.dcm`` for two."""
    path = str(path)
    if len(names) == 1:
        return {names[0]: path}
    stem, suffix = os.path.splitext(path)
    return {name: "{}-{}{}".format(stem, name, suffix or ".dcm") for name in names}


def refuse_existing(path, overwrite: bool, option: str = "--overwrite") -> None:
    """``option`` is how the caller spells "replace it" (``--overwrite`` on the command line)."""
    if os.path.lexists(str(path)) and not overwrite:
        raise InputError(str(path), "already exists; choose another file or pass {} to replace it".format(option))


_LATERALITY = {"L": ("7771000", "Left"), "R": ("24028007", "Right"), "B": ("51440002", "Bilateral")}


def laterality(source: DicomSource) -> Optional[str]:
    """The source series' Laterality (or the first image's ImageLaterality): "L", "R", "B" or None."""
    path = source.info.images[0].path
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Laterality", "ImageLaterality"])
    except Exception as error:  # the file was read moments ago; say what changed
        raise InputError(path, "cannot be read again for the DICOM report ({})".format(error))
    for keyword in ("Laterality", "ImageLaterality"):
        value = str(ds.get(keyword, "") or "").strip().upper()
        if value in _LATERALITY:
            return value
    return None


# ----------------------------------------------------------------------------- evidence

def _source_datasets(source: DicomSource) -> List[pydicom.Dataset]:
    """Headers of the images read, one per file (a multi-frame file once), in slice order."""
    datasets = []
    for path in dict.fromkeys(h.path for h in source.info.images):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as error:  # the file was read moments ago; say what changed
            raise InputError(path, "cannot be read again for the DICOM report ({})".format(error))
        # Patient and study attributes of type 2 (required, may be empty) are copied into the new
        # objects; a source that omits one gets it empty here (in memory only), as the standard allows.
        for keyword in _TYPE_2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        datasets.append(ds)
    return datasets


_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber")


# ----------------------------------------------------------------------------- SEG

def write_segmentation(source: DicomSource, path, overwrite: bool = False, files=None,
                       voi_author: Optional[str] = None):
    """The VOI as a binary DICOM SEG on the source series' images; returns the SEG dataset.

    ``files``: a StagedFiles to stage it in (else it is written atomically now); ``voi_author``: the
    person who drew the VOI, when known (ContentCreatorName; empty otherwise, as type 2 allows).
    """
    import highdicom as hd

    refuse_existing(path, overwrite)
    codes = _codes()
    datasets = _source_datasets(source)
    voxels = sitk.GetArrayFromImage(source.mask).astype(bool)
    frames = [h.frame for h in source.info.images]
    if frames[0] is None:
        pixel_array = voxels  # one source file per slice, in the same order as the mask's slices
    else:
        total = int(datasets[0].NumberOfFrames)
        if len(datasets) > 1 or total != len(frames):
            # highdicom places SEG frames by the source frames' positions, which the phases share.
            raise InputError(source.info.source, "a DICOM SEG on one phase of a dynamic enhanced (multi-frame) "
                                                 "image is not supported (its phases share every slice position); "
                                                 "write the DICOM SR without --dicom-seg, or export the series as "
                                                 "single-frame images")
        # One segmentation frame per source frame, in the file's frame order.
        pixel_array = np.zeros((total,) + voxels.shape[1:], dtype=bool)
        for k, frame in enumerate(frames):
            pixel_array[frame] = voxels[k]
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="VOI ({})".format(sequences.LABELS[source.sequence]),
        segmented_property_category=codes["category"], segmented_property_type=codes["neoplasm"],
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets, pixel_array=pixel_array,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[description],
            series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBERS[source.sequence],
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="LVIPredictor",
            manufacturer_model_name="LVIPredictor", software_versions=__version__, device_serial_number="none",
            series_description="LVIPredictor VOI {}".format(sequences.LABELS[source.sequence]),
            content_creator_name=voi_author or None)
    except (ValueError, TypeError, AttributeError) as error:
        raise InputError(source.info.source, "the VOI cannot be written as a DICOM SEG on series {} ({})".format(
            source.series_uid, error))
    # The side goes with the segment: its anatomic region (breast) with the source's laterality as
    # modifier. Not as General Series Laterality: dciodvfy (dicom3tools 2022-06) calls that attribute an
    # error in a SEG whatever the body part, and without BodyPartExamined the standard does not ask for it.
    side = laterality(source)
    region = _code_item(codes["breast"])
    if side:
        region.AnatomicRegionModifierSequence = [_code_item(_laterality_code(side))]
    seg.SegmentSequence[0].AnatomicRegionSequence = [region]
    if "ContentCreatorName" not in seg:
        seg.ContentCreatorName = ""
    _save(seg, path, files)
    return seg


# ----------------------------------------------------------------------------- SR

def write_report(predictions, sources: Dict[str, DicomSource], path, segmentations: Optional[Dict] = None,
                 overwrite: bool = False, files=None, voi_author: Optional[str] = None):
    """One TID 1500 measurement report for ``predictions`` (core Prediction objects) on ``sources``
    ({sequence: DicomSource}); ``segmentations`` ({sequence: SEG dataset}) are referenced when given.
    ``files`` and ``voi_author`` as for :func:`write_segmentation`."""
    import highdicom as hd

    refuse_existing(path, overwrite)
    if not predictions:
        raise InputError(str(path), "there is no prediction to report")
    codes = _codes()
    segmentations = segmentations or {}
    evidence = [ds for name in sorted(sources) for ds in _source_datasets(sources[name])]
    evidence.extend(segmentations[name] for name in sorted(segmentations))
    groups = []
    for prediction in predictions:
        names = sequences.channels(prediction.sequence)
        missing = [n for n in names if n not in sources]
        if missing:
            raise InputError(str(path), "model {} read {}, which is not a DICOM series here".format(
                prediction.model_id, " and ".join(sequences.LABELS[n] for n in missing)))
        shown = sources[sequences.grid_reference(prediction.sequence)]
        # The measurements' algorithm (TID 300 row 9, TID 4019); not the group's, whose VOI a person drew.
        algorithm = hd.sr.AlgorithmIdentification(
            name=prediction.model_id, version="LVIPredictor {}".format(__version__),
            parameters=_parameters(prediction, [sources[n] for n in names]))
        region = {}
        if shown.sequence in segmentations:
            seg = segmentations[shown.sequence]
            region["referenced_segment"] = hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
                source_series=hd.sr.SourceSeriesForSegmentation(shown.series_uid))
        else:
            region["referenced_volume_surface"] = hd.sr.VolumeSurface(
                graphic_type=hd.sr.GraphicTypeValues3D.ELLIPSOID, graphic_data=_ellipsoid(shown.mask),
                frame_of_reference_uid=_frame_of_reference(shown),
                source_series=hd.sr.SourceSeriesForSegmentation(shown.series_uid))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="LVI prediction {} ({})".format(
                prediction.model_id, sequences.LABELS[prediction.sequence])),
            finding_type=codes["lesion"], finding_sites=[_finding_site(shown)], **region,
            measurements=[
                hd.sr.Measurement(name=codes["probability"], value=float(prediction.probability),
                                  unit=codes["unity"], algorithm_id=algorithm),
                hd.sr.Measurement(name=codes["threshold"], value=float(prediction.threshold), unit=codes["unity"],
                                  algorithm_id=algorithm),
                hd.sr.Measurement(name=codes["volume"], value=_volume_mm3(shown.mask), unit=codes["mm3"])],
            qualitative_evaluations=[hd.sr.QualitativeEvaluation(
                name=codes["lvi"], value=codes["present"] if prediction.label else codes["absent"])]))
    # TID 1001: the person who drew the VOI (often not known here) and the device that measured.
    person = hd.sr.ObserverContext(
        observer_type=codes["person"],
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=voi_author or UNKNOWN_PERSON))
    device = hd.sr.ObserverContext(
        observer_type=codes["device"],
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=DEVICE_UID, name="LVIPredictor", manufacturer_name="LVIPredictor",
            model_name="LVIPredictor {}".format(__version__)))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device),
        procedure_reported=codes["procedure"], imaging_measurements=groups)
    try:
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence, content=report[0], series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="LVIPredictor", is_complete=True,
            is_final=False, is_verified=False, series_description="LVIPredictor LVI prediction")
    except (ValueError, TypeError) as error:
        raise InputError(str(path), "the DICOM SR cannot be made from these series ({})".format(error))
    sr.CodingSchemeIdentificationSequence = [_private_scheme()]
    _save(sr, path, files)
    return sr


def _laterality_code(side):
    return _code(_LATERALITY[side][0], "SCT", _LATERALITY[side][1])


def _code_item(code) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item


def _finding_site(source: DicomSource):
    import highdicom as hd

    side = laterality(source)
    return hd.sr.FindingSite(_codes()["breast"], laterality=_laterality_code(side) if side else None)


def _parameters(prediction, used: Sequence[DicomSource]) -> List[str]:
    parameters = ["weights SHA-256 {}".format(prediction.weights_sha256),
                  "architecture {}".format(prediction.architecture),
                  "sequence {}".format(sequences.LABELS[prediction.sequence]),
                  "threshold {:.6f}".format(prediction.threshold)]
    # A late-fusion report keeps what each member said, so a reader can see which sequence drove it; a
    # combined model's, its imaging model's probability and the clinical values it read (filled ones named).
    for model_id, probability in prediction.member_probabilities.items():
        parameters.append("{} {} probability {:.6f}".format(statements.member_role(prediction), model_id,
                                                            probability))
    parameters += ["clinical {} {}".format(name, text) for name, text in statements.clinical_words(prediction)]
    for source in used:
        parameters.append("{} series {}".format(sequences.LABELS[source.sequence], source.series_uid))
        if source.info.phase is not None:
            parameters.append("DCE phase {} of {} (1 = pre-contrast)".format(source.info.phase, source.info.n_phases))
    if prediction.demo:
        parameters.append("demo weights trained on synthetic phantoms, not for clinical use")
    return parameters


def _private_scheme():
    item = pydicom.Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "LVIPredictor local codes"
    item.CodingSchemeResponsibleOrganization = "LVIPredictor"
    return item


def _frame_of_reference(source: DicomSource) -> str:
    uid = source.info.frame_of_reference_uid
    if not uid:
        raise InputError(source.info.source, "series {} has no FrameOfReferenceUID; its VOI cannot be placed in a "
                                             "DICOM SR without a SEG (pass --dicom-seg)".format(source.series_uid))
    return uid


def _physical_points(mask: sitk.Image) -> np.ndarray:
    """LPS coordinates (mm) of the VOI's voxel centres."""
    kji = np.argwhere(sitk.GetArrayViewFromImage(mask) != 0).astype(np.float64)
    ijk = kji[:, ::-1]
    direction = np.asarray(mask.GetDirection()).reshape(3, 3)
    return np.asarray(mask.GetOrigin()) + (ijk * np.asarray(mask.GetSpacing())) @ direction.T


def _volume_mm3(mask: sitk.Image) -> float:
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(mask)) * np.prod(mask.GetSpacing()))


def _ellipsoid(mask: sitk.Image) -> np.ndarray:
    """The six axis end points (first, second, third axis) of the solid ellipsoid with the VOI's
    centre and second moments (a solid ellipsoid's semi-axis is sqrt(5) standard deviations)."""
    points = _physical_points(mask)
    centre = points.mean(axis=0)
    covariance = np.cov(points.T) if len(points) > 1 else np.zeros((3, 3))
    values, vectors = np.linalg.eigh(covariance)
    # A flat or tiny VOI still gets a non-degenerate ellipsoid: half a voxel at least on each axis.
    floor = 0.5 * min(mask.GetSpacing())
    semi = np.maximum(np.sqrt(5.0 * np.clip(values, 0.0, None)), floor)
    order = np.argsort(semi)[::-1]
    ends = []
    for axis in order:
        ends.extend([centre - semi[axis] * vectors[:, axis], centre + semi[axis] * vectors[:, axis]])
    return np.asarray(ends, dtype=np.float64)


def _save(dataset, path, files=None) -> None:
    from LVIPredictorLib.atomic_files import write_bytes_atomic

    buffer = bytes_io.BytesIO()
    try:
        dataset.save_as(buffer, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        dataset.save_as(buffer, write_like_original=False)
    (files.write_bytes if files is not None else write_bytes_atomic)(path, buffer.getvalue())
