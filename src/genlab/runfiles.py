"""The files of run folders and outputs, written so that nothing in a folder can redirect them.

- A run folder's files are never written through a symbolic link: ``refuse_links`` turns a
  link where genlab writes (config.yaml, meta.json, metrics.jsonl, samples/, checkpoints/,
  model/ ...) into one sentence before any work, and the writes themselves do not follow
  links either (``write_text`` writes a new file created exclusively, then renames it over
  the name, which replaces a link instead of writing through it; ``append_line`` opens with
  ``O_NOFOLLOW``).
- ``check_folder`` and ``check_file`` judge an output path before any work (an empty name,
  a name too long, a file where a folder goes, a folder that cannot be made or written) and
  create nothing.
- ``disk_error`` turns a failed write into one sentence; a full disk says "no space left on
  device", whatever library reported it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import GenlabError

#: Where genlab writes in a run folder (fit, train, finetune, eval).
RUN_ENTRIES = (
    "config.yaml", "meta.json", "metrics.jsonl", "metrics.json", "summary.json", "eval.json",
    "samples", "plots", "checkpoints", "model", ".lock",
)  # fmt: skip
#: Entries whose presence means a folder holds a run.
RUN_MARKERS = ("meta.json", "config.yaml", "model", "checkpoints")
#: Folders of a run whose own entries are written too.
RUN_SUBFOLDERS = ("samples", "plots", "checkpoints", "model")
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except (OverflowError, ValueError):
        return False
    return True


def refuse_links(folder: str | Path) -> None:
    """One sentence if a run folder's file or subfolder, or an entry of its subfolders, is a
    symbolic link (writing there would change a file outside the run)."""
    folder = Path(folder)
    if not os.path.isdir(folder):
        return
    found = [folder / name for name in RUN_ENTRIES if (folder / name).is_symlink()]
    for sub in RUN_SUBFOLDERS:
        path = folder / sub
        if path.is_dir() and not path.is_symlink() and not found:
            found += [p for p in sorted(path.iterdir()) if p.is_symlink()]
    if found:
        raise GenlabError(
            f"{found[0]} is a symbolic link; genlab does not write through links in a run "
            "folder (remove the link, or use another --out)."
        )
    folders = [folder / n for n in RUN_ENTRIES if n not in RUN_SUBFOLDERS and (folder / n).is_dir()]
    if folders:  # a file genlab writes is a folder there: the write would fail after the work
        raise GenlabError(f"{folders[0]} is a folder where genlab writes a file; the run folder "
                          "is damaged (remove it, or use another --out).")  # fmt: skip


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``path`` whole without following a link there: a new file beside it (created
    exclusively, so a planted link is not followed either), flushed, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink()  # a leftover of this process id (or a planted link): the name, not its target
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def append_line(path: str | Path, line: str) -> None:
    """Append one line to ``path``; a link there is refused, never followed."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise GenlabError(
                f"{path} is a symbolic link; genlab does not write through links in a run folder."
            ) from None
        raise
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")


def remove(path: Path) -> None:
    """Remove a file, a link (the link, not its target) or a folder tree."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


# --- the one rule of every command that writes a run ------------------------------------------
def holds_run(folder: str | Path) -> str | None:
    """What run ``folder`` holds, in words ("a vae run"), or None when it holds none."""
    import json

    folder = Path(folder)
    if not os.path.isdir(folder) or not any(os.path.lexists(folder / m) for m in RUN_MARKERS):
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        return f"a {meta['model']} run" if isinstance(meta["model"], str) else "a run"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run"


def refuse_other_run(folder: str | Path, overwrite: bool, hint: str = "") -> None:
    """One sentence when ``folder`` holds a run and ``--overwrite`` was not given."""
    held = holds_run(folder)
    if held and not overwrite:
        raise GenlabError(
            f"{folder} already holds {held}; {hint or 'pass'} --overwrite to replace it, or "
            "give another --out."
        )


def clear_run(folder: str | Path) -> None:
    """Remove a run's own entries from ``folder`` (what --overwrite replaces); other files
    stay, and the lock (held by the caller) too."""
    folder = Path(folder)
    for name in RUN_ENTRIES:
        if name != ".lock":
            remove(folder / name)
    for left in folder.glob(".model.*"):  # interrupted model saves
        remove(left)


# --- output paths, checked before work ----------------------------------------------------------
def _name_max(folder: Path) -> tuple[int, int]:
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 255, 4096


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the one test of writability that holds for
    root, read-only mounts and /proc alike."""
    probe = folder / f".genlab-probe-{os.getpid()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
    os.close(fd)
    os.unlink(probe)


def _check(path: Path, flag: str, what: str) -> Path:
    if str(path).strip() == "":
        raise GenlabError(f"{flag} is empty; name a {what}.")
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    name_max, path_max = _name_max(existing if os.path.isdir(existing) else existing.parent)
    long = [p for p in path.parts if len(os.fsencode(p)) > name_max]
    if long or len(os.fsencode(str(path.absolute()))) >= path_max:
        shown = (long or [str(path)])[0]
        raise GenlabError(
            f"{flag}: the name '{shown[:40]}...' is too long ({len(shown)} characters; "
            f"this file system takes at most {name_max} per name)."
        )
    if existing != path and not os.path.isdir(existing):
        raise GenlabError(f"Cannot write {flag} {path}: {existing} is not a folder.")
    folder = existing if os.path.isdir(existing) else existing.parent  # a file: its folder
    try:
        _probe(folder)
    except OSError as e:
        raise GenlabError(
            f"Cannot write {flag} {path}: the folder {folder} is not writable ({e.strerror or e})."
        ) from None
    return path


