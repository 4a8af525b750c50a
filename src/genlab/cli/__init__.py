"""The ``genlab`` command line: parse, call the library, print.

One module per command group (``classical``: fit, sample, eval, prob and the lists;
``training``; ``generation``: txt2img, img2img, inpaint, png-info; ``lora``; ``evaluation``:
eval-t2i, compare; ``page``: webui; ``course``: course, demo), and ``common`` for the options
they all take. Each module only parses and calls the library. Heavy imports happen inside the
commands so that ``genlab --help`` is instant. User errors print one sentence and exit with
code 2.
"""

from __future__ import annotations

import argparse
import sys

from . import classical, course, evaluation, generation, lora, page, training

#: the command groups, in the order ``genlab --help`` lists their commands
GROUPS = (classical, training, generation, lora, evaluation, page, course)


class Parser(argparse.ArgumentParser):
    """argparse with genlab's rule for bad input: one line, exit code 2 (argparse's own
    error prints the usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="genlab",
        description="genlab: fit, train, sample and compare generative models.",
        epilog="Run 'genlab COMMAND --help' for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(sub)
    return parser


def _exit_at_next_interrupt() -> None:
    """After a Ctrl-C has been handled the process is on its way out; another one ends it at
    once (the default action) instead of raising in an exit handler with a traceback."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's, ``docker stop``'s or ``kill``'s request to stop), handled
    as a Ctrl-C is: a training saves its checkpoint on the way out. A process started in the
    background ignores Ctrl-C's SIGINT, so SIGTERM is how it is stopped without a loss."""


def _terminate(signum: int, frame: object) -> None:
    import signal

    # the stop has begun: a repeated SIGTERM (supervisors and `docker stop` send more) must
    # not break off the final checkpoint; SIGKILL still ends the process
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _on_sigterm(handler: object) -> object:
    """Install ``handler`` for SIGTERM (main thread only); the previous one, to restore."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    if any("\x00" in a for a in (sys.argv[1:] if argv is None else argv)):
        print("genlab: error: an argument contains a NUL character.", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad flag: its one line is printed
        return int(e.code or 0)
    from ..errors import GenlabError

    previous, terminated = _on_sigterm(_terminate), False
    try:
        args.func(args)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        _exit_at_next_interrupt()
        terminated = isinstance(e, Terminated)
        print(f"genlab: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130  # 128 + the signal's number, as shells report
    finally:
        if previous is not None and not terminated:  # terminated: on its way out, TERMs ignored
            _on_sigterm(previous)
    return 0
