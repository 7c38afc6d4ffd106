"""Predictor: one loaded model, its card's preprocessing, and an honest result.

The Predictor reads the preprocessing spec and decision threshold from the model card,
never from defaults. 2D models score the patient from the k largest VOI cross-sections with
:func:`preprocessing.aggregate_slice_scores` — the same rule training used. An optional
heat-map (the method and layer the card names, see ``inference.heatmaps``) is returned on the
input image's grid so viewers can overlay it; a late fusion returns each member's map.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib import clinical
from LVIPredictorLib import weights as weights_module
from LVIPredictorLib.errors import InputError, LVIError, PredictionError
from LVIPredictorLib.inference import fast, heatmaps, statements
from LVIPredictorLib.inference.devices import resolve_device
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.preprocessing import Channel, aggregate_slice_scores, prepare_input
from LVIPredictorLib.vocabulary import kinds, sequences


@dataclass
class HeatMap:
    """One model's map on the grid of the series ``sequence``."""

    image: sitk.Image
    sequence: str
    model_id: str
    method: str  # as a figure names it, e.g. "Grad-CAM++ at layer3"


@dataclass
class Prediction:
    probability: float
    label: int
    threshold: float
    model_id: str
    architecture: str
    sequence: str
    weights_sha256: str
    device: str
    warnings: List[str] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    slice_probabilities: List[float] = field(default_factory=list)
    demo: bool = False
    # Every map of the prediction: one for a network, one per member of a late fusion.
    heatmaps: List[HeatMap] = field(default_factory=list)
    # A late-fusion model: what each member said on its own (model id -> probability).
    member_probabilities: Dict[str, float] = field(default_factory=dict)
    # The DCE phase the model read (1 = pre-contrast), when it reads DCE and the phase is known.
    dce_phase: Optional[int] = None
    # The card's out-of-fold AUC 95 % CI (None when the card has none): readers are warned when it includes 0.5.
    auc_ci: Optional[Tuple[float, float]] = None
    # A combined (clinical + imaging) model: the clinical values it read ({name: value, None = missing}),
    # the values filled in for missing ones, and each feature's term on the log-odds scale.
    clinical: Optional[Dict[str, dict]] = None

    @property
    def heatmap(self):
        # type: () -> Optional[sitk.Image]
        """The first map (the model's own, or the first member's of a late fusion)."""
        return self.heatmaps[0].image if self.heatmaps else None

    @property
    def heatmap_sequence(self):
        # type: () -> Optional[str]
        return self.heatmaps[0].sequence if self.heatmaps else None

    def __post_init__(self):
        # No class from a number that is no probability: NaN >= threshold is False, i.e. a silent "LVI-".
        if not all(math.isfinite(p) for p in [self.probability] + list(self.slice_probabilities)
                   + list(self.member_probabilities.values())):
            raise PredictionError(self.model_id, "gave a non-finite probability ({}); no class is given (are its "
                                                 "weights or the input broken?)".format(self.probability))
        # A model not shown to beat chance is flagged in the record itself, so every output carries it.
        banner = statements.chance_banner(self.model_id, self.auc_ci)
        if banner and banner not in self.warnings:
            self.warnings.insert(0, banner)

    def to_dict(self):
        d = {k: getattr(self, k) for k in ("probability", "label", "threshold", "model_id", "architecture",
                                           "sequence", "weights_sha256", "device", "warnings", "timings",
                                           "slice_probabilities", "demo", "dce_phase", "auc_ci")}
        d["warnings"] = list(self.warnings)
        d["auc_ci"] = None if self.auc_ci is None else [float(v) for v in self.auc_ci]
        d["timings"] = dict(self.timings)
        if self.member_probabilities:
            d["member_probabilities"] = dict(self.member_probabilities)
        if self.clinical is not None:
            d["clinical"] = {k: dict(v) for k, v in self.clinical.items()}
        if self.heatmaps:  # which map was drawn where, by which method (the images go to the figure)
            d["heatmaps"] = [{"model_id": m.model_id, "sequence": m.sequence, "method": m.method}
                             for m in self.heatmaps]
        return d


