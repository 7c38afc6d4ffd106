"""Tissue signal on each sequence, and the contrast-uptake curves of the DCE series.

Signals are in scanner units (12-bit stored values). Fat-suppressed T2: fat dark,
fluid and oedema bright, tumour intermediate. DCE is a fat-saturated T1 3D gradient
echo: fat dark, tumour and vessels brightening after contrast, background parenchyma enhancing slowly, which
is why the early phase shows the tumour best.
"""

import numpy as np

T2_SIGNAL = {"fat": 90.0, "fibroglandular": 240.0, "skin": 300.0, "muscle": 150.0, "thorax": 240.0,
             "lung": 25.0, "heart": 330.0}
T2_OEDEMA = 820.0
T2_VESSEL = None  # flowing blood is not rendered on T2: the vessel sign is a DCE sign

DCE_PRE = {"fat": 160.0, "fibroglandular": 330.0, "skin": 480.0, "muscle": 360.0, "thorax": 380.0,
           "lung": 30.0, "heart": 420.0}
DCE_TUMOUR_PRE = 320.0
DCE_VESSEL_PRE = 260.0
# Peak relative enhancement of the tumour: a nuisance drawn per case, uniform on this range.
# It scales every post-contrast phase alike, so one phase cannot tell a high kep from a high
# amplitude; the ratio of two phases can (see signs.best_auc_for_input).
TUMOUR_ENHANCEMENT_RANGE = (1.3, 1.9)
KEP_FLOOR = 0.1  # min^-1: a drawn kep below this is rendered at this rate


def tissue_enhancement(name, t_min, background_enhancement):
    """Relative enhancement of a normal tissue at ``t_min`` minutes after injection."""
    if t_min <= 0:
        return 0.0
    if name == "fibroglandular":  # slow, progressive background parenchymal enhancement
        return background_enhancement * t_min / 6.0
    if name == "heart":
        return 2.2 * np.exp(-0.08 * t_min)
    if name in ("muscle", "skin", "thorax"):
        return 0.35 * (1.0 - np.exp(-t_min / 2.0))
    return 0.0


def vessel_enhancement(t_min):
    return 0.0 if t_min <= 0 else 2.5 * float(np.exp(-0.08 * t_min))


def tumour_enhancement(t_min, kep, amplitude):
    """Wash-in at a rate set by kep, then wash-out that grows with kep: higher kep shows
    as a brighter early phase and a faster fall afterwards."""
    if t_min <= 0:
        return 0.0
    # np.maximum, not max: the same values for one case, and whole arrays for the bound's integral.
    washout = 0.10 * np.maximum(kep - 0.3, 0.0)
    return amplitude * (1.0 - np.exp(-1.0 * kep * t_min)) * np.exp(-washout * t_min)


def rim_profile(depth_mm, rim_strength):
    """Enhancement factor inside the tumour: a strong rim enhances at the border while
    the (hypoxic, necrotic) core lags."""
    core = 1.0 - 0.75 * rim_strength
    rim = 1.0 + 0.15 * rim_strength
    return core + (rim - core) * np.exp(-depth_mm / 2.0)
