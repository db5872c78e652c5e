"""`mozart`: check tenants, generate dbt sources, build manifests, make demo data.

Every command reads tenants through the registry (`config/registry.py`), as
the DAG factory does: a tenant is valid here exactly when Airflow builds it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from mozart_etl.config.environments import Environment
from mozart_etl.config.loader import tenants_dir
from mozart_etl.config.registry import TenantEntry, load_all, valid_tenant
from mozart_etl.core.errors import ConfigError, MozartError

log = logging.getLogger("mozart")
Parser = argparse.ArgumentParser


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
    """Generate dbt sources, mart contracts and mapped models from tenant.yaml,
    and the dbt project's fixed files where a tenant lacks them (never
    overwritten); `--check` only reports stale or missing files."""
    from mozart_etl.dbt.mapping import stale_generated
    from mozart_etl.dbt.project import project_files
    from mozart_etl.dbt.sources import generated_files, sync_file

    stale = 0
    for entry in registry(args.tenants_dir):
        if entry.error is not None:
            return 1
        folder, tenant = entry.folder, entry.valid_config()
        for path, content in project_files(folder, tenant.tenant_id).items():
            if path.exists():
                continue
            stale += 1
            if not args.check:
                sync_file(path, content, check=False)
            verb = "is missing" if args.check else "written"
            log.info("tenant %s: %s %s", tenant.tenant_id, path, verb)
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
    """Build every tenant's dbt manifest (for LoadMode.DBT_MANIFEST), or only
    the named tenants'."""
    from mozart_etl.dbt.manifest import build_manifest

    failures = 0
    for entry in registry(args.tenants_dir):
        if args.tenant_ids and entry.tenant_id not in args.tenant_ids:
            continue
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
    from mozart_etl.ops.scaffold import new_tenant

    folder = new_tenant(args.tenant_id, args.tenants_dir)
    tenant = valid_tenant(folder.name, folder.parent)
    for path, content in generated_files(folder, tenant).items():
        sync_file(path, content, check=False)
    build_manifest(folder, tenant)
    log.info(
        "next: export AIRFLOW_CONN_%s='postgresql://user:password@host:5432/db' "
        "(the plant's database; or edit `source` in %s), then `mozart check %s` "
        "and `mozart run %s <day>`; a source with other names: adapt `tables` or "
        "map them (docs/mapping.md), then `mozart validate` and `mozart sync`",
        (tenant.source.conn_id or f"{tenant.tenant_id}_source").upper(),
        folder / "tenant.yaml",
        tenant.tenant_id,
        tenant.tenant_id,
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


def cmd_run(args: argparse.Namespace) -> int:
    """Run a tenant's production days through Airflow on this machine, as
    `make demo` does (dag.test, one day after the other); exit 1 naming the
    first day that failed and its failed tasks."""
    import os

    from mozart_etl.ops.run_days import (
        build_manifests,
        check_days,
        parse_days,
        prepare_airflow,
        render,
        run_days,
    )

    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    days = parse_days(args.days)
    check_days(tenant, days)  # before minutes of manifests and Airflow
    if args.tenants_dir is not None:  # the DAG folder reads the same tenants
        os.environ["MOZART_TENANTS_DIR"] = str(args.tenants_dir.resolve())
    if not args.skip_manifests:
        build_manifests([tenant.tenant_id], args.tenants_dir)
    prepare_airflow()
    results = run_days(tenant, days)
    sys.stdout.write(render(results))
    return 0


def cmd_pools(args: argparse.Namespace) -> int:
    """Print the Airflow pools every valid tenant needs, as the JSON file
    `airflow pools import` reads (`make up` imports them)."""
    from mozart_etl.ops.pools import pools_json, required_pools

    entries = registry(args.tenants_dir)
    tenants = [e.valid_config() for e in entries if e.error is None]
    sys.stdout.write(pools_json(required_pools(tenants)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print a tenant's run ledger for a production day (default: the latest)."""
    from mozart_etl.ops.report import render_report

    tenant = valid_tenant(args.tenant_id, args.tenants_dir)
    sys.stdout.write(render_report(tenant, args.date))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Remove files killed attempts left (extract folders without a manifest,
    Iceberg files no snapshot references), older than a grace period."""
    from mozart_etl.ops.sweep import sweep_tenant

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
    """Every command and argument, each with its help (`mozart <command> -h`)."""
    parser = argparse.ArgumentParser(prog="mozart", description=__doc__)
    parser.add_argument(
        "--tenants-dir",
        type=Path,
        default=None,
        help="the folder of tenant folders (default: MOZART_TENANTS_DIR, "
        "else tenants/ in the project)",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="<command>", help="one of:"
    )

    def command(name: str, handler: Callable[[argparse.Namespace], int]) -> Parser:
        doc = handler.__doc__ or ""
        sub = commands.add_parser(name, help=doc.split("\n\n")[0], description=doc)
        sub.set_defaults(run=handler)
        return sub

    command("validate", cmd_validate)
    sync = command("sync", cmd_sync)
    sync.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file is stale",
    )
    manifests = command("manifests", cmd_manifests)
    manifests.add_argument(
        "tenant_ids", nargs="*", metavar="tenant_id", help="only these tenants"
    )
    scaffold = command("new-tenant", cmd_new_tenant)
    scaffold.add_argument(
        "tenant_id",
        help="the new tenant's id: lower case letters, digits and _ (names the DAG)",
    )
    render = command("render", cmd_render)
    render.add_argument(
        "--target",
        choices=["duckdb", "trino"],
        default="trino",
        help="the SQL dialect to compile for (default: trino)",
    )
    render.add_argument(
        "--out",
        type=Path,
        default=Path("target-render"),
        help="folder for the compiled SQL, one subfolder per tenant",
    )
    config = command("config", cmd_config)
    config.add_argument("tenant_id", help="the tenant to show")
    config.add_argument(
        "--env",
        choices=[env.value for env in Environment],
        default=None,
        help="the environment to resolve for (default: MOZART_ENV, else local)",
    )
    check = command("check", cmd_check)
    check.add_argument("tenant_id", help="the tenant whose source to check")
    check.add_argument(
        "--sample-rows",
        type=int,
        default=1_000_000,
        help="key and cursor checks read at most this many rows (the latest)",
    )
    run = command("run", cmd_run)
    run.add_argument("tenant_id", help="the tenant to run")
    run.add_argument(
        "days",
        help="a production day (2026-11-19) or a range, both ends included "
        "(2026-11-17..2026-11-19)",
    )
    run.add_argument(
        "--skip-manifests",
        action="store_true",
        help="do not check generated files and rebuild the dbt manifest first",
    )
    command("pools", cmd_pools)
    backfill = command("backfill", cmd_backfill)
    backfill.add_argument("tenant_id", help="the tenant to backfill")
    backfill.add_argument("first", type=date.fromisoformat, help="first day")
    backfill.add_argument("last", type=date.fromisoformat, help="last day")
    backfill.add_argument(
        "--reprocess-behavior",
        choices=["none", "failed", "completed"],
        default="none",
        help="days that already have a run: skip (none), rerun failed ones, "
        "or rerun all (completed)",
    )
    report = command("report", cmd_report)
    report.add_argument("tenant_id", help="the tenant whose ledger to print")
    report.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        help="the production day (default: the latest in the ledger)",
    )
    sweep = command("sweep", cmd_sweep)
    sweep.add_argument("tenant_id", help="the tenant whose lake to sweep")
    sweep.add_argument(
        "--older-than-hours",
        type=float,
        default=24,
        help="only files older than this (an attempt still writing is younger)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    demo = command("demo-source", cmd_demo_source)
    demo.add_argument("path", type=Path, help="the SQLite file to write (replaced)")
    demo.add_argument(
        "--seed", type=int, default=20261119, help="random seed: same seed, same rows"
    )
    demo.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiplies the number of lots (benchmarks use 1000+)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except MozartError as exc:  # the CLI's boundary: report, exit non-zero
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
