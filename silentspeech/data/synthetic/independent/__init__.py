"""An evaluation corpus written independently of the default synthetic corpus.

It exists to tell whether a recipe learns EMG in general or only the default
generator (:mod:`silentspeech.data.synthetic.speech`): prompts from a book
or a grammar of its own (:mod:`.sentences`), articulation driven by spelling
and syllables timed on the audio envelope instead of phonemes
(:mod:`.articulation`), a recruitment-threshold motor-unit model with
Hermite-Rodriguez action potentials (:mod:`.motor_units`), its own muscles,
electrode geometry, session placement and nuisances (:mod:`.electrodes`),
and the Gaddy layout on disk (:mod:`.recording`, :mod:`.corpus`). It was
written without reading the default generator's model; it shares with it
only the project's infrastructure (atomic writes, worker pools, text
normalisation, espeak-ng for the voiced audio).
"""

from silentspeech.data.synthetic.independent.corpus import (
    IndependentCorpusExistsError,
    IndependentCorpusSummary,
    generate_independent_corpus,
)

__all__ = ["IndependentCorpusExistsError", "IndependentCorpusSummary", "generate_independent_corpus"]
