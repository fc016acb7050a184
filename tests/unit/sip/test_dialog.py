"""Reading a dialog from the ACK that confirmed it (both directions, loose and strict routes, compact and folded
headers) and the BYE built from it: what a fresh process needs to end a dialog the dead one held."""

from __future__ import annotations

import pytest

from b2bua.sip import dialog
from b2bua.sip.types import Dialog

# an ACK as pjsip sends it for a 2xx on an outbound leg (the dialog's Request-URI and Route set)
SENT_ACK = (
    "ACK sip:far-end@127.0.0.3:25060;transport=UDP SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:15060;rport;branch=z9hG4bKPj1\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Caller, Inc" <sip:15551230001@127.0.0.1>;tag=ourtag-1\r\n'
    "To: <sip:4930123456@127.0.0.3:25060>;tag=theirtag-9\r\n"
    "Call-ID: 7a1b@127.0.0.1\r\n"
    "CSeq: 40001 ACK\r\n"
    "Route: <sip:proxy1.example;lr>,\r\n <sip:10.0.0.9:5070;lr>\r\n"
    "Content-Length:  0\r\n\r\n"
)

# the ACK a caller sends for our 2xx on an inbound leg: compact headers, a tag with no space around '='
RECEIVED_ACK = (
    "ACK sip:b2bua@127.0.0.1:15060 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 127.0.0.2:16060;branch=z9hG4bK-2\r\n"
    "f: Trunk Caller <sip:15551230001@127.0.0.2:16060>;tag=theirs\r\n"
    "t: <sip:4930123456@127.0.0.1:15060>;tag=ours\r\n"
    "i: 1-2345@127.0.0.2\r\n"
    "CSeq: 1 ACK\r\n"
    "Content-Length: 0\r\n\r\n"
)
INVITE_HEADERS = (("Contact", "<sip:15551230001@127.0.0.2:16060>"), ("Record-Route", "<sip:sbc.example:5080;lr>"),
                  ("Record-Route", "<sip:10.1.1.1;lr>, <sip:10.2.2.2;lr>"))


def test_outbound_leg_dialog_is_the_ack_we_sent() -> None:
    found = dialog.from_sent_ack(SENT_ACK, "127.0.0.9:5060")
    assert found == Dialog(
        sip_call_id="7a1b@127.0.0.1", local_uri="sip:15551230001@127.0.0.1", local_tag="ourtag-1",
        remote_uri="sip:4930123456@127.0.0.3:25060", remote_tag="theirtag-9",
        request_uri="sip:far-end@127.0.0.3:25060;transport=UDP",
        route_set=("<sip:proxy1.example;lr>", "<sip:10.0.0.9:5070;lr>"), destination="127.0.0.9:5060",
        cseq=40001 + dialog.CSEQ_HEADROOM)


def test_outbound_destination_falls_back_to_the_first_loose_route_when_pjsip_had_not_resolved_it() -> None:
    found = dialog.from_sent_ack(SENT_ACK, "")
    assert found is not None and found.destination == "proxy1.example:5060"
    no_route = SENT_ACK.replace("Route: <sip:proxy1.example;lr>,\r\n <sip:10.0.0.9:5070;lr>\r\n", "")
    found = dialog.from_sent_ack(no_route, "")
    assert found is not None and found.route_set == () and found.destination == "127.0.0.3:25060"


def test_inbound_leg_dialog_takes_tags_from_the_ack_and_target_and_routes_from_the_invite() -> None:
    found = dialog.from_received_ack(RECEIVED_ACK, INVITE_HEADERS, "", "127.0.0.2:16060")
    assert found is not None
    assert (found.local_uri, found.local_tag) == ("sip:4930123456@127.0.0.1:15060", "ours")
    assert (found.remote_uri, found.remote_tag) == ("sip:15551230001@127.0.0.2:16060", "theirs")
    assert found.sip_call_id == "1-2345@127.0.0.2"
    assert found.request_uri == "sip:15551230001@127.0.0.2:16060"
    assert found.route_set == ("<sip:sbc.example:5080;lr>", "<sip:10.1.1.1;lr>", "<sip:10.2.2.2;lr>")
    assert found.destination == "sbc.example:5080"
    # we sent nothing in this dialog yet, but pjsip starts our CSeq anywhere below 2**15
    assert found.cseq == dialog.CSEQ_FLOOR + dialog.CSEQ_HEADROOM


def test_inbound_leg_prefers_pjsuas_current_remote_target_and_else_the_invite_source() -> None:
    found = dialog.from_received_ack(RECEIVED_ACK, (), "<sip:moved@127.0.0.8:7000;transport=udp>", "127.0.0.2:1")
    assert found is not None and found.request_uri == "sip:moved@127.0.0.8:7000;transport=udp"
    assert found.destination == "127.0.0.8:7000"
    ipv6 = dialog.from_received_ack(RECEIVED_ACK, (("Contact", "<sip:a@[2001:db8::5]:5062>"),), "", "x")
    assert ipv6 is not None and ipv6.destination == "[2001:db8::5]:5062"


def test_a_strict_router_becomes_the_request_uri_and_the_target_the_last_route() -> None:
    headers = (("Contact", "<sip:caller@10.9.9.9>"), ("Record-Route", "<sip:strict.example>, <sip:p2.example;lr>"))
    found = dialog.from_received_ack(RECEIVED_ACK, headers, "", "127.0.0.2:16060")
    assert found is not None
    assert found.request_uri == "sip:strict.example"
    assert found.route_set == ("<sip:p2.example;lr>", "<sip:caller@10.9.9.9>")
    assert found.destination == "strict.example:5060"


