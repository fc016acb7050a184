"""The caller identity presented on each leg we place, and the headers that explain it to the far carrier."""

from __future__ import annotations

from dataclasses import replace

from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.users import Mode, User

ANN = User("ann", "Ann Example", "201", "+493012345678", "+491711234567", Mode.ON_DEMAND, "standard", "", False,
           0.0)
P = Presentation("b2bua.example", "")


def test_the_users_own_phone_sees_the_business_number_or_the_configured_one() -> None:
    assert P.number_for(ANN) == "+493012345678"
    assert Presentation("h", "+4930111").number_for(ANN) == "+4930111"
    assert P.toward_user(ANN, "+493098765432") == '"+493098765432" <sip:+493012345678@b2bua.example>'
    assert P.line_from(ANN) == '"Ann Example (line)" <sip:+493012345678@b2bua.example>'
    assert P.test_call_from(ANN) == '"Test call" <sip:+493012345678@b2bua.example>'
    assert Presentation("h", "+4930111").line_from(ANN) == '"Ann Example (line)" <sip:+4930111@h>'


def test_toward_the_target_the_business_number_is_asserted() -> None:
    from_uri, headers = P.toward_target(ANN)
    assert from_uri == '"Ann Example" <sip:+493012345678@b2bua.example>'
    assert headers == (("P-Asserted-Identity", '"Ann Example" <sip:+493012345678@b2bua.example>'),)


def test_privacy_withholds_the_number_but_still_asserts_it_to_the_carrier() -> None:
    from_uri, headers = P.toward_target(replace(ANN, privacy=True))
    assert from_uri == '"Anonymous" <sip:anonymous@anonymous.invalid>'
    assert dict(headers) == {"P-Asserted-Identity": '"Ann Example" <sip:+493012345678@b2bua.example>',
                             "Privacy": "id"}


def test_caller_keeps_the_display_name_without_quotes() -> None:
    assert P.caller("+493098765432", 'Bob "B" Caller') == '"Bob B Caller" <sip:+493098765432@b2bua.example>'
    assert P.caller("+493098765432", "") == "<sip:+493098765432@b2bua.example>"
    assert P.caller("", "") == "<sip:anonymous@b2bua.example>"


def test_redirected_call_keeps_the_caller_and_names_the_business_number() -> None:
    from_uri, headers = P.redirected(ANN, "+493098765432", "Bob", (), "unconditional",
                                     ["diversion", "history-info"])
    assert from_uri == '"Bob" <sip:+493098765432@b2bua.example>'
    h = dict(headers)
    assert list(h) == ["P-Asserted-Identity", "Diversion", "History-Info"]
    assert h["P-Asserted-Identity"] == from_uri
    assert h["Diversion"] == "<sip:+493012345678@b2bua.example>;reason=unconditional;counter=1;privacy=off"
    assert h["History-Info"] == ("<sip:+493012345678@b2bua.example>;index=1, "
                                 "<sip:+491711234567@b2bua.example?Reason=SIP%3Bcause%3D302>;index=1.1;mp=1")


def test_redirected_call_passes_the_inbound_identity_and_privacy() -> None:
    inbound = (("p-asserted-identity", "<sip:+493098765432@carrier>"), ("Privacy", "id"))
    _from, headers = P.redirected(ANN, "anonymous", "", inbound, "follow-me", ["diversion"])
    assert headers == (("P-Asserted-Identity", "<sip:+493098765432@carrier>"), ("Privacy", "id"),
                       ("Diversion", "<sip:+493012345678@b2bua.example>;reason=follow-me;counter=1;privacy=off"))


def test_redirect_styles_can_be_left_out() -> None:
    _from, headers = P.redirected(ANN, "+493098765432", "", (), "unconditional", ["history-info"])
    assert [n for n, _ in headers] == ["P-Asserted-Identity", "History-Info"]
    _from, headers = P.redirected(ANN, "+493098765432", "", (), "unconditional", [])
    assert [n for n, _ in headers] == ["P-Asserted-Identity"]
