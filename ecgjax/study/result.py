"""``StudyResult``: everything a study produced, in memory, built once by ``run_study``.

The stages write their files (runs, attributions, profiles, sanity, noise) and a
JSON marker each (``stages/<stage>.json``); :func:`ecgjax.study.pipeline.run_study`
gathers the markers and the small summaries they point at into one
:class:`StudyResult`. The report (``ecgjax.study.report.build_report``) renders
that value and reads nothing else; figures are referred to by their PNG paths.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typing import TYPE_CHECKING

from ecgjax.study.config import StudyConfig

if TYPE_CHECKING:
    from ecgjax.study.audit import AuditResult


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """One training run of the study.

    Attributes:
      name, group: as in the study's ``RunSpec``.
      explain: whether its test beats were explained.
      results: the run's ``results.json``: ``test`` metrics with CIs, ``config``,
        ``classes``, ``epochs_run``, ``wall_time_s``.
    """

    name: str
    group: str
    explain: bool
    results: dict


@dataclasses.dataclass(frozen=True)
class MethodResult:
    """One attribution method on one run: where its maps are and what the analysis found.

    Attributes:
      key: ``MethodSpec.key`` (method-target-transform).
      spec: the ``MethodSpec`` as a dict.
      attr_dir: the stored ``Attributions`` folder.
      profile_dir: profiles, comparisons and figures.
      beats_per_s: attribution throughput.
      completeness: integrated gradients' completeness error (``sanity.completeness_summary``), else None.
      comparisons: ``comparisons.json`` (correct vs incorrect, mistaken vs class).
      segment_labels: one label per (lead, segment), in the comparisons' flattened order.
      figures: the profile figures (PNG paths), sorted by name.
    """

    key: str
    spec: dict
    attr_dir: Path
    profile_dir: Path
    beats_per_s: float | None
    completeness: dict | None
    comparisons: dict
    segment_labels: tuple[str, ...]
    figures: tuple[Path, ...]

    @classmethod
    def load(cls, key: str, info: dict) -> "MethodResult":
        """From the explain stage's entry for one method (its folders are read once here)."""
        from ecgjax.io import load_npz, read_json

        pdir = Path(info["profile_dir"])
        labels = tuple(str(v) for v in load_npz(pdir / "segments.npz", "segment values")["labels"])
        return cls(key=key, spec=dict(info["spec"]), attr_dir=Path(info["attr_dir"]), profile_dir=pdir,
                   beats_per_s=info.get("beats_per_s"), completeness=info.get("completeness"),
                   comparisons=read_json(pdir / "comparisons.json", "comparisons"),
                   segment_labels=labels, figures=tuple(sorted((pdir / "figures").glob("*.png"))))


@dataclasses.dataclass(frozen=True)
class RunAttributions:
    """Every method on one explained run.

    Attributes:
      n_beats: test beats explained.
      methods: {method key: MethodResult}, in the study's method order.
      skipped: {method key: why it does not apply to this run's model}.
    """

    n_beats: int
    methods: dict[str, MethodResult]
    skipped: dict[str, str]

    @classmethod
    def load(cls, info: dict) -> "RunAttributions":
        return cls(int(info["n_beats"]), {k: MethodResult.load(k, m) for k, m in info["methods"].items()},
                   dict(info.get("skipped", {})))


@dataclasses.dataclass(frozen=True)
class SanityResult:
    """Sanity checks on one run.

    Attributes:
      run: the run checked.
      n_beats: test beats used.
      cascade: {method: ``CascadeResult.summary()``} (median Spearman per randomised layer, random control).
      faithfulness: ``{"deletion_auc": {maps: auc}, "insertion_auc": {...}}`` (empty when no method applied).
      figures: PNG paths, sorted by name.
    """

    run: str
    n_beats: int
    cascade: dict
    faithfulness: dict
    figures: tuple[Path, ...]


@dataclasses.dataclass(frozen=True)
class NoiseResult:
    """The noise stress test on one run.

    Attributes:
      run: the run tested.
      n_beats: test beats used (an equal number per class).
      rows: ``{"noise", "snr_db", "accuracy", "profile_spearman"}`` per condition, clean first.
      method: how signal and noise power were measured.
    """

    run: str
    n_beats: int
    rows: tuple[dict, ...]
    method: str


@dataclasses.dataclass(frozen=True)
class TraversalResult:
    """Generative explanations of one run (``generative.pipeline.traverse_run``).

    Attributes:
      run: the run explained.
      summary: its ``summary.json`` (the query, the VAE, the classifier on reconstructions, trained against
        randomised traversals, the seed check), without ``figures``.
      figures: (PNG path, caption) per figure, in report order: morph strips, then change heat maps.
    """

    run: str
    summary: dict
    figures: tuple[tuple[Path, str], ...]


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """One study, every stage's outcome.

    Attributes:
      config: the StudyConfig; config_json: its resolved JSON form (as in ``config.json``).
      environment: versions and device (``ecgjax.io.environment_info``).
      data: {"protocol/split": the data summary (``ecgjax.data.summary.summarize``)}.
      runs: {run name: TrainedRun}, in the study's order.
      attributions: {run name: RunAttributions} for the explained runs.
      sanity, noise: the checks on the first explained run (None when not configured).
      timings: {stage: wall seconds}.
      audit: the audit stages on the first explained run (``ecgjax.study.audit.AuditResult``), or None.
      wave_checks: ``{"expert_rules": ..., "ground_truth": ...}``, the summaries of
        ``ecgjax.study.expert_rules`` and ``ecgjax.study.groundtruth`` that ran (empty: none).
      traversal: the generative explanations of the first explained run (``TraversalResult``), or None.
    """

    config: StudyConfig
    config_json: dict
    environment: dict
    data: dict[str, dict]
    runs: dict[str, TrainedRun]
    attributions: dict[str, RunAttributions]
    sanity: SanityResult | None
    noise: NoiseResult | None
    timings: dict[str, float]
    audit: "AuditResult | None" = None
    wave_checks: dict = dataclasses.field(default_factory=dict)
    traversal: TraversalResult | None = None
