"""``python -m b2bua init|run|check-config|version``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from b2bua import __version__
from b2bua.ops.filemodes import apply_umask
from b2bua.ops.settings import BUNDLED_CONFIG, ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="b2bua", description="SIP B2BUA for telecommuter bridging")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("run", "start the B2BUA"), ("check-config", "validate a configuration file"),
                        ("init", "create the database for a first start (an existing one is left as it is)")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("-c", "--config", default=str(BUNDLED_CONFIG), help="TOML file (default: bundled)")
        if name == "init":
            sp.add_argument("--recreate", action="store_true",
                            help="start over with an empty database where one was deleted (it is not restored)")
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
    apply_umask(settings.node.umask)  # before anything is created: what the service writes is private
    if args.cmd == "check-config":
        print(f"{args.config}: ok ({len(settings.trunks)} trunk(s), {len(settings.routes)} route(s))")
        return 0
    if args.cmd == "init":
        return _init(settings.store.path, args.config, args.recreate)

    from b2bua.ops.logging import configure_logging

    configure_logging(settings.logging.level, settings.logging.json_output)
    import uvloop

    from b2bua.app import serve

    return uvloop.run(serve(settings, args.config))


def _init(path: Path, config: str, recreate: bool) -> int:
    from b2bua.store.opening import StoreUnusable, initialise

    try:
        print(initialise(path, f"b2bua init -c {config}", recreate=recreate))
    except StoreUnusable as e:
        print(f"b2bua init: {e.reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
