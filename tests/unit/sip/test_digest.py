"""Digest authentication of trunks: the RFC 2617 arithmetic against a known vector, challenges, stale and
forged nonces, replays, and which trunk a request is attributed to."""

from __future__ import annotations

import hashlib

import pytest

from b2bua.calls.routing import Router
from b2bua.calls.trunkauth import TrunkAuthenticator
from b2bua.ops.settings import TrunkSettings
from b2bua.sip import digest
from b2bua.sip.types import Reject

URI = "sip:4930123456@127.0.0.1:5060"


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def answer(challenge: str, user: str, password: str, *, uri: str = URI, nc: int = 1, cnonce: str = "0a4f113b",
           realm: str | None = None, method: str = "INVITE") -> str:
    """What a UAC computes (written from RFC 2617 §3.2.2, independently of the code under test)."""
    p = digest.parse_params(challenge)
    assert p is not None
    realm = realm or p["realm"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    resp = _md5(f"{ha1}:{p['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc:08x}')


def test_rfc2617_example_vector() -> None:
    # RFC 2617 §3.5: Mufasa / Circle Of Life; checks the HA1 helper and the response arithmetic we rely on
    ha1 = digest.ha1_md5("Mufasa", "testrealm@host.com", "Circle Of Life")
    ha2 = _md5("GET:/dir/index.html")
    resp = _md5(f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}")
    assert resp == "6629fae49393a05397450978507c4ef1"


def test_parse_params_quoted_unquoted_and_escapes() -> None:
    p = digest.parse_params('Digest username="a\\"b", realm="r", nc=00000001, qop=auth, uri="sip:x@y;a=b"')
    assert p == {"username": 'a"b', "realm": "r", "nc": "00000001", "qop": "auth", "uri": "sip:x@y;a=b"}
    assert digest.parse_params('Basic dXNlcjpwdw==') is None
    assert digest.parse_params('Digest username="unterminated') is None


def _auth(clock: Clock | None = None, ttl: float = 300) -> digest.DigestAuth:
    return digest.DigestAuth("b2bua", b"k" * 32, ttl, clock=clock or Clock())


def _ha1(user: str) -> str | None:
    return digest.ha1_md5("pbx", "b2bua", "s3cret") if user == "pbx" else None


def test_good_answer_passes_and_names_the_user() -> None:
    a = _auth()
    ch = a.challenge("10.0.0.1")
    assert 'realm="b2bua"' in ch and 'qop="auth"' in ch and "algorithm=MD5" in ch and "stale" not in ch
    out = a.check(answer(ch, "pbx", "s3cret"), "INVITE", URI, "10.0.0.1", _ha1)
    assert out == digest.Outcome(digest.Verdict.OK, "pbx")


@pytest.mark.parametrize("change, why", [
    ({"password": "wrong"}, "wrong response"),
    ({"user": "nobody"}, "unknown username"),
    ({"uri": "sip:premium@127.0.0.1:5060"}, "Request-URI"),
    ({"uri": "sip:127.0.0.9:5060"}, "Request-URI"),
])
def test_bad_answers_fail(change: dict[str, str], why: str) -> None:
    a = _auth()
    ch = a.challenge("10.0.0.1")
    kw = {"user": "pbx", "password": "s3cret", "uri": URI} | change
    out = a.check(answer(ch, kw["user"], kw["password"], uri=kw["uri"]), "INVITE", URI, "10.0.0.1", _ha1)
    assert out.verdict is digest.Verdict.FAILED and why in out.why


def test_uri_may_name_the_host_only_as_sipp_sends_it() -> None:
    a = _auth()
    ch = a.challenge("10.0.0.1")
    out = a.check(answer(ch, "pbx", "s3cret", uri="sip:127.0.0.1:5060"), "INVITE", URI, "10.0.0.1", _ha1)
    assert out.verdict is digest.Verdict.OK


def test_missing_or_other_realm_is_challenged_not_failed() -> None:
    a = _auth()
    assert a.check(None, "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.MISSING
    other = answer(a.challenge("10.0.0.1"), "pbx", "s3cret", realm="proxy.example")
    assert a.check(other, "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.MISSING


def test_nonce_is_bound_to_source_and_secret() -> None:
    a = _auth()
    ch = a.challenge("10.0.0.1")
    assert a.check(answer(ch, "pbx", "s3cret"), "INVITE", URI, "10.0.0.2", _ha1).verdict is digest.Verdict.FAILED
    other_node = digest.DigestAuth("b2bua", b"x" * 32, clock=Clock())
    assert other_node.check(answer(ch, "pbx", "s3cret"), "INVITE", URI, "10.0.0.1",
                            _ha1).verdict is digest.Verdict.FAILED
    same_secret = digest.DigestAuth("b2bua", b"k" * 32, clock=Clock())  # another node of the cluster
    assert same_secret.check(answer(ch, "pbx", "s3cret"), "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.OK


def test_expired_nonce_is_stale_only_with_the_right_password() -> None:
    clock = Clock()
    a = _auth(clock, ttl=60)
    ch = a.challenge("10.0.0.1")
    clock.t += 61
    assert a.check(answer(ch, "pbx", "s3cret"), "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.STALE
    assert a.check(answer(ch, "pbx", "bad"), "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.FAILED
    assert "stale=true" in a.challenge("10.0.0.1", stale=True)


def test_replay_is_refused_but_counting_up_is_not() -> None:
    a = _auth()
    ch = a.challenge("10.0.0.1")
    first = answer(ch, "pbx", "s3cret", nc=1)
    assert a.check(first, "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.OK
    again = a.check(first, "INVITE", URI, "10.0.0.1", _ha1)
    assert again.verdict is digest.Verdict.FAILED and "replayed" in again.why
    assert a.check(answer(ch, "pbx", "s3cret", nc=2), "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.OK


def test_dropping_replay_history_forces_fresh_nonces() -> None:
    clock = Clock()
    a = digest.DigestAuth("b2bua", b"k" * 32, 300, clock=clock, max_tracked=2)
    answers = []
    for i in range(3):
        clock.t += 1
        answers.append(answer(a.challenge("10.0.0.1"), "pbx", "s3cret", cnonce=f"c{i}"))
        assert a.check(answers[-1], "INVITE", URI, "10.0.0.1", _ha1).verdict is digest.Verdict.OK
    # the first nonce's history was dropped to keep the table bounded: its replay must not pass
    assert a.check(answers[0], "INVITE", URI, "10.0.0.1", _ha1).verdict is not digest.Verdict.OK


TRUNKS = [
    TrunkSettings(name="carrier", inbound_acl=["127.0.0.2/32"]),
    TrunkSettings(name="pbx", inbound_acl=["127.0.0.6/32"], auth_username="pbx", auth_password="s3cret"),
    TrunkSettings(name="roaming", auth_username="roamer", auth_ha1=digest.ha1_md5("roamer", "b2bua", "pw2")),
]


def _identify(t: TrunkAuthenticator, src: str, authz: str | None = None) -> str | Reject:
    return t.identify(src, "INVITE", URI, (("Authorization", authz),) if authz else ())


def test_trunks_by_address_by_credentials_or_both() -> None:
    t = TrunkAuthenticator(Router(TRUNKS, []), TRUNKS, "b2bua", "secret")
    assert _identify(t, "127.0.0.2") == "carrier"  # ACL only: no challenge
    for src, user, pw, trunk in (("127.0.0.6", "pbx", "s3cret", "pbx"), ("192.0.2.9", "roamer", "pw2", "roaming")):
        ch = _identify(t, src)
        assert isinstance(ch, Reject) and ch.code == 401 and ch.headers[0][0] == "WWW-Authenticate"
        assert _identify(t, src, answer(ch.headers[0][1], user, pw)) == trunk
    # the ACL trunk's credentials do not work from outside its ACL, nor the roaming ones from inside it
    ch = _identify(t, "192.0.2.9")
    assert isinstance(ch, Reject)
    bad = _identify(t, "192.0.2.9", answer(ch.headers[0][1], "pbx", "s3cret"))
    assert isinstance(bad, Reject) and (bad.code, bad.reason) == (403, "auth-failed")
    ch = _identify(t, "127.0.0.6")
    assert isinstance(ch, Reject)
    bad = _identify(t, "127.0.0.6", answer(ch.headers[0][1], "roamer", "pw2"))
    assert isinstance(bad, Reject) and bad.code == 403 and "unknown username" in bad.detail


def test_without_a_roaming_trunk_strangers_get_403_not_a_challenge() -> None:
    trunks = TRUNKS[:2]
    t = TrunkAuthenticator(Router(trunks, []), trunks, "b2bua")
    r = _identify(t, "192.0.2.9")
    assert isinstance(r, Reject) and (r.code, r.reason) == (403, "untrusted-source")


def test_password_guessing_blocks_the_source_for_a_while() -> None:
    clock = Clock()
    t = TrunkAuthenticator(Router(TRUNKS, []), TRUNKS, "b2bua", "secret", clock=clock,
                           max_failures=3, failure_window_s=60, block_s=300)

    def attempt(src: str, pw: str) -> str | Reject:
        ch = _identify(t, src)
        assert isinstance(ch, Reject) and ch.code == 401, ch
        return _identify(t, src, answer(ch.headers[0][1], "roamer", pw))

    for i in range(3):
        r = attempt("192.0.2.9", "guess")
        assert isinstance(r, Reject) and r.reason == "auth-failed"
        assert ("source blocked for 300 s" in r.detail) == (i == 2)
    blocked = _identify(t, "192.0.2.9")  # not even challenged any more
    assert isinstance(blocked, Reject) and (blocked.code, blocked.reason) == (403, "auth-blocked")
    assert attempt("192.0.2.10", "pw2") == "roaming"  # other sources are not affected
    clock.t += 301
    assert attempt("192.0.2.9", "pw2") == "roaming"  # the block expires


def test_failures_spread_over_time_do_not_block() -> None:
    clock = Clock()
    t = TrunkAuthenticator(Router(TRUNKS, []), TRUNKS, "b2bua", "secret", clock=clock,
                           max_failures=3, failure_window_s=60)
    for _ in range(5):
        ch = _identify(t, "192.0.2.9")
        assert isinstance(ch, Reject) and ch.code == 401
        r = _identify(t, "192.0.2.9", answer(ch.headers[0][1], "roamer", "typo"))
        assert isinstance(r, Reject) and r.reason == "auth-failed"
        clock.t += 31
