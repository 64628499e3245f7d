"""The packages import without circles: `tools/import_graph.py` reads every import, lazy ones included."""

from __future__ import annotations

from pathlib import Path

from tools.import_graph import describe_cycle, find_cycles, module_edges, package_edges


def cycles_of(edges) -> list[str]:
    return [describe_cycle(cycle, edges) for cycle in find_cycles(edges)]


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_digits_modules_import_without_circles():
    assert cycles_of(module_edges("digits")) == []


# Each sub-package of digits imports only those before it (data and architectures are independent).
DIGITS_LAYERS = (
    "config",
    "data",
    "architectures",
    "training",
    "export",
    "workflow",
    "ray_glue",
    "tuning",
    "cli",
    "__main__",
)


def upward_imports(package: str, layers: tuple[str, ...]) -> list[str]:
    """Package-level imports from a layer to itself or one after it (listed in `layers`, lowest first)."""
    rank = {f"{package}.{name}": index for index, name in enumerate(layers)}
    edges = package_edges(module_edges(package))
    return sorted({f"{e.source} -> {e.target}" for e in edges if rank[e.target] >= rank[e.source]})


def test_digits_subpackages_import_only_the_layers_before_them():
    assert upward_imports("digits", DIGITS_LAYERS) == []


# lpasrn: pure data, models and losses; inference reads bundles without training code; Ray only in ray_glue and up.
LPASRN_LAYERS = (
    "config",
    "data",
    "models",
    "losses",
    "model_factory",
    "checkpoint",
    "progress",
    "inference",
    "training",
    "ray_glue",
    "cli",
    "__main__",
)


def test_lpasrn_subpackages_import_only_the_layers_before_them():
    assert upward_imports("lpasrn", LPASRN_LAYERS) == []


def test_lpasrn_modules_import_without_circles():
    assert cycles_of(module_edges("lpasrn")) == []


def test_a_circle_closed_by_a_function_level_import_is_found(tmp_path):
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import helper\n",
            "pkg/b.py": "def helper():\n    from pkg import a\n    return a\n",
        },
    )
    edges = module_edges("pkg", tmp_path)
    assert find_cycles(edges) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert describe_cycle(["pkg.a", "pkg.b", "pkg.a"], edges) == "pkg.a -> pkg.b (line 1) -> pkg.a (line 2, lazy)"


def test_type_checking_imports_count_and_a_package_init_importing_its_modules_does_not(tmp_path):
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n"
    write_package(tmp_path, {"pkg/__init__.py": "from pkg import a\n", "pkg/a.py": typed, "pkg/b.py": "import pkg.a\n"})
    edges = module_edges("pkg", tmp_path)
    assert {(e.source, e.target, e.lazy) for e in edges} == {
        ("pkg", "pkg.a", False),
        ("pkg.a", "pkg.b", True),
        ("pkg.b", "pkg.a", False),
    }
    assert find_cycles(edges) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert find_cycles(package_edges(edges, depth=1)) == []
