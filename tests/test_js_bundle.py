"""The committed bundles in ``nbtracker/static`` are what ``js/`` builds to.

Builds ``js/`` with the pinned esbuild from ``package.json`` (``npm ci`` on first use)
into a temp folder, with the same flags as ``npm run build``, and compares byte for byte:
a change to ``js/`` without ``npm run build`` fails here, never silently in a browser.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _esbuild() -> Path:
    exe = REPO / "node_modules" / ".bin" / "esbuild"
    if not exe.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to check the JS bundle (Debian: apt-get install npm)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=REPO,
            check=True,
            timeout=600,
        )
    assert exe.exists(), "npm ci did not install esbuild"
    return exe


def test_committed_bundles_match_js_sources(tmp_path: Path) -> None:
    build = json.loads((REPO / "package.json").read_text())["scripts"]["build"]
    args = shlex.split(build)
    assert args[0] == "esbuild"
    args = [str(_esbuild())] + [a for a in args[1:] if not a.startswith("--outdir=")]
    subprocess.run([*args, f"--outdir={tmp_path}"], cwd=REPO, check=True, timeout=300)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built, "esbuild built nothing"
    for name in built:
        committed = REPO / "nbtracker" / "static" / name
        assert committed.exists(), f"{name} is built from js/ but not committed"
        assert committed.read_bytes() == (tmp_path / name).read_bytes(), (
            f"nbtracker/static/{name} is stale: run `npm run build` and commit it"
        )
