"""The README's asyncio example runs as written (on the simulated network), as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_asyncio_example_runs(tmp_path: Path) -> None:
    section = README.read_text("utf-8").split("### asyncio", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the asyncio section has no example"
    script = tmp_path / "example.py"
    script.write_text(code.group(1), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYE2_")}
    env["PYE2_HOME"] = str(tmp_path / "home")  # its key file goes here, not into the real home
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "2", "3"]
