"""Exception hierarchy of specfusion.

Every error the library raises on purpose derives from :class:`SpecfusionError`, so a
script can catch the whole family with one ``except``. Each subclass names one kind of
problem; messages always say *which* file, material or element was wrong and *what* was
wrong with it.

::

    SpecfusionError
    ├── InputFileError          a user's file cannot be read or has bad content
    │   └── SpectrumFileError   a spectrum file (XANES or PXRD) is malformed
    ├── SpectrumError           a spectrum is valid as a file but unusable (edge missing, ...)
    │   └── WrongElementError   the spectrum's edge belongs to another element
    ├── ElementError            an unknown element symbol
    ├── DisorderedStructureError  a structure has partial occupancies (site labels undefined)
    ├── ChargeBalanceError      a formula / set of oxidation states cannot be balanced
    ├── SnapshotError           a snapshot is missing, malformed or fails its checksums
    │   └── ChecksumError       a snapshot file's SHA-256 does not match the manifest
    ├── SimulationError         an external simulator (FEFF10, CHGNet, ...) failed
    ├── DataSourceError         a remote data source (Materials Project) failed
    │   └── MissingAPIKeyError  no Materials Project API key was given
    └── ConfigurationError      an invalid option (unknown profile, preset, ...)
"""

from __future__ import annotations

__all__ = [
    "ChargeBalanceError",
    "ChecksumError",
    "ConfigurationError",
    "DataSourceError",
    "DisorderedStructureError",
    "ElementError",
    "InputFileError",
    "MissingAPIKeyError",
    "SimulationError",
    "SnapshotError",
    "SpecfusionError",
    "SpectrumError",
    "SpectrumFileError",
    "WrongElementError",
]


class SpecfusionError(Exception):
    """Base class of every error raised on purpose by specfusion."""


class InputFileError(SpecfusionError, ValueError):
    """A user-supplied file cannot be read or its content is invalid."""


class SpectrumFileError(InputFileError):
    """A XANES or PXRD file is malformed (columns, NaN, non-monotonic axis, ...)."""


class SpectrumError(SpecfusionError, ValueError):
    """A spectrum is readable but cannot be used (for example the edge is outside it)."""


class WrongElementError(SpectrumError):
    """A spectrum's absorption edge does not belong to the element it is declared for."""


class ElementError(SpecfusionError, ValueError):
    """An element symbol is unknown or not supported by a model."""


class DisorderedStructureError(SpecfusionError, ValueError):
    """A structure has partially occupied sites, for which site labels are undefined."""


class ChargeBalanceError(SpecfusionError, ValueError):
    """No charge-balanced composition exists for the given elements and oxidation states."""


class SnapshotError(SpecfusionError):
    """A data snapshot is missing, malformed or inconsistent with its manifest."""


class ChecksumError(SnapshotError):
    """A snapshot file's SHA-256 checksum or size differs from its manifest entry."""


class SimulationError(SpecfusionError, RuntimeError):
    """An external simulation (FEFF10, CHGNet relaxation, ...) failed."""


class DataSourceError(SpecfusionError, RuntimeError):
    """A remote data source (the Materials Project API) failed or returned bad data."""


class MissingAPIKeyError(DataSourceError):
    """No Materials Project API key was found."""


class ConfigurationError(SpecfusionError, ValueError):
    """An option has an invalid value (unknown profile, preset, task, ...)."""
