"""The `lotabots` console script: operator tasks against the configured database and AWS.

    lotabots db upgrade
    lotabots admin create --email admin@example.com [--password ... | prompted]
    lotabots keys ensure | lotabots keys rotate
    lotabots tokens integration --name grafana --days 90
    lotabots audit verify [--json] [--api URL]


    lotabots attest verify-token FILE [--jwks FILE|URL] [--audience ...] [--issuer ...]
    lotabots aiops logs FILE | aiops detect FILE.csv | aiops forecast FILE.csv --horizon H [--season S]

It reads the same environment as the functions (DATABASE_URL or the DB secret, AWS_* and
the names in lotabots.config). Exit status 0 on success, 1 on a refused request, 2 on usage
(`audit verify`: 0 valid, 1 invalid or not checkable, 2 usage). The `aiops` commands need no
configuration: they read a file and write CSV to stdout (exit 2 on a file they cannot use).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from lotabots.errors import AppError


def _db_upgrade(_args: argparse.Namespace) -> int:
    from lotabots.db import migrate

    migrate.upgrade()
    print("database is at: " + ", ".join(sorted(migrate.current_heads())))
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    from_env = os.environ.get("LOTABOTS_ADMIN_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise SystemExit("no --password given and stdin is not a terminal to prompt on")
    first = getpass.getpass("password for the admin: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("passwords differ")
    return first


def _admin_create(args: argparse.Namespace) -> int:
    from lotabots.auth import service
    from lotabots.db import migrate

    migrate.upgrade()
    password = _read_password(args)
    user, created = service.ensure_admin(args.email, password, actor="cli")
    print(f"{'created' if created else 'ensured'} admin {user.email} (id {user.id})")
    return 0


def _keys_ensure(_args: argparse.Namespace) -> int:
    from lotabots.auth import keys

    keyset = keys.ensure_signing_keys()
    print(f"signing keys ready; current kid {keyset.current.kid}, {len(keyset.previous)} previous")
    return 0


def _keys_rotate(_args: argparse.Namespace) -> int:
    from lotabots.auth import keys

    keyset = keys.rotate()
    print(f"rotated; new kid {keyset.current.kid} signs after the activation delay")
    print(f"verifiable: {', '.join(key.kid for key in keyset.keys)}")
    return 0


def _tokens_integration(args: argparse.Namespace) -> int:
    from lotabots.auth import tokens

    try:
        token = tokens.issue_integration_token(args.name, days=args.days)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from lotabots.audit import report

    if args.api:
        token = os.environ.get(report.TOKEN_VARIABLE)
        try:
            report.check_api_url(args.api)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not token:
            print(
                f"error: --api needs an auditor's or admin's access token in {report.TOKEN_VARIABLE}",
                file=sys.stderr,
            )
            return 2
        result = report.fetch(args.api, token)
    else:
        from lotabots.audit import service

        result = service.verify_log()
    print(result.model_dump_json(indent=2) if args.json else report.render(result))
    return 0 if result.valid else 1


def _read_jwks(source: str) -> dict[str, object]:
    import json
    import urllib.request

    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - an operator-given URL
            data = json.loads(response.read())
    else:
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError("JWKS is not a JSON object")
    return data


def _attest_verify_token(args: argparse.Namespace) -> int:
    """Verify an EAR attestation result offline; exit 0 affirming/warning, 3 contraindicated, 1 invalid."""
    import json

    from lotabots.attestation import ear

    with open(args.file, encoding="utf-8") as handle:
        text = handle.read().strip()
    if text.startswith("{"):
        text = str(json.loads(text).get("token", ""))
    source = args.jwks or os.environ.get("LOTABOTS_JWKS_URL")
    if not source:
        print("error: give --jwks (a file or the URL of /.well-known/jwks.json)", file=sys.stderr)
        return 2
    try:
        verified = ear.verify(text, _read_jwks(source), audience=args.audience, issuer=args.issuer)
    except (ear.TokenError, OSError, ValueError) as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    claims = verified.claims
    print(f"signature: valid (kid {verified.header.get('kid')})")
    print(f"subject:   {claims.get('lotabots.subject')}  attestation {claims.get('jti')}")
    print(f"status:    {claims.get('ear.status')}")
    for name, appraisal in (claims.get("submods") or {}).items():
        print(
            f"  {name}: {appraisal.get('ear.status')}, assurance {appraisal.get('lotabots.assurance')},"
            f" policy {appraisal.get('ear.appraisal-policy-id')}"
        )
        for claim in appraisal.get("lotabots.claims", []):
            print(f"    [{claim.get('outcome')}] {claim.get('name')}: {claim.get('detail')}")
    return 3 if claims.get("ear.status") == "contraindicated" else 0


def _aiops_logs(args: argparse.Namespace) -> int:
    """CSV LineId,EventTemplate: the template of each line of a plain text log file."""
    import csv

    from lotabots.aiops import files, logmining

    lines = files.read_lines(args.file)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["LineId", "EventTemplate"])
    writer.writerows(enumerate(logmining.parse_lines(lines), start=1))
    return 0


def _aiops_detect(args: argparse.Namespace) -> int:
    """CSV timestamp,value,anomaly_score in one causal pass."""
    import csv

    from lotabots.aiops import anomaly, files

    series = files.read_series(args.file)
    scores = anomaly.score_series(zip(series.times, series.values, strict=True))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    for stamp, value, score in zip(series.stamps, series.values, scores, strict=True):
        writer.writerow([stamp, repr(value), f"{score:.6f}"])
    return 0


def _aiops_forecast(args: argparse.Namespace) -> int:
    """CSV step,forecast for the next --horizon points."""
    import csv

    from lotabots.aiops import files, forecasting

    series = files.read_series(args.file)
    if not series.values:
        raise files.InputError(f"{args.file}: no rows to forecast from")
    predicted = forecasting.forecast(series.values, args.horizon, season=args.season)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["step", "forecast"])
    writer.writerows((step, repr(value)) for step, value in enumerate(predicted, start=1))
    return 0


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not at least 1")
    return number


def _add_aiops(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    aiops = groups.add_parser(
        "aiops", help="log templates, anomaly scores, forecasts from files"
    ).add_subparsers(dest="command", required=True)
    logs = aiops.add_parser("logs", help="CSV LineId,EventTemplate for each line of a text log file")
    logs.add_argument("file")
    logs.set_defaults(func=_aiops_logs)
    detect = aiops.add_parser("detect", help="CSV timestamp,value,anomaly_score for a timestamp,value CSV")
    detect.add_argument("file")
    detect.set_defaults(func=_aiops_detect)
    predict = aiops.add_parser("forecast", help="CSV step,forecast for a timestamp,value CSV")
    predict.add_argument("file")
    predict.add_argument("--horizon", type=_positive_int, required=True, help="points to forecast")
    predict.add_argument("--season", type=_positive_int, help="season in points (default: detected)")
    predict.set_defaults(func=_aiops_forecast)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lotabots", description="LotaBots operator commands")
    groups = parser.add_subparsers(dest="group", required=True)

    db = groups.add_parser("db", help="database schema").add_subparsers(dest="command", required=True)
    db.add_parser("upgrade", help="apply every migration (alembic upgrade heads)").set_defaults(
        func=_db_upgrade
    )

    admin = groups.add_parser("admin", help="administrators").add_subparsers(dest="command", required=True)
    create = admin.add_parser("create", help="create the admin, or make an existing account admin")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="prompted for when omitted (or read from LOTABOTS_ADMIN_PASSWORD)")
    create.set_defaults(func=_admin_create)

    keys = groups.add_parser("keys", help="JWT signing keys").add_subparsers(dest="command", required=True)
    keys.add_parser("ensure", help="create the keyset if missing; publish the JWKS").set_defaults(
        func=_keys_ensure
    )
    keys.add_parser("rotate", help="new current key; keep the old ones verifiable").set_defaults(
        func=_keys_rotate
    )

    tokens = groups.add_parser("tokens", help="machine tokens").add_subparsers(dest="command", required=True)
    integration = tokens.add_parser("integration", help="a long-lived token for an alert source")
    integration.add_argument("--name", required=True, help="e.g. grafana (lower-case, digits, . _ -)")
    integration.add_argument("--days", type=int, default=90)
    integration.set_defaults(func=_tokens_integration)

    audit = groups.add_parser("audit", help="the hash-chained audit log").add_subparsers(
        dest="command", required=True
    )
    verify = audit.add_parser(
        "verify",
        help="recompute the chain and compare it with the S3 Object Lock anchors (exit 0 valid, 1 invalid)",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON (as GET /audit/verify)")
    verify.add_argument(
        "--api",
        metavar="URL",
        help="ask a deployed API (GET URL/audit/verify) instead of reading the database and bucket directly; "
        "the access token comes from LOTABOTS_ACCESS_TOKEN",
    )
    verify.set_defaults(func=_audit_verify)

    attest = groups.add_parser("attest", help="attestation results").add_subparsers(
        dest="command", required=True
    )
    verify_token = attest.add_parser(
        "verify-token",
        help="verify an EAR attestation token offline (exit 0 ok, 3 contraindicated, 1 invalid)",
    )
    verify_token.add_argument("file", help="the token, raw or as the JSON of GET /attestations/{id}/token")
    verify_token.add_argument("--jwks", help="JWKS file or URL (default: $LOTABOTS_JWKS_URL)")
    verify_token.add_argument("--audience", default="lotabots-attestation")
    verify_token.add_argument("--issuer", help="also require this issuer")
    verify_token.set_defaults(func=_attest_verify_token)
    _add_aiops(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's final flush
    except BrokenPipeError:
        # The reader left (`| head`): the standard handling from Python's signal docs. Point stdout
        # at devnull so the interpreter's last flush cannot raise again, and exit without a word.
        _silence_stdout()
        return 1
    return code


def _silence_stdout() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (e.g. captured in a test): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        if args.group != "aiops":
            raise
        # InputError (a file we cannot use) or a ValueError from the library on bad input.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
