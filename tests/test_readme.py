"""README snippets run as tests: the Python example and the two set-up commands' shape."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the example's clusters cut edges: it warns, as it should
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Effects against 'control'" in out and "total" in out


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    commands = re.search(r"## Start here.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = [line for line in commands.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2
    assert lines[0].endswith("spillover demo --out demo-out")
    assert lines[1].endswith("python -m pytest -q")
    ci = (README.parent / ".ci" / "run").read_text()
    assert lines[1].split("&& ")[-1] in ci, "CI calls the README's test command"
