"""Packaging beyond what pyproject.toml can say: the recipe folders ship inside the package, and every folder of
data files is listed as a package.

``recipes/`` and ``vocoder/`` stay at the top of the checkout (people read
and edit them there); they are installed as the package data
``silentspeech.recipes`` (one subpackage per recipe folder) and
``silentspeech.recipes.vocoder`` so that ``silentspeech quickstart`` runs
from a plain, non-editable install.

A folder whose name is a Python identifier is importable with or without an
``__init__.py``, so setuptools asks that every such folder that ships files be
named in ``packages`` (it warns about each one left out). The folders that hold
only data (the recipe folders, ``silentspeech/export/c_templates``) are
therefore listed as namespace packages, each with its own ``package_data``.
"""

import warnings

from setuptools import find_namespace_packages, setup
from setuptools.warnings import InformationOnly

#: Bytecode folders are not packages.
NOT_PACKAGES = ["__pycache__", "*.__pycache__"]


def folder_packages(where: str, prefix: str) -> list[str]:
    """``prefix`` and every folder below ``where`` as a package under it (``recipes/gaddy`` -> ``prefix.gaddy``)."""
    return [prefix, *(f"{prefix}.{name}" for name in find_namespace_packages(where=where, exclude=NOT_PACKAGES))]


RECIPES = folder_packages("recipes", "silentspeech.recipes")

# The editable install (`make install`) maps silentspeech.recipes to recipes/ with setuptools' import finder
# (the layout is not one folder on sys.path), and setuptools announces that finder on every editable install as an
# informational warning. It reports no problem, so it is not shown; real warnings still are.
warnings.filterwarnings("ignore", message="Editable installation", category=InformationOnly)

setup(
    packages=[
        *find_namespace_packages(include=["silentspeech", "silentspeech.*"], exclude=NOT_PACKAGES),
        *RECIPES,
        "silentspeech.recipes.vocoder",
    ],
    package_dir={"silentspeech.recipes": "recipes", "silentspeech.recipes.vocoder": "vocoder"},
    package_data={
        **{package: ["*.yaml"] for package in RECIPES},
        "silentspeech.recipes.vocoder": ["*.yaml"],
        "silentspeech.export.c_templates": ["*.c", "*.h"],
        "silentspeech.data.synthetic": ["grammar_words.yaml"],
    },
)
