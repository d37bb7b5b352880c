"""`homeward keys …` and `homeward case export|import` (decision 0067): this deployment's
package keys, the keys it trusts, and case packages to and from other deployments.

Exit codes: 0 done; 1 a package refused (nothing written); 2 a usage or configuration
error (no keys, an unknown recipient, a file that cannot be read). Every message is one
line on stderr for a refusal, naming ids, codes and fingerprints, never identity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workers.cli_values import USAGE_ERROR

REFUSED = 1
CLI_ACTOR = "system:cli"


def add_arguments(sub: Any) -> None:
    keys = sub.add_parser(
        "keys", help="this deployment's case package keys, and the keys it trusts")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser(
        "generate", help="make this deployment's signing and encryption key pair (once)",
        description="Writes HOMEWARD_PACKAGE_KEY_FILE (default: package-keys.json in the "
        "data directory), mode 0600. The private keys are never printed.")
    generate.add_argument("--org", required=True,
                          help="the organisation this deployment speaks for, e.g. mission-rs")
    keys_sub.add_parser("show", help="this deployment's public keys and fingerprint, to "
                        "give to other deployments")
    trust = keys_sub.add_parser(
        "trust", help="trust another deployment's public keys (compare the fingerprint out "
        "of band first)")
    trust.add_argument("org", help="the organisation the keys belong to")
    trust.add_argument("bundle", help="the key bundle its `homeward keys show` prints")
    keys_sub.add_parser("list", help="the keys this deployment trusts, with fingerprints")

    case = sub.add_parser("case", help="case packages between deployments")
    case_sub = case.add_subparsers(dest="case_command", required=True)
    export = case_sub.add_parser(
        "export", help="write a case's package, encrypted to a trusted deployment",
        description="The case's events with their hash chain and the identity fields her "
        "consent lets the recipient see, encrypted to its key and signed with this "
        "deployment's.")
    export.add_argument("case_id")
    export.add_argument("--to", required=True, dest="recipient",
                        help="the recipient organisation (its keys trusted here)")
    export.add_argument("--out", required=True, help="the package file to write")
    imp = case_sub.add_parser(
        "import", help="import a case package signed by a trusted deployment",
        description="All of it or nothing: a package altered, not for this deployment, "
        "signed with a key not trusted here, or at odds with what is held is refused.")
    imp.add_argument("file")


async def run(engine: Any, settings: Any, args: argparse.Namespace) -> int:
    from store.packages import PackageRefused
    from store.trust import TrustError

    try:
        if args.command == "keys":
            return await _keys(engine, args)
        return await _case(engine, settings, args)
    except TrustError as error:
        print(f"homeward {args.command}: {error}", file=sys.stderr)
        return USAGE_ERROR
    except PackageRefused as refusal:
        print(f"homeward {args.command} {args.case_command}: refused ({refusal.code}): "
              f"{refusal.message}; nothing was written", file=sys.stderr)
        return USAGE_ERROR if refusal.code in ("untrusted_recipient", "no_such_case") \
            else REFUSED


async def _keys(engine: Any, args: argparse.Namespace) -> int:
    from store.packages import PublicKeys, format_fingerprint
    from store.trust import TrustStore, generate_own_keys, load_own_keys, own_key_file

    if args.keys_command == "generate":
        _check_org(args.org)
        keys = generate_own_keys(args.org, own_key_file())
        print(f"package keys generated for {keys.org} in {own_key_file()} (keep it secret; "
              "back it up: packages sent here open only with it)")
        _show(keys.public)
        return 0
    if args.keys_command == "show":
        _show(load_own_keys().public)
        return 0
    store = TrustStore(engine)
    if args.keys_command == "trust":
        _check_org(args.org)
        try:
            keys = PublicKeys.from_bundle(args.org, args.bundle)
        except ValueError as error:
            print(f"homeward keys trust: {error}", file=sys.stderr)
            return USAGE_ERROR
        added = await store.trust(keys)
        print(f"{'trusted' if added else 'already trusted'}: {keys.org}, fingerprint "
              f"{format_fingerprint(keys.fingerprint)}")
        print("this must be the fingerprint that organisation reads out to you from its "
              "`homeward keys show`; if it is not, do not exchange packages with it")
        return 0
    trusted = await store.all()
    if not trusted:
        print("no keys trusted yet (`homeward keys trust <org> <bundle>`)")
    for key in trusted:
        print(f"{key.keys.org}  {format_fingerprint(key.keys.fingerprint)}  trusted "
              f"{key.trusted_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _check_org(org: str) -> None:
    import re

    from store.trust import TrustError

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", org):
        raise TrustError("an organisation id is lower case letters, digits and '-' "
                         "(e.g. mission-rs)")


def _show(public: Any) -> None:
    from store.packages import format_fingerprint

    print(f"organisation: {public.org}")
    print(f"fingerprint:  {format_fingerprint(public.fingerprint)}")
    print(f"key bundle:   {public.bundle}")
    print("give the bundle to the other deployment; read the fingerprint to it over another "
          "channel (a call), so that it can compare before `homeward keys trust`")


async def _case(engine: Any, settings: Any, args: argparse.Namespace) -> int:
    from api.service.case_packages import CasePackages
    from store.event_store import EventStore
    from store.packages import format_fingerprint
    from store.trust import load_own_keys
    from store.vault import PersonVault
    from workers.services import master_keyring

    own = load_own_keys()
    store = EventStore(engine)
    packages = CasePackages(engine, store, PersonVault(engine, master_keyring(settings), store),
                            own)
    if args.case_command == "export":
        exported = await packages.export(args.case_id, args.recipient, actor=CLI_ACTOR)
        manifest = exported.manifest
        Path(args.out).write_bytes(exported.package)
        print(f"case {manifest.case_id} exported to {manifest.recipient_org} (key "
              f"{format_fingerprint(manifest.recipient_key_fingerprint)}): package "
              f"{manifest.package_id}, {manifest.event_count} events, chain head "
              f"{manifest.chain_head[:16]}…, identity: "
              f"{', '.join(manifest.field_groups) or 'none'}; wrote {args.out} "
              f"({len(exported.package)} bytes)")
        return 0
    try:
        data = Path(args.file).read_bytes()
    except OSError as error:
        print(f"homeward case import: {args.file}: {error.strerror}", file=sys.stderr)
        return USAGE_ERROR
    result = await packages.import_(data, actor=CLI_ACTOR)
    if result.already_imported:
        print(f"package {result.package_id} was imported already (case {result.case_id} "
              f"from {result.source_org}): nothing new written")
        return 0
    print(f"case {result.case_id} imported from {result.source_org}: package "
          f"{result.package_id}, {result.event_count} events, chain head "
          f"{result.chain_head[:16]}… verified, identity: "
          f"{', '.join(result.field_groups) or 'none'}; recorded case.imported")
    return 0