class Predictor:
    """Load a model card's weights once; predict on (image, mask) pairs.

    A late-fusion card (``late_fusion``) loads one Predictor per member; each member reads its
    own series exactly as it would alone, and the card combines their probabilities.
    """

    def __init__(self, card, device="auto"):
        start = time.perf_counter()
        self.device = resolve_device(device)
        if not isinstance(card, dict):
            card = weights_module.load_card(card)
        self.members = []  # type: List[Predictor]
        if kinds.is_late_fusion(card):
            self.card, self.model, self.spec = card, None, None
            self.members = [Predictor(member, device=self.device) for member in weights_module.member_cards(card)]
        elif kinds.is_combined(card):
            self.card, self.model, self.spec = card, None, None
            self.members = [Predictor(card["_imaging_card"], device=self.device)]
        else:
            self.model, self.card = weights_module.load_model(card, device=self.device)
            fast.optimize_for_inference(self.model, self.device)
            self.spec = weights_module.card_spec(self.card)
        self.load_seconds = time.perf_counter() - start

    @property
    def model_id(self):
        return self.card["model_id"]

    @property
    def sequences(self):
        """The series this model reads, in input-channel order (two for a fused model)."""
        return sequences.channels(self.card["sequence"])

    def predict(self, image, mask, heatmap=False, image_source=None, mask_source=None, series_description=None):
        # type: (sitk.Image, sitk.Image, bool, Optional[str], Optional[str], Optional[str]) -> Prediction
        """One series and its VOI, for a model of a single sequence."""
        names = self.sequences
        if len(names) > 1:
            raise LVIError(self.card.get("_card_path"), "model {} reads {} fused: give one image and VOI per "
                                                        "sequence (predict_case)".format(
                                                            self.model_id, sequences.LABELS[self.card["sequence"]]))
        return self.predict_case({names[0]: image}, {names[0]: mask}, heatmap=heatmap,
                                 image_sources={names[0]: image_source or "image"},
                                 mask_sources={names[0]: mask_source or "VOI mask"},
                                 series_descriptions={names[0]: series_description})

    def predict_case(self, images, masks, heatmap=False, image_sources=None, mask_sources=None,
                     series_descriptions=None, clinical_values=None):
        """Images and VOIs keyed by sequence ("t2", "dce"); the model takes the ones it was trained on.

        A fused model's heat-map lies on the grid of its reference series (DCE, see ``sequences``).
        ``clinical_values`` ({name: value or None}, see LVIPredictorLib.clinical): a combined card's
        clinical inputs; other models ignore them.
        """
        names = self.sequences
        missing = [sequences.LABELS[n] for n in names if images.get(n) is None or masks.get(n) is None]
        if missing:
            raise LVIError(self.card.get("_card_path"), "model {} needs an image and a VOI of {}; missing: {}".format(
                self.model_id, " and ".join(sequences.LABELS[n] for n in names), ", ".join(missing)))
        image_sources, mask_sources = image_sources or {}, mask_sources or {}
        if kinds.is_combined(self.card):
            imaging = self.members[0].predict_case(images, masks, heatmap, image_sources, mask_sources,
                                                   series_descriptions)
            return _combined_prediction(self.card, imaging, clinical_values, self.device)
        if self.members:
            return self._predict_late_fusion(images, masks, heatmap, image_sources, mask_sources,
                                             series_descriptions or {})
        fused = len(names) > 1
        channels = [Channel(images[n], masks[n],
                            image_sources.get(n) or ("{} image".format(sequences.LABELS[n]) if fused else "image"),
                            mask_sources.get(n) or ("{} VOI".format(sequences.LABELS[n]) if fused else "VOI mask"))
                    for n in names]
        reference = names.index(sequences.grid_reference(self.card["sequence"]))
        image = images[names[reference]]
        timings = {}
        t0 = time.perf_counter()
        prepared = prepare_input(channels, self.spec, names, grid_channel=reference)
        timings["preprocess"] = time.perf_counter() - t0
        # Every series' VOI, not only the one that places the crop: a fused model reads them all.
        for channel, volume in zip(channels, prepared.channel_voi_mm3 or [prepared.voi_volume_mm3]):
            if volume < self.spec.min_voi_mm3:
                raise InputError(channel.mask_source, "the VOI is {:.0f} mm^3, below the {:.0f} mm^3 model {} needs: "
                                                      "no class is given for so small a VOI".format(
                                                          volume, self.spec.min_voi_mm3, self.model_id))

        t0 = time.perf_counter()
        x = torch.from_numpy(prepared.inputs).to(self.device)
        notes = []
        kind = kinds.kind_of(self.card)
        if heatmap and not kind.heatmap:
            heatmap = False
            notes.append(kind.no_heatmap_reason)
        if heatmap:
            method, layer = heatmaps.choice(self.card)
            logits, cams = heatmaps.attribution(self.model, x, self.card["architecture"], method, layer,
                                                image_channels=len(names))
        else:
            with torch.inference_mode():
                logits = self.model(x)
        probs = torch.sigmoid(logits.float()).reshape(-1).detach().cpu().numpy().astype(np.float64)
        timings["forward"] = time.perf_counter() - t0
        probability = aggregate_slice_scores(probs, prepared.slice_weights)

        warnings = list(prepared.warnings) + notes
        for name in names:
            hint = (series_descriptions or {}).get(name)
            if hint is None and images[name].HasMetaDataKey("lvi:series_description"):
                hint = images[name].GetMetaData("lvi:series_description")
            seq_warning = sequences.description_warning(hint, name)
            if seq_warning:
                warnings.append(seq_warning)
        demo = bool(self.card.get("demo", False))
        if demo:
            warnings.append(weights_module.DEMO_NOTICE)

        maps = []
        if heatmap:
            t0 = time.perf_counter()
            maps.append(HeatMap(heatmaps.on_image_grid(cams, prepared, image), names[reference], self.model_id,
                                heatmaps.describe(method, layer)))
            timings["heatmap"] = time.perf_counter() - t0
        threshold = float(self.card["threshold"])
        return Prediction(
            probability=probability, label=int(probability >= threshold), threshold=threshold,
            model_id=self.card["model_id"], architecture=self.card["architecture"], sequence=self.card["sequence"],
            weights_sha256=self.card["weights_sha256"], device=self.device, warnings=warnings, timings=timings,
            slice_probabilities=[float(p) for p in probs] if prepared.inputs.shape[0] > 1 or
            getattr(self.spec, "dims", 0) == 2 else [], demo=demo, heatmaps=maps, auc_ci=auc_interval(self.card))


    def _predict_late_fusion(self, images, masks, heatmap, image_sources, mask_sources, series_descriptions):
        # Every member draws its own map on the series it read, so a reader sees each member's evidence.
        parts = []
        for member in self.members:
            own = member.sequences
            parts.append(member.predict_case(
                {n: images[n] for n in own}, {n: masks[n] for n in own}, heatmap=heatmap,
                image_sources={n: image_sources[n] for n in own if n in image_sources},
                mask_sources={n: mask_sources[n] for n in own if n in mask_sources},
                series_descriptions={n: series_descriptions[n] for n in own if n in series_descriptions}))
        probability = late_fusion.combine([p.probability for p in parts])
        warnings = []
        for part in parts:
            warnings += [w for w in part.warnings if w not in warnings and w != weights_module.DEMO_NOTICE]
        demo = bool(self.card.get("demo", False)) or any(p.demo for p in parts)
        if demo:
            warnings.append(weights_module.DEMO_NOTICE)
        timings = {}
        for part in parts:
            for key, seconds in part.timings.items():
                timings[key] = timings.get(key, 0.0) + seconds
        threshold = float(self.card["threshold"])
        return Prediction(
            probability=probability, label=int(probability >= threshold), threshold=threshold,
            model_id=self.card["model_id"], architecture=self.card["architecture"], sequence=self.card["sequence"],
            weights_sha256=self.card["weights_sha256"], device=self.device, warnings=warnings, timings=timings,
            demo=demo, heatmaps=_reference_first([m for part in parts for m in part.heatmaps], self.card["sequence"]),
            member_probabilities={p.model_id: p.probability for p in parts}, auc_ci=auc_interval(self.card))


