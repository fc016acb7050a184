"""How carriers write a number of ours, derived from the numbering-plan metadata ``phonenumbers`` holds for the home
region: every reading is computed when the directory is built, so the SIP thread only strips and probes dicts.

A reading is *marked* when it says which plan it is in (``+``, an international prefix, a trunk prefix) and
*bare* otherwise (country code + number, or the national significant number alone): bare readings of two
numbers can coincide, which the directory turns into a refusal, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers

ITU_INTERNATIONAL_PREFIX = "00"  # ITU-T E.164 recommends it; carriers' interconnects send it whatever the region
_MAX_PREFIXES = 64  # an international-prefix pattern that expands to more is no list of prefixes: use the preferred one


@dataclass(frozen=True, slots=True)
class NumberingPlan:
    """What the home region's numbering plan says about writing a number."""

    region: str
    country_code: str  # "1", "49"
    international_prefixes: tuple[str, ...]  # every dialable one, e.g. ("011", "00") in NANP
    national_prefix: str  # the trunk prefix; "" where the plan has none (PL, IT)
    national_lengths: frozenset[int]  # possible lengths of a national significant number

    @classmethod
    @cache
    def for_region(cls, region: str) -> NumberingPlan:
        """Read once per region: the metadata never changes while the process runs."""
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
        if meta is None:
            raise ValueError(f"no numbering plan for region {region!r}")
        prefixes = _international_prefixes(meta.international_prefix, meta.preferred_international_prefix)
        lengths = meta.general_desc.possible_length if meta.general_desc is not None else ()
        return cls(region.upper(), str(meta.country_code), prefixes, meta.national_prefix or "",
                   frozenset(lengths or ()))

    def readings(self, e164: str) -> tuple[list[str], list[str]]:
        """The readings of an E.164 number or prefix: (marked ones and country code + number, bare national
        significant number). National forms exist only for numbers of the home country code."""
        digits = e164.removeprefix("+")
        marked = [e164, digits, *(p + digits for p in self.international_prefixes)]
        if not digits.startswith(self.country_code):
            return marked, []
        nsn = digits[len(self.country_code):]  # E.164 = country code + national significant number
        if self.national_prefix:
            marked.append(self.national_prefix + nsn)
        return marked, [nsn]


def _international_prefixes(pattern: str | None, preferred: str | None) -> tuple[str, ...]:
    """The region's international prefixes (a pattern in the metadata, e.g. Israel's carrier-selecting
    ``0(?:0|1(?:05|[2-9]))``) expanded to strings, then the ITU one; '~' (wait for a dial tone) is dropped."""
    found: list[str] = []
    if pattern:
        try:
            expanded = _expand(pattern)
        except ValueError:
            expanded = set()
        found += sorted(expanded) if 0 < len(expanded) <= _MAX_PREFIXES else []
    if preferred:
        found.append(preferred.replace("~", ""))
    found.append(ITU_INTERNATIONAL_PREFIX)
    return tuple(dict.fromkeys(p for p in found if p.isdigit()))


def _expand(pattern: str) -> set[str]:
    """Every string a finite digit pattern matches: digits, ``\\d``, ``[...]``, ``(?:a|b)``, ``?`` and ``{n}``/
    ``{n,m}``. Anything else (``*``, ``+``) raises ValueError: it is not a finite set of prefixes."""
    out, end = _alternatives(pattern, 0)
    if end != len(pattern):
        raise ValueError(f"unbalanced pattern {pattern!r}")
    return out


def _alternatives(p: str, i: int) -> tuple[set[str], int]:
    out, i = _sequence(p, i)
    while i < len(p) and p[i] == "|":
        more, i = _sequence(p, i + 1)
        out |= more
    return out, i


def _sequence(p: str, i: int) -> tuple[set[str], int]:
    out = {""}
    while i < len(p) and p[i] not in "|)":
        atom, i = _atom(p, i)
        atom, i = _quantified(p, i, atom)
        out = {a + b for a in out for b in atom}
        if len(out) > _MAX_PREFIXES:
            raise ValueError("too many strings")
    return out, i


def _atom(p: str, i: int) -> tuple[set[str], int]:
    c = p[i]
    if c.isdigit():
        return {c}, i + 1
    if p.startswith("\\d", i):
        return set("0123456789"), i + 2
    if c == "[":
        close = p.index("]", i)
        return _char_class(p[i + 1:close]), close + 1
    if c == "(":
        start = i + 3 if p.startswith("(?:", i) else i + 1
        inner, j = _alternatives(p, start)
        if j >= len(p) or p[j] != ")":
            raise ValueError(f"unbalanced pattern {p!r}")
        return inner, j + 1
    raise ValueError(f"not a finite digit pattern: {p!r}")


def _char_class(body: str) -> set[str]:
    out: set[str] = set()
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            out |= {chr(x) for x in range(ord(body[k]), ord(body[k + 2]) + 1)}
            k += 3
        else:
            out.add(body[k])
            k += 1
    if not all(ch.isdigit() for ch in out):
        raise ValueError(f"not a digit class: [{body}]")
    return out


def _quantified(p: str, i: int, atom: set[str]) -> tuple[set[str], int]:
    if i < len(p) and p[i] == "?":
        return atom | {""}, i + 1
    if i < len(p) and p[i] == "{":
        close = p.index("}", i)
        low, _, high = p[i + 1:close].partition(",")
        counts = range(int(low), int(high or low) + 1)
        out: set[str] = set()
        for n in counts:
            level = {""}
            for _ in range(n):
                level = {a + b for a in level for b in atom}
                if len(level) > _MAX_PREFIXES:
                    raise ValueError("too many strings")
            out |= level
        return out, close + 1
    return atom, i
