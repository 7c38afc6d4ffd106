"""Sample Data → LVI Predictor → LVI sample: the registration and what loading it gives.

Slicer's SampleData module is a Qt scripted module that slicer-core does not ship, so its
loading path is followed here step by step, as SampleDataLogic.downloadFromSource does it
(Slicer Modules/Scripted/SampleData/SampleData.py): ``urllib.request.urlretrieve(uri, cacheFolder/fileName)``,
the SHA-256 check, then ``slicer.app.coreIOManager().loadNodes(fileType, loadFileProperties + fileName +
name)``. The files, URIs, checksums, node names and file types are the module's own
(``sampleDataSource()``); the IO manager reads them with Slicer's real volume and segmentation logics.
"""

import hashlib
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import SimpleITK as sitk

from slicer_headless import bundled_models, headless_slicer, models_dir, module_file, sample_data  # noqa: F401

# Parameters of SampleData.SampleDataLogic.registerCustomSampleDataSource (Slicer 5.x SampleData.py).
REGISTER_PARAMETERS = ("category", "sampleName", "uris", "fileNames", "nodeNames", "customDownloader",
                       "thumbnailFileName", "loadFileType", "loadFiles", "loadFileProperties", "checksums")


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_registration_names_local_files_with_their_checksums_and_no_download(module_file, sample_data):
    source = sample_data.sampleDataSource()
    assert set(source) <= set(REGISTER_PARAMETERS)
    count = len(source["uris"])
    assert count == 3
    assert len(source["fileNames"]) == len(source["nodeNames"]) == len(source["loadFileType"]) == len(
        source["checksums"]) == count
    caseDir = sample_data.sampleCaseDir().resolve()
    for uri, checksum in zip(source["uris"], source["checksums"]):
        parsed = urllib.parse.urlparse(uri)
        assert parsed.scheme == "file", uri  # never a download
        path = Path(urllib.request.url2pathname(parsed.path))
        assert path.is_file() and path.resolve().parent == caseDir
        assert checksum == "SHA256:" + _sha256(path)
    assert len(set(source["fileNames"])) == count and all(n.startswith("LVI-Sample-001_") for n in source["fileNames"])
    assert Path(source["thumbnailFileName"]).is_file()
    assert source["loadFileType"] == ["VolumeFile", "VolumeFile", "SegmentationFile"]


def test_register_sample_data_hands_exactly_these_arguments_to_sample_data(module_file, sample_data,
                                                                             monkeypatch):
    """A stand-in SampleData module with the real method's signature (an unknown keyword fails)."""
    import sys
    import types

    received = []
    sampleData = types.ModuleType("SampleData")

    class SampleDataLogic:
        @staticmethod
        def registerCustomSampleDataSource(category="Custom", sampleName=None, uris=None, fileNames=None,
                                           nodeNames=None, customDownloader=None, thumbnailFileName=None,
                                           loadFileType="VolumeFile", loadFiles=None, loadFileProperties={},
                                           checksums=None):
            received.append(dict(locals()))

    sampleData.SampleDataLogic = SampleDataLogic
    monkeypatch.setitem(sys.modules, "SampleData", sampleData)
    module_file.registerSampleData()
    expected = sample_data.sampleDataSource()
    assert len(received) == 1
    assert {key: received[0][key] for key in expected} == expected
    assert received[0]["customDownloader"] is None  # SampleData's own loader, not a custom one


def test_loading_the_sample_gives_both_series_and_one_voi_that_predicts(module_file, sample_data, headless_slicer,
                                                                        bundled_models, tmp_path):
    import slicer
    import vtk

    source = sample_data.sampleDataSource()
    cache = tmp_path / "SampleDataCache"
    cache.mkdir()
    loaded = {}
    for uri, fileName, nodeName, checksum, fileType in zip(source["uris"], source["fileNames"], source["nodeNames"],
                                                          source["checksums"], source["loadFileType"]):
        filePath = cache / fileName
        urllib.request.urlretrieve(uri, str(filePath))
        assert "SHA256:" + _sha256(filePath) == checksum
        properties = dict(source["loadFileProperties"], fileName=str(filePath), name=nodeName)
        nodes = vtk.vtkCollection()
        assert slicer.app.coreIOManager().loadNodes(fileType, properties, nodes)
        assert nodes.GetNumberOfItems() == 1
        loaded[nodeName] = nodes.GetItemAsObject(0)

    t2 = loaded["LVI-Sample-001 FS-T2WI"]
    dce = loaded["LVI-Sample-001 DCE phase 2"]
    voi = loaded["LVI-Sample-001 VOI"]
    caseDir = sample_data.sampleCaseDir()
    for node, fileName in ((t2, "t2.nii.gz"), (dce, "dce_phase2.nii.gz")):
        assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetName().startswith("LVI-Sample-001")
        image = sitk.ReadImage(str(caseDir / fileName))
        # One volume per file: the numbered names did not make Slicer stack files into one volume.
        assert list(node.GetImageData().GetDimensions()) == list(image.GetSize())
        assert node.GetSpacing() == pytest.approx(image.GetSpacing())
    assert voi.IsA("vtkMRMLSegmentationNode") and voi.GetName() == "LVI-Sample-001 VOI"
    assert voi.GetSegmentation().GetNumberOfSegments() == 1
    assert slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 2

    logic = module_file.LVIPredictorLogic()
    assert logic.sequenceOf(t2) == "t2" and logic.sequenceOf(dce) == "dce"
    segmentId = voi.GetSegmentation().GetNthSegmentID(0)
    fused = logic.predictCase({"t2": t2, "dce": dce}, voi, segmentId, model=str(bundled_models / "fused_vanilla.json"),
                              device="cpu")
    assert [p.model_id for p in fused] == ["fused_vanilla"] and 0.0 <= fused[0].probability <= 1.0
