#!/usr/bin/env python3
"""Apply, revert or check the product-noise patches on an Opacus 1.6.0 installation.

Keeps the product-noise paper's workflow ("replace Opacus' optimizer.py and privacy_engine.py")
working: the patched files delegate to ``product_noise`` (see ``patches/README.md``). The
recommended path needs no patching: ``from product_noise import PrivacyEngine``.

Examples::

    python patches/apply.py                          # patch the installed opacus
    python patches/apply.py --check                  # applied? (exit 0 yes, 1 no, 2 error)
    python patches/apply.py --revert                 # restore the pristine 1.6.0 files
    python patches/apply.py --opacus-dir /tmp/x/opacus

Safety: every file is classified by sha256 against the hashes recorded in the patch files
(pristine = the opacus 1.6.0 wheel, from its RECORD; patched = the generated result). Files in
any other state are never touched. Backups of the pristine files are kept as ``*.orig``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

OPACUS_VERSION = "1.6.0"
PATCH_DIR = Path(__file__).resolve().parent
#: patch file → file inside the opacus package directory
PATCHES = {
    f"opacus-{OPACUS_VERSION}-privacy_engine.patch": "privacy_engine.py",
    f"opacus-{OPACUS_VERSION}-optimizer.patch": "optimizers/optimizer.py",
}

EXIT_APPLIED, EXIT_NOT_APPLIED, EXIT_ERROR = 0, 1, 2


class PatchError(RuntimeError):
    """Refusal or failure; the message is shown to the user."""


# ------------------------------------------------------------------ patch files
@dataclass(frozen=True)
class Hunk:
    old_start: int  # 1-based
    new_start: int  # 1-based
    old_lines: list[str]
    new_lines: list[str]


@dataclass(frozen=True)
class FilePatch:
    path: Path  # the .patch file
    target: Path  # the file in the opacus directory
    pristine_sha256: str
    patched_sha256: str
    hunks: tuple[Hunk, ...]


_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_patch(path: Path, target: Path) -> FilePatch:
    """Read the ``#`` preamble (hashes) and the hunks of one generated unified diff."""
    text = path.read_text(encoding="utf-8")
    meta = dict(re.findall(r"^# (pristine-sha256|patched-sha256): ([0-9a-f]{64})$", text, re.M))
    if set(meta) != {"pristine-sha256", "patched-sha256"}:
        raise PatchError(f"{path} has no pristine/patched sha256 header: regenerate it")
    lines = text.splitlines(keepends=True)
    hunks: list[Hunk] = []
    i = 0
    while i < len(lines):
        m = _HUNK_RE.match(lines[i])
        i += 1
        if m is None:
            continue
        n_old = int(m.group(2) or 1)
        n_new = int(m.group(4) or 1)
        old: list[str] = []
        new: list[str] = []
        while (len(old) < n_old or len(new) < n_new) and i < len(lines):
            line = lines[i]
            i += 1
            if line.startswith("\\"):  # "\ No newline at end of file"
                continue
            tag, body = line[:1], line[1:]
            if tag in (" ", "\n"):
                body = body if tag == " " else "\n"
                old.append(body)
                new.append(body)
            elif tag == "-":
                old.append(body)
            elif tag == "+":
                new.append(body)
            else:
                raise PatchError(f"{path}: malformed hunk line {line!r}")
        if len(old) != n_old or len(new) != n_new:
            raise PatchError(f"{path}: truncated hunk at line {i}")
        hunks.append(Hunk(int(m.group(1)), int(m.group(3)), old, new))
    if not hunks:
        raise PatchError(f"{path} contains no hunks")
    return FilePatch(path, target, meta["pristine-sha256"], meta["patched-sha256"], tuple(hunks))


