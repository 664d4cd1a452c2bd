"""MIT-BIH beats under the protocols researchers compare against.

Public API::

    from ecgjax import data
    beats = data.load_beats(data.protocols.get("jones2020"))
    split = data.make_split("holdout", beats.y, beats.record, seed=0)
"""

from ecgjax.data import protocols
from ecgjax.data.dataset import BeatSet, load_beats
from ecgjax.data.splits import Split, balance, check_patient_disjoint, make_split

__all__ = ["BeatSet", "Split", "balance", "check_patient_disjoint", "load_beats", "make_split", "protocols"]
