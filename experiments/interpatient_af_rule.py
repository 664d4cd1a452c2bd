"""A finished inter-patient benchmark with a rule on top: no S call inside an irregular rhythm, or without P waves.

Command::

    python experiments/interpatient_af_rule.py runs/cv_both --tau 1.1 --out runs/cv_both_afrule/results.json
    python experiments/interpatient_af_rule.py runs/cv_both_sinus --rule plock --tau 0.15 [--to N] --out runs/cv_both_sinus_plockrule/results.json

The rule (``ecgjax.interpatient.suppress_s`` with ``S_RULES[--rule]``; ``tau`` chosen on DS1 by
``experiments/ds1_af_rule_screen.py``) lowers a beat's S log-probability where its ``irreg``
(``ecgjax.data.rr``) exceeds ``tau``, or where its ``plock`` (``ecgjax.data.template.atrial_lock`` over
the 32 preceding beats) is below it. The workdir's seeds' out-of-record DS1 predictions get the rule
and one pair of S/V offsets is chosen on them again (``choose_offsets``, as the benchmark does); then the
stored DS2 logits (``ds2/seed<s>.npz``, written by the benchmark after training) get the rule, with
the feature computed from the DS2 records, and that pair of offsets (``--to N``: the suppressed S
probability added to N's), and are scored once
(per seed with record-bootstrap CIs, mean ± sd, plain argmax, the seeds' ensemble). Nothing is chosen
on DS2 (the benchmark applies a rule named in its config, ``InterpatientConfig.s_rule``, with the same functions:
``cv_offsets``, ``ds2_decisions``; this script applies one to a finished workdir, from its stored DS2 logits). Writes a ``results.json`` in the benchmark's layout, and beside it ``ds2/seed<s>.npz`` (y_true,
y_pred with the rule and the offsets, record), so ``experiments/aami_interpatient.py --table`` and
``experiments/interpatient_gate.py --ds2`` read it; bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def apply_rule(workdir: Path, tau: float, *, rule: str = "irreg", to: str | None = None, data_dir=None, cache=None,
               n_bootstrap: int = 1000) -> tuple[dict, dict]:
    """({seed: DS2 y_pred i32[N]}, the module docstring's results dict, (DS2 y_true, record)) for one finished workdir:
    its benchmark config with the rule as ``s_rule``, through the benchmark's own ``cv_offsets`` and ``ds2_decisions``."""
    from ecgjax import config as config_lib
    from ecgjax import interpatient as ip
    from ecgjax.errors import ConfigError
    from ecgjax.io import environment_info

    res = json.loads((workdir / "results.json").read_text())
    classes, seeds = res["classes"], res["seeds"]
    if "ds1_cv" not in res:
        raise ConfigError(f"{workdir}: not cross-validated inside DS1 (results ds1_cv); the rule's offsets come from those predictions")
    if rule not in ip.S_RULES:
        raise ConfigError(f"--rule {rule!r}: use one of {list(ip.S_RULES)}")
    c = res["config"]
    cfg = ip.InterpatientConfig(name=res["name"], train=config_lib.from_dict(c["train"]), seeds=tuple(seeds),
                                test_records=tuple(res["test_records"]), tune_offsets=tuple(c["tune_offsets"]), cv_folds=c["cv_folds"],
                                bootstrap_samples=n_bootstrap, s_rule=(rule, tau, to))
    offsets, ds1_cv = ip.cv_offsets(cfg, workdir, classes, data_dir=data_dir, cache=cache)
    values, y2, rec2 = ip.rule_feature(rule, res["test_records"], data_dir, cache)
    logits = {}
    for s in seeds:
        with np.load(workdir / "ds2" / f"seed{s}.npz", allow_pickle=False) as z:
            if not (np.array_equal(z["y_true"], y2) and np.array_equal(z["record"], rec2)):
                raise ConfigError(f"{workdir}/ds2/seed{s}.npz: its beats are not the aami_rr DS2 beats in order")
            logits[s] = z["logits"]
    ds2 = ip.ds2_decisions(cfg, logits, y2, rec2, classes, offsets, values)
    return ds2["preds"], {
        "name": f"{res['name']} + rule: no S where {rule} {ip.S_RULES[rule]} {tau:g}" + (f", S to {to}" if to else ""),
        "classes": classes, "seeds": seeds,
        "test_records": res["test_records"], "train_records": res["train_records"],
        "ds2": {"per_seed": {str(s): r for s, r in ds2["per_seed"].items()}, "summary": ds2["summary"],
                "summary_argmax": ds2["summary_argmax"], "offsets": {str(s): dict(zip(classes, offsets.tolist())) for s in seeds},
                "ensemble": ds2["ensemble"]},
        "ds1_cv": {**ds1_cv, "tau": tau, "rule": rule, "to": to},
        "published": res["published"], "goal": res["goal"],
        "config": {"tune_offsets": list(c["tune_offsets"]), "workdir": str(workdir), "tau": tau, "rule": rule, "to": to},
        **environment_info(),
    }, (y2, rec2)


def main(argv=None) -> int:
    from ecgjax import interpatient as ip
    from ecgjax.errors import EcgjaxError
    from ecgjax.io import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path, help="a finished benchmark workdir (e.g. runs/cv_both)")
    ap.add_argument("--rule", default="irreg", choices=["irreg", "plock"], help="no S where irreg > tau (default), or where plock < tau")
    ap.add_argument("--tau", type=float, required=True, help="the feature's threshold, chosen on DS1 (ds1_af_rule_screen.py)")
    ap.add_argument("--to", choices=["N"], help="the suppressed S probability goes to this class (default: the model's next choice)")
    ap.add_argument("--out", type=Path, required=True, help="results.json to write")
    ap.add_argument("--data-dir", default=os.environ.get("ECGJAX_DATA_DIR"))
    args = ap.parse_args(argv)
    try:
        preds, res, (y2, rec2) = apply_rule(args.workdir, args.tau, rule=args.rule, to=args.to, data_dir=args.data_dir)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {args.workdir}: not a finished inter-patient workdir ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    except EcgjaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ecgjax.io import atomic_savez

    for s, pred in preds.items():
        atomic_savez(args.out.parent / "ds2" / f"seed{s}.npz", y_true=y2, y_pred=pred, record=rec2)
    atomic_write_json(args.out, json.loads(json.dumps(res, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))))
    print(ip.aami_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
