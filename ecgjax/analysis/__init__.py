"""Analysis of attribution maps: 0.1 s segments around R, per-class profiles, group comparisons, figures.

Pure numpy/scipy; matplotlib only inside ``ecgjax.analysis.plotting`` functions.
|.|, ReLU and normalisation of maps are decided here (the methods return signed maps).
"""

from ecgjax.analysis.attribution_profiles import AttributionProfiles, profile_attributions, profile_run
from ecgjax.analysis.leads import LeadMatrix, class_lead_matrix, lead_relevance
from ecgjax.analysis.compare import Comparison, benjamini_hochberg, compare_groups, correct_vs_incorrect, mistaken_vs_class
from ecgjax.analysis.profiles import Profiles, class_profiles, weighted_median
from ecgjax.analysis.segments import Segments, segment_values
from ecgjax.analysis.transforms import TRANSFORMS, transform_maps
from ecgjax.analysis.waves import wave_labels, wave_masks, wave_values

__all__ = [
    "AttributionProfiles", "Comparison", "LeadMatrix", "Profiles", "Segments", "TRANSFORMS", "benjamini_hochberg", "class_lead_matrix",
    "class_profiles", "compare_groups", "correct_vs_incorrect", "lead_relevance", "mistaken_vs_class", "profile_attributions", "profile_run",
    "segment_values", "transform_maps", "wave_labels", "wave_masks", "wave_values", "weighted_median",
]
