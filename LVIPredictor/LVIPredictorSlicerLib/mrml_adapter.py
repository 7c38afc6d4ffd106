"""The one place where MRML nodes meet SimpleITK images.

Slicer stores voxels as (K, J, I) arrays with an IJK-to-RAS matrix; SimpleITK uses
(x, y, z) indices in LPS. Everything downstream (preprocessing, inference, cohort
export) works on SimpleITK images, so the conversion happens here, once, in both
directions. Masks are taken from a segment on the *volume's own* grid through
Slicer's segment export, which resamples a VOI drawn on another series with nearest
neighbour in physical space — never by array shape.

This is the only LVIPredictorLib module that imports ``slicer``; it is imported by
the Slicer module (and by tests running slicer-core), never by training code.
"""

from typing import Optional, Tuple

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from LVIPredictorLib.errors import InputError

# Slicer's world is RAS, ITK's is LPS: the two differ by flipping the first two axes.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
# Matrices this close are the same grid (float round-off through file headers).
_GEOMETRY_TOLERANCE = 1e-4


def nodeSource(node) -> str:
    """How a node is named in error messages and warnings."""
    return "node '{}'".format(node.GetName()) if node is not None else "node (none)"


def segmentSource(segmentationNode, segmentId) -> str:
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId) if segmentationNode else None
    segmentName = segment.GetName() if segment is not None else segmentId
    return "segmentation '{}' segment '{}'".format(
        segmentationNode.GetName() if segmentationNode else "(none)", segmentName)


def _matrixToNumpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpyToMatrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def ijkToWorldMatrix(volumeNode) -> np.ndarray:
    """The volume's IJK-to-RAS matrix with any linear parent transform applied.

    A non-linear transform cannot be expressed as an image grid, so it is refused
    rather than silently ignored.
    """
    ijkToRas = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(ijkToRas)
    matrix = _matrixToNumpy(ijkToRas)
    transformNode = volumeNode.GetParentTransformNode()
    if transformNode is not None:
        if not transformNode.IsTransformToWorldLinear():
            raise InputError(nodeSource(volumeNode),
                             "the volume is under a non-linear transform; harden the transform "
                             "(Data module, right-click > Harden transform) before predicting.")
        toWorld = vtk.vtkMatrix4x4()
        transformNode.GetMatrixTransformToWorld(toWorld)
        matrix = _matrixToNumpy(toWorld) @ matrix
    return matrix


