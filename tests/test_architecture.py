"""The package layering of docs/ARCHITECTURE.md holds: imports run one way, no cycles,
and no source file outside tests grows past the size limit."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# Each package may import the packages listed (and third-party code), nothing else.
ALLOWED = {
    "datasets": set(),
    "serving": set(),
    "model": {"datasets"},
    "components": {"datasets"},
    "pipeline": {"datasets", "model", "components", "serving"},
    "analysis": {"datasets", "model", "serving"},
    "bench": {"datasets", "model", "components", "pipeline", "serving", "analysis", "tests"},
}
MAX_LINES = 450


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def _sources(package):
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package):
    ours = set(ALLOWED) | {"tests"}
    upward = sorted({(str(path.relative_to(REPO)), target) for path in _sources(package)
                     for target in _imports(path)
                     if target in ours and target != package and target not in ALLOWED[package]})
    assert not upward, f"{package} may import only {sorted(ALLOWED[package])}; found {upward}"


def test_the_allowed_graph_has_no_cycle():
    seen, done = set(), set()

    def visit(node, path):
        assert node not in seen - done, f"cycle: {' -> '.join(path + [node])}"
        if node in done or node not in ALLOWED:
            return
        seen.add(node)
        for target in ALLOWED[node]:
            visit(target, path + [node])
        done.add(node)

    for package in ALLOWED:
        visit(package, [])


def test_no_source_file_is_too_long():
    long = sorted((str(p.relative_to(REPO)), n) for package in ALLOWED for p in _sources(package)
                  if (n := len(p.read_text().splitlines())) > MAX_LINES)
    assert not long, f"files over {MAX_LINES} lines (split them along their jobs): {long}"
