"""Dialling rules: normalise a dialled number to E.164, classify it, and check it against a class of service
*before* anything is dialled. A callback service without these is a toll-fraud machine."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

Category = Literal["internal", "national", "mobile", "international", "premium", "emergency"]
CATEGORIES: tuple[Category, ...] = ("internal", "national", "mobile", "international", "premium", "emergency")

_PREMIUM = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}
_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.PAGER}
_DIAL_CHARS = re.compile(r"[\s\-./()]")


@dataclass(frozen=True, slots=True)
class Number:
    dialled: str
    normalised: str  # E.164 ("+4930...") or the extension itself
    category: Category


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str  # machine-readable: which rule refused
    message: str


@dataclass(frozen=True, slots=True)
class ClassOfService:
    name: str
    allow: frozenset[Category]
    blocked_prefixes: tuple[str, ...] = ()
    max_concurrent_calls: int = 2
    max_calls_per_minute: int = 10


class Dialplan:
    def __init__(self, home_country: str, internal_pattern: str) -> None:
        self.home_country = home_country.upper()
        self.home_code = phonenumbers.country_code_for_region(self.home_country)
        if not self.home_code:
            raise ValueError(f"unknown country {home_country!r}")
        self._internal = re.compile(internal_pattern)
        meta = phonenumbers.PhoneMetadata.metadata_for_region(self.home_country)
        self.national_prefix: str = (meta.national_prefix if meta is not None else None) or ""

    def looks_internal(self, raw: str) -> bool:
        """Matches the extension pattern (it may still be an emergency number: classify tells)."""
        return bool(self._internal.fullmatch(raw))

    def classify(self, dialled: str) -> Number | Refusal:
        raw = _DIAL_CHARS.sub("", dialled or "")
        if not raw:
            return Refusal("invalid-number", "empty number")
        if _is_emergency(raw, self.home_country):
            return Number(dialled, raw, "emergency")
        if self._internal.fullmatch(raw):
            return Number(dialled, raw, "internal")
        if raw.startswith("00"):
            raw = "+" + raw[2:]
        try:
            num = phonenumbers.parse(raw, self.home_country)
        except NumberParseException as e:
            return Refusal("invalid-number", f"not a phone number: {e}")
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        region = phonenumbers.region_code_for_number(num)
        if not phonenumbers.is_valid_number(num):
            return Refusal("invalid-number", f"{dialled!r} is not a valid number for {region or 'any region'}")
        kind = phonenumbers.number_type(num)
        if kind in _PREMIUM:
            return Number(dialled, e164, "premium")
        if num.country_code != self.home_code:
            return Number(dialled, e164, "international")
        if kind in _MOBILE:
            return Number(dialled, e164, "mobile")
        return Number(dialled, e164, "national")

    def check(self, dialled: str, cos: ClassOfService) -> Number | Refusal:
        n = self.classify(dialled)
        if isinstance(n, Refusal):
            return n
        for prefix in cos.blocked_prefixes:
            if n.normalised.startswith(prefix):
                return Refusal(f"blocked-prefix:{prefix}", f"{n.normalised} matches blocked prefix {prefix}")
        if n.category not in cos.allow:
            return Refusal(f"class-of-service:{cos.name}:{n.category}",
                           f"{n.category} numbers are not allowed for class of service {cos.name!r}")
        return n


def _is_emergency(raw: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_emergency_number(raw, region))
    except Exception:
        return False


@dataclass
class RateLimiter:
    """Sliding one-minute window of call attempts per user; time is passed in (sans-I/O)."""

    window_s: float = 60.0
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, key: str, limit: int, now: float) -> bool:
        q = self._seen.setdefault(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if len(q) >= limit:
            return False
        q.append(now)
        return True
