"""Beat delineation throughput on whole records (``ecgjax.data.delineation.delineate``, any of its ``METHODS``), beats/s.

One JSON line per record (and method) to ``--out``: the record's beats, the wall seconds of
delineating lead 0 (neurokit2's methods: cleaning included; the record read is not timed), beats/s, and the share of beats
whose delineation passed the quality flag. Needs the MIT-BIH records (``--data-dir`` or
``$ECGJAX_DATA_DIR``).

  python benchmarks/delineation_throughput.py --records 100,119,208 --method dwt --out benchmarks/results/cpu_delineation.jsonl
"""

from __future__ import annotations

import argparse
import time

import _common as C


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default="100,119,208")
    from ecgjax.data.delineation import METHODS

    p.add_argument("--method", default="envelope", choices=list(METHODS))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--note", default="")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import numpy as np

    from ecgjax.data import locate, wfdb_io
    from ecgjax.data.beats import BEAT_SYMBOLS
    from ecgjax.data.delineation import delineate, quality

    folder = locate.find_database("mitdb", args.data_dir, download=False)
    rows = []
    for rec_name in args.records.split(","):
        rec = wfdb_io.read_record(folder, rec_name)
        r = rec.ann_samples[np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))]
        t0 = time.perf_counter()
        b = delineate(rec.signal[:, 0], r, rec.fs, method=args.method)
        s = time.perf_counter() - t0
        row = {**C.env_record(), "method": f"delineation_{args.method}", "model": None, "record": rec_name, "batch": int(len(r)),
               "beats": int(len(r)), "seconds": s, "beats_per_s": len(r) / s, "quality_share": float(quality(b, r, rec.fs).mean()),
               "note": args.note}
        C.log(f"record {rec_name}: {len(r)} beats in {s:.1f} s ({len(r) / s:.0f} beats/s), quality {row['quality_share']:.2f}")
        rows.append(row)
    C.append_jsonl(args.out, rows)


if __name__ == "__main__":
    main()
