"""The recipe YAML files, installed with the package as ``silentspeech.recipes`` (see setup.py); nothing to import here."""
