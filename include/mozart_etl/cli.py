"""`mozart`: check tenants, generate dbt sources, build manifests, make demo data.

Every command reads tenants through the registry (`config/registry.py`), as
the DAG factory does: a tenant is valid here exactly when Airflow builds it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

from mozart_etl.config.environments import Environment
from mozart_etl.config.loader import tenants_dir
from mozart_etl.config.registry import TenantEntry, load_all, valid_tenant
from mozart_etl.errors import ConfigError

log = logging.getLogger("mozart")


def registry(tenants: Path | None) -> list[TenantEntry]:
    """Every tenant as the DAG factory sees it (`config/registry.py`), each
    invalid one's error logged once, naming the tenant."""
    entries = load_all(tenants)
    for entry in entries:
        if entry.error is not None:
            log.error("tenant %s: %s", entry.tenant_id, entry.error)
    return entries


def cmd_validate(args: argparse.Namespace) -> int:
    """Every tenant as Airflow will load it: tenant.yaml against the schema,
    transform files, isolation across tenants; exit 1 listing every error."""
    entries = registry(args.tenants_dir)
    if not entries:
        log.error("no tenant.yaml under %s", args.tenants_dir or tenants_dir())
        return 1
    failures = sum(1 for entry in entries if entry.error is not None)
    for entry in entries:
        if entry.error is None:
            tables = len(entry.valid_config().tables)
            log.info("tenant %s: OK (%d tables)", entry.tenant_id, tables)
    log.info("%d tenant(s), %d invalid", len(entries), failures)
    return 1 if failures else 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Generate dbt sources, mart contracts and mapped models from tenant.yaml;
    `--check` only reports stale files."""
    from mozart_etl.dbt.mapping import stale_generated
    from mozart_etl.dbt.sources import generated_files, sync_file

    stale = 0
    for entry in registry(args.tenants_dir):
        if entry.error is not None:
            return 1
        folder, tenant = entry.folder, entry.valid_config()
        wanted = generated_files(folder, tenant)
        for path, content in wanted.items():
            if not sync_file(path, content, check=args.check):
                stale += 1
                verb = "is stale" if args.check else "written"
                log.info("tenant %s: %s %s", tenant.tenant_id, path, verb)
        for path in stale_generated(folder, wanted):
            stale += 1
            if not args.check:
                path.unlink()
            verb = "is no longer generated" if args.check else "removed"
            log.info("tenant %s: %s %s", tenant.tenant_id, path, verb)
    if args.check and stale:
        log.error("%d generated dbt file(s) are stale: run `mozart sync`", stale)
        return 1
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    """Build every tenant's dbt manifest (for LoadMode.DBT_MANIFEST)."""
    from mozart_etl.dbt.manifest import build_manifest

    failures = 0
    for entry in registry(args.tenants_dir):
        if entry.error is not None:
            failures += 1
            continue
        try:
            build_manifest(entry.folder, entry.valid_config())
        except ConfigError as exc:
            log.error("%s", exc)
            failures += 1
    return 1 if failures else 0


