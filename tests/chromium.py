"""Headless Chromium for the report tests: dump the rendered DOM and take a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",
]


def find_chromium() -> str:
    """The browser binary, or skip (fail on CI, which installs it in .ci/run)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("CI must install chromium (.ci/run does) for the report rendering tests")
    pytest.skip("chromium not installed (apt-get install chromium) - report rendering not checked")


def render(html: Path, workdir: Path, size=(1000, 1400)):
    """Returns (rendered DOM text, screenshot as float RGB array [H, W, 3])."""
    import matplotlib.image as mpimg

    chrome = find_chromium()
    url = Path(html).resolve().as_uri()
    common = [chrome, *FLAGS, f"--user-data-dir={workdir / 'chromium-profile'}"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    shot = workdir / "screenshot.png"
    subprocess.run([*common, f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}", url], capture_output=True, timeout=180)
    return dom, mpimg.imread(shot)[..., :3]


def figure_problems(dom: str) -> list[str]:
    """What is wrong with the figures of a rendered report (its DOM from :func:`render`):
    a caption used twice, or a figure with a panel that shows neither data nor a reason
    (``data-empty-panels``, written from ``plotting.empty_panels``; -1 = unknown)."""
    import collections
    import html
    import re

    caps = [html.unescape(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", dom, re.S)]
    out = [f"caption used {n} times: {c!r}" for c, n in collections.Counter(caps).items() if n > 1]
    figs = re.findall(r"<figure id=\"fig-([^\"]*)\" data-empty-panels=\"(-?\d+)\"", dom)
    if len(figs) != len(caps):
        out.append(f"{len(caps)} captions but {len(figs)} figures with a panel count")
    out += [f"figure {name}: {n} empty panel(s)" for name, n in figs if n != "0"]
    return out
