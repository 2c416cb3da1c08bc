"""Packaging beyond what pyproject.toml can say: the recipe folders ship inside the package.

``recipes/`` and ``vocoder/`` stay at the top of the checkout (people read
and edit them there); they are installed as the package data
``silentspeech.recipes`` and ``silentspeech.recipes.vocoder`` so that
``silentspeech quickstart`` runs from a plain, non-editable install.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["silentspeech*"]), "silentspeech.recipes", "silentspeech.recipes.vocoder"],
    package_dir={"silentspeech.recipes": "recipes", "silentspeech.recipes.vocoder": "vocoder"},
    package_data={
        "silentspeech.recipes": ["**/*.yaml"],
        "silentspeech.recipes.vocoder": ["*.yaml"],
        "silentspeech.export": ["c_templates/*"],
        "silentspeech.data.synthetic": ["grammar_words.yaml"],
    },
)
