"""The prediction report: a JSON of every result and a figure a radiologist can read (overview.png).

The figure has one row per series the models read. Each row shows the series on the slice of
its largest VOI cross-section, zoomed on the VOI, then every heat-map drawn on that series (a
late fusion contributes each member's map, on the member's own series). Each panel carries:

- orientation letters from the image's direction cosines: the screen's right is the patient
  direction of +i, its bottom that of +j. SimpleITK images are LPS (+x = Left, +y = Posterior,
  +z = Superior); the letters name anatomical directions, so they read the same in Slicer's RAS.
  An axial series with identity direction shows as Slicer's axial view does: R on the left,
  A at the top;
- a 10 mm scale bar;
- the slice as Slicer counts it: IJK k, 0-based, the third index its Data Probe shows for a
  voxel, and S (mm), the slice offset of its axial slice view (LPS z = RAS S).

Below the rows: each model's probability against its own threshold in one sentence, a banner
for any model whose own out-of-fold AUC CI includes 0.5, and the demo-weights notice.
"""

import io
import os
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.atomic_files import write_bytes_atomic, write_json_atomic
from LVIPredictorLib.inference import statements

# One row of the figure: the series' image, its VOI on the image grid, and how to name it.
ShownSeries = namedtuple("ShownSeries", "image mask label source")

_LPS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))  # (+axis, -axis) for x, y, z
SCALE_BAR_MM = 10.0
MIN_HALF_WIDTH_MM = 25.0
HEAT_FLOOR = 0.05  # map values below this are not drawn, so the anatomy stays visible


def largest_voi_slice(mask_on_image):
    """Axial index (array z) of the slice with the largest VOI cross-section."""
    arr = sitk.GetArrayViewFromImage(mask_on_image)
    return int(np.argmax(arr.reshape(arr.shape[0], -1).astype(bool).sum(axis=1)))


def direction_letter(vector):
    """The anatomical letter of an LPS direction: its dominant axis, e.g. (1, 0, 0) -> "L"."""
    axis = int(np.argmax(np.abs(vector)))
    return _LPS_LETTERS[axis][0 if vector[axis] > 0 else 1]


def screen_letters(image):
    """{"right", "left", "bottom", "top"} -> letter, for an array slice drawn with row 0 at the top."""
    d = np.array(image.GetDirection()).reshape(3, 3)
    i, j = d[:, 0], d[:, 1]
    return {"right": direction_letter(i), "left": direction_letter(-i),
            "bottom": direction_letter(j), "top": direction_letter(-j)}


SLICE_CONVENTION = ("slice k = the IJK index k, 0-based, as Slicer's Data Probe shows it; "
                    "S = the offset of Slicer's axial slice view (mm)")


def slice_caption(image, k):
    """E.g. "slice k=23 of 0-39, S 12.5 mm" (see :data:`SLICE_CONVENTION`). Checked against MRML on the
    sample series (test_slicer_result_lines.py): k indexes the same voxels as Slicer's IJK, and S is the
    RAS S of the slice's voxels (for an axial series, the axial slice view's offset there)."""
    s = image.TransformIndexToPhysicalPoint((0, 0, int(k)))[2]
    return "slice k={} of 0-{}, S {:.1f} mm".format(k, image.GetSize()[2] - 1, s)


def _window(mask_slice, spacing):
    """(row slice, column slice) around the VOI: twice its extent, at least 50 mm across."""
    rows, cols = np.nonzero(mask_slice)
    out = []
    for idx, n, step in ((rows, mask_slice.shape[0], spacing[1]), (cols, mask_slice.shape[1], spacing[0])):
        centre = 0.5 * (idx.min() + idx.max())
        half = max(MIN_HALF_WIDTH_MM / step, idx.max() - idx.min() + 1)
        out.append(slice(max(0, int(centre - half)), min(n, int(np.ceil(centre + half)) + 1)))
    return tuple(out)


def _decorate(ax, image, window, letters):
    sx = image.GetSpacing()[0]
    height = window[0].stop - window[0].start
    width = window[1].stop - window[1].start
    style = dict(color="yellow", fontsize=10, fontweight="bold", ha="center", va="center")
    ax.text(0.5, 0.97, letters["top"], transform=ax.transAxes, **style)
    ax.text(0.5, 0.03, letters["bottom"], transform=ax.transAxes, **style)
    ax.text(0.03, 0.5, letters["left"], transform=ax.transAxes, **style)
    ax.text(0.97, 0.5, letters["right"], transform=ax.transAxes, **style)
    bar = SCALE_BAR_MM / sx
    x0, y0 = width - bar - 0.06 * width, height - 0.08 * height
    ax.plot([x0, x0 + bar], [y0, y0], color="white", linewidth=3, solid_capstyle="butt")
    ax.text(x0 + bar / 2, y0 - 0.03 * height, "{:.0f} mm".format(SCALE_BAR_MM), color="white", fontsize=8,
            ha="center", va="bottom")


def _maps_by_series(predictions, names):
    """{series: [(prediction, HeatMap)]} for every map on a shown series, in prediction order."""
    out = OrderedDict((n, []) for n in names)
    for p in predictions:
        for m in p.heatmaps:
            if m.sequence in out:
                out[m.sequence].append((p, m))
    return out


