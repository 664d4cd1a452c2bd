"""PyTorch peer (eager, CPU): saliency with ``torch.autograd.grad`` and an Adam training step.

Run by ``benchmarks/cpu_vs_peers.py`` in a PyTorch virtual environment (CPU
wheel: ``pip install torch --index-url https://download.pytorch.org/whl/cpu``);
prints one JSON line per result on stdout.

  python benchmarks/peers/peer_torch.py --tasks check,jones2020_lstm:saliency --repeats 5
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import spec as S
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    """Ribeiro residual unit, layout (N, C, L), TF 'SAME' padding reproduced exactly."""

    def __init__(self, n_in, c_in, c_out):
        super().__init__()
        self.pool_pads = S.same_pads(n_in, S.DOWNSAMPLE, S.DOWNSAMPLE)
        self.pads1 = S.same_pads(n_in, S.KERNEL, 1)
        self.pads2 = S.same_pads(n_in, S.KERNEL, S.DOWNSAMPLE)
        self.skip = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.conv1 = nn.Conv1d(c_in, c_out, S.KERNEL, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out, eps=S.BN_EPS, momentum=0.01)
        self.conv2 = nn.Conv1d(c_out, c_out, S.KERNEL, stride=S.DOWNSAMPLE, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out, eps=S.BN_EPS, momentum=0.01, affine=False)
        self.drop = nn.Dropout(S.DROPOUT)

    def forward(self, x, y):
        y = self.skip(F.max_pool1d(F.pad(y, self.pool_pads, value=-math.inf), S.DOWNSAMPLE, S.DOWNSAMPLE))
        x = self.drop(F.relu(self.bn1(self.conv1(F.pad(x, self.pads1)))))
        x = self.conv2(F.pad(x, self.pads2)) + y
        return self.drop(F.relu(self.bn2(x))), x


class Ribeiro(nn.Module):
    def __init__(self):
        super().__init__()
        self.pads0 = S.same_pads(S.SEQ_LEN, S.KERNEL, 1)
        self.conv0 = nn.Conv1d(1, S.CONV0_FILTERS, S.KERNEL, bias=False)
        self.bn0 = nn.BatchNorm1d(S.CONV0_FILTERS, eps=S.BN_EPS, momentum=0.01)
        self.blocks = nn.ModuleList([ResBlock(n, ci, co) for (n, _m, ci, co) in S.block_lengths()])
        self.dense = nn.Linear(S.FLAT_DIM, S.N_CLASSES)

    def forward(self, x):  # (N, 1, 860)
        x = F.relu(self.bn0(self.conv0(F.pad(x, self.pads0))))
        y = x
        for b in self.blocks:
            x, y = b(x, y)
        return self.dense(x.transpose(1, 2).flatten(1))  # channel-last flatten, as Keras


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, S.LSTM_UNITS, batch_first=True)
        self.d1 = nn.Linear(S.LSTM_UNITS, S.LSTM_DENSE)
        self.d2 = nn.Linear(S.LSTM_DENSE, S.N_CLASSES)

    def forward(self, x):  # (N, 860, 1)
        return self.d2(F.relu(self.d1(self.lstm(x)[0][:, -1])))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def load_ribeiro(w):
    m = Ribeiro()
    conv = lambda a: _t(a.transpose(2, 1, 0))  # noqa: E731  (k, ci, co) -> (co, ci, k)

    def bn(mod, d):
        mod.running_mean.copy_(_t(d["mean"]))
        mod.running_var.copy_(_t(d["var"]))
        if "gamma" in d:
            mod.weight.copy_(_t(d["gamma"]))
            mod.bias.copy_(_t(d["beta"]))

    with torch.no_grad():
        m.conv0.weight.copy_(conv(w["conv0"]))
        bn(m.bn0, w["bn0"])
        for blk, b in zip(m.blocks, w["blocks"]):
            blk.conv1.weight.copy_(conv(b["conv1"]))
            blk.conv2.weight.copy_(conv(b["conv2"]))
            blk.skip.weight.copy_(conv(b["skip"]))
            bn(blk.bn1, b["bn1"])
            bn(blk.bn2, b["bn2"])
        m.dense.weight.copy_(_t(w["dense_w"].T))
        m.dense.bias.copy_(_t(w["dense_b"]))
    return m


def load_lstm(w):
    m = LSTMNet()
    with torch.no_grad():  # torch gate order i, f, g, o == Keras i, f, c, o
        m.lstm.weight_ih_l0.copy_(_t(w["kernel"].T))
        m.lstm.weight_hh_l0.copy_(_t(w["recurrent"].T))
        m.lstm.bias_ih_l0.copy_(_t(w["bias"]))
        m.lstm.bias_hh_l0.zero_()
        m.d1.weight.copy_(_t(w["d1_w"].T))
        m.d1.bias.copy_(_t(w["d1_b"]))
        m.d2.weight.copy_(_t(w["d2_w"].T))
        m.d2.bias.copy_(_t(w["d2_b"]))
    return m


MODELS = {"ribeiro_cnn": lambda: load_ribeiro(S.make_cnn_weights()), "jones2020_lstm": lambda: load_lstm(S.make_lstm_weights())}


def to_input(x, name):
    x = torch.from_numpy(x)
    return x.transpose(1, 2).contiguous() if name == "ribeiro_cnn" else x


def saliency(model, x, t):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).gather(1, t[:, None]).sum(), x)
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", required=True, help="comma list of check and MODEL:saliency / ribeiro_cnn:train")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batches", default="ribeiro_cnn:saliency=256,jones2020_lstm:saliency=64")
    ap.add_argument("--train-batch", type=int, default=128)
    a = ap.parse_args()
    batches = dict(kv.split("=") for kv in a.batches.split(","))
    common = dict(framework="pytorch", versions={"torch": torch.__version__},
                  threads={"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()})
    for task in a.tasks.split(","):
        if task == "check":
            xc, _ = S.make_beats(**S.CHECK_BEATS)
            for name, make in MODELS.items():
                with torch.no_grad():
                    S.emit(**common, model=name, task="check", logits=make().eval()(to_input(xc, name)).numpy().tolist())
            continue
        name, kind = task.split(":")
        model = MODELS[name]()
        if kind == "saliency":
            model.eval()
            for p in model.parameters():  # as a saliency tool: no weight gradients
                p.requires_grad_(False)
            b = int(batches.get(task, 256))
            x, t = S.make_beats(b)
            x, t = to_input(x, name), torch.from_numpy(t).long()
            secs, first = S.time_calls(lambda: saliency(model, x, t), a.repeats, a.warmup)
            method = "torch.autograd.grad (eager)"
        else:
            b = a.train_batch
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x, y = S.make_beats(b, seed=5)
            x, y = to_input(x, name), torch.from_numpy(y).long()

            def step():
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss.item()

            secs, first = S.time_calls(step, a.repeats, a.warmup + 1)
            method = "eager train step (Adam, CE)"
        S.emit(**common, model=name, task=kind, method=method, batch=b, seconds=secs, first_call_s=first)
        S.log(f"[torch] {task} B={b}: {b / np.median(secs):.1f} beats/s")


if __name__ == "__main__":
    main()
