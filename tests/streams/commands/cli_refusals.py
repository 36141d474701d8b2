"""What a refused `bcl` command looks like: its exit status, one `error:` line on stderr, nothing on stdout."""

from __future__ import annotations

import subprocess


def refused(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """`done` exited `status` with one `error:` line holding each of `words`, and printed nothing else."""
    assert done.returncode == status, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and all(w in line for w in words), line
    assert done.stdout == ""
