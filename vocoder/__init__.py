"""The vocoder recipes, installed with the package as ``silentspeech.recipes.vocoder`` (see setup.py); nothing to import here."""
