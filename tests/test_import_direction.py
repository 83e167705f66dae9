"""The Pillow plugin adapts the library: it imports `vqzip.api` (inside its functions, so that
`import vqzip` stays torch-free), and nothing the API imports imports the plugin back."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vqzip"


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function: `vqzip.x` for `from vqzip import x`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_api_does_not_import_the_pillow_plugin_that_imports_it():
    assert "vqzip.api" in imported(PACKAGE / "pillow_plugin.py")
    assert "vqzip.pillow_plugin" not in imported(PACKAGE / "api.py")
    assert "vqzip.pillow_plugin" not in imported(PACKAGE / "container.py")  # where both find FORMAT
