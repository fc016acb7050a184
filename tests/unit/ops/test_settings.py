from __future__ import annotations

from pathlib import Path

import pytest

from b2bua.ops.settings import BUNDLED_CONFIG, ConfigError, load_settings

GOOD = """
[sip]
listen_port = 5070
[[trunks]]
name = "t1"
inbound_acl = ["127.0.0.2/32"]
host = "127.0.0.3"
[[routes]]
pattern = "49.*"
trunk = "t1"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "b2bua.toml"
    p.write_text(text)
    return p


def test_bundled_config_is_valid_and_loopback_only() -> None:
    s = load_settings(BUNDLED_CONFIG)
    assert s.sip.listen_ip == "127.0.0.1" and s.http.listen_ip == "127.0.0.1"


def test_good_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert s.sip.listen_port == 5070 and s.routes[0].trunk == "t1"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B2BUA_SIP__LISTEN_PORT", "5090")
    assert load_settings(write(tmp_path, GOOD)).sip.listen_port == 5090


@pytest.mark.parametrize("text, key, reason", [
    (GOOD.replace("5070", "70000"), "sip.listen_port", "less than or equal to 65535"),
    (GOOD.replace('listen_port = 5070', 'listen_port = 5070\nlisten_prot = 1'), "sip.listen_prot",
     "Extra inputs are not permitted"),
    (GOOD.replace('"127.0.0.2/32"', '"127.0.0.300/32"'), "trunks[0].inbound_acl", "does not appear to be"),
    (GOOD.replace('pattern = "49.*"', 'pattern = "49(.*"'), "routes[0].pattern", "not a valid regular expression"),
    (GOOD.replace('trunk = "t1"', 'trunk = "nope"'), "routes[0].trunk", "no trunk named 'nope'"),
    (GOOD.replace('[sip]', '[sip]\nlisten_ip = "localhost"'), "sip.listen_ip", "does not appear to be"),
    (GOOD.replace('[sip]', '[sip]\nptime_ms = 25'), "sip.ptime_ms", "multiple of 10"),
    (GOOD.replace('[sip]', '[sip]\nptime_ms = 80'), "sip.ptime_ms", "less than or equal to 60"),
    (GOOD.replace('inbound_acl', 'auth_username = "pbx"\ninbound_acl'), "trunks[0]",
     "auth_username is set but neither auth_password nor auth_ha1"),
    (GOOD.replace('inbound_acl', 'auth_password = "pw"\ninbound_acl'), "trunks[0]",
     "auth_username is not"),
    (GOOD.replace('inbound_acl', 'auth_username = "pbx"\nauth_ha1 = "xyz"\ninbound_acl'), "trunks[0].auth_ha1",
     "should match pattern"),
    (GOOD.replace('inbound_acl', 'outbound_auth_username = "me"\noutbound_auth_password = "pw"\ninbound_acl'),
     "trunks[0]", "outbound_auth_realm go together"),
    (GOOD + '[node]\numask = "0x77"\n', "node.umask", "not an octal umask"),
    (GOOD + '[node]\numask = 0o077\n', "node.umask", "valid string"),
    (GOOD + '[node]\numask = "0700"\n', "node.umask", "deny the service's own user"),
    (GOOD + '[http]\ntrusted_proxies = ["10.0.0.300/8"]\n', "http.trusted_proxies", "does not appear to be"),
    (GOOD + '[http]\nmax_event_streams_per_user = 0\n', "http.max_event_streams_per_user", "greater than"),
])
def test_bad_values_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert str(path) in str(e.value)
    assert e.value.key == key
    assert reason in e.value.reason


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[sip\nlisten_port = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_greeting_must_be_an_8khz_mono_wav(tmp_path: Path) -> None:
    import wave

    bad = tmp_path / "g.wav"
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\0" * 44100 * 4)
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD + f'[voicemail]\ngreeting_wav = "{bad}"\n'))
    assert e.value.key == "voicemail.greeting_wav" and "8 kHz mono" in e.value.reason
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD + '[voicemail]\ngreeting_wav = "/nonexistent.wav"\n'))
    assert "file not found" in e.value.reason
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD + '[telecommuter]\nowned_numbers = ["030123"]\n'))
    assert e.value.key.startswith("telecommuter.owned_numbers")


def test_abuse_limits_and_file_modes_default_to_private_and_bounded(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert s.node.umask == "0077" and s.http.trusted_proxies == []
    assert (s.http.max_event_streams_per_user, s.http.max_event_streams) == (8, 500)
    assert (s.http.auth_max_failures, s.http.auth_block_s) == (20, 300)
    s = load_settings(write(tmp_path, GOOD + '[node]\numask = "0027"\n[http]\ntrusted_proxies = ["10.1.2.3/8"]\n'))
    assert s.node.umask == "0027" and s.http.trusted_proxies == ["10.0.0.0/8"]
