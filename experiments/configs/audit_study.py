"""The audit study (issue 17): one inter-patient model explained by the field's methods, and every check of them.

Commands::

    python experiments/corrected_study.py --config experiments/configs/audit_study.py:quick --workdir runs/audit_quick
    python experiments/corrected_study.py --config experiments/configs/audit_study.py --workdir runs/audit

(``ecgjax study --config ... --workdir ...`` is the same.) Run: ``jones2020_cnn`` on the AAMI DS1 -> DS2
protocol (``aami_jones_cnn.py``; quick: capped beats and epochs). Methods, all targeted at the true class:
saliency, integrated gradients, expected gradients (background from the training beats), DeepLIFT, LRP-epsilon,
guided backprop and Grad-CAM. Checks: cascading randomisation and deletion/insertion (``sanity_beats``), then the
audit stages (``ecgjax.study.audit``): independent layer and data randomisation, random-logit, completeness,
ROAD; glocal aggregation by record, sex, age band and digoxin with split-half stability and the class x lead
matrix, by 0.1 s segment and by wave; clusters of attributions within each class; TCAV of wide QRS, absent P
wave and premature beat at the feature layer.

Expected wall time: quick about 30-60 min on the project's 2-core CPU (not yet measured on an idle machine);
the full study is a GPU job. Expected metric: none (quick-mode scores mean nothing beyond "every stage ran").
"""

from pathlib import Path

from ecgjax.config import load_config
from ecgjax.study.config import AuditSpec, MethodSpec, RunSpec, StudyConfig

HERE = Path(__file__).parent


def get_config(arg=None):
    if arg not in (None, "quick"):
        raise ValueError(f"variant must be empty or 'quick', got {arg!r}")
    quick = arg == "quick"
    over = ("data.max_beats=1500", "train.epochs=3", "eval.bootstrap_samples=100") if quick else ()
    runs = (RunSpec("aami_jones_cnn", load_config(str(HERE / "aami_jones_cnn.py"), over), explain=True),)
    methods = (
        MethodSpec("saliency"),
        MethodSpec("integrated_gradients", {"steps": 8 if quick else 64}),
        MethodSpec("expected_gradients", {"n": 8 if quick else 32, "background_n": 32 if quick else 100}),
        MethodSpec("deeplift"),
        MethodSpec("lrp", {"rule": "epsilon"}),
        MethodSpec("guided_backprop"),
        MethodSpec("grad_cam", transform="relu"),
    )
    # the randomisation checks re-attribute every beat once per parameter group: the path methods
    # (IG, expected gradients) are left to the full study
    audit = AuditSpec(sanity_beats=40 if quick else 500, permuted_steps=20 if quick else 1000,
                      methods=("saliency", "deeplift", "lrp", "guided_backprop", "grad_cam") if quick else (),
                      glocal_splits=50 if quick else 200, cluster_ks=(2, 3, 4), cluster_min_beats=15 if quick else 50,
                      tcav_beats=20 if quick else 200, tcav_concept_beats=30 if quick else 100, tcav_random_sets=10)
    return StudyConfig(
        name="Audit study: explanations that can be checked" + (" (quick)" if quick else ""),
        runs=runs, methods=methods, explain_max_per_class=20 if quick else 500, n_boot=100 if quick else 1000,
        sanity_beats=20 if quick else 500, audit=audit,
        notes=("Wagner et al. (2023)'s building blocks for auditing ECG models on one inter-patient model: sanity checks "
               "that identify sensible attribution methods, glocal aggregation over patient subgroups, clusters of "
               "attributions, and concept explanations.",)
        + (("QUICK MODE: capped beats and epochs; scores mean nothing beyond 'every stage ran'.",) if quick else ()),
    )
