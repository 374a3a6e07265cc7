"""VIF and VIFE tables of EN 13757-3: primary, FB and FD extensions, combinable VIFEs.

Every table is built once at import into a dict keyed by the code with the extension bit
cleared, so the decoder does one lookup per byte. Scaled quantities carry the power of ten
that turns the raw integer into the unit named (``Vif.exponent``); counts, identifiers and
flags carry ``exponent=None`` and decode to plain ``int``.
"""

from __future__ import annotations

import dataclasses

TIME_UNITS = ("s", "min", "h", "d")
BATTERY_UNITS = ("h", "d", "month", "year")


@dataclasses.dataclass(frozen=True, slots=True)
class Vif:
    """What a value information field means: quantity, unit and the power-of-ten scale."""

    quantity: str
    unit: str
    exponent: int | None = 0
    time_point: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Vife:
    """A combinable VIFE: a modifier name, a scale change, a unit override or a time point."""

    modifier: str
    exponent: int = 0
    unit: str | None = None
    time_point: bool = False


def _span(
    table: dict[int, Vif], start: int, count: int, quantity: str, unit: str, bias: int
) -> None:
    """Fill ``count`` codes from ``start`` whose low bits n give the scale 10^(n + bias)."""
    for n in range(count):
        table[start + n] = Vif(quantity, unit, n + bias)


def _durations(table: dict[int, Vif], start: int, quantity: str, units: tuple[str, ...]) -> None:
    """Fill four codes from ``start`` whose low two bits select the time unit."""
    for n, unit in enumerate(units):
        table[start + n] = Vif(quantity, unit, 0)


def _primary() -> dict[int, Vif]:
    """Return the primary VIF table (Table 10), codes 0x00-0x7A."""
    table: dict[int, Vif] = {}
    _span(table, 0x00, 8, "energy", "Wh", -3)
    _span(table, 0x08, 8, "energy", "J", 0)
    _span(table, 0x10, 8, "volume", "m3", -6)
    _span(table, 0x18, 8, "mass", "kg", -3)
    _durations(table, 0x20, "on_time", TIME_UNITS)
    _durations(table, 0x24, "operating_time", TIME_UNITS)
    _span(table, 0x28, 8, "power", "W", -3)
    _span(table, 0x30, 8, "power", "J/h", 0)
    _span(table, 0x38, 8, "flow", "m3/h", -6)
    _span(table, 0x40, 8, "flow", "m3/min", -7)
    _span(table, 0x48, 8, "flow", "m3/s", -9)
    _span(table, 0x50, 8, "mass_flow", "kg/h", -3)
    _span(table, 0x58, 4, "flow_temperature", "C", -3)
    _span(table, 0x5C, 4, "return_temperature", "C", -3)
    _span(table, 0x60, 4, "temperature_difference", "K", -3)
    _span(table, 0x64, 4, "external_temperature", "C", -3)
    _span(table, 0x68, 4, "pressure", "bar", -3)
    table[0x6C] = Vif("date", "", None, time_point=True)
    table[0x6D] = Vif("datetime", "", None, time_point=True)
    table[0x6E] = Vif("hca_units", "", None)
    _durations(table, 0x70, "averaging_duration", TIME_UNITS)
    _durations(table, 0x74, "actuality_duration", TIME_UNITS)
    table[0x78] = Vif("fabrication_no", "", None)
    table[0x79] = Vif("enhanced_id", "", None)
    table[0x7A] = Vif("bus_address", "", None)
    table[0x7E] = Vif("any", "", None)
    table[0x7F] = Vif("manufacturer_vif", "", None)
    return table


