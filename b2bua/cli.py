"""``python -m b2bua run|check-config|version``."""

from __future__ import annotations

import argparse
import sys

from b2bua import __version__
from b2bua.ops.settings import BUNDLED_CONFIG, ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b2bua", description="SIP B2BUA for telecommuter bridging")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("run", "start the B2BUA"), ("check-config", "validate a configuration file")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("-c", "--config", default=str(BUNDLED_CONFIG), help="TOML file (default: bundled)")
    sub.add_parser("version", help="print versions and the pjsua2 build's limits")
    args = p.parse_args(argv)

    if args.cmd == "version":
        print(f"b2bua {__version__}")
        try:
            from b2bua.sip.build_info import read_build_limits

            lim = read_build_limits()
            print(f"pjsua2 build: {lim.build}; max_calls={lim.max_calls} max_conf_ports={lim.max_conf_ports}"
                  f" max_accounts={lim.max_accounts} ioqueue_max_handles={lim.ioqueue_max_handles}")
        except ImportError as e:
            print(f"pjsua2: not importable ({e})")
            return 1
        return 0

    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        print(f"{args.config}: ok ({len(settings.trunks)} trunk(s), {len(settings.routes)} route(s))")
        return 0

    from b2bua.ops.logging import configure_logging

    configure_logging(settings.logging.level, settings.logging.json_output)
    import uvloop

    from b2bua.app import serve

    return uvloop.run(serve(settings, args.config))


if __name__ == "__main__":
    sys.exit(main())
