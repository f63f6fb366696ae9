"""What a test run wrote into the checkout. Tests write into tmp_path (screenshots into
test-artifacts/); a file that appears or changes beside the code (a consent.db from an app built
with the default store, say) fails the run. Only in a git checkout: a copy without .git is not
checked."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Caches of the tools themselves (Python, pytest, Hypothesis), the virtual environment, and the
# one folder tests are meant to write to.
ALLOWED = (".venv/", ".pytest_cache/", ".hypothesis/", "test-artifacts/")

State = dict[str, tuple[str, int, int]]  # path -> (git status, mtime_ns, size)


def git_root(folder: Path) -> Path | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None


def snapshot(root: Path) -> State | None:
    """Every changed, untracked or ignored path of the work tree (ignored folders as one entry),
    with its size and modification time; None when git cannot tell."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=normal"], cwd=root, capture_output=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    state: State = {}
    items = iter(done.stdout.split(b"\0"))
    for item in items:
        if not item:
            continue
        status, path = item[:2].decode(), item[3:].decode("utf-8", "surrogateescape")
        if status[0] in "RC":
            next(items, None)  # the path it was renamed or copied from
        if path.startswith(ALLOWED) or "__pycache__/" in path + "/":
            continue
        try:
            stat = (root / path).stat()
            state[path] = (status, stat.st_mtime_ns, stat.st_size)
        except OSError:
            state[path] = (status, 0, -1)
    return state


def changes(before: State, after: State) -> list[str]:
    return sorted(path for path, seen in after.items() if before.get(path) != seen)
