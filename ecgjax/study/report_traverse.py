"""The report's section of the generative explanations (issue 18): the query, the classifier on VAE
reconstructions, trained against randomised traversals, the beat morph strips and the change heat maps.

Rendered from ``StudyResult.traversal`` only (the summary and figure captions the traverse stage stored),
like every other section of ``ecgjax.study.report``.
"""

from __future__ import annotations

import numpy as np

from ecgjax.report import Report
from ecgjax.study.result import TraversalResult

# (row name, summary key, format): "p" a share in %, "f" a number, "s" a label
_ROWS = (
    ("median Spearman rho of position along the path and P(target)", "median_spearman", "f"),
    ("paths with rho >= 0.9", "frac_spearman_ge_0_9", "p"),
    ("beats starting below P(target) 0.5", "frac_start_below_0_5", "p"),
    ("beats crossing 0.5 (start below, end above)", "frac_cross_0_5", "p"),
    ("median P(target) at the start", "median_prob_start", "f"),
    ("median P(target) at the end", "median_prob_end", "f"),
    ("encodings starting inside the prior's ball", "frac_start_inside_prior_bound", "p"),
    ("paths inside the ball, or no further out than their start", "frac_no_lower_than_start", "p"),
    ("median agreement of the end change with the target's saliency profile (Spearman)", "median_agreement", "f"),
    ("median agreement with the beat's own saliency of the target (Spearman)", "median_source_agreement", "f"),
    ("consistency across beats (median pairwise Spearman)", "consistency", "f"),
    ("most changed 0.1 s segment", "top_segment", "s"),
    ("most changed wave", "top_wave", "s"),
    ("median agreement per wave with the per-wave saliency profile", "median_wave_agreement", "f"),
)


def _cell(v, kind: str) -> str:
    if kind == "s":
        return str(v) if v else "-"
    if not isinstance(v, (float, int)) or not np.isfinite(v):
        return "-"
    return f"{100 * v:.0f}%" if kind == "p" else f"{v:.3f}"


def add_traversal_section(rep: Report, tr: TraversalResult) -> None:
    """One section: what was asked and with which VAE, the numbers (trained against randomised), the figures."""
    s = tr.summary
    vae, t, f = s["vae"], s["traverse"], s["fidelity"]
    sec = rep.section(f"Explanations by generation: {tr.run}, {s['source']} -> {s['target']}")
    sec.text(f"Query-based latent space traversal (Vessies et al.): a beat VAE (latent {vae['latent']}, beta "
             f"{vae['beta']:g}, decoder sigma {vae['sigma']:g}, width {vae['width']}; trained on the run's training "
             f"beats only unless the study named one) encodes test beats of class {s['source']}; per beat, "
             f"{t['steps']} Adam steps move the latent code towards a higher {s['target']} logit of the classifier, "
             f"kept inside the prior's {100 * s['trained']['prior_mass']:.0f}% ball, and {t['n_points']} points along "
             "the path are decoded. What changed is measured on the decoded beats against the path's start (the "
             "beat's reconstruction), per 0.1 s segment around R and per delineated wave of the source beat; it is "
             f"compared with the {t['method']} profile of {s['target']}'s test beats. The sanity check: the same "
             "beats traversed through a re-initialised classifier of the same architecture.")
    gap = 100 * f["acc_gap"]
    sec.text(f"The classifier on VAE reconstructions of {f['n']:,} test beats: accuracy {f['acc_original']:.3f} on the "
             f"originals, {f['acc_reconstructed']:.3f} on their reconstructions (a gap of {gap:+.1f} points, "
             f"{'within' if abs(gap) <= 2 else 'outside'} the 2 points asked for); {100 * f['pred_agreement']:.1f}% of "
             "the beats keep their prediction."
             + (f" Each reconstruction is read as the data pipeline gives the classifier a real beat (the window's "
                f"padding, {f['normalisation']} again); the decoder's output fed as it is scores "
                f"{f['acc_reconstructed_raw']:.3f}." if "acc_reconstructed_raw" in f else ""))
    sec.table(["", "trained", "randomised"],
              [[name, _cell(s["trained"].get(k), kind), _cell(s["randomised"].get(k), kind)] for name, k, kind in _ROWS],
              caption=f"Traversals of {s['trained']['n']} {s['source']} test beats towards {s['target']}")
    if s.get("directions"):
        sec.table(["pair", "latent, class", "latent, per beat", "beat space, class", "beat space, per beat"],
                  [[k.replace("_", " "), *(_cell(v[space][m], "f") for space in ("latent", "beats")
                                           for m in ("class_cosine", "median_beat_cosine"))]
                   for k, v in s["directions"].items()],
                  caption="Do two classifiers move the same beats the same way? Cosine of their traversal directions "
                          "(class: of the mean unit directions; per beat: the median). Trained classifiers should agree "
                          "with each other more than with a randomised one")
    if not tr.figures:
        sec.text("No figures: the traverse stage wrote none.")
    for png, caption in tr.figures:
        sec.figure(png, caption, name=f"traverse-{tr.run}-{png.stem}")