def footer_lines(predictions):
    """(verdict lines, chance banners, demo notice or None) below the figure."""
    lines, banners = [], []
    for p in predictions:
        lines.append("{}: {}".format(p.model_id, statements.verdict(p.probability, p.threshold, p.label)))
        lines.extend("    " + line for line in statements.basis(p))
        banner = statements.chance_banner(p.model_id, p.auc_ci)
        if banner:
            banners.append(banner)
    demo = ("DEMO weights trained on synthetic phantoms: not validated on patients, not for clinical use"
            if any(p.demo for p in predictions) else None)
    return lines, banners, demo


def write_report(out_dir, series, predictions, payload, case_label=None, files=None):
    """Write ``payload`` as result.json and the figure as overview.png into ``out_dir``; returns their paths.

    ``series``: {sequence: ShownSeries} of every series the models read, VOI on the image grid;
    ``predictions``: core Prediction objects (their ``heatmaps`` are drawn on the series they lie on).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    (files.write_json if files is not None else write_json_atomic)(json_path, payload)

    maps = _maps_by_series(predictions, list(series))
    n_cols = 1 + max([len(v) for v in maps.values()] + [0])
    lines, banners, demo = footer_lines(predictions)
    footer = 0.19 * (len(lines) + 1) + 0.5 * len(banners) + (0.3 if demo else 0.0)
    panel = 3.3
    # At least ~11 inches wide: the header, the colour bar's label and the banners need the room.
    fig = plt.figure(figsize=(max(panel * n_cols + 1.0, 11.0), panel * len(series) + 0.9 + footer))
    top_in, bottom_in = 1.05, footer + 0.2
    height = fig.get_figheight()
    grid = fig.add_gridspec(len(series), n_cols, left=0.02, right=0.9, top=1 - top_in / height,
                            bottom=bottom_in / height, wspace=0.04, hspace=0.45)
    heat_norm = colors.Normalize(0.0, 1.0)
    for row, (name, shown) in enumerate(series.items()):
        k = largest_voi_slice(shown.mask)
        img = sitk.GetArrayViewFromImage(shown.image)[k].astype(np.float32)
        msk = sitk.GetArrayViewFromImage(shown.mask)[k] > 0
        spacing = shown.image.GetSpacing()
        window = _window(msk, spacing)
        lo, hi = np.percentile(img[window], (1, 99.5))
        letters = screen_letters(shown.image)
        panels = [(None, None)] + maps[name]
        for col in range(n_cols):
            ax = fig.add_subplot(grid[row, col])
            ax.set_axis_off()
            if col >= len(panels):
                continue
            prediction, heat = panels[col]
            ax.imshow(img[window], cmap="gray", vmin=lo, vmax=hi, aspect=spacing[1] / spacing[0],
                      interpolation="nearest")
            ax.contour(msk[window], levels=[0.5], colors="lime", linewidths=1.0)
            if heat is None:
                ax.set_title("{}: {}\n{}".format(shown.label, shown.source, slice_caption(shown.image, k)),
                             fontsize=8, loc="left")
            else:
                values = sitk.GetArrayViewFromImage(heat.image)[k][window]
                ax.imshow(np.ma.masked_less(values, HEAT_FLOOR), cmap="jet", norm=heat_norm, alpha=0.45,
                          aspect=spacing[1] / spacing[0], interpolation="bilinear")
                whose = heat.model_id if heat.model_id == prediction.model_id else "{}\nmember of {}".format(
                    heat.model_id, prediction.model_id)
                ax.set_title("{}\n{}".format(whose, heat.method), fontsize=8, loc="left")
            _decorate(ax, shown.image, window, letters)
    if any(maps.values()):  # a colour bar beside no map would suggest one is drawn
        colour_axes = fig.add_axes([0.92, bottom_in / height + 0.05, 0.018,
                                    1 - (top_in + bottom_in) / height - 0.1])
        bar = fig.colorbar(cm.ScalarMappable(norm=heat_norm, cmap="jet"), cax=colour_axes)
        bar.set_label("heat-map: evidence that raised the LVI score\n(1 = the map's maximum; below {:.2f} not "
                      "drawn)".format(HEAT_FLOOR), fontsize=8)
        bar.ax.tick_params(labelsize=7)

    fig.text(0.02, 1 - 0.25 / height, "Case {} · VOI outlined in green · each series on its largest VOI "
             "cross-section".format(case_label or "?"), fontsize=10, fontweight="bold", va="center")
    fig.text(0.02, 1 - 0.47 / height, SLICE_CONVENTION + "; letters: patient directions (R/L, A/P, S/I)",
             fontsize=8, va="center")
    y = (bottom_in - 0.12) / height
    for banner in banners:  # first: a model not shown to beat chance matters more than the rest
        fig.text(0.02, y, "⚠ " + banner, fontsize=8.5, color="white", va="top", wrap=True,
                 bbox=dict(facecolor="firebrick", edgecolor="none", pad=3))
        y -= 0.5 / height
    if demo:
        fig.text(0.02, y, demo, fontsize=9, color="white", va="top",
                 bbox=dict(facecolor="darkorange", edgecolor="none", pad=3))
        y -= 0.3 / height
    fig.text(0.02, y, "\n".join(lines), family="monospace", fontsize=8, va="top")
    png_path = out_dir / "overview.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    (files.write_bytes if files is not None else write_bytes_atomic)(png_path, buffer.getvalue())
    plt.close(fig)
    return json_path, png_path


def case_label_of(sources):
    """A name for the case from its image paths: the last two parts of their common folder."""
    folders = [os.path.dirname(os.path.abspath(s)) for s in sources if s]
    if not folders:
        return None
    common = os.path.commonpath(folders)
    return "/".join(Path(common).parts[-2:])
