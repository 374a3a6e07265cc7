"""IBAN check digits, Polish sort codes and the customers' virtual accounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_engine.bank.iban import (
    check_digits,
    customer_of,
    format_iban,
    iban_is_valid,
    polish_iban_is_valid,
    sort_code_is_valid,
    virtual_iban,
)
from meterflow.errors import BillingError

# Published example account numbers of Polish banks and the IBAN registry's examples.
KNOWN_VALID = [
    "PL61109010140000071219812874",
    "PL27114020040000300201355387",
    "PL61 1090 1014 0000 0712 1981 2874",
    "GB29NWBK60161331926819",
    "DE89370400440532013000",
]
SORT_CODE = "10901014"
PREFIX = "7000"


@pytest.mark.parametrize("iban", KNOWN_VALID)
def test_published_ibans_are_valid(iban: str) -> None:
    assert iban_is_valid(iban)


@pytest.mark.parametrize(
    "iban",
    ["PL61109010140000071219812875", "PL16109010140000071219812874", "PL611090101400000712198128"],
)
def test_a_changed_or_short_iban_is_invalid(iban: str) -> None:
    assert not iban_is_valid(iban)


def test_polish_check_includes_the_sort_code() -> None:
    assert polish_iban_is_valid("PL61109010140000071219812874")
    assert sort_code_is_valid("10901014") and sort_code_is_valid("11402004")
    assert not sort_code_is_valid("10901015")


def test_check_digits_of_the_published_example() -> None:
    assert check_digits("PL", "109010140000071219812874") == "61"


def test_virtual_account_layout() -> None:
    iban = virtual_iban(SORT_CODE, PREFIX, 42)
    assert iban.startswith("PL") and len(iban) == 28
    assert iban[4:] == "10901014" + "7000" + "000000000042"
    assert format_iban(iban).split()[1] == "1090"


def test_virtual_account_needs_a_valid_sort_code_and_room() -> None:
    with pytest.raises(BillingError):
        virtual_iban("10901015", PREFIX, 1)
    with pytest.raises(BillingError):
        virtual_iban(SORT_CODE, "1234567890123", 1)


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_every_virtual_account_passes_mod_97_and_names_its_customer(customer_id: int) -> None:
    iban = virtual_iban(SORT_CODE, PREFIX, customer_id)
    rearranged = iban[4:] + "2521" + iban[2:4]
    assert int(rearranged) % 97 == 1
    assert polish_iban_is_valid(iban)
    assert customer_of(iban, SORT_CODE, PREFIX) == customer_id


@given(
    st.integers(min_value=0, max_value=10**12 - 1),
    st.integers(min_value=2, max_value=27),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_error_is_detected(customer_id: int, position: int, delta: int) -> None:
    iban = virtual_iban(SORT_CODE, PREFIX, customer_id)
    wrong = str((int(iban[position]) + delta) % 10)
    assert not iban_is_valid(iban[:position] + wrong + iban[position + 1 :])


@given(st.text(alphabet="0123456789", min_size=11, max_size=30))
def test_computed_check_digits_make_a_valid_iban(bban: str) -> None:
    assert iban_is_valid("PL" + check_digits("PL", bban) + bban)
