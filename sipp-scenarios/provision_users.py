#!/usr/bin/env python3
"""Create N telecommuter users through the REST API and write a SIPp injection file for calling their DIDs.

Stdlib only, so a load tester needs nothing but Python. Each user gets the business number FIRST_DID + i,
extension 3000 + i, and (unless --mode off) on-demand telecommuter mode with the number FIRST_MOBILE + i.
The injection file (SEQUENTIAL) has one line per user: ``DID;CALLER;`` for ``uac_call_csv.xml``.
With --credentials, a second file gets ``user_id;token;business_number;extension;telecommuter_number`` per
user: the per-user API tokens the load drivers (callback_driver.py, keepconnected_driver.py) act with, as a
user's own portal or app would. It holds secrets, so it is written readable by its owner only.

    python3 provision_users.py --count 50 --out users.csv          # bundled config, token from ../var
    python3 provision_users.py --count 20 --out users.csv --credentials creds.csv
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path


def call(base: str, token: str, method: str, path: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from None


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default="", help="admin token; default: ../var/admin-token")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--first-did", type=int, default=493012340000, help="E.164 digits without '+'")
    ap.add_argument("--first-mobile", type=int, default=491711000000)
    ap.add_argument("--first-extension", type=int, default=3000)
    ap.add_argument("--caller", default="4940111222", help="calling number written to the injection file")
    ap.add_argument("--mode", choices=("on-demand", "keep-connected", "off"), default="on-demand")
    ap.add_argument("--call-waiting", action="store_true")
    ap.add_argument("--no-voicemail", action="store_true")
    ap.add_argument("--out", default="users.csv")
    ap.add_argument("--credentials", default="", metavar="FILE",
                    help="also write user_id;token;business_number;extension;telecommuter_number per user")
    args = ap.parse_args()
    token = args.token or (here.parent / "var" / "admin-token").read_text().strip()

    lines = ["SEQUENTIAL"]
    creds: list[str] = []
    for i in range(args.count):
        did, mobile = f"+{args.first_did + i}", f"+{args.first_mobile + i}"
        created = call(args.api, token, "POST", "/v1/users", {
            "name": f"Load User {i}", "extension": str(args.first_extension + i), "business_number": did,
            "call_waiting": args.call_waiting, "voicemail": not args.no_voicemail})
        user = created["user"]
        assert isinstance(user, dict)
        if args.mode != "off":
            updated = call(args.api, token, "PUT", f"/v1/users/{user['id']}/telecommuter",
                           {"mode": args.mode, "number": mobile})
            user = updated["user"]
            assert isinstance(user, dict)
        lines.append(f"{did};{args.caller};")
        creds.append(f"{user['id']};{created['token']};{user['business_number']};{user['extension']};"
                     f"{user['telecommuter_number']}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    if args.credentials:
        path = Path(args.credentials)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("\n".join(creds) + "\n")
        print(f"credentials file {path}", file=sys.stderr)
    print(f"{args.count} users created; injection file {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
