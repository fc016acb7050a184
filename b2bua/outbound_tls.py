"""The TLS client context of the connections the asyncio side opens itself (trunk OPTIONS pings, a restart's
BYEs), from the ``[sip]`` TLS keys: the same certificate, CA and verification the engine's TLS transport uses."""

from __future__ import annotations

import ssl

from b2bua.ops.settings import Settings
from b2bua.sip.streams import tls_client_context


def client_tls(settings: Settings) -> ssl.SSLContext | None:
    """None when no TLS listener is configured (then no trunk or dialog can be on TLS)."""
    sip = settings.sip
    if "tls" not in sip.transports:
        return None
    return tls_client_context(cert_file=sip.tls_cert_file, key_file=sip.tls_key_file, ca_file=sip.tls_ca_file,
                              verify=sip.tls_verify_server)
