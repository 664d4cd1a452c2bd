"""PyTorch + captum Saliency on the ribeiro benchmark CNN with the SAME weights as the JAX model.

Builds ``ribeiro_cnn`` in JAX (seeded random init), copies every weight into an
equivalent PyTorch module (TF 'SAME' padding, channel-last flatten, BatchNorm
in eval mode with the same running statistics), checks that the logits match
within 1e-4 (relative to the largest logit) before timing anything, then times
(a) ``torch.autograd.grad`` of the gathered target logits and (b) captum
``Saliency(abs=False)`` against JAX's one-hot-VJP saliency, in one process, and
appends JSON lines to ``--out``.

torch and captum are NOT project dependencies: they are imported inside, and
the script exits with status 2 and a clear message when they are absent.

  pip install torch captum   # into a scratch environment
  python benchmarks/torch_captum_compare.py --batch 256 --repeats 5 --out benchmarks/results/cpu_torch_compare.jsonl
  python benchmarks/torch_captum_compare.py --device cuda --batch 4096 --precision float32 --out benchmarks/results/gpu_torch_compare.jsonl

On CUDA both sides use the same arithmetic: ``--precision float32`` turns off
PyTorch's TF32 (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32``, the latter on by default) and runs JAX at
``float32`` matmul precision; ``tf32`` allows TF32 on both. Torch timings call
``torch.cuda.synchronize()`` before the clock stops.
"""

from __future__ import annotations

import argparse
import sys

import _common as C


