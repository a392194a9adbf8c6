"""A setting declared once yields its schema property and its parsing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from precoro_client.declared import (
    declare,
    declare_computed,
    declare_required,
    from_config,
    integer,
    number,
    properties,
)
from precoro_client.errors import ConfigError
from singer_sdk import typing as th


def _path(value: object) -> Path:
    return Path(str(value)).expanduser()


@dataclass(frozen=True)
class Toy:
    """A settings class of every kind of declaration."""

    token: str = declare_required(kind=th.StringType, secret=True, description="The key.")
    mode: str = declare("a", kind=th.StringType, choices=("a", "b"), description="Mode.")
    tries: int = integer(5, minimum=1, maximum=20, description="Tries.")
    size: int = integer(200, choices=(10, 200), description="Size.")
    wait: float = number(60.0, exclusive_minimum=0, maximum=600, description="Wait.")
    folder: Path = declare(Path("out"), kind=th.StringType, parse=_path, description="Out.")
    home: Path = declare_computed(
        lambda: Path("/computed"), kind=th.StringType, parse=_path, description="Home."
    )
    flag: bool = declare(False, kind=th.BooleanType, parse=bool, description="Flag.")


def test_the_schema_carries_defaults_ranges_choices_and_secrets():
    schema = properties(Toy).to_dict()
    props = schema["properties"]
    assert list(props) == ["token", "mode", "tries", "size", "wait", "folder", "home", "flag"]
    assert schema["required"] == ["token"]
    assert props["token"]["secret"] is True
    assert props["mode"] == {
        "type": ["string", "null"],
        "default": "a",
        "enum": ["a", "b"],
        "description": "Mode.",
    }
    assert props["tries"]["minimum"] == 1
    assert props["tries"]["maximum"] == 20
    assert props["size"]["enum"] == [10, 200]
    assert props["wait"]["exclusiveMinimum"] == 0
    assert props["wait"]["default"] == 60  # a whole float is shown as an integer
    assert type(props["wait"]["default"]) is int
    assert props["folder"]["default"] == "out"
    assert "default" not in props["home"]  # computed at run time
    assert props["flag"]["default"] is False


def test_from_config_parses_and_falls_back_to_defaults():
    toy = from_config(Toy, {"token": "t", "tries": "3.0", "wait": "2.5", "other": 1})
    assert toy == Toy(token="t", tries=3, wait=2.5)
    assert type(toy.tries) is int
    assert from_config(Toy, {"token": "t", "mode": "", "folder": None}).folder == Path("out")
    assert from_config(Toy, {"token": "t"}).home == Path("/computed")
    assert from_config(Toy, {"token": "t", "folder": "~/x"}).folder == Path.home() / "x"


@pytest.mark.parametrize(
    ("name", "value"),
    [("mode", "c"), ("tries", 0), ("tries", 2.5), ("size", 50), ("wait", 0), ("wait", "")],
)
def test_from_config_refuses_a_bad_value_naming_it(name, value):
    with pytest.raises(ConfigError) as info:
        from_config(Toy, {"token": "t", name: value})
    assert info.value.setting == name
