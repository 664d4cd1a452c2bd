"""The worked example in docs/adding_an_attribution_method.md runs (in a subprocess: it registers a method)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_adding_a_method_doc_runs():
    text = (ROOT / "docs" / "adding_an_attribution_method.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    code = "\n".join(blocks) + textwrap_tail
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout


textwrap_tail = """
# the analytic test the doc suggests: sd = 0 -> exactly x * W[..., target]
m0 = attr.get("gradient_shap", n=4, chunk_size=2, sd=0.0)
k = attr.row_keys(jax.random.key(1), 10)
assert np.allclose(m0(fns, x, jax.numpy.full(10, 3), k), x * W[..., 3], atol=1e-5)
assert "gradient_shap" in attr.available()
print("OK")
"""
