"""Vocoder: acoustic features (MFCC frames) -> 22050 Hz audio.

Modules: :mod:`.generator` (architecture, ONNX export, our files), :mod:`.original`
(original-layout checkpoints), :mod:`.griffin_lim` (the fallback), :mod:`.synthesis`
(the :class:`~.synthesis.Vocoder` API), :mod:`.train` (the ``vocoder`` task),
:mod:`.compare` (resynthesis scores).

A HiFi-GAN (Kong et al. 2020; speechbrain's ``HifiganGenerator``,
``HifiganDiscriminator`` = multi-period + multi-scale discriminators, and its
generator and discriminator losses) trained on our features, with
Griffin-Lim as the fallback when no checkpoint is given. Every result says
which method made it (:attr:`~.synthesis.Vocoder.method`: ``"hifigan"`` or
``"griffin-lim"``).

Conditioning. The acoustic models predict the 80 orthonormal-DCT MFCC of
:mod:`silentspeech.features`, which invert exactly to log-mel. The vocoder turns
MFCC back into log-mel itself and the generator takes log-mel, because that
is what HiFi-GAN checkpoints in the original layout were trained on: they
load through :mod:`.original` and work unchanged, and one generator serves
any ``n_mfcc <= 80`` (truncated coefficients read as zero).

Frame alignment. Frame ``k`` of the features covers audio samples
``[256 k, 256 k + 256)``; the generator upsamples by exactly 256, so ``N``
frames give ``256 N`` samples and training segments are cut on frame
boundaries (8192 samples = 32 frames in V1).

Training on a CPU. The discriminators are costly on a CPU, so a config can
hold them back for its first ``discriminator_start_step`` steps; without
them the generator does not learn pitch (for steady frames its output
repeats every hop, a comb at multiples of 86.13 Hz), which long training
segments and ``noise_injection`` (:class:`~.generator.NoisyHifiganGenerator`)
lessen but do not remove. The measurements behind this are in
vocoder/README.md; the facts on HiFi-GAN V1 in docs/design.md.
"""

# The vocabulary of vocoder specs, here (no heavy imports) so the command line's --help can name it.

#: The vocoder of ``voice``, ``demo``, the pipeline and ``evaluate-production`` when none is named:
#: the original authors' universal HiFi-GAN V1 (:mod:`.original`).
DEFAULT_VOCODER = "v1-universal"
#: The labelled fallback: no neural vocoder.
GRIFFIN_LIM = "griffin-lim"
#: What a ``--vocoder`` option's help says it takes.
VOCODER_SPEC_HELP = (
    "vocoder: v1-universal (pretrained HiFi-GAN V1), v1-lj (V1 trained on LJSpeech), griffin-lim (the fallback), "
    "or a path: a `silentspeech vocoder train` run folder or generator file, or an original-layout HiFi-GAN checkpoint"
)
