"""Analysis of attribution maps: 0.1 s segments around R, per-class profiles, group comparisons, figures.

Pure numpy/scipy; matplotlib only inside ``ecgjax.analysis.plotting`` functions.
|.|, ReLU and normalisation of maps are decided here (the methods return signed maps).
"""

from ecgjax.analysis.compare import Comparison, benjamini_hochberg, compare_groups, correct_vs_incorrect, mistaken_vs_class
from ecgjax.analysis.profiles import Profiles, class_profiles, weighted_median
from ecgjax.analysis.segments import Segments, segment_values

__all__ = [
    "Comparison", "Profiles", "Segments", "benjamini_hochberg", "class_profiles", "compare_groups",
    "correct_vs_incorrect", "mistaken_vs_class", "segment_values", "weighted_median",
]
