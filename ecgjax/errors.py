"""Exceptions with messages that name the file and what is wrong."""

from __future__ import annotations


class EcgjaxError(Exception):
    """Base class: errors a user can act on (the CLI prints them without a traceback)."""


class DataNotFoundError(EcgjaxError):
    """A database is not on disk and could not be downloaded."""


class RecordError(EcgjaxError):
    """A WFDB record is missing, truncated, garbled or unusable."""

    def __init__(self, record: str, problem: str):
        super().__init__(f"record {record}: {problem}")
        self.record = record
        self.problem = problem


class ChecksumError(RecordError):
    """A record file does not match PhysioNet's SHA256SUMS.txt."""


class ConfigError(EcgjaxError):
    """An unknown name, key or wrong type in a configuration."""
