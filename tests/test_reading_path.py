"""The README's reading path is bound to the code: every row names a function or class and the
exact line range where it stands, and the path through the library stays within six files."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (?P<step>[^|]+) \| \[`(?P<path>[^`]+)`\]\((?P=path)#L(?P<a>\d+)-L(?P<b>\d+)\) "
                 r"\| `(?P<name>[\w.]+)` \|", re.M)


def _spans(path):
    """{qualified name: (first line, last line)} of every function and class in a file."""
    out = {}

    def visit(node, prefix):
        for n in ast.iter_child_nodes(node):
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                start = min([d.lineno for d in n.decorator_list] + [n.lineno])
                out[prefix + n.name] = (start, n.end_lineno)
                if isinstance(n, ast.ClassDef):
                    visit(n, prefix + n.name + ".")
    visit(ast.parse((ROOT / path).read_text()), "")
    return out


def _rows():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Start here"):text.index("## The API in one screen")]
    return [m.groupdict() for m in ROW.finditer(section)]


def test_every_row_points_at_the_code_it_names():
    rows = _rows()
    assert len(rows) >= 6, "the reading path table was not found in the README"
    for row in rows:
        spans = _spans(row["path"])
        assert row["name"] in spans, f"{row['path']} has no {row['name']}"
        first, last = spans[row["name"]]
        got = (int(row["a"]), int(row["b"]))
        assert got == (first, last), (f"README points at {row['path']} lines {got} for "
                                      f"{row['name']}, which now stands at lines {first}-{last}")


def test_one_training_step_opens_at_most_six_library_files():
    files = {row["path"] for row in _rows()}
    assert all(f.startswith("scratchvae/") for f in files), files
    assert len(files) <= 6, files


def test_the_path_starts_at_the_one_file_edition():
    text = (ROOT / "README.md").read_text()
    start = text[text.index("## Start here"):]
    assert start.index("demos/vae_one_file.py") < start.index("scratchvae/train.py")
