"""TensorFlow/Keras peer: graph-mode saliency (``tf.function`` + GradientTape) and Keras ``train_on_batch``.

Run by ``benchmarks/cpu_vs_peers.py`` in a TensorFlow virtual environment
(``pip install tensorflow-cpu``); prints one JSON line per result on stdout.

  python benchmarks/peers/peer_tf.py --tasks check,ribeiro_cnn:saliency,ribeiro_cnn:train --repeats 5
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import spec as S  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


def residual_unit(x, y, filters, i):
    """Ribeiro et al. 2020 pre-activation residual unit, kernel 16, downsample 4."""
    y = layers.MaxPooling1D(S.DOWNSAMPLE, strides=S.DOWNSAMPLE, padding="same")(y)
    y = layers.Conv1D(filters, 1, padding="same", use_bias=False, name=f"b{i}_skip")(y)
    x = layers.Conv1D(filters, S.KERNEL, padding="same", use_bias=False, name=f"b{i}_conv1")(x)
    x = layers.BatchNormalization(epsilon=S.BN_EPS, name=f"b{i}_bn1")(x)
    x = layers.Dropout(S.DROPOUT)(layers.Activation("relu")(x))
    x = layers.Conv1D(filters, S.KERNEL, strides=S.DOWNSAMPLE, padding="same", use_bias=False, name=f"b{i}_conv2")(x)
    x = layers.Add()([x, y])
    y = x
    x = layers.BatchNormalization(center=False, scale=False, epsilon=S.BN_EPS, name=f"b{i}_bn2")(x)
    return layers.Dropout(S.DROPOUT)(layers.Activation("relu")(x)), y


def build_ribeiro(w):
    inp = keras.Input((S.SEQ_LEN, 1))
    x = layers.Conv1D(S.CONV0_FILTERS, S.KERNEL, padding="same", use_bias=False, name="conv0")(inp)
    x = layers.Activation("relu")(layers.BatchNormalization(epsilon=S.BN_EPS, name="bn0")(x))
    y = x
    for i, f in enumerate(S.BLOCK_FILTERS):
        x, y = residual_unit(x, y, f, i)
    model = keras.Model(inp, layers.Dense(S.N_CLASSES, name="logits")(layers.Flatten()(x)))

    def set_bn(name, d):
        model.get_layer(name).set_weights(([d["gamma"], d["beta"]] if "gamma" in d else []) + [d["mean"], d["var"]])

    model.get_layer("conv0").set_weights([w["conv0"]])
    set_bn("bn0", w["bn0"])
    for i, b in enumerate(w["blocks"]):
        for k in ("skip", "conv1", "conv2"):
            model.get_layer(f"b{i}_{k}").set_weights([b[k]])
        set_bn(f"b{i}_bn1", b["bn1"])
        set_bn(f"b{i}_bn2", b["bn2"])
    model.get_layer("logits").set_weights([w["dense_w"], w["dense_b"]])
    return model


def build_lstm(w):
    inp = keras.Input((S.SEQ_LEN, 1))
    h = layers.LSTM(S.LSTM_UNITS, name="lstm")(inp)
    h = layers.Dense(S.LSTM_DENSE, activation="relu", name="d1")(h)
    model = keras.Model(inp, layers.Dense(S.N_CLASSES, name="d2")(h))
    model.get_layer("lstm").set_weights([w["kernel"], w["recurrent"], w["bias"]])
    model.get_layer("d1").set_weights([w["d1_w"], w["d1_b"]])
    model.get_layer("d2").set_weights([w["d2_w"], w["d2_b"]])
    return model


def build_jones_cnn():
    """Jones et al. 2020's CNN as the authors' Keras code built it (ecgjax's ``jones2020_cnn``)."""
    lrelu = lambda: layers.LeakyReLU(negative_slope=S.LRELU)  # noqa: E731
    inp = keras.Input((S.SEQ_LEN, 1))
    x = lrelu()(layers.BatchNormalization(epsilon=S.BN_EPS)(layers.Conv1D(32, S.KERNEL, padding="valid")(inp)))
    x = layers.Dropout(0.2)(lrelu()(layers.BatchNormalization(epsilon=S.BN_EPS)(layers.Conv1D(32, S.KERNEL, padding="valid")(x))))
    for f in S.JONES_BLOCK_FILTERS:
        h = lrelu()(layers.BatchNormalization(epsilon=S.BN_EPS)(layers.Conv1D(f, S.KERNEL, padding="same")(x)))
        h = layers.Dropout(0.2)(lrelu()(layers.Conv1D(32, S.KERNEL, padding="same")(h)))
        x = layers.Add()([x, h])
    x = lrelu()(layers.BatchNormalization(epsilon=S.BN_EPS)(layers.Conv1D(32, S.KERNEL, padding="valid")(x)))
    return keras.Model(inp, layers.Dense(S.N_CLASSES)(layers.Flatten()(x)))


def graph_saliency(model):
    @tf.function(reduce_retracing=True)
    def sal(x, t):
        with tf.GradientTape() as tape:
            tape.watch(x)
            sel = tf.reduce_sum(tf.gather(model(x, training=False), t, axis=1, batch_dims=1))
        return tape.gradient(sel, x)

    return sal


MODELS = {"ribeiro_cnn": lambda: build_ribeiro(S.make_cnn_weights()), "jones2020_lstm": lambda: build_lstm(S.make_lstm_weights()),
          "jones2020_cnn": build_jones_cnn}
METHODS = {"saliency": "tf.function GradientTape (graph mode)", "train": "keras train_on_batch (Adam, CE)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", required=True, help="comma list of check and MODEL:saliency / MODEL:train")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batches", default="ribeiro_cnn:saliency=256,jones2020_lstm:saliency=64")
    ap.add_argument("--train-batch", type=int, default=128)
    a = ap.parse_args()
    batches = dict(kv.split("=") for kv in a.batches.split(","))
    common = dict(framework="tensorflow", versions={"tensorflow": tf.__version__, "keras": keras.__version__},
                  threads={"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                           "inter_op": tf.config.threading.get_inter_op_parallelism_threads()})
    for task in a.tasks.split(","):
        if task == "check":
            xc, _ = S.make_beats(**S.CHECK_BEATS)
            for name in ("ribeiro_cnn", "jones2020_lstm"):
                S.emit(**common, model=name, task="check", logits=MODELS[name]()(xc, training=False).numpy().tolist())
            continue
        name, kind = task.split(":")
        model = MODELS[name]()
        if kind == "saliency":
            b = int(batches.get(task, 256))
            x, t = S.make_beats(b)
            xt, tt = tf.constant(x), tf.constant(t)
            sal = graph_saliency(model)
            secs, first = S.time_calls(lambda: sal(xt, tt).numpy(), a.repeats, a.warmup)
        else:
            b = a.train_batch
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            x, y = S.make_beats(b, seed=5)
            secs, first = S.time_calls(lambda: model.train_on_batch(x, y), a.repeats, a.warmup + 1)
            common["jit_compile"] = bool(model.jit_compile)
        S.emit(**common, model=name, task=kind, method=METHODS[kind], batch=b, seconds=secs, first_call_s=first)
        S.log(f"[tf] {task} B={b}: {b / np.median(secs):.1f} beats/s")


if __name__ == "__main__":
    main()