def torch_ribeiro_from_jax(model, device: str = "cpu"):
    """An eval-mode torch.nn.Module on ``device`` computing the same function as the JAX RibeiroCNN ``model``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    def t(a):
        return torch.from_numpy(np.array(a, dtype=np.float32)).to(device)

    def conv_w(conv):  # JAX [K, Cin, Cout] -> torch [Cout, Cin, K]
        return t(conv.kernel[...]).permute(2, 1, 0).contiguous()

    def bn(b):
        scale = t(b.scale[...]) if b.scale is not None else None
        bias = t(b.bias[...]) if b.bias is not None else None
        return t(b.mean[...]), t(b.var[...]), scale, bias, b.epsilon

    def same_pad(length, k, s):
        out = -(-length // s)
        total = max((out - 1) * s + k - length, 0)
        return total // 2, total - total // 2

    class TorchRibeiro(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if model.layout != "concat":
                raise ValueError("only the benchmark's lead_layout='concat' is mirrored")
            self.stem = torch.nn.Parameter(conv_w(model.stem), requires_grad=False)
            self.bn0 = bn(model.bn0)
            self.units = []
            for u in model.units:
                self.units.append(dict(
                    skip=conv_w(u.skip_conv) if u.skip_conv is not None else None,
                    c1=conv_w(u.conv1), bn1=bn(u.bn1), c2=conv_w(u.conv2), bn_out=bn(u.bn_out)))
            self.dense_w = t(model.dense.kernel[...]).T.contiguous()
            self.dense_b = t(model.dense.bias[...])

        @staticmethod
        def _conv(x, w, stride):
            left, right = same_pad(x.shape[-1], w.shape[-1], stride)
            return F.conv1d(F.pad(x, (left, right)), w, stride=stride)

        @staticmethod
        def _bn(x, p):
            mean, var, scale, bias, eps = p
            return F.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)

        def forward(self, x):  # x: [B, T, L] as in JAX
            b, tt, l = x.shape
            h = x.permute(0, 2, 1).reshape(b, 1, l * tt)  # lead 1 then lead 2, one channel
            h = torch.relu(self._bn(self._conv(h, self.stem, 1), self.bn0))
            skip = h
            for u in self.units:
                left, right = same_pad(skip.shape[-1], 4, 4)
                skip = F.max_pool1d(F.pad(skip, (left, right), value=-float("inf")), 4)
                if u["skip"] is not None:
                    skip = F.conv1d(skip, u["skip"])
                m = torch.relu(self._bn(self._conv(h, u["c1"], 1), u["bn1"]))
                s = self._conv(m, u["c2"], 4) + skip
                h, skip = torch.relu(self._bn(s, u["bn_out"])), s
            f = h.permute(0, 2, 1).reshape(b, -1)  # channel-last flatten, as JAX
            return f @ self.dense_w.T + self.dense_b

    return TorchRibeiro().eval()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where PyTorch runs (JAX uses its default device)")
    p.add_argument("--precision", default="float32", choices=["float32", "tf32"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = cpu count)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 4, 1
    try:
        import torch
        from captum.attr import Saliency
    except ImportError as e:
        print(f"torch_captum_compare.py needs torch and captum, which are not project dependencies "
              f"({e}). Install them into a scratch environment: pip install torch captum", file=sys.stderr)
        return 2
    import os

    import jax
    import jax.numpy as jnp

    from ecgjax import models
    from saliency_throughput import build_model

    torch.set_num_threads(args.threads or os.cpu_count())
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda: torch sees no CUDA device", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
        sync = torch.cuda.synchronize
    else:
        sync = lambda: None  # noqa: E731
    env = C.env_record(sys.argv if argv is None else ["benchmarks/torch_captum_compare.py", *argv])
    env.update(torch=torch.__version__, captum=__import__("captum").__version__, torch_threads=torch.get_num_threads(),
               torch_device=args.device if args.device == "cpu" else torch.cuda.get_device_name())
    jmodel, impl = build_model("ribeiro_cnn", "auto")
    # Non-trivial BatchNorm statistics, so the copy of every BN field is exercised.
    for bnm in [jmodel.bn0] + [b for u in jmodel.units for b in (u.bn1, u.bn_out)]:
        n = bnm.mean[...].shape[0]
        bnm.mean[...] = jnp.linspace(-0.1, 0.1, n)
        bnm.var[...] = jnp.linspace(0.5, 1.5, n)
    graphdef, state = models.eval_split(jmodel)
    tmodel = torch_ribeiro_from_jax(jmodel, args.device)
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        rows = _compare(args, impl, graphdef, state, tmodel, torch, Saliency, sync, env)
    if rows is None:
        return 1
    C.append_jsonl(args.out, rows)
    return 0


def _compare(args, impl, graphdef, state, tmodel, torch, Saliency, sync, env):
    """Check logits and saliency agree, then time the three implementations; JSON rows (None: mismatch)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ecgjax import models
    from saliency_throughput import _local_saliency

    x = np.random.default_rng(0).standard_normal((args.batch, 430, 2), dtype=np.float32)
    tgt = (np.arange(args.batch) % 8).astype(np.int64)
    jlogits = np.asarray(jax.jit(lambda s, v: models.pure_fns(graphdef, s).logit_fn(v))(state, jnp.asarray(x)))
    with torch.no_grad():
        tlogits = tmodel(torch.from_numpy(x).to(args.device)).cpu().numpy()
    rel = float(np.max(np.abs(tlogits - jlogits)) / np.max(np.abs(jlogits)))
    tol = 1e-4 if args.precision == "float32" else 2e-2  # TF32 keeps 10 mantissa bits
    if rel > tol:
        print(f"logits differ: max rel {rel:.2e} > {tol:g}; refusing to time", file=sys.stderr)
        return None
    C.log(f"logits match: max rel diff {rel:.1e}")

    xt, tt = torch.from_numpy(x).to(args.device), torch.from_numpy(tgt).to(args.device)

    def torch_grad():
        xi = xt.clone().requires_grad_(True)
        y = tmodel(xi)
        return torch.autograd.grad(y.gather(1, tt[:, None]).sum(), xi)[0]

    sal = Saliency(tmodel)

    def captum_sal():
        return sal.attribute(xt, target=tt, abs=False)

    jsal = jax.jit(lambda s, v, t: _local_saliency(models.pure_fns(graphdef, s), v, t))
    xj, tj = jnp.asarray(x), jnp.asarray(tgt.astype(np.int32))
    t0 = C.time.perf_counter()
    g_j = np.asarray(jsal(state, xj, tj))
    jax_compile = C.time.perf_counter() - t0
    g_t = torch_grad().cpu().numpy()
    g_c = captum_sal().detach().cpu().numpy()
    sal_rel = float(np.max(np.abs(g_t - g_j)) / np.max(np.abs(g_j)))
    cap_rel = float(np.max(np.abs(g_c - g_t)) / np.max(np.abs(g_t)))
    rows = []
    for method, fn, compile_s in [("torch_autograd_grad", torch_grad, 0.0), ("captum_saliency", captum_sal, 0.0),
                                  ("jax_saliency", lambda: jsal(state, xj, tj), jax_compile)]:
        fn()  # warm-up
        sync()
        secs = C.time_calls(fn if method.startswith("jax") else (lambda fn=fn: (fn(), sync(), None)[-1]), args.repeats)
        row = dict(env, model="ribeiro_cnn", method=method, batch=args.batch, conv_impl=impl if method.startswith("jax") else None,
                   precision=args.precision, compile_s=compile_s, logits_max_rel_diff=rel,
                   saliency_max_rel_diff_torch_vs_jax=sal_rel, captum_vs_autograd_max_rel_diff=cap_rel)
        row.update(C.summarize(args.batch, secs))
        rows.append(row)
        C.log(f"{method:20s} B={args.batch} {row['beats_per_s']:8.1f} beats/s [{row['beats_per_s_min']:.1f}, {row['beats_per_s_max']:.1f}]")
    return rows


if __name__ == "__main__":
    sys.exit(main())