def _geometryFromMatrix(ijkToRas: np.ndarray) -> Tuple[tuple, tuple, tuple]:
    """(origin, spacing, direction) in LPS, SimpleITK's conventions, from an IJK-to-RAS matrix."""
    axes = ijkToRas[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    directionLps = _RAS_TO_LPS @ (axes / spacing)
    originLps = _RAS_TO_LPS @ ijkToRas[:3, 3]
    return tuple(float(v) for v in originLps), tuple(float(v) for v in spacing), tuple(float(v) for v in directionLps.ravel())


def _matrixFromImage(image: sitk.Image) -> np.ndarray:
    """IJK-to-RAS matrix of a SimpleITK image (the inverse of _geometryFromMatrix)."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = _RAS_TO_LPS @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = _RAS_TO_LPS @ np.array(image.GetOrigin())
    return matrix


def imageFromVolume(volumeNode) -> sitk.Image:
    """A scalar volume node as a SimpleITK image in LPS (voxels copied)."""
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise InputError(nodeSource(volumeNode), "no volume is selected or the volume has no voxels.")
    voxels = slicer.util.arrayFromVolume(volumeNode)
    if voxels.ndim != 3:
        raise InputError(nodeSource(volumeNode),
                         "the volume has {} components per voxel; choose a single scalar series "
                         "(for DCE, the one phase the model was trained on).".format(
                             voxels.shape[-1] if voxels.ndim == 4 else voxels.ndim))
    return _imageOnWorldGrid(voxels, volumeNode)


def _imageOnWorldGrid(voxels, volumeNode) -> sitk.Image:
    """Voxels (K, J, I) copied into a SimpleITK image on ``volumeNode``'s world geometry (LPS)."""
    # (K, J, I) numpy order is exactly SimpleITK's array order for (x, y, z) = (I, J, K).
    image = sitk.GetImageFromArray(np.array(voxels, copy=True))
    origin, spacing, direction = _geometryFromMatrix(ijkToWorldMatrix(volumeNode))
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def dynamicSeries(volumeNode):
    """(series name, acquisition shown (1-based; None when unknown), number of acquisitions) when
    ``volumeNode`` holds a whole dynamic series, as Slicer's DICOM browser loads a multi-phase
    DCE series: the proxy of a sequence browser (Sequences), or a MultiVolume (the legacy
    import, one voxel component per acquisition). None for an ordinary volume."""
    found = _sequenceOfProxy(volumeNode)
    if found is not None:
        sequence, browser = found
        return sequence.GetName(), browser.GetSelectedItemNumber() + 1, sequence.GetNumberOfDataNodes()
    frames = _multiVolumeFrames(volumeNode)
    if frames is not None:
        display = volumeNode.GetDisplayNode()
        shown = display.GetFrameComponent() + 1 if hasattr(display, "GetFrameComponent") else None
        return volumeNode.GetName(), shown, frames
    return None


def _sequenceOfProxy(volumeNode):
    scene = volumeNode.GetScene() if volumeNode is not None else None
    if scene is None:
        return None
    browsers = scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    for index in range(browsers.GetNumberOfItems()):
        browser = browsers.GetItemAsObject(index)
        if not browser.IsProxyNodeID(volumeNode.GetID()):
            continue
        sequence = browser.GetSequenceNode(volumeNode)
        if sequence is not None and sequence.GetNumberOfDataNodes() > 1:
            return sequence, browser
    return None


def _multiVolumeFrames(volumeNode) -> Optional[int]:
    """Acquisitions of a MultiVolume node (its importer records them in an attribute), else None."""
    value = volumeNode.GetAttribute("MultiVolume.NumberOfFrames") if volumeNode is not None else None
    try:
        frames = int(value) if value else 0
    except ValueError:
        return None
    return frames if frames > 1 else None


def imageFromDynamicItem(volumeNode, item: int) -> sitk.Image:
    """Acquisition ``item`` (1-based, in the series' order) of the dynamic series that
    ``volumeNode`` holds (see :func:`dynamicSeries`), as a SimpleITK image on its world geometry."""
    name, _shown, count = dynamicSeries(volumeNode)
    if not 1 <= item <= count:
        raise InputError(nodeSource(volumeNode), "shows a dynamic series '{}' of {} acquisitions; phase {} was "
                                                 "requested (phase 1 = pre-contrast).".format(name, count, item))
    found = _sequenceOfProxy(volumeNode)
    if found is None:  # MultiVolume: acquisitions are the voxel components
        voxels = slicer.util.arrayFromVolume(volumeNode)
        if voxels.ndim != 4 or voxels.shape[-1] != count:
            raise InputError(nodeSource(volumeNode), "is marked as a dynamic series of {} acquisitions but holds "
                                                     "{} component(s) per voxel.".format(
                                                         count, voxels.shape[-1] if voxels.ndim == 4 else 1))
        return _imageOnWorldGrid(voxels[..., item - 1], volumeNode)
    sequence = found[0]
    dataNode = sequence.GetNthDataNode(item - 1)
    if dataNode is None or not dataNode.IsA("vtkMRMLScalarVolumeNode") or dataNode.GetImageData() is None:
        raise InputError(nodeSource(volumeNode), "item {} of the dynamic series '{}' is not a scalar volume.".format(
            item, name))
    itemToRas, proxyToRas = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    dataNode.GetIJKToRASMatrix(itemToRas)
    volumeNode.GetIJKToRASMatrix(proxyToRas)
    voxels = slicer.util.arrayFromVolume(dataNode)
    if (voxels.shape != slicer.util.arrayFromVolume(volumeNode).shape
            or not np.allclose(_matrixToNumpy(itemToRas), _matrixToNumpy(proxyToRas), atol=_GEOMETRY_TOLERANCE)):
        raise InputError(nodeSource(volumeNode), "the acquisitions of the dynamic series '{}' lie on different "
                                                 "grids; load phase {} as its own volume.".format(name, item))
    return _imageOnWorldGrid(voxels, volumeNode)


def updateVolumeFromImage(volumeNode, image: sitk.Image):
    """Write a SimpleITK image (voxels and geometry) into an existing volume node."""
    slicer.util.updateVolumeFromArray(volumeNode, sitk.GetArrayFromImage(image))
    volumeNode.SetIJKToRASMatrix(_numpyToMatrix(_matrixFromImage(image)))
    return volumeNode


def addVolumeFromImage(image: sitk.Image, name: str, labelmap: bool = False):
    """A new volume node (scalar or labelmap) in the scene holding ``image``."""
    className = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    volumeNode = slicer.mrmlScene.AddNewNodeByClass(className, name)
    updateVolumeFromImage(volumeNode, image)
    volumeNode.CreateDefaultDisplayNodes()
    return volumeNode


def _segment(segmentationNode, segmentId):
    if segmentationNode is None:
        raise InputError(None, "no segmentation is selected: draw or import the tumour VOI first.")
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId) if segmentId else None
    if segment is None:
        raise InputError(nodeSource(segmentationNode),
                         "has no segment with ID '{}'; choose the tumour segment.".format(segmentId))
    return segment


