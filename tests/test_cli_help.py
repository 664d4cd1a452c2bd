"""`ecgjax <command> --help` lists the choices from the registries and one example per command."""

import pytest

from ecgjax.cli import build_parser


def _help(capsys, *cmd) -> str:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([*cmd, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_every_command_has_an_example(capsys):
    for cmd in (["data", "summary"], ["train"], ["summarize"], ["explain"], ["profile"], ["study"]):
        text = _help(capsys, *cmd)
        assert "example:\n  ecgjax " + cmd[0] in text, cmd


def test_choices_come_from_the_registries(capsys):
    from ecgjax import attribution, models
    from ecgjax.data import protocols
    from ecgjax.data.splits import SPLITS

    for cmd in ("explain", "profile"):
        text = _help(capsys, cmd)
        assert "methods: " + ", ".join(attribution.available()) in text
        assert "targets: label" in text
    text = _help(capsys, "train")
    assert ", ".join(models.available()) in text and ", ".join(protocols.available()) in text and ", ".join(SPLITS) in text
    text = _help(capsys, "data", "summary")
    assert "protocols: " + ", ".join(protocols.available()) in text


def test_a_registered_method_appears_in_help(capsys):
    import dataclasses

    from ecgjax.attribution import AttributionMethod
    from ecgjax.attribution.registry import temporary

    @dataclasses.dataclass(frozen=True)
    class Mine(AttributionMethod):
        kind = "gradient"

        def __call__(self, fns, x, target, key=None):
            return x

    with temporary("zz_mine", Mine):
        assert "zz_mine" in _help(capsys, "explain")
