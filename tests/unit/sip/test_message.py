"""The number a Request-URI calls: ``sip:`` users and ``tel:`` URIs (RFC 3966) as carriers send them, with number
portability parameters (RFC 4694) that name the ported-to switch, never the destination."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip.message import called_number, request_uri, uri_user


@pytest.mark.parametrize(("uri", "number"), [
    ("sip:+12025550177@127.0.0.1:5060", "+12025550177"),
    ("sip:+12025550177;npdi;rn=+12025550000@127.0.0.1;user=phone", "+12025550177"),
    ("sips:2025550177;rn=+12025550000;npdi@carrier.example;user=phone", "2025550177"),
    ("tel:+12025550177;npdi;rn=+12025550000", "+12025550177"),
    ("tel:+12025550177;rn=+12025550000;npdi", "+12025550177"),
    ("TEL:+1-202-555-0177", "+12025550177"),
    ("tel:(202)555.0177;phone-context=+1", "+12025550177"),
    ("tel:2025550177;phone-context=+1", "+12025550177"),
    ("tel:3012345678;phone-context=+49-30", "+49303012345678"),  # phone-context is a prefix, whatever it says
    ("tel:7042;phone-context=example.com", "7042"),  # a domain context: the local number as it is
    ("sip:2025550177;phone-context=+1@127.0.0.1;user=phone", "+12025550177"),
    ("tel:+4930123;ext=22;isub=1", "+4930123"),
    ("sip:%2B4930123456@127.0.0.1", "+4930123456"),
    ("<sip:201@pbx>", "201"),
    ("sip:*21#@pbx", "*21#"),
])
def test_the_dialled_number_before_any_parameter(uri: str, number: str) -> None:
    assert called_number(uri) == number


@pytest.mark.parametrize(("uri", "number"), [
    ("sip:alice@example.com", "alice"), ("sip:john.doe@example.com", "john.doe"), ("sip:127.0.0.1:5060", ""),
    ("mailto:a@b", ""), ("", ""),
])
def test_names_stay_names_and_no_user_is_empty(uri: str, number: str) -> None:
    assert called_number(uri) == number


@given(st.text("0123456789", min_size=3, max_size=15), st.sampled_from(["", ";npdi", ";rn=+15550001111;npdi"]))
def test_sip_and_tel_forms_of_one_number_agree(digits: str, params: str) -> None:
    e164 = "+" + digits
    assert called_number(f"sip:{e164}{params}@h;user=phone") == called_number(f"tel:{e164}{params}") == e164


def test_uri_user_is_unchanged_for_from_headers() -> None:
    assert uri_user('"Ann" <sip:+4930123;npdi@h>;tag=1') == "+4930123"


def test_the_request_uri_is_read_across_runs_of_spaces() -> None:
    """RFC 4475 §3.1.2.9 (lwsstart): pjsip takes such a request, so the number it calls must be read too."""
    assert request_uri("INVITE  sip:user@example.com  SIP/2.0") == "sip:user@example.com"
    assert request_uri("INVITE sip:4930123456@h SIP/2.0") == "sip:4930123456@h"
    assert request_uri("INVITE") == ""