def _combined_prediction(card, imaging, clinical_values, device):
    """A combined card's answer from its imaging model's Prediction and the case's clinical values."""
    values = clinical.parse_clinical(clinical_values, card) if clinical_values is not None else {}
    if not any(v is not None for v in values.values()):
        # Every value filled in by the card's rule would be a prediction about nobody in particular.
        raise InputError(card.get("_card_path"), "model {} needs the case's clinical data (none given): {}".format(
            card["model_id"], ", ".join(n + "=..." for n in clinical.card_fields(card))))
    result = clinical.predict(card, values, imaging.probability)
    warnings = []
    if result["imputed"]:
        warnings.append("imputed (missing): {} (the card's rule: {})".format(
            ", ".join("{} = {:g}".format(k, v) for k, v in result["imputed"].items()),
            card["clinical"]["imputation"]["rule"]))
    warnings += [w for w in imaging.warnings if w not in warnings]
    return Prediction(
        probability=result["probability"], label=result["label"], threshold=result["threshold"],
        model_id=card["model_id"], architecture=card["architecture"], sequence=card["sequence"],
        weights_sha256=card["weights_sha256"], device=device, warnings=warnings, timings=dict(imaging.timings),
        demo=bool(card.get("demo")) or imaging.demo, heatmaps=list(imaging.heatmaps),
        member_probabilities={imaging.model_id: imaging.probability}, dce_phase=imaging.dce_phase,
        auc_ci=auc_interval(card),
        clinical={"values": dict(values), "imputed": dict(result["imputed"]), "log_odds": result["contributions"]})


def auc_interval(card):
    # type: (dict) -> Optional[Tuple[float, float]]
    """The card's out-of-fold AUC 95 % CI (DeLong, else bootstrap), or None when it has none."""
    metrics = card.get("metrics") or {}
    for key in ("auc_ci_delong", "auc_ci_bootstrap"):
        ci = metrics.get(key)
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            return float(ci[0]), float(ci[1])
    return None


def _reference_first(maps, sequence):
    """The maps on the fused card's grid-reference series first (what ``Prediction.heatmap`` gives)."""
    reference = sequences.grid_reference(sequence)
    return sorted(maps, key=lambda m: m.sequence != reference)
