"""`mozart --help` and every subcommand's `--help` describe every argument:
a new user learns the commands from the CLI, not from its source."""

from __future__ import annotations

import argparse

import pytest

from mozart_etl.ops.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def test_every_command_and_argument_has_help() -> None:
    parser = build_parser()
    commands = _subcommands(parser)
    assert {"run", "pools", "new-tenant", "validate", "backfill"} <= set(commands)
    described = {a.dest: a.help for a in _subcommands_action(parser)._choices_actions}
    undocumented = []
    for name, sub in {"mozart": parser, **commands}.items():
        if name != "mozart" and not (described.get(name) or "").strip():
            undocumented.append(f"{name} (the command itself)")
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                undocumented.append(
                    f"{name} {'/'.join(action.option_strings) or action.dest}"
                )
    assert not undocumented, undocumented


def _subcommands_action(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


@pytest.mark.parametrize("command", [None, "run", "new-tenant", "backfill"])
def test_help_prints_and_exits_zero(
    command: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    if command == "run":
        assert "2026-11-17..2026-11-19" in out and "tenant_id" in out
    if command is None:
        assert "--tenants-dir" in out and "run " in out