def cmd_new_tenant(args: argparse.Namespace) -> int:
    """Scaffold tenants/<id> from tenants/_template, generate its dbt files, build."""
    from mozart_etl.dbt.manifest import build_manifest
    from mozart_etl.dbt.sources import generated_files, sync_file
    from mozart_etl.scaffold import new_tenant

    folder = new_tenant(args.tenant_id, args.tenants_dir)
    tenant = valid_tenant(folder.name, folder.parent)
    for path, content in generated_files(folder, tenant).items():
        sync_file(path, content, check=False)
    build_manifest(folder, tenant)
    log.info(
        "next: point %s at the plant's database, adapt tables and staging models, "
        "then `mozart validate` and `make manifests`",
        folder / "tenant.yaml",
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Compile every tenant's models for a target offline (no warehouse needed)."""
    from mozart_etl.config.constants import DbtTarget
    from mozart_etl.dbt.render import render_models

    for entry in registry(args.tenants_dir):
        if entry.error is not None:
            return 1
        tenant = entry.valid_config()
        out = args.out / tenant.tenant_id
        rendered = render_models(entry.folder, tenant, DbtTarget(args.target), out)
        log.info("tenant %s: %d statements in %s", tenant.tenant_id, len(rendered), out)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print a tenant's resolved configuration for an environment, secrets masked."""
    from mozart_etl.config.loader import resolve_tenant
    from mozart_etl.config.show import render_config

    # Not the registry: this shows one tenant in any environment, also one that
    # does not validate in the current one, to help fix it.
    folder = (args.tenants_dir or tenants_dir()) / args.tenant_id
    sys.stdout.write(render_config(resolve_tenant(folder, env=args.env)))
    return 0


def cmd_demo_source(args: argparse.Namespace) -> int:
    """Generate the demo tenant's SQLite source."""
    from mozart_etl.demo.generate import generate_demo_source

    summary = generate_demo_source(args.path, seed=args.seed, scale=args.scale)
    log.info("demo source %s: %s", summary.path, summary.rows)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Onboarding dry-run against the live source; exit 1 on any blocker."""
    from mozart_etl.onboarding.check import check_tenant
    from mozart_etl.onboarding.render import render_check

    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    result = check_tenant(tenant, sample_rows=args.sample_rows)
    sys.stdout.write(render_check(result))
    return 0 if result.ok else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    """Print the `airflow backfill create` command for production days FROM to
    TO (both included), its bounds in the tenant's zone and day start."""
    from mozart_etl.pipeline.backfill import backfill_command

    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    command = backfill_command(
        tenant, args.first, args.last, reprocess=args.reprocess_behavior
    )
    sys.stdout.write(command + "\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print a tenant's run ledger for a production day (default: the latest)."""
    from mozart_etl.report import render_report

    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    sys.stdout.write(render_report(tenant, args.date))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Remove files killed attempts left (extract folders without a manifest,
    Iceberg files no snapshot references), older than a grace period."""
    from mozart_etl.sweep import sweep_tenant

    # Only a valid tenant: an intruder's lake folder may be another tenant's.
    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    result = sweep_tenant(
        tenant, grace=timedelta(hours=args.older_than_hours), dry_run=args.dry_run
    )
    verb = "would remove" if args.dry_run else "removed"
    lines = [f"tenant {tenant.tenant_id}: {verb} {result.total_files} files"]
    lines += [f"  extract folder {folder}" for folder in result.lake_folders]
    for table, files in result.iceberg_files.items():
        lines += [f"  {table}: {path}" for path in files]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mozart", description=__doc__)
    parser.add_argument("--tenants-dir", type=Path, default=None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("validate", help=cmd_validate.__doc__).set_defaults(
        run=cmd_validate
    )
    sync = commands.add_parser("sync", help=cmd_sync.__doc__)
    sync.add_argument("--check", action="store_true")
    sync.set_defaults(run=cmd_sync)
    commands.add_parser("manifests", help=cmd_manifests.__doc__).set_defaults(
        run=cmd_manifests
    )
    scaffold = commands.add_parser("new-tenant", help=cmd_new_tenant.__doc__)
    scaffold.add_argument("tenant_id")
    scaffold.set_defaults(run=cmd_new_tenant)
    render = commands.add_parser("render", help=cmd_render.__doc__)
    render.add_argument("--target", choices=["duckdb", "trino"], default="trino")
    render.add_argument("--out", type=Path, default=Path("target-render"))
    render.set_defaults(run=cmd_render)
    config = commands.add_parser("config", help=cmd_config.__doc__)
    config.add_argument("tenant_id")
    config.add_argument(
        "--env",
        choices=[env.value for env in Environment],
        default=None,
        help="default: MOZART_ENV, else local",
    )
    config.set_defaults(run=cmd_config)
    check = commands.add_parser("check", help=cmd_check.__doc__)
    check.add_argument("tenant_id")
    check.add_argument(
        "--sample-rows",
        type=int,
        default=1_000_000,
        help="key and cursor checks read at most this many rows (the latest)",
    )
    check.set_defaults(run=cmd_check)
    backfill = commands.add_parser("backfill", help=cmd_backfill.__doc__)
    backfill.add_argument("tenant_id")
    backfill.add_argument("first", type=date.fromisoformat, help="first day")
    backfill.add_argument("last", type=date.fromisoformat, help="last day")
    backfill.add_argument(
        "--reprocess-behavior",
        choices=["none", "failed", "completed"],
        default="none",
        help="days that already have a run: skip (none), rerun failed ones, "
        "or rerun all (completed)",
    )
    backfill.set_defaults(run=cmd_backfill)
    report = commands.add_parser("report", help=cmd_report.__doc__)
    report.add_argument("tenant_id")
    report.add_argument("--date", type=date.fromisoformat, default=None)
    report.set_defaults(run=cmd_report)
    sweep = commands.add_parser("sweep", help=cmd_sweep.__doc__)
    sweep.add_argument("tenant_id")
    sweep.add_argument(
        "--older-than-hours",
        type=float,
        default=24,
        help="only files older than this (an attempt still writing is younger)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    sweep.set_defaults(run=cmd_sweep)
    demo = commands.add_parser("demo-source", help=cmd_demo_source.__doc__)
    demo.add_argument("path", type=Path)
    demo.add_argument("--seed", type=int, default=20261119)
    demo.add_argument("--scale", type=float, default=1.0)
    demo.set_defaults(run=cmd_demo_source)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:  # the CLI's boundary: report, exit non-zero
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
