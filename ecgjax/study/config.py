"""Study configs: which training runs, which attribution methods, which checks.

A study config file is a Python module whose ``get_config(arg)`` returns a
:class:`StudyConfig` (``experiments/configs/reproduce_jones2020.py``,
``experiments/configs/corrected_study.py``). Each run carries a full training
``Config``, usually loaded from a training config file with overrides.
"""

from __future__ import annotations

import dataclasses

from ecgjax.analysis.transforms import TRANSFORMS
from ecgjax.config import Config, call_get_config, validate
from ecgjax.errors import ConfigError
from ecgjax.study.groundtruth import GroundTruthSpec

TARGETS = ("label", "pred")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of the study.

    Attributes:
      name: folder name under ``<workdir>/runs/``.
      config: the training config.
      group: runs of one group (e.g. seeds) are summarized together with CIs.
      explain: compute attributions, profiles and comparisons on its test beats.
    """

    name: str
    config: Config
    group: str = ""
    explain: bool = False


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """An attribution method, its target and how its maps are summarized.

    Attributes:
      name: a registered method (``ecgjax.attribution.available()``).
      hparams: its hyperparameters.
      target: ``label`` (the true class) or ``pred`` (the predicted class).
      transform: ``signed`` | ``abs`` | ``relu`` | ``paper`` (|.| then per-beat min-max).
    """

    name: str
    hparams: dict = dataclasses.field(default_factory=dict)
    target: str = "label"
    transform: str = "abs"

    @property
    def key(self) -> str:
        """Folder name: method, target and transform."""
        return f"{self.name}-{self.target}-{self.transform}"


@dataclasses.dataclass(frozen=True)
class AuditSpec:
    """The audit checks of issue 17 on the first explained run (``ecgjax.study.audit``); 0 skips a check.

    Attributes:
      sanity_beats: test beats (an equal number per class) for independent layer and data
        randomisation, random-logit, completeness and ROAD.
      permuted_steps: optimiser steps of the copy trained on permuted labels (data randomisation).
      road_fractions: shares of segments ROAD removes; road_noise: its imputation noise sd.
      glocal_splits: random record splits of the split-half stability (0: no glocal stage).
      medications: drugs whose use (from the record headers) defines a subgroup.
      methods: names of the study's methods the randomisation checks (independent layer, data, random-logit)
        run on (empty: all that apply); completeness and ROAD cover every method.
      cluster_ks: numbers of clusters tried within each class (empty: no clusters stage).
      cluster_min_beats: classes with fewer explained beats are not clustered.
      tcav_beats: test beats per class whose gradients TCAV scores (0: no tcav stage).
      tcav_concept_beats: example beats per concept (drawn from the training part).
      tcav_random_sets: random sets (CAVs) per concept and for the null.
      tcav_layer: a named layer of the model (``ModelInfo.layers``); "" for its feature layer.
      waves: use the delineation (``ecgjax.data.delineation``) for glocal aggregation by wave and for the
        wide-QRS and absent-P concepts; it delineates every record involved once (cached; on a loaded
        2-core CPU about 80 s per record).
    """

    sanity_beats: int = 0
    permuted_steps: int = 200
    road_fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    road_noise: float = 0.01
    glocal_splits: int = 0
    medications: tuple[str, ...] = ("Digoxin",)
    methods: tuple[str, ...] = ()
    cluster_ks: tuple[int, ...] = ()
    cluster_min_beats: int = 20
    tcav_beats: int = 0
    tcav_concept_beats: int = 50
    tcav_random_sets: int = 10
    tcav_layer: str = ""
    waves: bool = True

    def __post_init__(self):
        if any(not isinstance(k, int) or k < 2 for k in self.cluster_ks):
            raise ConfigError(f"audit.cluster_ks must be integers >= 2, got {list(self.cluster_ks)}")
        for f in ("sanity_beats", "permuted_steps", "glocal_splits", "cluster_min_beats", "tcav_beats", "tcav_concept_beats"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) < 0:
                raise ConfigError(f"audit.{f} must be a non-negative integer, got {getattr(self, f)!r}")
        if self.sanity_beats and self.permuted_steps < 1:
            raise ConfigError("audit.permuted_steps must be >= 1 when audit.sanity_beats > 0")
        fr = list(self.road_fractions)
        if len(fr) < 2 or any(not 0 <= v <= 1 for v in fr) or any(b <= a for a, b in zip(fr, fr[1:])):
            raise ConfigError(f"audit.road_fractions must be at least two increasing shares in [0, 1], got {fr}")
        if self.tcav_beats and self.tcav_random_sets < 2:
            raise ConfigError(f"audit.tcav_random_sets must be >= 2 (its t-test needs two scores per group), got {self.tcav_random_sets}")
        if self.road_noise < 0:
            raise ConfigError(f"audit.road_noise must be >= 0, got {self.road_noise}")


@dataclasses.dataclass(frozen=True)
class TraverseSpec:
    """Generative explanations (issue 18) of the first explained run: ``generative.pipeline.traverse_run`` moves test
    beats of ``source`` towards ``target`` through a beat VAE; the report shows the morph strips and change heat maps.

    Attributes:
      target, source: class names of the run (the query: source beats morphed towards target).
      vae_dir: a trained VAE's folder (``generative.vae.save_vae``) to use; "" trains one on the run's training beats
        (``latent``, ``beta``, ``width``, decoder sd ``sigma``, ``vae_epochs``, at most ``vae_max_train`` beats) under
        the study's workdir.
      max_beats: source beats traversed (and target beats profiled); fidelity_beats: test beats of the
        classifier-on-reconstructions check.
      steps, n_points: Adam steps per path, decoded points per path; method: the attribution method of the profile.
      waves: also the change per wave (delineates the test records; off for beats from no database).
      batch_size: beats per compiled batch.
    """

    target: str = "V"
    source: str = "N"
    vae_dir: str = ""
    latent: int = 16
    beta: float = 1.0
    width: int = 16
    sigma: float = 0.1
    vae_epochs: int = 10
    vae_max_train: int = 20000
    max_beats: int = 32
    fidelity_beats: int = 2000
    steps: int = 150
    n_points: int = 11
    method: str = "saliency"
    waves: bool = True
    batch_size: int = 64

    def __post_init__(self):
        for f in ("latent", "width", "vae_epochs", "vae_max_train", "max_beats", "fidelity_beats", "steps", "batch_size"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) < 1:
                raise ConfigError(f"traverse.{f} must be a positive integer, got {getattr(self, f)!r}")
        if not isinstance(self.n_points, int) or self.n_points < 2:
            raise ConfigError(f"traverse.n_points must be an integer >= 2 (start and end), got {self.n_points!r}")
        if self.beta < 0:
            raise ConfigError(f"traverse.beta must be >= 0, got {self.beta}")
        if not self.sigma > 0:
            raise ConfigError(f"traverse.sigma (the decoder's standard deviation) must be > 0, got {self.sigma}")
        if self.target == self.source:
            raise ConfigError(f"traverse.target and traverse.source are both {self.target!r}; a traversal moves beats "
                              "of one class towards another")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Attributes:
    name: study name (report title).
    runs: the training runs.
    methods: attribution methods applied to every ``explain`` run.
    explain_max_per_class: cap on explained test beats per class (seeded); None = all.
    n_boot: bootstrap replicates (record-level) for profile CIs.
    sanity_beats: test beats used for the sanity checks (0: skip them).
    noise_snr_db: SNRs of the noise stress test (empty: skip it).
    noise_records: nstdb noise records to add (``bw``, ``ma``).
    noise_max_beats: test beats used for the noise stress test.
    expert_rules: check each class's relevance against the wave that defines it
      (``ecgjax.study.expert_rules``) on the first explained run's stored maps.
    ground_truth: the ground-truth regressions of Wagner et al. (``ecgjax.study.groundtruth``); None: skip.
    seed: subsets and noise.
    notes: paragraphs shown at the top of the report.
    audit: the audit checks (``AuditSpec``); None: none.
    traverse: generative explanations of the first explained run (``TraverseSpec``); None: none.
    """

    name: str
    runs: tuple[RunSpec, ...]
    methods: tuple[MethodSpec, ...] = ()
    explain_max_per_class: int | None = None
    n_boot: int = 1000
    sanity_beats: int = 0
    noise_snr_db: tuple[float, ...] = ()
    noise_records: tuple[str, ...] = ("bw", "ma")
    noise_max_beats: int = 2000
    expert_rules: bool = False
    ground_truth: GroundTruthSpec | None = None
    seed: int = 0
    notes: tuple[str, ...] = ()
    audit: AuditSpec | None = None
    traverse: TraverseSpec | None = None

    def __post_init__(self):
        names = [r.name for r in self.runs]
        if len(set(names)) != len(names):
            raise ConfigError(f"study {self.name}: run names must be unique, got {names}")
        for r in self.runs:
            if not isinstance(r, RunSpec):
                raise ConfigError(f"study {self.name}: runs must be RunSpec, got {type(r).__name__}")
            validate(r.config)
        for m in self.methods:
            if m.target not in TARGETS:
                raise ConfigError(f"method {m.name}: target={m.target!r}; choose one of {TARGETS}")
            if m.transform not in TRANSFORMS:
                raise ConfigError(f"method {m.name}: transform={m.transform!r}; choose one of {TRANSFORMS}")
        from ecgjax import attribution

        for m in self.methods:
            attribution.get(m.name, **m.hparams)  # unknown method or hyperparameter -> clear error
        if self.audit is not None and not isinstance(self.audit, AuditSpec):
            raise ConfigError(f"study {self.name}: audit must be an AuditSpec, got {type(self.audit).__name__}")
        if self.audit is not None and (unknown := set(self.audit.methods) - {m.name for m in self.methods}):
            raise ConfigError(f"study {self.name}: audit.methods names {sorted(unknown)}, which the study does not run; "
                              f"choose from {sorted({m.name for m in self.methods})}")
        if self.expert_rules and not self.methods:
            raise ConfigError(f"study {self.name}: expert_rules checks the explained maps, but no methods are given")
        if self.ground_truth is not None and not isinstance(self.ground_truth, GroundTruthSpec):
            raise ConfigError(f"study {self.name}: ground_truth must be a GroundTruthSpec, got {type(self.ground_truth).__name__}")
        if self.traverse is not None:
            if not isinstance(self.traverse, TraverseSpec):
                raise ConfigError(f"study {self.name}: traverse must be a TraverseSpec, got {type(self.traverse).__name__}")
            if not any(r.explain for r in self.runs):
                raise ConfigError(f"study {self.name}: traverse explains the first run with explain=True, but no run has it")
            from ecgjax import attribution

            if self.traverse.method not in attribution.available():
                raise ConfigError(f"study {self.name}: traverse.method {self.traverse.method!r} is not a registered "
                                  f"attribution method; available: {', '.join(attribution.available())}")
        if self.methods and not any(r.explain for r in self.runs):
            raise ConfigError(f"study {self.name}: methods are given but no run has explain=True")

    def run_groups(self) -> dict[str, list[RunSpec]]:
        out: dict[str, list[RunSpec]] = {}
        for r in self.runs:
            out.setdefault(r.group or r.name, []).append(r)
        return out


def load_study_config(spec: str) -> StudyConfig:
    """``"path.py[:arg]"`` -> the file's ``get_config(arg)``, which must be a StudyConfig."""
    cfg = call_get_config(spec)
    if not isinstance(cfg, StudyConfig):
        raise ConfigError(f"{spec}: get_config must return a StudyConfig, got {type(cfg).__name__}")
    return cfg