def apply_hunks(text: str, hunks: tuple[Hunk, ...], *, reverse: bool = False) -> str:
    """Pure-Python exact applier for these unified diffs (no fuzz, no offset)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0  # index into `lines`
    for h in hunks:
        before, after = (h.new_lines, h.old_lines) if reverse else (h.old_lines, h.new_lines)
        start = (h.new_start if reverse else h.old_start) - 1
        if not before:  # pure insertion: "-N,0" means after line N
            start += 1
        if start < pos or lines[start : start + len(before)] != before:
            raise PatchError("hunk does not match the file (it is not the expected version)")
        out.extend(lines[pos:start])
        out.extend(after)
        pos = start + len(before)
    out.extend(lines[pos:])
    return "".join(out)


# ------------------------------------------------------------------ opacus directory
def default_opacus_dir() -> Path:
    """The ``opacus`` package Python would import (found without importing it)."""
    spec = importlib.util.find_spec("opacus")
    if spec is None or not spec.submodule_search_locations:
        raise PatchError("opacus is not installed; give --opacus-dir")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def check_version(opacus_dir: Path) -> None:
    version_file = opacus_dir / "version.py"
    if not version_file.is_file():
        raise PatchError(f"{opacus_dir} is not an opacus package directory (no version.py)")
    m = re.search(
        r'^__version__\s*=\s*["\']([^"\']+)["\']', version_file.read_text(encoding="utf-8"), re.M
    )
    version = m.group(1) if m else "unknown"
    if version != OPACUS_VERSION:
        raise PatchError(
            f"opacus at {opacus_dir} is version {version}, but these patches are for opacus "
            f"{OPACUS_VERSION} only. Install opacus=={OPACUS_VERSION}, or skip patching and use "
            "`from product_noise import PrivacyEngine`."
        )


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_of(fp: FilePatch) -> str:
    """'pristine', 'patched', 'modified' or 'missing'."""
    if not fp.target.is_file():
        return "missing"
    digest = sha256_file(fp.target)
    if digest == fp.pristine_sha256:
        return "pristine"
    if digest == fp.patched_sha256:
        return "patched"
    return "modified"


def backup_path(target: Path) -> Path:
    return target.with_name(target.name + ".orig")


# ------------------------------------------------------------------ engines
def _run_patch_program(fp: FilePatch, *, reverse: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "patch",
            "--batch",
            "--forward",
            "--silent",
            "--no-backup-if-mismatch",
            "--fuzz=0",
            "--reject-file",
            str(Path(tmp) / "rejects"),
            str(fp.target),
            "-i",
            str(fp.path),
        ]
        if reverse:
            cmd.insert(1, "--reverse")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PatchError(f"patch failed on {fp.target}: {(proc.stdout + proc.stderr).strip()}")


def _run_python(fp: FilePatch, *, reverse: bool) -> None:
    text = fp.target.read_bytes().decode("utf-8")
    fp.target.write_bytes(apply_hunks(text, fp.hunks, reverse=reverse).encode("utf-8"))


def choose_engine(name: str) -> str:
    if name == "auto":
        return "patch" if shutil.which("patch") else "python"
    if name == "patch" and not shutil.which("patch"):
        raise PatchError("--engine patch: the `patch` program is not on PATH")
    return name


def _transform(fp: FilePatch, engine: str, *, reverse: bool) -> None:
    (_run_patch_program if engine == "patch" else _run_python)(fp, reverse=reverse)


# ------------------------------------------------------------------ commands
def load_patches(opacus_dir: Path) -> list[FilePatch]:
    return [parse_patch(PATCH_DIR / name, opacus_dir / rel) for name, rel in PATCHES.items()]


def _refuse_foreign(patches: list[FilePatch], states: dict[Path, str]) -> None:
    bad = [
        f"{fp.target} ({states[fp.target]})"
        for fp in patches
        if states[fp.target] in ("modified", "missing")
    ]
    if bad:
        raise PatchError(
            "refusing: these files are neither pristine opacus "
            f"{OPACUS_VERSION} nor patched by this version of the patches: {', '.join(bad)}. "
            "Reinstall opacus (pip install --force-reinstall opacus==1.6.0) or restore them."
        )


def do_apply(patches: list[FilePatch], engine: str) -> list[str]:
    states = {fp.target: state_of(fp) for fp in patches}
    _refuse_foreign(patches, states)
    messages = []
    for fp in patches:
        if states[fp.target] == "patched":
            messages.append(f"already applied: {fp.target}")
            continue
        backup = backup_path(fp.target)
        shutil.copy2(fp.target, backup)
        try:
            _transform(fp, engine, reverse=False)
            if sha256_file(fp.target) != fp.patched_sha256:
                raise PatchError(f"{fp.target}: result differs from the expected patched file")
        except BaseException:
            shutil.copy2(backup, fp.target)
            backup.unlink()
            raise
        messages.append(f"applied ({engine}): {fp.target}  [backup {backup.name}]")
    return messages


def do_revert(patches: list[FilePatch], engine: str) -> list[str]:
    states = {fp.target: state_of(fp) for fp in patches}
    _refuse_foreign(patches, states)
    messages = []
    for fp in patches:
        backup = backup_path(fp.target)
        if states[fp.target] == "pristine":
            messages.append(f"not applied: {fp.target}")
        elif backup.is_file() and sha256_file(backup) == fp.pristine_sha256:
            shutil.copy2(backup, fp.target)
            messages.append(f"reverted (from {backup.name}): {fp.target}")
        else:
            _transform(fp, engine, reverse=True)
            if sha256_file(fp.target) != fp.pristine_sha256:
                raise PatchError(f"{fp.target}: reverse patch did not give the pristine file")
            messages.append(f"reverted ({engine}): {fp.target}")
        if backup.is_file() and sha256_file(backup) == fp.pristine_sha256:
            backup.unlink()
    return messages


def do_check(patches: list[FilePatch]) -> tuple[int, list[str]]:
    states = {fp.target: state_of(fp) for fp in patches}
    messages = [f"{states[fp.target]}: {fp.target}" for fp in patches]
    values = set(states.values())
    if values == {"patched"}:
        return EXIT_APPLIED, [*messages, "product-noise patches: applied"]
    if values <= {"pristine", "patched"}:
        which = "partially applied" if "patched" in values else "not applied"
        return EXIT_NOT_APPLIED, [*messages, f"product-noise patches: {which}"]
    return EXIT_ERROR, [*messages, "product-noise patches: files modified by something else"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            f"Apply (default), revert or check the product-noise patches on opacus "
            f"{OPACUS_VERSION}'s privacy_engine.py and optimizers/optimizer.py. The patched files "
            "delegate to the product_noise package, which must be importable. Recommended "
            "instead: `from product_noise import PrivacyEngine` (no patching)."
        ),
        epilog="exit status: 0 done / applied, 1 --check: not (fully) applied, 2 error or refusal",
    )
    parser.add_argument(
        "--opacus-dir",
        type=Path,
        help="opacus package directory (containing version.py); default: the one Python imports",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--revert", action="store_true", help="restore the pristine 1.6.0 files")
    mode.add_argument("--check", action="store_true", help="report whether the patches are applied")
    parser.add_argument(
        "--engine",
        choices=("auto", "patch", "python"),
        default="auto",
        help="`patch` program or the built-in applier (default: patch if on PATH)",
    )
    args = parser.parse_args(argv)
    try:
        opacus_dir = (args.opacus_dir or default_opacus_dir()).resolve()
        check_version(opacus_dir)
        patches = load_patches(opacus_dir)
        if args.check:
            code, messages = do_check(patches)
            print("\n".join(messages))
            return code
        engine = choose_engine(args.engine)
        messages = (do_revert if args.revert else do_apply)(patches, engine)
    except (PatchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print("\n".join(messages))
    if not args.revert and importlib.util.find_spec("product_noise") is None:
        print(
            "note: product_noise is not importable from here; the patched opacus needs it "
            "(pip install product-noise, or put the repository on PYTHONPATH)"
        )
    return EXIT_APPLIED


if __name__ == "__main__":
    sys.exit(main())
