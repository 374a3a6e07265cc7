"""Meter drivers as data (TOML files in this package) and the engine that applies them."""

from readers.drivers.engine import Driver, FieldSpec, apply_driver, find_driver, load_drivers

__all__ = ["Driver", "FieldSpec", "apply_driver", "find_driver", "load_drivers"]
