"""Every surface's selection names are the schema's: the command-line options, the ``/remove`` parameters,
the manifest columns and ``remove()``'s keywords, with each alias working wherever the field does."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import attentive_eraser
from attentive_eraser import imaging, removal
from attentive_eraser.app.requests import (
    ALL_PARAMETERS,
    OPTION_PARAMETERS,
    REMOVE_PARAMETERS,
    SELECTION_PARAMETERS,
    completed_request,
    selection_of_request,
)
from attentive_eraser.cli import main
from attentive_eraser.cli.options import selection_options
from attentive_eraser.runner.sources import MANIFEST_COLUMNS, SELECTION_COLUMNS, items_from_manifest
from attentive_eraser.selection import SELECTION_FIELDS, SelectionRequest, selection_field

SCENE = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "assets" / "demo" / "scene.png"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "selection.md"
#: every alias, with its field
ALIASED = [(field, alias) for field in SELECTION_FIELDS for alias in field.aliases]
CLICK = "9,2"
#: what a click at CLICK and a negative click at (40, 40) select, under any of their names
EXPECTED = SelectionRequest(points=((9.0, 2.0),), negative_points=((40.0, 40.0),))


def _names(surface: str) -> tuple[str, ...]:
    fields = [field for field in SELECTION_FIELDS if getattr(field, surface)]
    return (*(field.public_name for field in fields), *(alias for field in fields for alias in field.aliases))


def test_there_is_one_public_name_per_field_and_aliases_are_unique() -> None:
    names = [name for field in SELECTION_FIELDS for name in field.names]
    assert len(names) == len(set(names))
    assert selection_field("negative_points").aliases == ("exclude",)
    assert selection_field("text").public_name == "object"
    for field in SELECTION_FIELDS:
        for name in (field.name, *field.names):
            assert selection_field(name) is field


# ---- the names of each surface are the schema's


def test_the_command_line_options_are_the_schemas() -> None:
    command = click.command()(selection_options(lambda **values: None))
    params = {param.opts[0]: param for param in command.params if isinstance(param, click.Option)}
    assert [flag for flag in params if flag != "--save-mask"] == [field.option for field in SELECTION_FIELDS]
    flags = {field.name: field.option for field in SELECTION_FIELDS}
    for field in SELECTION_FIELDS:
        param = params[field.option]
        assert tuple(param.opts) == field.options
        assert param.multiple == field.repeated and param.metavar == field.metavar
        assert param.help == field.describe(flags)
    # the command the user runs has them all
    remove = main.get_command(click.Context(main), "remove")
    assert remove is not None
    flags_of_remove = {flag for param in remove.params for flag in param.opts}
    assert {flag for field in SELECTION_FIELDS for flag in field.options} <= flags_of_remove


def test_the_http_parameters_are_the_schemas() -> None:
    assert SELECTION_PARAMETERS == _names("http")
    public = tuple(field.public_name for field in SELECTION_FIELDS if field.http)
    aliases = SELECTION_PARAMETERS[len(public) :]
    # by position, a request of an earlier version keeps its meaning: the aliases come after everything
    assert ALL_PARAMETERS == (*REMOVE_PARAMETERS, *public, *OPTION_PARAMETERS, *aliases)
    assert len(set(ALL_PARAMETERS)) == len(ALL_PARAMETERS)


def test_the_manifest_columns_are_the_schemas() -> None:
    assert SELECTION_COLUMNS == _names("manifest")
    assert set(SELECTION_COLUMNS) <= MANIFEST_COLUMNS
    assert "top_k" not in MANIFEST_COLUMNS  # the schema says the manifest does not take it


def test_remove_takes_the_public_names() -> None:
    keywords = set(inspect.signature(attentive_eraser.remove).parameters)
    for field in SELECTION_FIELDS:
        if field.name != "top_k":  # remove() has no top_k yet
            assert field.public_name in keywords, field.public_name


def test_the_docs_table_is_the_schemas() -> None:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ")
    ]
    keywords = set(inspect.signature(attentive_eraser.remove).parameters)
    for field in SELECTION_FIELDS:
        row = next(row for row in rows if len(row) == 6 and row[2].startswith(f"`{field.option} "))
        _, python, cli, http, manifest, aliases = row
        public = f"`{field.public_name}`"
        assert python == (public if field.public_name in keywords else "—"), row
        assert cli.startswith(f"`{field.option} {field.metavar}`"), row
        assert (http == public) if field.http else http.startswith("—"), row
        assert (manifest == public) if field.manifest else manifest.startswith("—"), row
        assert all(f"`{alias}`" in aliases for alias in field.aliases), row
        assert field.aliases or aliases == "—", row


# ---- each alias works on each surface


class _Stop(Exception):
    """Raised instead of preparing the removal: the test has what it wanted."""


@pytest.mark.parametrize(("field", "alias"), ALIASED, ids=[alias for _, alias in ALIASED])
def test_an_alias_works_on_the_command_line(
    field: Any, alias: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[SelectionRequest | None] = []

    def prepare(request: removal.RemovalRequest, **kwargs: Any) -> None:
        seen.append(request.selection)
        raise _Stop

    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(removal, "prepare", prepare)
    monkeypatch.setattr(attentive_eraser.api, "load_pipeline", no_model)
    runner = CliRunner()
    for flag in field.options:
        args = ["remove", str(SCENE), "--point", CLICK, flag, "40,40", "-o", str(tmp_path / "out.png")]
        result = runner.invoke(main, args)
        assert isinstance(result.exception, _Stop), result.output
    assert seen == [EXPECTED] * len(field.options)
    help_text = runner.invoke(main, ["remove", "--help"]).output
    assert f"--{alias.replace('_', '-')}" in help_text


@pytest.mark.parametrize(("field", "alias"), ALIASED, ids=[alias for _, alias in ALIASED])
def test_an_alias_works_in_a_manifest(field: Any, alias: str, tmp_path: Path) -> None:
    for name in field.names:
        manifest = tmp_path / f"{name}.csv"
        manifest.write_text(f'image,points,{name}\nscene.png,"{CLICK}","40,40"\n', encoding="utf-8")
        (item,) = items_from_manifest(manifest, tmp_path / "out")
        assert item.error is None and item.selection == EXPECTED, (name, item.error)
    # JSONL: a list of clicks under the alias
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text(f'{{"image": "scene.png", "points": [[9, 2]], "{alias}": [[40, 40]]}}\n', "utf-8")
    (item,) = items_from_manifest(manifest, tmp_path / "out")
    assert item.error is None and item.selection == EXPECTED
    # a bad cell names its column; one field under two names fails its row, naming both
    manifest = tmp_path / "bad.csv"
    manifest.write_text(f'image,points,{alias}\nscene.png,"{CLICK}",nine\n', encoding="utf-8")
    (item,) = items_from_manifest(manifest, tmp_path / "out")
    assert item.error == f"manifest line 2: {alias}: 'nine' is not X,Y (two numbers, in pixels, e.g. 120,80)"
    manifest = tmp_path / "both.csv"
    columns, cells = ",".join(field.names), ",".join('"40,40"' for _ in field.names)
    manifest.write_text(f'image,points,{columns}\nscene.png,"{CLICK}",{cells}\n', encoding="utf-8")
    (item,) = items_from_manifest(manifest, tmp_path / "out")
    assert item.error is not None and "given twice" in item.error
    assert all(name in item.error for name in field.names)


@pytest.mark.parametrize(("field", "alias"), ALIASED, ids=[alias for _, alias in ALIASED])
def test_an_alias_works_over_http(field: Any, alias: str) -> None:
    for name in field.names:
        # a request by name, as gradio_client sends it: every parameter in its place, the rest defaulted
        given = dict.fromkeys(ALL_PARAMETERS[: len(REMOVE_PARAMETERS)], None)
        given.update(points=CLICK, **{name: "40,40"})
        values = completed_request(
            [given.get(parameter) for parameter in ALL_PARAMETERS], dict.fromkeys(ALL_PARAMETERS)
        )
        by_name = dict(zip(ALL_PARAMETERS, values, strict=True))
        assert selection_of_request([by_name[parameter] for parameter in SELECTION_PARAMETERS]) == EXPECTED
    # a bad value names the parameter given; one field under two names is refused
    bad = dict.fromkeys(SELECTION_PARAMETERS, "")
    bad.update(points=CLICK, **{alias: "nine"})
    with pytest.raises(imaging.InputError, match=f"^{alias}: 'nine' is not X,Y"):
        selection_of_request(list(bad.values()))
    twice = dict.fromkeys(SELECTION_PARAMETERS, "")
    twice.update(points=CLICK, **dict.fromkeys(field.names, "40,40"))
    with pytest.raises(imaging.InputError, match="given twice"):
        selection_of_request(list(twice.values()))


def test_refusals_of_the_segmenter_name_the_public_name() -> None:
    """``select_object`` calls the words ``text``; every surface goes through the request, which says
    ``object``, the name the user gave."""
    request = SelectionRequest(text="the red car")
    with pytest.raises(imaging.InputError, match="^object: 'the red car' needs a text-capable segmenter"):
        request.select(SCENE)
    with pytest.raises(imaging.InputError, match="^segmenter: 'classic' is given but nothing to select"):
        SelectionRequest.of_names({"segmenter": " classic ", "object": " "})
