"""The worked example in docs/adding_an_attribution_method.md runs (in this process, on a copy of the method
registry, so the method it registers is gone afterwards)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from ecgjax.attribution import registry

ROOT = Path(__file__).resolve().parents[2]


def test_adding_a_method_doc_runs(monkeypatch, capsys):
    text = (ROOT / "docs" / "adding_an_attribution_method.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    code = "\n".join(blocks) + textwrap_tail
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    module = types.ModuleType("doc_example")  # dataclasses look the defining module up in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, "docs/adding_an_attribution_method.md", "exec"), module.__dict__)
    assert "OK" in capsys.readouterr().out


textwrap_tail = """
# the analytic test the doc suggests: sd = 0 -> exactly x * W[..., target]
m0 = attr.get("gradient_shap", n=4, chunk_size=2, sd=0.0)
k = attr.row_keys(jax.random.key(1), 10)
assert np.allclose(m0(fns, x, jax.numpy.full(10, 3), k), x * W[..., 3], atol=1e-5)
assert "gradient_shap" in attr.available()
print("OK")
"""
