"""Self-contained HTML reports (figures embedded) and a Markdown summary.

Build a :class:`Report` from sections of text, tables and matplotlib figures,
then ``write(out_dir)``: ``report.html`` needs nothing beside it (figures are
inline PNG data URIs) and ``summary.md`` holds the same tables as text.
"""

from ecgjax.report.html import Report, Section

__all__ = ["Report", "Section"]
