"""Studies: a config of training runs, attribution methods and checks, run end to end into a report.

``run_study(load_study_config("experiments/configs/reproduce_jones2020.py:quick"), workdir)``.
"""

from ecgjax.study.config import AuditSpec, MethodSpec, RunSpec, StudyConfig, TraverseSpec, load_study_config
from ecgjax.study.pipeline import run_study

__all__ = ["AuditSpec", "MethodSpec", "RunSpec", "StudyConfig", "TraverseSpec", "load_study_config", "run_study"]
