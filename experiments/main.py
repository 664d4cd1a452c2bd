"""The main job (``make run``): extract every protocol's beats and print their summaries.

Later stages (training, attribution, the report) are added here as they land.
"""

from __future__ import annotations

import argparse
import json
import logging


def main() -> None:
    from ecgjax.data.cli import format_summary, summarise

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default="runs/main", help="work folder for the outputs")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    import pathlib

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for proto in ("jones2020", "jones2020_code", "aami"):
        s = summarise(proto, data_dir=args.data_dir)
        print(format_summary(s), end="\n\n")
        summaries[proto] = s
    (out / "data_summary.json").write_text(json.dumps(summaries, indent=2))
    print(f"wrote {out / 'data_summary.json'}")


if __name__ == "__main__":
    main()