def maskFromSegment(segmentationNode, segmentId, volumeNode, volumeImage: Optional[sitk.Image] = None) -> sitk.Image:
    """The segment as a 0/1 uint8 SimpleITK mask on the volume's own grid.

    ``volumeImage`` (the result of imageFromVolume for the same node) may be passed
    to avoid copying the voxels twice; only its geometry is used.
    """
    _segment(segmentationNode, segmentId)
    source = segmentSource(segmentationNode, segmentId)
    try:
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, volumeNode)
    except RuntimeError as error:
        raise InputError(source, "the segment could not be mapped onto {} ({}); "
                         "check that it is not empty.".format(nodeSource(volumeNode), error))
    if voxels is None or voxels.size == 0:
        raise InputError(source, "the segment is empty on the grid of {}.".format(nodeSource(volumeNode)))
    mask = sitk.GetImageFromArray((voxels > 0).astype(np.uint8))
    mask.CopyInformation(volumeImage if volumeImage is not None else imageFromVolume(volumeNode))
    return mask


def segmentWasResampled(segmentationNode, segmentId, volumeNode) -> bool:
    """True when the segment is not stored on the volume's grid, so the VOI the
    model sees was resampled (nearest neighbour) from the one that was drawn."""
    segment = _segment(segmentationNode, segmentId)
    labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if segmentationNode.GetSegmentation().GetSourceRepresentationName() != labelmapName:
        return True
    labelmap = segment.GetRepresentation(labelmapName)
    if labelmap is None:
        return True
    imageToWorld = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(imageToWorld)
    segmentMatrix = _matrixToNumpy(imageToWorld)
    transformNode = segmentationNode.GetParentTransformNode()
    if transformNode is not None:
        toWorld = vtk.vtkMatrix4x4()
        transformNode.GetMatrixTransformToWorld(toWorld)
        segmentMatrix = _matrixToNumpy(toWorld) @ segmentMatrix
    volumeMatrix = ijkToWorldMatrix(volumeNode)
    if not np.allclose(segmentMatrix[:3, :3], volumeMatrix[:3, :3], atol=_GEOMETRY_TOLERANCE):
        return True
    # Same axes: the grids coincide if the origins differ by whole voxels.
    offsetInVoxels = np.linalg.solve(volumeMatrix[:3, :3], segmentMatrix[:3, 3] - volumeMatrix[:3, 3])
    return not np.allclose(offsetInVoxels, np.round(offsetInVoxels), atol=_GEOMETRY_TOLERANCE)


def importMaskIntoSegmentation(mask: sitk.Image, segmentationNode, referenceVolumeNode, segmentName: str) -> str:
    """Add a 0/1 mask as one new segment; returns its ID.

    The segmentation's reference geometry is set to ``referenceVolumeNode``
    explicitly, so the segment lives on (and is edited on) that series' grid
    whatever grid the mask file had.
    """
    if referenceVolumeNode is None:
        raise InputError(nodeSource(segmentationNode), "choose the series the mask belongs to before importing it.")
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
    labelmapNode = addVolumeFromImage(sitk.Cast(mask > 0, sitk.sitkUInt8), "__LVIPredictor_import__", labelmap=True)
    try:
        segmentation = segmentationNode.GetSegmentation()
        before = set(segmentation.GetSegmentIDs())
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmapNode, segmentationNode):
            raise InputError(nodeSource(segmentationNode), "Slicer could not import the mask into the segmentation.")
        added = [segmentId for segmentId in segmentation.GetSegmentIDs() if segmentId not in before]
        if len(added) != 1:
            raise InputError(nodeSource(segmentationNode),
                             "importing the mask created {} segments instead of one.".format(len(added)))
        segmentation.GetSegment(added[0]).SetName(segmentName)
        return added[0]
    finally:
        slicer.mrmlScene.RemoveNode(labelmapNode)
