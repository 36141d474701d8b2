from hypothesis import given
from hypothesis import strategies as st

from domain.codes import (
    individual_number_check_digit,
    is_valid_individual_number,
    is_valid_municipality_code,
    municipality_check_digit,
)
from domain.reference_data import MUNICIPALITIES_FILE, read_rows


def test_municipality_codes_from_the_domain_reference() -> None:
    for code in ["141003", "271004", "011002", "131016", "131121", "401307", "281000"]:
        assert is_valid_municipality_code(code), code
    assert not is_valid_municipality_code("141004")
    assert not is_valid_municipality_code("14100")
    assert not is_valid_municipality_code("14100a")


def test_every_municipality_in_the_reference_data_has_a_valid_code() -> None:
    rows = read_rows(MUNICIPALITIES_FILE, {"code"})
    codes = [row["code"] for row in rows]
    assert len(codes) == 1918
    assert all(is_valid_municipality_code(c) for c in codes)


def test_individual_number_check_digit_known_value() -> None:
    # 12345678901 → weights from the right: worked by hand, r = 3, so check = 11 − 3 = 8.
    assert individual_number_check_digit("12345678901") == 8
    assert is_valid_individual_number("123456789018")
    assert not is_valid_individual_number("123456789011")


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_exactly_one_check_digit_is_valid(body: str) -> None:
    valid = [d for d in "0123456789" if is_valid_individual_number(body + d)]
    assert valid == [str(individual_number_check_digit(body))]


@given(st.text(alphabet="0123456789", min_size=5, max_size=5))
def test_municipality_check_digit_is_a_digit(body: str) -> None:
    assert 0 <= municipality_check_digit(body) <= 9


@given(st.lists(st.one_of(st.text(alphabet="0123456789", min_size=12, max_size=12),
                          st.text(max_size=13), st.none()), max_size=50))
def test_vectorised_check_agrees_with_the_rule(numbers: list[str | None]) -> None:
    from domain.codes import valid_individual_numbers

    assert valid_individual_numbers(numbers) == [n is not None and is_valid_individual_number(n) for n in numbers]
