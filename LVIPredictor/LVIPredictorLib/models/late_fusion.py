"""Late fusion: one model made of exported models, their logits averaged.

A late-fusion card holds no weights. It names two or more member cards (in files beside it)
and pins each by the SHA-256 of its weights, so a member re-exported or replaced later is
refused instead of silently changing what the fused card's metrics describe. Each member
predicts exactly as it does alone (its own preprocessing, grid and VOI), and the fused
probability is the sigmoid of the members' mean logit with equal weights. Nothing is fitted on
top, which is why the fused model's out-of-fold metrics are honest: they are the same average
of the members' held-out predictions (``lvi_training.evaluate.late_fusion``).

The members may read different sequences (an FS-T2WI and a DCE network: the card reads
``t2+dce``), the same one (several networks on DCE: the card reads ``dce``, an ensemble of
architectures), or include a fused network that reads both (a DCE network and an FS-T2WI + DCE
network: the card reads ``t2+dce``). The card's sequence is what its members read together
(:func:`fused_sequence`). A member is never itself a late-fusion model: the mean would then weigh
its members by how deeply they are nested.

Why it exists: on the phantom cohort, the fused network (both sequences as channels of one
CNN) overfitted its image pathway, and averaging single-sequence networks beat it
(``docs/results.md``).
"""

import hashlib
from pathlib import Path

import numpy as np

from LVIPredictorLib.errors import WeightsError
from LVIPredictorLib.vocabulary import kinds, sequences

REQUIRED_KEYS = ("model_id", "architecture", "sequence", "threshold", "members", "weights_sha256")
COMBINE = "mean logit, equal weights"
# Probabilities are clipped before the logit: a member that says exactly 0 or 1 must not make the
# mean infinite (the same clip as lvi_training.metrics).
_EPS = 1e-6


def mean_logit(probabilities, axis=0):
    """The members' mean logit (the fused score before the sigmoid)."""
    p = np.clip(np.asarray(probabilities, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p)).mean(axis=axis)


def fused_probability(probabilities, axis=0):
    """The fused probability: the sigmoid of the members' mean logit (members along ``axis``)."""
    return 1.0 / (1.0 + np.exp(-mean_logit(probabilities, axis=axis)))


def combine(probabilities):
    """The fused probability of one case from its members' probabilities."""
    return float(fused_probability(probabilities))


def members_sha256(member_shas):
    """The fused card's own identity: a digest of its members' weight digests, in member order."""
    return hashlib.sha256("\n".join(member_shas).encode("ascii")).hexdigest()


def fused_sequence(member_sequences):
    """The sequence a late-fusion model reads: its members' one sequence, or ``t2+dce`` when they read both."""
    member_sequences = list(member_sequences)
    unknown = sorted(set(member_sequences) - set(sequences.ALL))
    if unknown:
        raise ValueError("late-fusion members must read {}, got {}".format(
            ", ".join(sequences.ALL), ", ".join(unknown)))
    read = {name for sequence in member_sequences for name in sequences.channels(sequence)}
    present = [name for name in sequences.SEQUENCES if name in read]
    return present[0] if len(present) == 1 else sequences.FUSED


def check_card(card, source):
    """Structure of a late-fusion card (its members are checked when they are loaded)."""
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise WeightsError(source, "late-fusion model card lacks {}".format(", ".join(missing)))
    members = card["members"]
    if not isinstance(members, list) or not all(isinstance(m, dict) and isinstance(m.get("card"), str)
                                                and isinstance(m.get("weights_sha256"), str) for m in members):
        raise WeightsError(source, "'members' must be a list of {\"card\": file name, \"weights_sha256\": ...}")
    if len(members) < 2:
        raise WeightsError(source, "a late-fusion model needs two or more members, got {}".format(len(members)))
    try:
        reads = fused_sequence(m.get("sequence", "?") for m in members)
    except ValueError as exc:
        raise WeightsError(source, str(exc))
    if card["sequence"] != reads:
        raise WeightsError(source, "its members read {} (sequence {!r}) but the card says {!r}".format(
            sequences.LABELS[reads], reads, card["sequence"]))
    # The same model twice would silently weigh it double in the mean.
    for key, what in (("card", "the member card"), ("weights_sha256", "the member weights")):
        named = [m[key] for m in members]
        if len(set(named)) != len(named):
            raise WeightsError(source, "names {} {} more than once".format(
                what, next(n for n in named if named.count(n) > 1)))
    expected = members_sha256([m["weights_sha256"] for m in members])
    if card["weights_sha256"] != expected:
        raise WeightsError(source, "weights_sha256 {} is not the digest of its members' weights ({}); the card was "
                                   "edited".format(card["weights_sha256"], expected))


def member_cards(card, load_card):
    """The member cards of a loaded late-fusion card, each checked against the digest the card pins.

    ``load_card`` is ``weights.load_card`` (passed in: weights imports this module).
    """
    source = card.get("_card_path")
    if source is None:
        raise WeightsError(None, "late-fusion card has no '_card_path'; load it with load_card() so its member cards "
                                 "can be found")
    folder = Path(source).parent
    loaded = []
    for member in card["members"]:
        path = folder / member["card"]
        if not path.is_file():
            raise WeightsError(str(path), "member card named by the late-fusion model {} is missing".format(
                card["model_id"]))
        member_card = load_card(path)
        if kinds.is_late_fusion(member_card):
            raise WeightsError(str(path), "a late-fusion member must be a model of its own, not another "
                                          "late-fusion model")
        if member_card["sequence"] != member.get("sequence"):
            raise WeightsError(str(path), "reads {!r} but the late-fusion model {} lists it as its {!r} member".format(
                member_card["sequence"], card["model_id"], member.get("sequence")))
        if member_card["weights_sha256"] != member["weights_sha256"]:
            raise WeightsError(str(path), "has weights {} but the late-fusion model {} was built on {}: the member was "
                                          "re-exported or replaced, so the fused card's metrics no longer describe "
                                          "it; rebuild it with `lvi fuse`".format(
                                              member_card["weights_sha256"][:12], card["model_id"],
                                              member["weights_sha256"][:12]))
        loaded.append(member_card)
    return loaded
