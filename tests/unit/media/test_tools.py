from __future__ import annotations

from pathlib import Path

from b2bua.media import g711, pcap


def test_ulaw_roundtrip_is_close() -> None:
    samples = g711.tone(1000, 0.02)
    decoded = g711.decode(g711.ulaw_encode(samples), 0)
    assert max(abs(a - b) for a, b in zip(samples, decoded, strict=True)) < 300


def test_goertzel_tells_tones_apart() -> None:
    s = g711.decode(g711.ulaw_encode(g711.tone(1700, 0.1)), 0)
    f, power = g711.dominant_tone(s, (400.0, 1000.0, 1700.0))
    assert f == 1700.0 and power > 0.8
    assert g711.goertzel_power(s, 1000.0) < 0.05
    assert g711.goertzel_power([0] * 800, 1000.0) == 0.0


def test_rtp_pcap_roundtrip(tmp_path: Path) -> None:
    payloads = [bytes([i]) * 160 for i in range(5)]
    path = tmp_path / "x.pcap"
    pcap.write_rtp_file(path, payloads, pt=0, src=("10.0.0.1", 4000), dst=("10.0.0.2", 5000))
    pkts = list(pcap.read(path))
    assert [(p.src, p.sport, p.dst, p.dport) for p in pkts] == [("10.0.0.1", 4000, "10.0.0.2", 5000)] * 5
    rtps = [pcap.parse_rtp(p.payload) for p in pkts]
    assert [r.seq for r in rtps if r] == [0, 1, 2, 3, 4]
    assert [r.payload for r in rtps if r] == payloads
    assert abs(pkts[4].ts - 0.08) < 1e-6


def test_shipped_tone_pcaps_are_what_the_generator_makes(tmp_path: Path) -> None:
    import importlib.util
    import sys

    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location("mk", root / "scripts" / "make-tone-pcaps.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["mk"] = mod
    spec.loader.exec_module(mod)
    setattr(mod, "OUT", tmp_path)  # noqa: B010 - a script module, patched for the test
    mod.main()
    for name in mod.TONES:
        assert (tmp_path / name).read_bytes() == (root / "sipp-scenarios" / "pcap" / name).read_bytes()


def test_pool_census_folds_addresses_and_numbers_out_of_pool_names() -> None:
    from perf.pool_census import kind_of

    assert kind_of("dlg0x55d1c0a8b2f0") == "dlg#"
    assert kind_of("inv0x7f6e41e00000") == "inv#"
    assert kind_of("sip:15551230001@127.0.0.2:16961") == "sip:#@#.#.#.#:#"
    assert kind_of("tsxlayer") == "tsxlayer"
    assert kind_of("med-ept") == "med-ept"
