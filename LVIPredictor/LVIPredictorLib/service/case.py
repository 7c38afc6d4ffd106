"""The case-level prediction service: one case's series in, every chosen model's result out.

The Slicer module's Logic, ``lvi predict`` and ``lvi predict --cohort`` all call
:class:`CaseService`, so they agree on
- which models fit the given series (:meth:`CaseService.choose`),
- which DCE phase each model reads (its card's own; a dynamic series is read at that phase,
  a static image is flagged when it is known to be another phase),
- the one result record per model (``inference.Prediction``; ``service.record`` serialises
  it to JSON, table rows and CSV; ``dicom.sr_seg`` to the SR),
- how the CPU is shared (``service.threads``).
"""

import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from LVIPredictorLib import clinical as clinical_columns, weights
from LVIPredictorLib.errors import InputError, LVIError, PredictionCancelled
from LVIPredictorLib.service import threads
from LVIPredictorLib.service.inputs import SeriesInput
from LVIPredictorLib.vocabulary import kinds, sequences

logger = logging.getLogger(__name__)


class CaseResult(object):
    """Every model's Prediction for one case, with the inputs they read."""

    def __init__(self, predictions, inputs, read_seconds=0.0):
        self.predictions = list(predictions)
        self.inputs = dict(inputs)  # type: Dict[str, SeriesInput]
        self.read_seconds = read_seconds
        self.cpu_threads = None  # torch's CPU thread count while the models ran

    def warnings(self):
        # type: () -> List[str]
        """Every distinct warning, input warnings first, in order of appearance."""
        seen = []
        for series in self.inputs.values():
            seen += [w for w in series.notes if w not in seen]
        for prediction in self.predictions:
            seen += [w for w in prediction.warnings if w not in seen]
        return seen


def card_of(model):
    """A loaded card from a card dict, a card path or a bundled model id."""
    return model if isinstance(model, dict) else weights.load_card(weights.resolve_card(model))


def clinical_given(clinical):
    # type: (object) -> bool
    """Whether ``clinical`` ("age=61,..." text or a {name: value} mapping) holds at least one value."""
    if clinical is None:
        return False
    if isinstance(clinical, str):
        parts = [part.strip() for part in clinical.split(",") if part.strip()]
        # A part without "=" counts as given, so that parse_clinical refuses it by name instead of it being ignored.
        return any("=" not in part or not clinical_columns.is_missing(part.split("=", 1)[1]) for part in parts)
    return any(not clinical_columns.is_missing(value) for value in dict(clinical).values())


def fits(card, given):
    # type: (dict, Sequence[str]) -> bool
    return set(sequences.channels(card["sequence"])) <= set(given)


