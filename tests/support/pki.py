"""Throwaway certificates for TLS tests, made with Debian's openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(d: Path, cn: str = "b2bua-test") -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for the loopback addresses in play (127.0.0.1-8), and its key."""
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=" + ",".join(f"IP:127.0.0.{i}" for i in range(1, 9)),
                    "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
    return cert, key
