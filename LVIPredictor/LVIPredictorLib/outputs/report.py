"""The prediction report: a JSON of every result and a PNG of the VOI with its heat-map."""

import io
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.atomic_files import write_bytes_atomic, write_json_atomic


def largest_voi_slice(mask_on_image):
    """Axial index (array z) of the slice with the largest VOI cross-section."""
    arr = sitk.GetArrayViewFromImage(mask_on_image)
    return int(np.argmax(arr.reshape(arr.shape[0], -1).astype(bool).sum(axis=1)))


def write_report(out_dir, image, mask, predictions, payload, sequence=None, files=None):
    """Write ``payload`` as result.json and overview.png into ``out_dir``; returns their paths.

    ``mask`` must be on the image grid (see preprocessing); ``image`` is the series
    ``sequence``; ``predictions`` are core Prediction objects, and the heat-map of the first
    whose heat-map lies on this series' grid is drawn. With ``files`` (an
    :class:`~LVIPredictorLib.atomic_files.StagedFiles`) both files are staged there, to be put in
    place with the run's other outputs; without it each is written atomically now.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    (files.write_json if files is not None else write_json_atomic)(json_path, payload)

    k = largest_voi_slice(mask)
    img = sitk.GetArrayViewFromImage(image)[k].astype(np.float32)
    msk = sitk.GetArrayViewFromImage(mask)[k] > 0
    lo, hi = np.percentile(img, (1, 99))
    heat_pred = next((p for p in predictions if p.heatmap is not None
                      and (sequence is None or p.heatmap_sequence == sequence)), None)
    spacing = image.GetSpacing()
    aspect = spacing[1] / spacing[0]

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    for ax in axes:
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect)
        ax.contour(msk, levels=[0.5], colors="lime", linewidths=1.0)
        ax.set_axis_off()
    axes[0].set_title("VOI on slice {} (largest cross-section)".format(k))
    if heat_pred is not None:
        heat = sitk.GetArrayViewFromImage(heat_pred.heatmap)[k]
        axes[1].imshow(np.ma.masked_less(heat, 0.05), cmap="jet", alpha=0.45, vmin=0, vmax=1, aspect=aspect)
        axes[1].set_title("Grad-CAM: {}".format(heat_pred.model_id))
    lines = ["{:<28} p={:.3f}  {}  (threshold {:.3f})".format(
        p.model_id, p.probability, "LVI+" if p.label else "LVI-", p.threshold) for p in predictions]
    if any(p.demo for p in predictions):
        lines.append("DEMO weights trained on synthetic phantoms - not for clinical use")
    fig.text(0.02, 0.01, "\n".join(lines), family="monospace", fontsize=8, va="bottom")
    fig.subplots_adjust(bottom=0.08 + 0.03 * len(lines), top=0.93, wspace=0.05)
    png_path = out_dir / "overview.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    (files.write_bytes if files is not None else write_bytes_atomic)(png_path, buffer.getvalue())
    plt.close(fig)
    return json_path, png_path
