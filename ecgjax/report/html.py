"""The report document model and its HTML / Markdown renderings."""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import io
import json
import sys
from pathlib import Path

from ecgjax.io import atomic_write_text


@dataclasses.dataclass
class Table:
    """Rows of cells under a header; ``caption`` above it."""

    header: list[str]
    rows: list[list]
    caption: str = ""


@dataclasses.dataclass
class Figure:
    """A PNG (bytes) with a caption; ``empty_panels``: panels with neither data nor a reason
    (``plotting.empty_panels``; -1 when unknown, e.g. a PNG not written by ecgjax)."""

    png: bytes
    caption: str
    name: str
    empty_panels: int = -1


def _png_empty_panels(png: bytes) -> int:
    """The count :func:`ecgjax.analysis.plotting.save_figure` stored in the PNG, or -1."""
    from PIL import Image

    from ecgjax.analysis.plotting import EMPTY_PANELS_KEY

    with Image.open(io.BytesIO(png)) as im:
        v = im.info.get(EMPTY_PANELS_KEY)
    return int(v) if v is not None else -1


@dataclasses.dataclass
class Section:
    title: str
    items: list = dataclasses.field(default_factory=list)

    def text(self, paragraph: str) -> "Section":
        self.items.append(("text", paragraph))
        return self

    def table(self, header: list[str], rows: list[list], caption: str = "") -> "Section":
        self.items.append(("table", Table(list(header), [list(r) for r in rows], caption)))
        return self

    def figure(self, fig_or_png, caption: str, name: str | None = None, dpi: int = 110) -> "Section":
        """Embed a matplotlib Figure (closed afterwards if pyplot made it) or PNG bytes / a PNG path."""
        empty = None
        if isinstance(fig_or_png, (bytes, bytearray)):
            png = bytes(fig_or_png)
        elif isinstance(fig_or_png, (str, Path)):
            png = Path(fig_or_png).read_bytes()
        else:
            from ecgjax.analysis.plotting import empty_panels

            empty = empty_panels(fig_or_png)
            buf = io.BytesIO()
            fig_or_png.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
            plt = sys.modules.get("matplotlib.pyplot")  # a caller's pyplot figure is released; none is imported here
            if plt is not None:
                plt.close(fig_or_png)
            png = buf.getvalue()
        if not png.startswith(b"\x89PNG"):
            raise ValueError(f"figure {caption!r} is not a PNG")
        n = sum(1 for k, _ in self.items if k == "figure")
        empty = _png_empty_panels(png) if empty is None else empty
        self.items.append(("figure", Figure(png, caption, name or f"{_slug(self.title)}-{n}", empty)))
        return self


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s.lower()).strip("-")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return str(v)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #333}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:0.9em;color:#555}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:0.8em}.meta{color:#666;font-size:0.9em}
"""

# Marks <body data-figures-loaded="k/n"> once every image has decoded: the
# rendering test (and a reader's browser) can check that no figure is broken.
_CHECK_JS = """
window.addEventListener('load',function(){var im=document.images,ok=0;
for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;}
document.body.setAttribute('data-figures-loaded',ok+'/'+im.length);});
"""


@dataclasses.dataclass
class Report:
    """A run's report.

    Attributes:
      title: heading.
      sections: in order.
      meta: provenance shown at the end (resolved config, versions, device, timings).
    """

    title: str
    sections: list[Section] = dataclasses.field(default_factory=list)
    meta: dict = dataclasses.field(default_factory=dict)

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    @property
    def figures(self) -> list[Figure]:
        return [v for s in self.sections for k, v in s.items if k == "figure"]

    # -- renderings -----------------------------------------------------------
    def to_html(self) -> str:
        e = html.escape
        out = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{e(self.title)}</title><style>{_CSS}</style><script>{_CHECK_JS}</script></head><body>",
            f"<h1>{e(self.title)}</h1>",
            f"<p class='meta'>Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC} by ecgjax.</p>",
        ]
        if len(self.sections) > 2:
            out.append("<ul>" + "".join(f"<li><a href='#{_slug(s.title)}'>{e(s.title)}</a></li>" for s in self.sections) + "</ul>")
        for s in self.sections:
            out.append(f"<h2 id='{_slug(s.title)}'>{e(s.title)}</h2>")
            for kind, v in s.items:
                if kind == "text":
                    out.append(f"<p>{e(v)}</p>")
                elif kind == "table":
                    rows = "".join("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in r) + "</tr>" for r in v.rows)
                    head = "".join(f"<th>{e(h)}</th>" for h in v.header)
                    cap = f"<caption>{e(v.caption)}</caption>" if v.caption else ""
                    out.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
                else:
                    b64 = base64.b64encode(v.png).decode("ascii")
                    out.append(
                        f"<figure id='fig-{e(v.name)}' data-empty-panels='{v.empty_panels}'><img alt='{e(v.caption)}' src='data:image/png;base64,{b64}'>"
                        f"<figcaption>{e(v.caption)}</figcaption></figure>"
                    )
        if self.meta:
            out.append("<h2 id='provenance'>Provenance</h2><pre>" + e(json.dumps(self.meta, indent=2, default=str)) + "</pre>")
        out.append("</body></html>")
        return "\n".join(out)

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for s in self.sections:
            out += [f"## {s.title}", ""]
            for kind, v in s.items:
                if kind == "text":
                    out += [v, ""]
                elif kind == "table":
                    if v.caption:
                        out += [f"**{v.caption}**", ""]
                    out.append("| " + " | ".join(v.header) + " |")
                    out.append("|" + "---|" * len(v.header))
                    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in v.rows]
                    out.append("")
                else:
                    out += [f"*Figure: {v.caption}* (`figures/{v.name}.png`, embedded in report.html)", ""]
        if self.meta:
            out += ["## Provenance", "", "```json", json.dumps(self.meta, indent=2, default=str), "```", ""]
        return "\n".join(out)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.html``, ``summary.md`` and ``figures/*.png`` atomically."""
        from ecgjax.io import atomic_write_bytes

        out_dir = Path(out_dir)
        for f in self.figures:
            atomic_write_bytes(out_dir / "figures" / f"{f.name}.png", f.png)
        paths = {"html": out_dir / "report.html", "markdown": out_dir / "summary.md"}
        atomic_write_text(paths["html"], self.to_html())
        atomic_write_text(paths["markdown"], self.to_markdown())
        return paths
