"""Progress of long stages: a rich progress bar with a rate and an ETA.

``Bar(desc, total, unit)`` is a context manager. On a terminal it draws rich's
live bar (description, bar, done/total, rate, elapsed, ETA; it disappears when
the stage ends, so the caller's summary line stays). Elsewhere (a log file, CI,
a captured stream) rich draws nothing live, so the same task's numbers, as rich
computes them, are logged as one line every ``every_s`` seconds (default
:data:`EVERY_S`).

``bar.compiling()`` marks the first, compiling call: the line says
``compiling <desc> (first call)`` and the rate is measured from the end of
that call on (compilation never shows up as "0.0 beats/s").
"""

from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

log = logging.getLogger("ecgjax.progress")

#: seconds between two logged progress lines when the output is not a terminal
EVERY_S = 10.0


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        unit = task.fields.get("unit", "it")
        return Text(f"{task.speed:,.1f} {unit}/s" if task.speed else f"? {unit}/s")


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Bar:
    """A progress bar over ``total`` items (see the module docstring).

    Args:
      desc: what runs (``"saliency"``, ``"validation"``).
      total: items to process.
      unit: the items' name in the rate (``beats``).
      every_s: log period when the output is not a terminal (None: :data:`EVERY_S`).
      enabled: False gives a bar that shows nothing (for inner loops of a stage that has its own bar).
    """

    def __init__(self, desc: str, total: int, *, unit: str = "beats", every_s: float | None = None, enabled: bool = True):
        self.desc, self.total, self.unit, self.enabled = desc, int(total), unit, enabled
        self.every_s = EVERY_S if every_s is None else every_s
        console = Console(stderr=True)
        self.live = enabled and console.is_terminal and not console.is_dumb_terminal
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
                                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                                  transient=True, disable=not self.live)
        self._task = self._progress.add_task(desc, total=self.total, unit=unit)
        self._last = time.monotonic()

    def __enter__(self) -> "Bar":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def compiling(self) -> None:
        """The next items include compiling the step (shown as such; excluded from the rate); only before the first item."""
        if self._progress.tasks[self._task].completed:
            return
        self._progress.update(self._task, description=f"compiling {self.desc} (first call)")
        self._report(force=True)

    def advance(self, n: int) -> None:
        """``n`` more items are done."""
        task = self._progress.tasks[self._task]
        if task.description != self.desc:  # the first call has returned: time the rest from here
            self._progress.reset(self._task, total=self.total, completed=task.completed + n, description=self.desc)
        else:
            self._progress.advance(self._task, n)
        self._report()

    def _report(self, force: bool = False) -> None:
        if not self.enabled or self.live:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        t = self._progress.tasks[self._task]
        if t.description != self.desc:
            log.info("%s ...", t.description)
            return
        rate = f"{t.speed:,.1f} {self.unit}/s" if t.speed else f"? {self.unit}/s"
        log.info("%s: %d/%d %s, %s, elapsed %s, ETA %s", self.desc, t.completed, self.total, self.unit, rate,
                 _fmt_s(t.elapsed), _fmt_s(t.time_remaining))