def _fb() -> dict[int, Vif]:
    """Return the first extension table (VIF 0xFB, Table 12), scaled to base units."""
    table: dict[int, Vif] = {}
    _span(table, 0x00, 2, "energy", "Wh", 5)
    _span(table, 0x02, 2, "reactive_energy", "VArh", 3)
    _span(table, 0x08, 2, "energy", "J", 8)
    _span(table, 0x0C, 4, "energy", "cal", 5)
    _span(table, 0x10, 2, "volume", "m3", 2)
    _span(table, 0x14, 4, "reactive_power", "VAr", 0)
    _span(table, 0x18, 2, "mass", "kg", 5)
    _span(table, 0x1A, 2, "relative_humidity", "%", -1)
    table[0x20] = Vif("volume", "ft3", 0)
    table[0x21] = Vif("volume", "ft3", -1)
    _span(table, 0x28, 2, "power", "W", 5)
    table[0x2A] = Vif("phase_voltage_voltage", "deg", -1)
    table[0x2B] = Vif("phase_voltage_current", "deg", -1)
    _span(table, 0x2C, 4, "frequency", "Hz", -3)
    _span(table, 0x30, 2, "power", "J/h", 8)
    _span(table, 0x34, 4, "apparent_power", "VA", 0)
    _span(table, 0x58, 4, "flow_temperature", "F", -3)
    _span(table, 0x5C, 4, "return_temperature", "F", -3)
    _span(table, 0x60, 4, "temperature_difference", "F", -3)
    _span(table, 0x64, 4, "external_temperature", "F", -3)
    _span(table, 0x70, 4, "temperature_limit", "F", -3)
    _span(table, 0x74, 4, "temperature_limit", "C", -3)
    _span(table, 0x78, 8, "max_power_cumulation_count", "W", -3)
    return table


_FD_PLAIN = {
    0x08: "access_number",
    0x09: "medium",
    0x0A: "manufacturer",
    0x0B: "parameter_set_id",
    0x0C: "model_version",
    0x0D: "hardware_version",
    0x0E: "firmware_version",
    0x0F: "software_version",
    0x10: "customer_location",
    0x11: "customer",
    0x12: "access_code_user",
    0x13: "access_code_operator",
    0x14: "access_code_system_operator",
    0x15: "access_code_developer",
    0x16: "password",
    0x17: "error_flags",
    0x18: "error_mask",
    0x1A: "digital_output",
    0x1B: "digital_input",
    0x1C: "baud_rate",
    0x1D: "response_delay_time",
    0x1E: "retry",
    0x1F: "remote_control",
    0x20: "first_storage_no",
    0x21: "last_storage_no",
    0x22: "storage_block_size",
    0x3A: "dimensionless",
    0x60: "reset_counter",
    0x61: "cumulation_counter",
    0x62: "control_signal",
    0x63: "day_of_week",
    0x64: "week_number",
    0x65: "time_point_of_day_change",
    0x66: "parameter_activation_state",
    0x67: "special_supplier_information",
    0x71: "rf_level",
    0x72: "daylight_saving",
    0x73: "listening_window_management",
    0x75: "meter_stop_count",
    0x76: "manufacturer_container",
}


def _fd() -> dict[int, Vif]:
    """Return the second extension table (VIF 0xFD, Table 14)."""
    table = {code: Vif(name, "", None) for code, name in _FD_PLAIN.items()}
    _span(table, 0x00, 4, "credit", "currency", -3)
    _span(table, 0x04, 4, "debit", "currency", -3)
    _durations(table, 0x24, "storage_interval", TIME_UNITS)
    table[0x28] = Vif("storage_interval", "month", 0)
    table[0x29] = Vif("storage_interval", "year", 0)
    _durations(table, 0x2C, "duration_since_readout", TIME_UNITS)
    table[0x30] = Vif("tariff_start", "", None, time_point=True)
    for n, unit in enumerate(TIME_UNITS[1:], start=1):
        table[0x30 + n] = Vif("tariff_duration", unit, 0)
    _durations(table, 0x34, "tariff_period", TIME_UNITS)
    table[0x38] = Vif("tariff_period", "month", 0)
    table[0x39] = Vif("tariff_period", "year", 0)
    _span(table, 0x40, 16, "voltage", "V", -9)
    _span(table, 0x50, 16, "current", "A", -12)
    _durations(table, 0x68, "duration_since_cumulation", BATTERY_UNITS)
    _durations(table, 0x6C, "battery_operating_time", BATTERY_UNITS)
    table[0x70] = Vif("battery_change_datetime", "", None, time_point=True)
    table[0x74] = Vif("remaining_battery", "d", 0)
    return table


