"""One writer per run folder. ``genlab train`` holds ``RUN/.lock`` (created exclusively, so
two processes cannot both make it) with its host and process id while it runs; a second
``genlab train`` on the same folder is refused with a sentence, and the first one's
checkpoints stay as they are. A lock whose process is gone (same host, no such process) is
taken over, so a crash never leaves a folder locked for good. Every command that writes a
run (fit, train, finetune) takes it; ``check`` refuses a held folder before any work."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import GenlabError
from .runfiles import alive as _alive

NAME = ".lock"


class RunLock:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / NAME
        self.held = False

    def owner(self) -> dict | None:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _refuse(self, owner: dict | None) -> GenlabError:
        who = "another process" if owner is None else (
            f"process {owner.get('pid')} on {owner.get('host')}")  # fmt: skip
        return GenlabError(
            f"{self.folder} is being written by {who}; wait for it to finish, or "
            f"remove {self.path} if that process is gone."
        )

    def check(self) -> None:
        """Refuse, before any work, a folder another live process holds (takes nothing)."""
        if self.held or not os.path.lexists(self.path):
            return
        owner = self.owner()
        if owner is None or not self._stale(owner):
            raise self._refuse(owner)

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and self._stale(owner):
                    self.path.unlink(missing_ok=True)  # its process is gone: take it over
                    continue
                raise self._refuse(owner) from None
            with os.fdopen(fd, "w") as f:
                json.dump(
                    {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, f
                )
            self.held = True
            return self
        raise GenlabError(f"Could not lock {self.folder}; another process keeps taking it.")

    @staticmethod
    def _stale(owner: dict) -> bool:
        try:
            pid = int(owner.get("pid", -1))
        except (TypeError, ValueError):
            return False
        return owner.get("host") == socket.gethostname() and not _alive(pid)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def prepare_run_folder(out: str | Path) -> Path:
    """The checks of a run folder before any work, for every command that writes a run: a
    folder that can be made and written (not empty, not a file, not too long a name),
    nothing genlab writes there is a link, and no live process holds its lock. Creates
    nothing."""
    from .runfiles import check_folder, refuse_links

    out = check_folder(out)
    refuse_links(out)
    RunLock(out).check()
    return out
