"""Helpers for the phantom tests (imported by test_phantom_*.py)."""

import os

import numpy as np
import pydicom
import SimpleITK as sitk


def all_files(root):
    """{relative path: bytes} of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def read_dicom_phase(folder, temporal_position):
    """The files of one DCE temporal position, read as one volume with SimpleITK (sorted along z)."""
    chosen = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if int(ds.TemporalPositionIdentifier) == temporal_position:
            chosen.append((float(ds.ImagePositionPatient[2]), path))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([p for _, p in sorted(chosen)])
    return reader.Execute()


def grid_of(image):
    return {"origin": np.array(image.GetOrigin()), "spacing": np.array(image.GetSpacing()),
            "direction": np.array(image.GetDirection()), "size": list(image.GetSize())}


def dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum())
