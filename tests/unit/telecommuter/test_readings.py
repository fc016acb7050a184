"""Numbering plans read from phonenumbers' metadata: international prefixes (a pattern there, expanded to the
prefixes a carrier dials), trunk prefixes, possible lengths; and the readings of one number."""

from __future__ import annotations

import re

import phonenumbers
import pytest

from b2bua.telecommuter.readings import NumberingPlan, _expand


@pytest.mark.parametrize(("region", "intl", "trunk", "lengths"), [
    ("US", ("011", "00"), "1", {10}),
    ("DE", ("00",), "0", set(range(4, 16))),
    ("GB", ("00",), "0", {7, 9, 10}),
    ("IL", ("00", "0105", "012", "013", "014", "015", "016", "017", "018", "019"), "0", set(range(7, 13))),
    ("PL", ("00",), "", set(range(6, 11))),
    ("IT", ("00",), "", set(range(6, 13))),
    ("RU", ("810", "00"), "8", {10, 14}),  # the preferred "8~10" without its wait-for-dial-tone mark
])
def test_plans_of_regions(region: str, intl: tuple[str, ...], trunk: str, lengths: set[int]) -> None:
    plan = NumberingPlan.for_region(region)
    assert (plan.international_prefixes, plan.national_prefix, set(plan.national_lengths)) == (intl, trunk, lengths)


def test_readings_of_a_home_number_and_of_a_foreign_one() -> None:
    plan = NumberingPlan.for_region("DE")
    assert plan.readings("+493012345678") == (
        ["+493012345678", "493012345678", "00493012345678", "03012345678"], ["3012345678"])
    assert plan.readings("+441632960001") == (["+441632960001", "441632960001", "00441632960001"], [])


def test_every_prefix_of_every_region_is_one_its_metadata_allows() -> None:
    """Each prefix the expander lists matches the region's pattern (or is the preferred one, or the ITU's)."""
    wrong = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert meta is not None
        allowed = {"00", (meta.preferred_international_prefix or "").replace("~", "")}
        prefixes = NumberingPlan.for_region(region).international_prefixes
        wrong += [(region, p) for p in prefixes if not (re.fullmatch(meta.international_prefix or "", p)
                                                         or p in allowed)]
    assert wrong == []


def test_the_expander_is_exact_and_refuses_what_is_not_finite() -> None:
    assert _expand("0(?:0|1(?:05|[2-4]))") == {"00", "0105", "012", "013", "014"}
    assert _expand("8~10".replace("~", "")) == {"810"} and _expand("00[1-2]?") == {"00", "001", "002"}
    assert _expand("0[12]{1,2}") == {"01", "02", "011", "012", "021", "022"}
    assert _expand(r"1\d") == {f"1{n}" for n in range(10)}
    for bad in ("0+", "0*", "a", "(0", "[0-9", r"0\d{2,}", r"\d{3}"):
        with pytest.raises(ValueError):
            _expand(bad)
    assert NumberingPlan.for_region("UY").international_prefixes[-1] == "00", "too many to list: the ITU prefix"
