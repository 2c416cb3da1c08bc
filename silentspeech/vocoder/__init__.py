"""Vocoder: acoustic features (MFCC frames) -> 22050 Hz audio.

Modules: :mod:`.generator` (architecture, ONNX export, our files), :mod:`.original`
(original-layout checkpoints), :mod:`.griffin_lim` (the fallback), :mod:`.synthesis`
(the :class:`~.synthesis.Vocoder` API), :mod:`.train` (the ``vocoder`` task),
:mod:`.compare` (resynthesis scores).

A HiFi-GAN (speechbrain's ``HifiganGenerator``, ``HifiganDiscriminator``
= multi-period + multi-scale discriminators, and its generator and
discriminator losses) trained on our features, with Griffin-Lim as the
fallback when no checkpoint is given. Every result says which method made it
(:attr:`Vocoder.method`: ``"hifigan"`` or ``"griffin-lim"``).

Conditioning. The acoustic models predict the 80 orthonormal-DCT MFCC of
:mod:`silentspeech.features`, which invert exactly to log-mel. The vocoder turns
MFCC back into log-mel itself and the generator takes log-mel, because that
is what HiFi-GAN checkpoints in the original layout were trained on: they
load through :func:`load_original_hifigan` and work unchanged, and one
generator serves any ``n_mfcc <= 80`` (truncated coefficients read as zero).

Original checkpoints (keys ``conv_pre``, ``ups.{i}``,
``resblocks.{j}.convs{1,2}.{k}``, ``conv_post`` with weight-norm
``weight_g``/``weight_v``) map onto speechbrain's names by an explicit key
map (:func:`original_key_map`). speechbrain pads its "same" convolutions by
reflection where the original pads with zeros, so an imported generator
matches the original except in the first and last few frames' samples.

Frame alignment. Frame ``k`` of the features covers audio samples
``[256 k, 256 k + 256)``; the generator upsamples by exactly 256, so ``N``
frames give ``256 N`` samples and training segments are cut on frame
boundaries (8192 samples = 32 frames in V1).

Training is a plain PyTorch loop rather than Lightning: a GAN step alternates
two optimisers on shared activations (Lightning would need manual
optimisation, i.e. the same code inside a hook), and the loop must stop on a
wall-clock budget and resume mid-epoch exactly; written out it is short.
The speechbrain mel L1 loss (weight 45), least-squares adversarial loss and
feature matching (weight 10) are those of the HiFi-GAN paper; a
multi-resolution STFT loss (:func:`log_stft_loss`) and a slow-offset loss
(:func:`dc_offset_loss`, for the 0 Hz bin the mel loss cannot see) can be
added. The discriminators cost ~7 s per batch of 8 segments on one CPU
core, so a config can hold them back for its first
``discriminator_start_step`` steps (the small CPU config never reaches
them in 15 minutes: it is then a spectral-loss-only generator, and says
so). Without them the generator
does not learn pitch: for steady input frames its output repeats every
256 samples (transposed and "same" convolutions keep that period), a comb
at multiples of 86.13 Hz instead of the voice's harmonics, with every
fourth bin of a 1024-point STFT empty; the multi-period discriminator is
what teaches it otherwise. Long training segments lessen the comb: in
short ones most samples lie within the generator's receptive field of an
edge (vocoder/README.md has the figures). ``noise_injection`` (the small
config) adds learned-scale noise after each upsampling stage
(:class:`NoisyHifiganGenerator`), which partly fills the bins between;
synthesis stays deterministic (seeded noise, passed to the ONNX graph as an
input).
"""
