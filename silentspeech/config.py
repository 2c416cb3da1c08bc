"""Recipes: YAML files loaded into typed configs and overridden from the CLI.

A recipe is a YAML file whose keys mirror a dataclass schema (one per task,
defined beside the task). ``load_recipe`` merges the file and ``key=value``
overrides onto the schema with OmegaConf, so types are checked and an unknown
key fails with the list of valid keys instead of being silently ignored::

    silentspeech train recipes/synthetic/recognition.yaml data.root=/data trainer.max_epochs=3

The checkout's ``recipes/`` and ``vocoder/`` folders are installed with the
package as ``silentspeech.recipes`` (``setup.py`` maps them), so
:func:`bundled_recipe` finds the quickstart's recipes in a plain
``pip install`` as well as in the checkout.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any, Sequence, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

T = TypeVar("T")


class RecipeError(ValueError):
    """A recipe file or override that does not fit its schema."""


def valid_keys(schema: Any, prefix: str = "") -> list[str]:
    """Dotted names of every leaf field of a dataclass schema (or instance)."""
    keys: list[str] = []
    for field in dataclasses.fields(schema):
        value = getattr(schema, field.name, None) if not isinstance(schema, type) else None
        field_type = field.type if not isinstance(field.type, str) else None
        nested = value if dataclasses.is_dataclass(value) else field_type
        if nested is not None and dataclasses.is_dataclass(nested):
            keys.extend(valid_keys(nested, f"{prefix}{field.name}."))
        elif field.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory):
            keys.extend(valid_keys(field.default_factory, f"{prefix}{field.name}."))
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def _merge(base: DictConfig, other: Any, schema: Any, what: str, key: str = "") -> DictConfig:
    """``other`` merged into ``base`` (or, with ``key``, set at that dotted path); :class:`RecipeError` when it does not fit."""
    try:
        if key:
            OmegaConf.update(base, key, other, merge=True)
            return base
        return OmegaConf.merge(base, other)
    except (ConfigKeyError, ConfigAttributeError) as err:
        key = getattr(err, "full_key", None) or str(err).splitlines()[0]
        listing = "\n  ".join(valid_keys(schema))
        raise RecipeError(f"{what}: unknown key {key!r}. Valid keys:\n  {listing}") from None
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "")
        raise RecipeError(f"{what}: bad value for {key!r}: {str(err).splitlines()[0]}") from None


def read_recipe_file(path: str | os.PathLike) -> DictConfig:
    """The mapping a recipe YAML file holds; :class:`RecipeError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        loaded = OmegaConf.load(path)
    except Exception as err:  # yaml's parser and scanner errors, undecodable bytes
        raise RecipeError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(loaded, DictConfig):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of keys, got {type(loaded).__name__}")
    return loaded


def _dotlist(items: Sequence[str], shown: str | None = None) -> DictConfig:
    """``key=value`` overrides as a config, as ``OmegaConf.from_dotlist`` reads them (values are YAML).

    A value that is not valid YAML (a bare ``**/*.txt`` reads as an alias) is a
    :class:`RecipeError` naming the override (``shown``, else the item itself).
    """
    config = OmegaConf.create()
    for item in items:
        try:
            config.merge_with_dotlist([item])
        except Exception as err:  # yaml's scanner and parser errors
            raise RecipeError(
                f"override {shown or item!r}: the value is not valid YAML ({' '.join(str(err).split())}); quote it: key='\"value\"'"
            ) from None
    return config


def load_recipe(schema: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from a YAML recipe and ``key=value`` overrides.

    Raises :class:`RecipeError` naming the file and the key for an unknown
    key (listing the valid ones), a wrongly typed value or a malformed
    override.
    """
    config = OmegaConf.structured(schema)
    if path is not None:
        config = _merge(config, read_recipe_file(path), schema, str(path))
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} is not of the form key=value")
    # An item of a list (``data.sources.0.root=DIR``) cannot be merged from a dotlist (it would
    # replace the list by a mapping); such overrides update the item in place.
    in_lists = [item for item in overrides if any(part.isdigit() for part in item.split("=", 1)[0].split("."))]
    plain = [item for item in overrides if item not in in_lists]
    if plain:
        config = _merge(config, _dotlist(plain), schema, "command-line override")
    for item in in_lists:
        key, _ = item.split("=", 1)
        value = OmegaConf.to_container(_dotlist([item.replace(key, "value", 1)], shown=item))["value"]
        config = _merge(config, value, schema, "command-line override", key)
    return OmegaConf.to_object(config)


def recipe_task(path: str | os.PathLike) -> str:
    """The ``task`` named at the top of a recipe file (which schema to load it with)."""
    task = read_recipe_file(path).get("task")
    if not task:
        raise RecipeError(f"{path}: the recipe names no 'task' at its top level")
    return str(task)


def config_to_yaml(config: Any) -> str:
    """The resolved config as YAML, for saving beside checkpoints."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def bundled_recipe(name: str) -> Path:
    """A recipe shipped with the package, by its path in the checkout: ``recipes/synthetic/recognition.yaml``, ``vocoder/small.yaml``.

    Raises ``FileNotFoundError`` naming the recipe and where it was looked for.
    """
    parts = Path(name).parts
    package = {"recipes": "silentspeech.recipes", "vocoder": "silentspeech.recipes.vocoder"}.get(parts[0], "silentspeech.recipes")
    if parts[0] in ("recipes", "vocoder"):
        parts = parts[1:]
    root = resources.files(package)
    path = Path(str(root.joinpath(*parts)))
    if not path.is_file():
        raise FileNotFoundError(f"recipe {name} is not installed with the package (looked in {root}); reinstall silentspeech or give the recipe's path")
    return path
