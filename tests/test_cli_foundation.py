"""The CLI contract: light import, every command listed, multi-value options, error mapping."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import typer

from reid_edge.cli import COMMAND_MODULES, app, main
from reid_edge.cli_support import MultiValueCommand, expand_multi_value_args
from reid_edge.config import from_dict, load_yaml
from reid_edge.errors import ConfigError


def test_help_does_not_import_torch_or_tensorrt() -> None:
    code = (
        "import sys\n"
        "from reid_edge.cli import main\n"
        "rc = main(['--help'])\n"
        "bad = [m for m in ('torch', 'tensorrt', 'onnxruntime') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


# command names as registered (the module import_model.py registers `import`, a Python keyword)
COMMAND_NAMES = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]


def test_every_module_registers_a_command() -> None:
    assert len(COMMAND_NAMES) == len(COMMAND_MODULES) and all(COMMAND_NAMES)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMAND_NAMES:
        assert name in out, f"command {name} missing from --help"


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_has_help_with_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "reid-edge" in out and "xample" in out, f"'{name} --help' shows no example"


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_expand_multi_value_args() -> None:
    multi = {"--cameras"}
    every = {"--cameras", "--out", "--show"}
    assert expand_multi_value_args(["--cameras", "a.mp4", "b.mp4", "--out", "o"], multi, every) == [
        "--cameras", "a.mp4", "--cameras", "b.mp4", "--out", "o",
    ]
    assert expand_multi_value_args(["--cameras=a", "b", "--show"], multi, every) == [
        "--cameras", "a", "--cameras", "b", "--show",
    ]
    # a repeated flag keeps working, and `--` ends option parsing untouched
    assert expand_multi_value_args(["--cameras", "a", "--cameras", "b", "--", "x"], multi, every) == [
        "--cameras", "a", "--cameras", "b", "--", "x",
    ]
    # negative numbers are values, not options
    assert expand_multi_value_args(["--cameras", "0", "-1"], multi, every) == ["--cameras", "0", "--cameras", "-1"]


def test_multi_value_command_parses_space_separated_values() -> None:
    seen: dict[str, object] = {}
    app = typer.Typer()

    @app.command("run", cls=MultiValueCommand)
    def run(
        cameras: list[str] = typer.Option(..., "--cameras"),
        names: list[str] = typer.Option([], "--camera-names"),
        out: str = typer.Option("out", "--out"),
    ) -> None:
        seen.update(cameras=cameras, names=names, out=out)

    @app.command("other")
    def other() -> None:  # a second command so that `run` stays a sub-command
        pass

    app(["run", "--cameras", "cam1.mp4", "cam2.mp4", "--camera-names", "a", "b", "--out", "d"], standalone_mode=False)
    assert seen == {"cameras": ["cam1.mp4", "cam2.mp4"], "names": ["a", "b"], "out": "d"}


@dataclass(frozen=True)
class _Inner:
    k: int = 7
    temperature: float = 0.1


@dataclass(frozen=True)
class _Outer:
    epochs: int = 50
    backbone: str = "resnet50"
    method: _Inner = field(default_factory=_Inner)
    batch: tuple[int, int, int] = (1, 8, 32)


def test_config_unknown_key_suggests_closest(tmp_path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        from_dict(_Outer, {"epoch": 3})
    with pytest.raises(ConfigError, match="did you mean 'method.temperature'|did you mean 'temperature'"):
        from_dict(_Outer, {"method": {"temprature": 0.2}})
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(_Outer, {"epochs": "many"})


def test_config_yaml_then_flags_override(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nbackbone: resnet18\nmethod:\n  k: 4\nbatch: [1, 4, 16]\n")
    cfg = load_yaml(_Outer, path, {"epochs": 9, "backbone": None})
    assert cfg == _Outer(epochs=9, backbone="resnet18", method=_Inner(k=4), batch=(1, 4, 16))
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(_Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(_Outer, bad)


def test_exit_codes_from_commands_propagate() -> None:
    from reid_edge import cli

    probe = typer.Typer()

    @probe.command("a")
    def a() -> None:
        raise typer.Exit(3)

    @probe.command("b")
    def b() -> None:
        raise KeyboardInterrupt

    original = cli.app
    try:
        cli.app = probe
        assert cli.main(["a"]) == 3
        assert cli.main(["b"]) == 130
    finally:
        cli.app = original
