"""An approximation of the individual inhabitant tax (個人住民税) used to fill the synthetic tax
register. Not the statutory calculation (which needs every deduction of the person); it keeps the
shape: a non-taxable threshold, a 10 % income levy on taxable income, the adjustment deduction and
the flat per-capita levy.
"""

from __future__ import annotations

from dataclasses import dataclass

# 非課税限度額 of a single person in a 1級地 municipality: total income of at most 450,000 yen.
EXEMPT_INCOME_LIMIT_YEN = 450_000
BASIC_DEDUCTION_YEN = 430_000  # 基礎控除 (住民税)
SOCIAL_INSURANCE_SHARE = 0.15  # 社会保険料控除, as a share of income
INCOME_LEVY_RATE = 0.10  # 所得割: 6 % municipal + 4 % prefectural
ADJUSTMENT_DEDUCTION_YEN = 2_500  # 調整控除, typical amount
PER_CAPITA_LEVY_YEN = 5_000  # 均等割 including the 1,000 yen surcharge (復興特別税, then 森林環境税)


@dataclass(frozen=True)
class Assessment:
    income_yen: int
    taxable_income_yen: int
    tax_yen: int
    tax_exempt: bool


def assess(income_yen: int) -> Assessment:
    """Taxable income (rounded down to 1,000 yen) and tax (to 100 yen) for a total income."""
    income = max(0, int(income_yen))
    taxable = max(0, int(income * (1 - SOCIAL_INSURANCE_SHARE)) - BASIC_DEDUCTION_YEN) // 1000 * 1000
    if income <= EXEMPT_INCOME_LIMIT_YEN:
        return Assessment(income, taxable, 0, True)
    income_levy = max(0, int(taxable * INCOME_LEVY_RATE) // 100 * 100 - (ADJUSTMENT_DEDUCTION_YEN if taxable else 0))
    return Assessment(income, taxable, income_levy + PER_CAPITA_LEVY_YEN, False)