_RECORD_ERRORS = {
    0x01: "too_many_difes",
    0x02: "storage_not_implemented",
    0x03: "subunit_not_implemented",
    0x04: "tariff_not_implemented",
    0x05: "function_not_implemented",
    0x06: "data_class_not_implemented",
    0x07: "data_size_not_implemented",
    0x0B: "too_many_vifes",
    0x0C: "illegal_vif_group",
    0x0D: "illegal_vif_exponent",
    0x0E: "vif_dif_mismatch",
    0x0F: "unimplemented_action",
    0x15: "no_data",
    0x16: "data_overflow",
    0x17: "data_underflow",
    0x18: "data_error",
    0x1C: "premature_end",
}

_COMBINABLE_PLAIN = {
    0x20: "per_second",
    0x21: "per_minute",
    0x22: "per_hour",
    0x23: "per_day",
    0x24: "per_week",
    0x25: "per_month",
    0x26: "per_year",
    0x27: "per_revolution",
    0x28: "increment_per_input_pulse_0",
    0x29: "increment_per_input_pulse_1",
    0x2A: "increment_per_output_pulse_0",
    0x2B: "increment_per_output_pulse_1",
    0x2C: "per_litre",
    0x2D: "per_m3",
    0x2E: "per_kg",
    0x2F: "per_kelvin",
    0x30: "per_kwh",
    0x31: "per_gj",
    0x32: "per_kw",
    0x33: "per_kelvin_litre",
    0x34: "per_volt",
    0x35: "per_ampere",
    0x36: "times_second",
    0x37: "times_second_per_volt",
    0x38: "times_second_per_ampere",
    0x13: "reverse_compact_profile",
    0x1E: "compact_profile_with_registers",
    0x1F: "compact_profile",
    0x3A: "uncorrected",
    0x3B: "forward",
    0x3C: "backward",
    0x40: "lower_limit",
    0x41: "lower_limit_exceed_count",
    0x48: "upper_limit",
    0x49: "upper_limit_exceed_count",
    0x7E: "future_value",
    0x7F: "manufacturer_vifes",
}


def _limit_name(code: int) -> str:
    """Return the name of a limit-exceed VIFE (E1xx uf.b) from its bits."""
    which = "upper" if code & 0x08 else "lower"
    order = "last" if code & 0x04 else "first"
    edge = "end" if code & 0x01 else "begin"
    return f"{which}_limit_exceed_{order}_{edge}"


def _combinable() -> dict[int, Vife]:
    """Return the combinable (orthogonal) VIFE table (Table 15)."""
    table = {code: Vife(f"record_error_{name}") for code, name in _RECORD_ERRORS.items()}
    table.update({code: Vife(name) for code, name in _COMBINABLE_PLAIN.items()})
    table[0x00] = Vife("")
    table[0x39] = Vife("start_of", time_point=True)
    for code in (0x42, 0x43, 0x46, 0x47, 0x4A, 0x4B, 0x4E, 0x4F):
        table[code] = Vife(f"date_of_{_limit_name(code)}", time_point=True)
    for code in range(0x50, 0x60):
        which = "upper" if code & 0x08 else "lower"
        order = "last" if code & 0x04 else "first"
        unit = TIME_UNITS[code & 0x03]
        table[code] = Vife(f"duration_of_{which}_limit_exceed_{order}", unit=unit)
    for code in range(0x60, 0x68):
        order = "last" if code & 0x04 else "first"
        table[code] = Vife(f"duration_{order}", unit=TIME_UNITS[code & 0x03])
    for code in (0x6A, 0x6B, 0x6E, 0x6F):
        order = "last" if code & 0x04 else "first"
        edge = "end" if code & 0x01 else "begin"
        table[code] = Vife(f"date_of_{order}_{edge}", time_point=True)
    for n in range(8):
        table[0x70 + n] = Vife("", exponent=n - 6)
    for n in range(4):
        table[0x78 + n] = Vife(f"additive_offset_1e{n - 3}")
    table[0x7D] = Vife("", exponent=3)
    return table


PRIMARY = _primary()
FB = _fb()
FD = _fd()
COMBINABLE = _combinable()
PLAIN_TEXT = 0x7C
EXTENSION_FB = 0x7B
EXTENSION_FD = 0x7D
MANUFACTURER_VIFES = 0x7F