class CaseService(object):
    """Predicts cases; keeps each model loaded once (loading and checksumming weights is the slow part)."""

    def __init__(self, device="auto", thread_policy=None):
        self.device = device
        self.thread_policy = thread_policy or threads.default_policy()
        self._predictors = {}

    # --- which models --------------------------------------------------------------------

    @staticmethod
    def choose(given, models=None, architecture=None, sequence=None, clinical=None):
        # type: (Sequence[str], Optional[list], Optional[str], Optional[str], object) -> Tuple[list, list]
        """(cards that fit the series ``given``, [(card, why not)] for chosen cards that do not).

        ``models``: bundled ids, card paths or card dicts; None means every bundled model, filtered
        by ``architecture`` (a registry name, ``late_fusion`` or ``clinical_combined``) and ``sequence``
        (e.g. only the fused "t2+dce" models). Bundled models that read clinical data are among them
        only when ``clinical`` holds a value: a case without clinical data is not refused by a model
        nobody asked for (:meth:`skipped_for_clinical` names them).
        """
        if models:
            cards = [card_of(m) for m in models]
        else:
            cards = [weights.load_card(e["card_path"])
                     for e in CaseService._catalog_fitting(given, architecture, sequence)
                     if not kinds.needs_clinical(e) or clinical_given(clinical)]
        chosen, refused = [], []
        for card in cards:
            if fits(card, given):
                chosen.append(card)
            else:
                lacking = [sequences.LABELS[s] for s in sequences.channels(card["sequence"]) if s not in given]
                refused.append((card, "model {} needs {} as well".format(card["model_id"], " and ".join(lacking))))
        return chosen, refused

    @staticmethod
    def skipped_for_clinical(given, architecture=None, sequence=None, clinical=None):
        # type: (Sequence[str], Optional[str], Optional[str], object) -> List[dict]
        """Catalog entries :meth:`choose` leaves out for want of clinical data ([] when ``clinical`` has some)."""
        if clinical_given(clinical):
            return []
        return [e for e in CaseService._catalog_fitting(given, architecture, sequence) if kinds.needs_clinical(e)]

    @staticmethod
    def _catalog_fitting(given, architecture, sequence):
        catalog = weights.bundled_catalog()
        if not catalog:
            raise LVIError(str(weights.models_dir()), "no bundled models found (catalog.json missing); "
                                                      "choose a model card file")
        return [e for e in catalog if (architecture is None or e["architecture"] == architecture)
                and (sequence is None or e["sequence"] == sequence) and fits(e, given)]

    def predictor(self, card):
        from LVIPredictorLib.inference import Predictor

        # The checksum is part of the key: a card re-exported in place is a new model.
        key = (card.get("_card_path"), card["weights_sha256"], self.device)
        if key not in self._predictors:
            self._predictors[key] = Predictor(card, device=self.device)
        return self._predictors[key]

    # --- one case ------------------------------------------------------------------------

    def predict(self, inputs, cards, heatmap=False, progress=None, cancel=None, clinical=None):
        # type: (Dict[str, SeriesInput], list, bool, Optional[Callable], Optional[Callable]) -> CaseResult
        """Run every card on the series it reads. ``progress(stage, fraction)`` is told each step;
        ``cancel()`` returning True stops between steps with :class:`PredictionCancelled`. ``clinical``:
        the case's clinical values ({name: value}, or "age=61,..." text) for combined cards."""
        def step(stage, fraction):
            if cancel is not None and cancel():
                raise PredictionCancelled(stage)
            if progress is not None:
                progress(stage, fraction)

        if not inputs:
            raise InputError(None, "no series given: a case needs FS-T2WI and/or DCE with a VOI")
        predictions = []
        with threads.applied(self.thread_policy) as used:
            for index, card in enumerate(cards):
                share = index / max(1, len(cards))
                step("Loading model {}/{}".format(index + 1, len(cards)), share)
                predictor = self.predictor(card)
                step("Predicting with {}".format(predictor.model_id), share + 0.3 / max(1, len(cards)))
                predictions.append(self._predict_one(predictor, card, inputs, heatmap, clinical))
        step("Done", 1.0)
        result = CaseResult(predictions, inputs)
        result.cpu_threads = used
        return result

    def _predict_one(self, predictor, card, inputs, heatmap, clinical=None):
        # ``card`` decides the phase: a card dict may differ from the cached predictor's (same weights).
        used = predictor.sequences
        missing = [sequences.LABELS[n] for n in used if n not in inputs]
        if missing:
            raise InputError(predictor.card.get("_card_path"), "model {} needs {} as well".format(
                predictor.model_id, " and ".join(missing)))
        images, notes = {}, []
        for name in used:
            images[name], note = _image_for(inputs[name], card)
            if note:
                notes.append(note)
        prediction = predictor.predict_case(
            images, {n: inputs[n].mask for n in used}, heatmap=heatmap,
            image_sources={n: inputs[n].image_source for n in used},
            mask_sources={n: inputs[n].mask_source for n in used},
            series_descriptions={n: inputs[n].description for n in used}, clinical_values=clinical)
        input_notes = [w for n in used for w in inputs[n].notes]
        prediction.warnings[:0] = [w for w in notes + input_notes if w not in prediction.warnings]
        prediction.dce_phase = _phase_read(inputs, card)
        logger.info("LVIPredictor: %s on %s (weights %s) on %s: probability %.3f, label %d; %s",
                    predictor.model_id, " + ".join(inputs[n].image_source for n in used),
                    prediction.weights_sha256[:12], prediction.device, prediction.probability, prediction.label,
                    "; ".join(prediction.warnings) or "no warnings")
        return prediction


def _image_for(series, card):
    """The image a model reads from ``series``: its card's DCE phase of a dynamic series; a static
    image as it is, with a warning when it is known to show another phase than the card's."""
    if not sequences.REGISTRY[series.sequence].dynamic:
        return series.image, None
    card = card.get("_imaging_card", card)  # a combined card reads what its imaging model reads
    wanted = sequences.card_phase(card)
    if series.read_phase is not None:
        return series.read_phase(wanted)
    if series.phase is not None and series.phase != wanted:
        return series.image, "DCE phase {} was read{} but model {} was trained on phase {}".format(
            series.phase, " ({})".format(series.phase_chosen_by) if series.phase_chosen_by else "", card["model_id"],
            wanted)
    return series.image, None


def _phase_read(inputs, card):
    """The DCE phase the model read, when the card reads DCE (None when a static image's phase is unknown)."""
    card = card.get("_imaging_card", card)
    if kinds.is_late_fusion(card) or not sequences.reads_dce(card["sequence"]) or "dce" not in inputs:
        return None
    series = inputs["dce"]
    return sequences.card_phase(card) if series.read_phase is not None else series.phase


def predict_case(inputs, models=None, device="auto", heatmap=False, architecture=None, sequence=None,
                 progress=None, cancel=None, clinical=None):
    """One case with the chosen models (default: every bundled model that fits the given series)."""
    service = CaseService(device=device)
    started = time.perf_counter()
    cards, refused = service.choose(list(inputs), models, architecture=architecture, sequence=sequence,
                                    clinical=clinical)
    if refused:
        raise InputError(refused[0][0].get("_card_path"), refused[0][1])
    result = service.predict(inputs, cards, heatmap=heatmap, progress=progress, cancel=cancel, clinical=clinical)
    result.read_seconds = time.perf_counter() - started
    return result