@pytest.mark.parametrize("text", ["", "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
                                  RECEIVED_ACK.replace("t: <sip:4930123456@127.0.0.1:15060>;tag=ours\r\n", "")])
def test_unreadable_or_tagless_messages_give_no_dialog(text: str) -> None:
    assert dialog.from_sent_ack(text, "127.0.0.1:5060") is None
    assert dialog.from_received_ack(text, INVITE_HEADERS, "", "127.0.0.1:5060") is None


def test_header_values_split_on_commas_outside_quotes_and_brackets() -> None:
    assert dialog.split_values('"Doe, J" <sip:a@b;x=1,2>, <sip:c@d>;lr') == ['"Doe, J" <sip:a@b;x=1,2>',
                                                                            "<sip:c@d>;lr"]
    assert dialog.uri_and_tag("sip:a@b;tag=77") == ("sip:a@b", "77")
    assert dialog.uri_and_tag('"X" <sip:a@b;tag=inside-uri>;foo=1;tag=real') == ("sip:a@b;tag=inside-uri", "real")
    assert dialog.host_port("sips:h.example") == ("h.example", 5061), "sips: defaults to 5061 (RFC 3261 §19.1.2)"
    assert dialog.host_port("<sip:h.example;transport=tls>") == ("h.example", 5061)
    assert dialog.host_port("sip:h.example;transport=tcp") == ("h.example", 5060)
    assert dialog.split_host_port("[::1]:5060") == ("::1", 5060) and dialog.split_host_port("nope") is None


def test_bye_is_an_in_dialog_request_with_our_tags_routes_and_reason() -> None:
    found = dialog.from_sent_ack(SENT_ACK, "127.0.0.9:5060")
    assert found is not None
    text = dialog.build_bye(found, via_host="127.0.0.1", via_port=15060, branch="z9hG4bK-x",
                            user_agent="b2bua/1").decode()
    head, sep, body = text.partition("\r\n\r\n")
    assert sep and body == ""
    lines = head.split("\r\n")
    assert lines[0] == "BYE sip:far-end@127.0.0.3:25060;transport=UDP SIP/2.0"
    assert lines[1:] == [
        "Via: SIP/2.0/UDP 127.0.0.1:15060;rport;branch=z9hG4bK-x",
        "Max-Forwards: 70",
        "From: <sip:15551230001@127.0.0.1>;tag=ourtag-1",
        "To: <sip:4930123456@127.0.0.3:25060>;tag=theirtag-9",
        "Call-ID: 7a1b@127.0.0.1",
        f"CSeq: {40001 + dialog.CSEQ_HEADROOM} BYE",
        "Route: <sip:proxy1.example;lr>",
        "Route: <sip:10.0.0.9:5070;lr>",
        'Reason: SIP;cause=500;text="restart after failure"',
        "User-Agent: b2bua/1",
        "Content-Length: 0",
    ]
    v6 = dialog.build_bye(found, via_host="::1", via_port=5060, branch="b").decode()
    assert "Via: SIP/2.0/UDP [::1]:5060;rport;branch=b\r\n" in v6 and "User-Agent" not in v6


def test_responses_are_matched_by_via_branch_and_only_for_bye() -> None:
    ok = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:15060;rport=15060;branch=z9hG4bK-abc;received=1.2.3.4\r\n"
          b"CSeq: 1048607 BYE\r\nContent-Length: 0\r\n\r\n")
    assert dialog.read_response(ok) == (200, "z9hG4bK-abc")
    assert dialog.read_response(ok.replace(b"200 OK", b"481 Call/Transaction Does Not Exist")) == (481, "z9hG4bK-abc")
    assert dialog.read_response(ok.replace(b" BYE", b" INVITE")) is None
    assert dialog.read_response(b"BYE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z\r\nCSeq: 1 BYE\r\n\r\n") is None
    assert dialog.read_response(b"\xff\x00garbage") is None


@pytest.mark.parametrize(("uri", "transport"), [
    ("sip:a@h:5060", "udp"), ("sip:a@h:5060;transport=udp", "udp"), ("sip:a@h;transport=TCP", "tcp"),
    ("<sip:a@h;transport=tls;lr>", "tls"), ("sips:a@h", "tls"), ("<SIPS:a@h>;x=transport=tcp", "tls"),
    ("<sip:a@h>;transport=tcp", "udp"),  # a header parameter, not the URI's
])
def test_the_transport_a_uri_asks_for(uri: str, transport: str) -> None:
    assert dialog.uri_transport(uri) == transport


def test_in_dialog_requests_go_over_the_first_loose_routes_transport_else_the_targets() -> None:
    base = Dialog("c", "sip:l@h", "lt", "sip:r@h", "rt", "sip:r@10.0.0.9:5070;transport=tcp", (), "10.0.0.9:5070", 9)
    assert dialog.transport_of(base) == "tcp"
    routed = Dialog("c", "sip:l@h", "lt", "sip:r@h", "rt", "sip:r@10.0.0.9", ("<sips:edge.example;lr>",),
                    "edge.example:5061", 9)
    assert dialog.transport_of(routed) == "tls"
    bye = dialog.build_bye(base, via_host="127.0.0.1", via_port=40000, branch="z9hG4bK-1", transport="tcp")
    assert b"Via: SIP/2.0/TCP 127.0.0.1:40000;rport;branch=z9hG4bK-1\r\n" in bye
