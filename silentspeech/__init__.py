"""silentspeech: surface EMG of silently mouthed speech to audio and text."""

__version__ = "0.1.0"
