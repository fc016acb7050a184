"""What the importable pjsua2 module was compiled with, read without starting an endpoint (``b2bua version``)."""

from __future__ import annotations

from importlib import metadata

import pjsua2 as pj

from b2bua.sip.types import BuildLimits

# PyPI wheels (no marker of ours) are compiled with these limits (PJSUA_MAX_ACC 8, a 64-handle select ioqueue)
PYPI_MAX_ACCOUNTS, PYPI_IOQUEUE_MAX_HANDLES = 8, 64


def read_build_limits() -> BuildLimits:
    """Limits of the pjsua2 module actually importable, without starting an endpoint.

    ``maxCalls``/``maxMediaPorts`` default to the compiled PJSUA_MAX_CALLS/PJSUA_MAX_CONF_PORTS, so they are
    read from the library itself; the rest comes from the marker our build script writes into the module.
    """
    cfg = pj.EpConfig()
    marker: dict[str, int] = getattr(pj, "__b2bua_limits__", {})
    build = getattr(pj, "__b2bua_build__", "pypi-wheel")
    return BuildLimits(
        max_calls=int(cfg.uaConfig.maxCalls),
        max_conf_ports=int(cfg.medConfig.maxMediaPorts),
        max_accounts=int(marker.get("PJSUA_MAX_ACC", PYPI_MAX_ACCOUNTS)),
        ioqueue_max_handles=int(marker.get("PJ_IOQUEUE_MAX_HANDLES", PYPI_IOQUEUE_MAX_HANDLES)),
        pjsip_version=pjsip_version(),
        build=str(build),
    )


def pjsip_version() -> str:
    """The installed distribution's version (a source build is named ``pjsua2``, the PyPI wheel ``pjsua2-python``)."""
    for dist in ("pjsua2", "pjsua2-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def has_ipv6() -> bool:
    """Whether the module was compiled with PJ_HAS_IPV6 (our build's marker says; pjlib's default, and so the PyPI
    wheel's, is without): pjsua refuses an account with IPv6 media otherwise, with a bare PJ_EINVAL."""
    marker: dict[str, int] = getattr(pj, "__b2bua_limits__", {})
    return bool(marker.get("PJ_HAS_IPV6", 0))