def check_folder(out: str | Path, flag: str = "--out") -> Path:
    """``out`` as an output folder that exists or can be made and written; creates nothing."""
    path = Path(out)
    if str(out).strip() == "":
        raise GenlabError(f"{flag} is empty; name a folder.")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise GenlabError(f"{flag} {out} is not a folder (a file of that name exists).")
    return _check(path, flag, "folder")


def check_file(out: str | Path, flag: str = "--out") -> Path:
    """``out`` as an output file whose folder exists or can be made and written; creates
    nothing."""
    path = Path(out)
    if str(out).strip() == "":
        raise GenlabError(f"{flag} is empty; name a file.")
    if os.path.isdir(path):
        raise GenlabError(f"{flag} {out} is a folder; give a file name.")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise GenlabError(f"{flag} {out} is not a regular file (a device or a socket).")
    return _check(path, flag, "file")


# --- failed writes ------------------------------------------------------------------------------
def disk_full(e: BaseException, path: str | Path | None = None) -> bool:
    """Whether a failed write was a full disk (or quota): an OSError says so; torch's writer
    says "enforce fail at inline_container.cc ... file write failed", so ask the disk."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    text = str(e)
    if "No space left on device" in text or "StorageFull" in text:  # safetensors' IoError
        return True
    if path is not None and ("inline_container" in text or "write failed" in text):
        folder = Path(path)
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        try:
            return shutil.disk_usage(folder).free < 64 << 20
        except OSError:
            return False
    return False


def why(e: BaseException, path: str | Path | None = None) -> str:
    """The reason of a failed write in a few words ("no space left on device")."""
    if disk_full(e, path):
        return "no space left on device"
    lines = str(e).splitlines()
    return getattr(e, "strerror", None) or (lines[0] if lines else "") or type(e).__name__


def disk_error(e: BaseException, path: str | Path) -> GenlabError:
    """The one sentence for a write of ``path`` that failed."""
    return GenlabError(f"Could not write {path} ({why(e, path)}).")


def read_run_text(path: Path, what: str | None = None, links: bool = False) -> str:
    """The text of a run's file, or one sentence naming it: a link (genlab reads no links in
    a run folder), a folder, a missing or unreadable file, bytes that are not UTF-8 text."""
    name = what or str(path)
    if path.is_symlink() and not links:
        raise GenlabError(f"{name} is a symbolic link; genlab does not read links in a run folder.")
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise GenlabError(f"{name} is a folder, not a file.") from None
    except FileNotFoundError:
        raise GenlabError(f"{name} is missing.") from None
    except OSError as e:
        raise GenlabError(f"{name} cannot be read ({e.strerror or e}).") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GenlabError(
            f"{name} is not text (binary bytes); the run folder is damaged."
        ) from None


def parse_yaml(text: str, what: str, mapping: bool = True):
    """YAML read safely (no tags that build objects), one sentence naming ``what`` on
    failure; ``mapping``: the document must be a mapping (an empty one reads as {})."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise GenlabError(
            f"{what} is not valid YAML{at} (or uses a tag genlab does not read)."
        ) from None
    except RecursionError:
        raise GenlabError(f"{what} nests too deeply to read.") from None
    if doc is None and mapping:
        return {}
    if mapping and not isinstance(doc, dict):
        raise GenlabError(f"{what} must be a mapping of keys to values, not {type(doc).__name__}.")
    return doc


def read_yaml(path: str | Path, what: str | None = None, links: bool = False) -> dict:
    """A run's YAML file (config.yaml) as a mapping, or one sentence naming it (``links``:
    read through a symbolic link, as a model folder outside any run may hold)."""
    path = Path(path)
    return parse_yaml(read_run_text(path, what, links), what or str(path), mapping=True)


def read_json(path: str | Path, what: str | None = None, keys: tuple[str, ...] = ()) -> dict:
    """A run's JSON file (meta.json) as an object holding ``keys``, or one sentence naming it."""
    import json

    path = Path(path)
    name = what or str(path)
    try:
        doc = json.loads(read_run_text(path, what))
    except (ValueError, RecursionError):
        raise GenlabError(f"{name} is not valid JSON; the run folder is damaged.") from None
    if not isinstance(doc, dict):
        raise GenlabError(f"{name} must hold a JSON object, not {type(doc).__name__}.")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise GenlabError(f"{name} has no '{missing[0]}'; the run folder is damaged.")
    return doc


def make_folder(out: str | Path, flag: str = "--out") -> Path:
    """Make the output folder ``out`` before any work, or refuse it in one sentence (a file,
    a path that cannot be created); an empty folder is all a later failure leaves (reports
    of compare, eval-t2i and the demo)."""
    path = check_folder(out, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or str(e)
        raise GenlabError(f"Cannot write to the folder '{out}' ({reason}).") from None
    return path


def writing(out: str | Path, func, *args, **kwargs):
    """``func(*args, **kwargs)``, a full disk under ``out`` said in one sentence."""
    try:
        return func(*args, **kwargs)
    except OSError as e:
        if disk_full(e):
            raise disk_error(e, e.filename or out) from None
        raise
