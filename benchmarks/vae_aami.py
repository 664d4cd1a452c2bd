"""The beat VAE on real beats: train on DS1's training patients, reconstruct held-out DS2 patients.

    python benchmarks/vae_aami.py --max-train 8000 --max-test 4000 --epochs 8 --out benchmarks/results/cpu_vae_aami.jsonl

``--eval-part val`` reconstructs the split's 4 DS1 validation records instead of DS2 (the row's ``eval_part``),
so a VAE can be chosen without reading a DS2 beat.

Reports per held-out beat the Pearson r between beat and reconstruction (valid
samples, both leads), the reconstruction MSE against the class-mean-template
baseline (each beat as its class's mean training beat), and the active latent
units (Burda et al. 2016). Beats are subsampled at random (``--max-train``,
``--max-test``) so the run fits a CPU in minutes; every training beat comes
from DS1's training records only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import append_jsonl, env_record, log


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="aami")
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-train", type=int, default=8000, help="training beats drawn at random (0: all)")
    ap.add_argument("--max-test", type=int, default=4000, help="test beats drawn at random (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-part", choices=("test", "val"), default="test",
                    help="held-out beats to reconstruct: test (DS2) or val (the split's DS1 validation records; no DS2 "
                         "beat is read)")
    ap.add_argument("--time-budget-s", type=float, default=None,
                    help="stop training before an epoch that would end past this many seconds (the row's epochs_run)")
    ap.add_argument("--split-seed", type=int, default=None,
                    help="ds1ds2 split seed (which 4 DS1 records are validation; default --seed): 4 trains on the "
                         "training records of experiments/configs/traverse_aami.py's classifiers")
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="also store the trained VAE there (generative.vae.save_vae; experiments/traverse_real.py "
                         "reads ROOT/vae)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from ecgjax.cli import setup_logging
    from ecgjax.data import load_beats, make_split
    from ecgjax.generative import vae as V

    setup_logging()  # the training bar's rate and ETA, and each epoch's loss, as log lines in a log file

    beats = load_beats(args.protocol)
    split = make_split("ds1ds2", beats.y, beats.record, seed=args.seed if args.split_seed is None else args.split_seed)
    rng = np.random.default_rng(args.seed)
    take = lambda idx, n: np.sort(rng.choice(idx, n, replace=False)) if 0 < n < len(idx) else np.sort(idx)  # noqa: E731
    tr, te = take(split.train, args.max_train), take(getattr(split, args.eval_part), args.max_test)
    assert not set(beats.record[tr]) & set(beats.record[te])
    t = beats.x.shape[1]
    m_tr, m_te = V.valid_mask(beats.lo[tr], beats.hi[tr], t), V.valid_mask(beats.lo[te], beats.hi[te], t)
    st = V.VAESettings(in_shape=beats.x.shape[1:], latent=args.latent, width=args.width, beta=args.beta,
                       sigma=args.sigma, fs=beats.fs)
    t0 = time.perf_counter()
    model, hist = V.train_vae(beats.x[tr], st, mask=m_tr, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                              seed=args.seed, time_budget_s=args.time_budget_s)
    train_s = time.perf_counter() - t0
    rec = V.reconstruct(model, beats.x[te])
    r = V.pearson_r(beats.x[te], rec["x_hat"], m_te)
    err = V.mse(beats.x[te], rec["x_hat"], m_te)
    base = V.template_baseline(beats.x[tr], beats.y[tr], beats.x[te], beats.y[te])
    err_base = V.mse(beats.x[te], base, m_te)
    n_active, _ = V.active_units(rec["mu"])
    per_class = {}
    for c in np.unique(beats.y[te]):
        s = beats.y[te] == c
        per_class[beats.classes[c]] = {"n": int(s.sum()), "median_r": float(np.nanmedian(r[s])),
                                      "median_mse": float(np.median(err[s])), "median_mse_template": float(np.median(err_base[s]))}
    row = dict(env_record(), protocol=args.protocol, split="ds1ds2", eval_part=args.eval_part,
               settings=vars(args) | {"in_shape": list(st.in_shape)},
               n_train=int(len(tr)), n_test=int(len(te)), train_s=train_s, final_loss=hist[-1], epochs_run=len(hist),
               median_r=float(np.nanmedian(r)), frac_r_gt_0_9=float(np.mean(r > 0.9)),
               median_mse=float(np.median(err)), median_mse_template=float(np.median(err_base)),
               mean_mse=float(err.mean()), mean_mse_template=float(err_base.mean()),
               active_units=n_active, latent=args.latent, per_class=per_class)
    log(f"{'DS2' if args.eval_part == 'test' else 'DS1 validation records'}: median r {row['median_r']:.3f} "
        f"(r > 0.9: {row['frac_r_gt_0_9']:.2f}); median MSE {row['median_mse']:.4f} "
        f"vs template {row['median_mse_template']:.4f}; active units {n_active}/{args.latent}; train {train_s:.0f}s")
    if args.save:
        V.save_vae(model, args.save, history=hist)
    append_jsonl(args.out, [row])


if __name__ == "__main__":
    main()
