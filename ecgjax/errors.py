"""Exceptions with messages that name the file and what is wrong.

The CLI prints any ``EcgjaxError`` as one line (``ecgjax: error: ...``) and
exits with status 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EcgjaxError(Exception):
    """Base class: errors a user can act on (the CLI prints them without a traceback)."""


class ConfigError(EcgjaxError):
    """An unknown name, key or wrong type in a configuration, a flag or a hyperparameter."""


class DataError(EcgjaxError):
    """A file is missing, unreadable, damaged or inconsistent (records, caches, run outputs)."""


class DataNotFoundError(DataError):
    """A database is not on disk and could not be downloaded."""


class RecordError(DataError):
    """A WFDB record is missing, truncated, garbled or unusable."""

    def __init__(self, record: str, problem: str):
        super().__init__(f"record {record}: {problem}")
        self.record = record
        self.problem = problem


class ChecksumError(RecordError):
    """A record file does not match PhysioNet's SHA256SUMS.txt."""


class WorkdirError(EcgjaxError):
    """A workdir is in use by another process, or belongs to something else."""
