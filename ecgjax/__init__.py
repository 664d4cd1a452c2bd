"""ecgjax: interpretable ECG beat classification in JAX.

Importing ``ecgjax`` is cheap: subpackages (``ecgjax.data``, ``ecgjax.models``,
``ecgjax.train``, ``ecgjax.attribution``, ``ecgjax.analysis``) are imported on
demand, and wfdb, orbax and matplotlib only inside the functions that use them.
"""

__version__ = "0.1.0"
