"""CTC decoding: greedy, and beam search with a KenLM word n-gram (pyctcdecode).

Inputs are CTC log posteriors ``(batch, frames, 38)`` at 86.13 frames/s
over :data:`silentspeech.text.LABELS` (blank ``""`` at index 0). Outputs are
normalised text.

:class:`BeamSearchDecoder` is built once (the LM is loaded once) and then
decodes many batches; :meth:`BeamSearchDecoder.reset_params` changes alpha
and beta without reloading, for tuning.

Speed: a frame whose only candidate is the blank (every character below
pyctcdecode's ``token_min_logp``, blank the best) adds the same score to
every beam, so after the first frame of such a run the rest change neither
the beams nor their order. :func:`drop_blank_runs` removes them before the
search, which returns the same text faster the more peaked the posteriors
(``bench/decode.py`` times both). By default decoding is
lexicon-free, as with an ARPA file pyctcdecode would otherwise take its
unigrams as the lexicon unasked. A lexicon is a choice: the LM's own words
(:func:`lm_unigrams`: they hold no held-out sentence when the LM does not,
which evaluation checks from its provenance) or the training text's
(:func:`training_unigrams`); a lexicon built from test transcripts would leak
the test set (docs/design.md, *Text, decoding and scoring*).

Unknown-word offset: pyctcdecode adds ``unk_offset`` (log10 units, not
scaled by alpha) to the score of every partial word outside its lexicon,
growing with the word's length beyond 6 characters, and to every complete
word the LM does not know. Lexicon-free, every partial word is "outside",
so the offset is a per-word penalty on long words rather than an
unknown-word penalty. :data:`DEFAULT_UNK_OFFSET` (-5, pyctcdecode's own is
-10) and the lexicon choice come from the dev comparison on the
quickstart's trained recogniser in ``docs/measurements.md``: there the LM's
own words beat a training-text lexicon, which beat lexicon-free decoding, so
``tune-lm`` tunes alpha/beta with the LM's words and tries every choice of
:data:`silentspeech.decoding.LEXICONS` with the offsets :data:`DEFAULT_TUNING_UNK_OFFSETS` at its
best alpha/beta and saves the winner; untuned decoding, which has no
training text at hand, stays lexicon-free.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from pyctcdecode.constants import DEFAULT_MIN_TOKEN_LOGP, DEFAULT_UNK_LOGP_OFFSET
from scipy.special import log_softmax

from silentspeech.decoding.ngram import BOS, EOS, UNK, ArpaError, cache_utterances, check_arpa, check_vocabulary, is_kenlm_binary
from silentspeech.text import BLANK, LABELS, NUM_CLASSES, normalize_text

#: Reference settings of TinyMyo's recogniser (Fasulo et al. 2025); Gaddy used alpha 1.5, beta 1.85,
#: beam 100 (docs/design.md, *Text, decoding and scoring*).
DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 1.5
DEFAULT_BEAM_WIDTH = 250
#: Unknown-word offset (log10) of lexicon-free decoding: -5 beat pyctcdecode's -10
#: (``DEFAULT_UNK_LOGP_OFFSET``) and -2 on a trained recogniser's dev; see the module docstring.
DEFAULT_UNK_OFFSET = -5.0
#: The offsets tune-lm tries at its best alpha/beta, for each lexicon choice.
DEFAULT_TUNING_UNK_OFFSETS = (DEFAULT_UNK_OFFSET, float(DEFAULT_UNK_LOGP_OFFSET), -2.0)


def _as_batch(log_probs, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``(B, T, 38)`` log posteriors and ``(B,)`` lengths to numpy."""
    if hasattr(log_probs, "detach"):  # a torch tensor
        log_probs = log_probs.detach().float().cpu().numpy()
    log_probs = np.asarray(log_probs, dtype=np.float32)
    if log_probs.ndim != 3 or log_probs.shape[2] != NUM_CLASSES:
        raise ValueError(f"log_probs must have shape (batch, frames, {NUM_CLASSES}), got {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    if lengths is None:
        lengths = np.full(batch, frames, dtype=np.int64)
    else:
        if hasattr(lengths, "detach"):
            lengths = lengths.detach().cpu().numpy()
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if lengths.shape[0] != batch or (lengths < 0).any() or (lengths > frames).any():
            raise ValueError(f"lengths must be {batch} values in [0, {frames}], got {lengths.tolist()}")
    for i in range(batch):
        if np.isnan(log_probs[i, : lengths[i]]).any():
            raise ValueError(f"log_probs of batch item {i} contain NaN")
    return log_probs, lengths


def greedy_decode(log_probs, lengths=None) -> list[str]:
    """Best-path CTC decoding of ``(B, T, 38)`` log posteriors (tensor or array).

    Frames past ``lengths[b]`` are ignored; repeated labels collapse, blanks
    drop out, and runs of spaces become one space.
    """
    log_probs, lengths = _as_batch(log_probs, lengths)
    best = log_probs.argmax(axis=2)
    texts = []
    for path, length in zip(best, lengths):
        path = path[:length]
        keep = np.ones(len(path), dtype=bool)
        keep[1:] = path[1:] != path[:-1]
        texts.append(" ".join("".join(LABELS[i] for i in path[keep] if i != BLANK).split()))
    return texts


def drop_blank_runs(log_probs: np.ndarray, token_min_logp: float = DEFAULT_MIN_TOKEN_LOGP) -> np.ndarray:
    """Keep the first frame of each run of blank-only frames of ``(T, 38)`` log posteriors; returns ``(T', 38)``.

    A frame is blank-only where the blank is the most likely label and every
    other label lies below ``token_min_logp`` after a log-softmax over the
    labels: pyctcdecode's test for which labels to expand (its private
    normalisation follows ``scipy.special.log_softmax``, used here). Beam
    search then gives the same hypotheses as on all frames (module docstring); frame
    indices of the result no longer match the input's.
    """
    normalised = log_softmax(np.asarray(log_probs, dtype=np.float32), axis=1)
    characters = np.delete(normalised, BLANK, axis=1)
    blank_only = (normalised.argmax(axis=1) == BLANK) & (characters.max(axis=1, initial=-np.inf) < token_min_logp)
    keep = ~blank_only
    keep[1:] |= ~blank_only[:-1]  # the first frame of a run stays: it separates repeated characters
    if len(keep):
        keep[0] = True
    return log_probs[keep]


def unigrams_from_texts(texts: Iterable[str]) -> list[str]:
    """Sorted distinct words of ``texts`` after normalisation (a decoding lexicon).

    Pass training text only: a lexicon with test words leaks the test set.
    """
    return sorted({word for text in texts for word in normalize_text(text).split()})


def training_unigrams(cache: str | os.PathLike) -> list[str]:
    """Lexicon of the ``train`` split of a data cache (its folder or ``manifest.json``); dev/test never enter."""
    words = unigrams_from_texts(e["text"] for e in cache_utterances(cache) if e["split"] == "train")
    if not words:
        raise ValueError(f"{cache}: the train split holds no text to build a lexicon from")
    return words


def lm_unigrams(lm_path: str | os.PathLike) -> list[str]:
    """The words of an ARPA LM (its unigrams without ``<s>``, ``</s>``, ``<unk>``), sorted: a decoding lexicon.

    Raises :class:`~silentspeech.decoding.ngram.ArpaError` naming the file
    when it is a KenLM binary (its words cannot be listed), not a valid ARPA
    LM, or holds no word.
    """
    if is_kenlm_binary(lm_path):
        raise ArpaError(f"{lm_path}: a KenLM binary does not list its words; give the ARPA file for an 'lm' lexicon")
    words = sorted(w for w in check_arpa(lm_path).vocabulary if w not in (BOS, EOS, UNK))
    if not words:
        raise ArpaError(f"{lm_path}: the LM holds no word to build a lexicon from")
    return words


def load_kenlm(lm_path: str | os.PathLike):
    """Load a KenLM model (ARPA or binary) for decoding, after checking it.

    An ARPA file is validated first (:func:`silentspeech.decoding.ngram.check_arpa`,
    since KenLM may crash or hang on a truncated one) and its vocabulary must
    fit the recogniser's charset (:func:`silentspeech.decoding.ngram.check_vocabulary`).
    A KenLM binary is handed to KenLM as is. The last two files loaded stay
    loaded (keyed by path, size and modification time): ``tune-lm`` builds a
    decoder per lexicon choice on the same LM, which would otherwise be
    validated and parsed again for each.
    """
    lm_path = Path(lm_path)
    if not lm_path.is_file():
        raise FileNotFoundError(f"{lm_path}: no such language model file")
    stat = lm_path.stat()
    return _checked_kenlm(lm_path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _checked_kenlm(lm_path: Path, size: int, mtime_ns: int):
    """:func:`load_kenlm` of a resolved path; ``size`` and ``mtime_ns`` key the cache only."""
    import kenlm

    if not is_kenlm_binary(lm_path):
        check_vocabulary(check_arpa(lm_path).vocabulary, lm_path)
    try:
        return kenlm.Model(str(lm_path))
    except (OSError, RuntimeError) as err:
        raise ArpaError(f"{lm_path}: KenLM cannot read it: {err}") from None


class BeamSearchDecoder:
    """CTC prefix beam search with shallow fusion of a KenLM word n-gram (pyctcdecode).

    A hypothesis scores ``log P_ctc + alpha * ln P_lm + beta * words``, plus
    ``unk_offset`` for words outside the lexicon (module docstring).
    ``lm_path`` ``None`` gives beam search without an LM. ``unigrams`` is an
    optional decoding lexicon (:func:`lm_unigrams` or
    :func:`training_unigrams`); without it decoding is lexicon-free.
    ``workers`` > 1 decodes the items of a batch in that many forked
    processes (created on first use and kept; call :meth:`close` or use the
    decoder as a context manager to end them). ``drop_blank_runs`` (default)
    skips the frames that cannot change the result (:func:`drop_blank_runs`);
    False searches every frame, as plain pyctcdecode does.
    """

    def __init__(
        self,
        lm_path: str | os.PathLike | None = None,
        alpha: float = DEFAULT_ALPHA,
        beta: float = DEFAULT_BETA,
        beam_width: int = DEFAULT_BEAM_WIDTH,
        unigrams: Sequence[str] | None = None,
        workers: int = 1,
        drop_blank_runs: bool = True,
        unk_offset: float = DEFAULT_UNK_OFFSET,
    ) -> None:
        from pyctcdecode.alphabet import Alphabet
        from pyctcdecode.decoder import BeamSearchDecoderCTC
        from pyctcdecode.language_model import LanguageModel

        if beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, got {beam_width}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        language_model = None
        if lm_path is not None:
            if unigrams is not None:
                check_vocabulary(unigrams, "the unigram list")
            # Built directly rather than with build_ctcdecoder, which would read
            # the ARPA unigrams as a lexicon when none is given.
            language_model = LanguageModel(
                load_kenlm(lm_path), unigrams, alpha=float(alpha), beta=float(beta), unk_score_offset=float(unk_offset)
            )
        self._decoder = BeamSearchDecoderCTC(Alphabet.build_alphabet(LABELS), language_model)
        self._language_model = language_model
        self.lm_path = None if lm_path is None else Path(lm_path)
        self.alpha, self.beta, self.beam_width = float(alpha), float(beta), int(beam_width)
        self.unk_offset = float(unk_offset)
        self.workers = workers
        self.drop_blank_runs = drop_blank_runs
        self._pool = None

    def reset_params(
        self, alpha: float | None = None, beta: float | None = None, beam_width: int | None = None, unk_offset: float | None = None
    ) -> None:
        """Change LM weight, word bonus, beam width or unknown-word offset without reloading the LM."""
        self.alpha = self.alpha if alpha is None else float(alpha)
        self.beta = self.beta if beta is None else float(beta)
        self.beam_width = self.beam_width if beam_width is None else int(beam_width)
        self.unk_offset = self.unk_offset if unk_offset is None else float(unk_offset)
        self._decoder.reset_params(alpha=self.alpha, beta=self.beta, unk_score_offset=self.unk_offset)

    def decode(self, log_probs: np.ndarray) -> str:
        """Decode one utterance's ``(T, 38)`` log posteriors."""
        return self.decode_batch(np.asarray(log_probs)[None])[0]

    def decode_words(self, log_probs: np.ndarray, context: Sequence[str] = ()) -> list[tuple[str, int, int]]:
        """Best hypothesis of ``(T, 38)`` log posteriors as ``(word, first frame, end frame)`` triples.

        Frames are indices into ``log_probs`` (86.13 Hz); the end is exclusive.
        ``context`` holds words decoded before frame 0 (the firm text of a
        stream): the LM scores the new words as their continuation.
        """
        log_probs = _as_batch(np.asarray(log_probs)[None], None)[0][0]
        if len(log_probs) == 0:
            return []
        self._decoder.reset_params(alpha=self.alpha, beta=self.beta, unk_score_offset=self.unk_offset)
        state = None
        if self._language_model is not None and context:
            state = self._language_model.get_start_state()
            for word in context:
                _, state = self._language_model.score(state, word)
        beams = self._decoder.decode_beams(log_probs, beam_width=self.beam_width, lm_start_state=state)
        return [(word, int(start), int(end)) for word, (start, end) in beams[0][2]]

    def decode_batch(self, log_probs, lengths=None) -> list[str]:
        """Decode ``(B, T, 38)`` log posteriors (tensor or array); frames past ``lengths[b]`` are ignored."""
        log_probs, lengths = _as_batch(log_probs, lengths)
        items = [
            (log_probs[i, : lengths[i]], self.alpha, self.beta, self.unk_offset, self.beam_width, self.drop_blank_runs)
            for i in range(len(lengths))
        ]
        if self.workers > 1 and len(items) > 1:
            return self._worker_pool().map(_decode_in_worker, items)
        return [_decode_one(self._decoder, *item) for item in items]

    def _worker_pool(self):
        if self._pool is None:
            global _WORKER_DECODER
            # Forked workers inherit the loaded LM through this global: no reload per worker.
            _WORKER_DECODER = self._decoder
            self._pool = multiprocessing.get_context("fork").Pool(self.workers)
        return self._pool

    def close(self) -> None:
        """End the worker processes, if any."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> "BeamSearchDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _decode_one(
    decoder, log_probs: np.ndarray, alpha: float, beta: float, unk_offset: float, beam_width: int, skip_blanks: bool
) -> str:
    if len(log_probs) == 0:
        return ""
    if skip_blanks:
        log_probs = drop_blank_runs(log_probs)
    decoder.reset_params(alpha=alpha, beta=beta, unk_score_offset=unk_offset)
    return " ".join(decoder.decode(log_probs, beam_width=beam_width).split())


_WORKER_DECODER = None


def _decode_in_worker(item: tuple) -> str:
    return _decode_one(_WORKER_DECODER, *item)
