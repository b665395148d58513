"""The README's two commands are the contract with a newcomer; CI must run the second exactly."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # end-to-end: the maths lane is pytest -m "not slow"

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    assert len(lines) == 2, f"README's first code block must hold exactly two commands, got {lines}"
    return lines


def test_readme_starts_with_two_commands():
    text = (ROOT / "README.md").read_text()
    first_lines = text.splitlines()[:6]
    assert "```bash" in first_lines, "the two commands must be in the README's first lines"
    demo, tests = _readme_commands()
    assert "pip install -e ." in demo and "python -m scratchvae demo" in demo
    assert 'pip install -e ".[test]"' in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_exactly():
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in [ln.strip() for ln in ci], f".ci/run must contain the line: {tests}"


def test_readme_api_snippet_runs(tmp_path, monkeypatch):
    """The 'API in one screen' code, with sizes scaled down so it runs in a few seconds."""
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    small = {"n_train=10000": "n_train=300", "n_valid=1000": "n_valid=100", "n_test=1000": "n_test=200",
             "epochs=10": "epochs=1", "K=5000": "K=10"}
    for old, new in small.items():
        assert old in code, f"README snippet changed: {old!r} not found; update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["elbo"].shape == (128,) and namespace["log_px"].shape == (200,)
    assert namespace["images"].shape == (64, 784)
    assert set(namespace["grads"]) == set(namespace["vae"].params)
    assert (tmp_path / "runs" / "vae" / "checkpoint.npz").exists()
