"""The README's two commands are the contract with a newcomer; CI must run the second exactly."""
from pathlib import Path

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
