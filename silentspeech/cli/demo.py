"""The ``demo`` subcommand: which models the Gradio demo serves (named ones, or the quickstart's as a set), and serving it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from silentspeech.cli.common import CLIError, Command, add_beam_search_arguments, add_board_arguments, add_device_argument, open_board
from silentspeech.cli.speech import add_espeak_arguments
from silentspeech.vocoder import DEFAULT_VOCODER, VOCODER_SPEC_HELP


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quickstart", type=Path, default=Path("runs/quickstart"),
        help="quickstart output folder the other defaults come from (default: %(default)s)",
    )
    parser.add_argument(
        "--recognizer", type=Path,
        help="recognition run directory (or .safetensors). Name no model to use the quickstart's as a set; name any "
        "and only the named ones are used (never mixed with the quickstart's)",
    )
    parser.add_argument("--producer", type=Path, help="production run directory (or .safetensors)")
    parser.add_argument(
        "--vocoder",
        help=f"{VOCODER_SPEC_HELP}; default: {DEFAULT_VOCODER}, also with the quickstart's models (its optional "
        "fine-tuned V1 made speech worse at the quickstart's budget; name runs/quickstart/vocoder to hear it). The page says which",
    )
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search (with named models: none unless given)")
    parser.add_argument("--corpus", type=Path, help="Gaddy-layout corpus whose test utterances are offered as examples")
    add_beam_search_arguments(parser)
    add_espeak_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default: %(default)s)")
    add_device_argument(parser)
    add_board_arguments(parser, required=False)  # --board: a live tab on that board or LSL stream


def _check_port_free(host: str, port: int) -> None:
    """CLIError unless ``host:port`` can be served on, checked before the models load (that takes a while)."""
    import socket

    if not 1 <= port <= 65535:
        raise CLIError(f"--port {port}: a port lies between 1 and 65535")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise CLIError(f"cannot serve on {host}:{port}: {err.strerror or err}") from None


@dataclass
class DemoModels:
    """What the demo serves, and where it came from (printed, and shown on the page's status)."""

    recognizer: Path | None
    producer: Path | None
    vocoder: str
    lm: Path | None
    corpus: Path | None
    source: str


def demo_models(args: argparse.Namespace) -> DemoModels:
    """The models the demo uses: exactly those named on the command line, or, when none is named, the quickstart's as a set.

    Never a mix: given ``--producer`` alone, the demo does not add the
    quickstart's recogniser, LM or corpus; text is then decoded without an LM
    unless ``--lm`` is given. The vocoder is ``--vocoder``, by default the
    pretrained universal V1 shipped with the package in both cases: the
    quickstart's optional fine-tuned V1 made speech worse at its budget
    (docs/measurements.md), so it is used only when named.
    """
    from silentspeech.quickstart.layout import QuickstartLayout

    named = {"--recognizer": args.recognizer, "--producer": args.producer, "--lm": args.lm, "--corpus": args.corpus}
    for option, given in named.items():
        if given is not None and not given.exists():
            raise CLIError(f"{option} {given}: no such file or folder")
    vocoder_named = args.vocoder is not None
    if any(given is not None for given in named.values()) or vocoder_named:
        if args.recognizer is None and args.producer is None:
            raise CLIError("give --recognizer and/or --producer (or nothing, for the quickstart's models as a set)")
        return DemoModels(
            args.recognizer, args.producer, args.vocoder or DEFAULT_VOCODER, args.lm, args.corpus, "the models given on the command line"
        )
    quickstart = QuickstartLayout(args.quickstart)
    for path in (quickstart.recognition, quickstart.production, quickstart.lm, quickstart.corpus):
        if not path.exists():
            raise CLIError(
                f"{path} does not exist: run `make quickstart` first (or `silentspeech quickstart --out {args.quickstart}`; "
                "it trains the demo's default models), or name the models (see silentspeech demo --help)"
            )
    return DemoModels(
        quickstart.recognition, quickstart.production, DEFAULT_VOCODER, quickstart.lm, quickstart.corpus, f"the quickstart's models in {args.quickstart}"
    )


def _run_demo(args: argparse.Namespace) -> int:
    _check_port_free(args.host, args.port)
    models = demo_models(args)
    from silentspeech.data.gaddy import read_corpus
    from silentspeech.decoding.settings import resolve_lm_settings
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.inference.text_voice import TextVoice

    text_voice = None if models.recognizer is None else TextVoice(args.espeak_voice, args.espeak_rate)
    print(f"using {models.source}:", flush=True)
    for name in ("recognizer", "producer", "vocoder", "lm", "corpus"):
        print(f"  {name:<10} {getattr(models, name) or '-'}", flush=True)
    settings = None
    if models.recognizer is not None and models.lm is not None:
        settings = resolve_lm_settings(models.recognizer, models.lm, args.alpha, args.beta, args.beam)
    pipeline = SilentSpeechPipeline(
        models.recognizer, models.producer, models.vocoder, **(settings.pipeline_keywords() if settings else {}), device=args.device,
        text_voice=text_voice,
    )
    if text_voice is not None:
        print(f"voice through text: {text_voice.description}", flush=True)
    print(f"EMG preprocessing: {pipeline.preprocessing_source}", flush=True)
    pipeline.warm_up()
    examples = {}
    if models.corpus is not None:
        examples = {f"{u.id}: {u.text}": u.emg_path for u in read_corpus(models.corpus).utterances if u.split == "test"}
    try:
        from silentspeech.demo import MAX_UPLOAD_BYTES, build_demo
    except ImportError as err:
        raise CLIError(f"the demo needs gradio: pip install 'silentspeech[demo]' ({err})") from None
    live, live_source = None, ""
    if args.board is not None:
        from silentspeech.inference.live import LiveRunner

        with open_board(args, pipeline.channels) as source:  # a bad --board fails here, in one line, before serving
            live_source = source.name
        live = LiveRunner(pipeline, lambda: open_board(args, pipeline.channels))
        print(f"live tab: {live_source}", flush=True)
    try:
        build_demo(pipeline, examples, live, live_source).launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD_BYTES)
    except OSError as err:  # e.g. the port is taken
        raise CLIError(f"cannot serve on {args.host}:{args.port}: {err}") from None
    return 0


# --- the subcommands ---------------------------------------------------------

DEMO = Command(
    "demo",
    "Serve the Gradio demo: upload EMG (or pick a corpus example), get text, speech, figures and timings; "
    "with --board, a live tab on that board or LSL stream.",
    _add_demo_arguments,
    _run_demo,
)
