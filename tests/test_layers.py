"""Layering you can test: every import inside the package, walked with ``ast``
(module-level and inside functions alike), must go to the same or a lower
layer, and the import graph must have no cycle.  docs/architecture.md shows
the same table and the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layers, bottom to top: a module may import only from its own layer or lower
#: ones.  The longest matching prefix decides (``fractaldb.ifs.kernels`` before
#: ``fractaldb.ifs``).  Modules of the family packages are layered by rule, not
#: listed (:func:`family_layer`): a new family adds nothing here.
LAYERS = [
    (0, ["fractaldb._jit", "fractaldb._compat", "fractaldb._version", "fractaldb.errors", "fractaldb.keys", "fractaldb.seeds",
         "fractaldb.parallel", "fractaldb.safety", "fractaldb.signals", "fractaldb.idx", "fractaldb.stats",
         "fractaldb.sheet", "fractaldb.citations", "fractaldb.schema"]),
    (1, ["fractaldb.kernels.arith", "fractaldb.kernels.random", "fractaldb.kernels.mt19937", "fractaldb.kernels.png"]),
    (2, ["fractaldb.kernels.cuda_common", "fractaldb.kernels"]),
    (3, ["fractaldb.ifs.kernels", "fractaldb.contours"]),
    (4, ["fractaldb.ifs.kernels_cuda", "fractaldb.contours.kernels_cuda"]),
    (5, ["fractaldb.labels", "fractaldb.storage", "fractaldb.outputs", "fractaldb.inputs", "fractaldb.remote", "fractaldb.folders", "fractaldb.estimate", "fractaldb.encode", "fractaldb.gpu", "fractaldb.plan", "fractaldb.console",
         "fractaldb.families.base"]),
    (6, ["fractaldb.ifs", "fractaldb.ifs.constants", "fractaldb.ifs.system", "fractaldb.ifs.weights"]),
    (7, ["fractaldb.ifs.policy", "fractaldb.ifs.render", "fractaldb.ifs.render_cuda"]),
    (11, ["fractaldb.families"]),
    (12, ["fractaldb.config"]),
    (13, ["fractaldb.shards", "fractaldb.executors", "fractaldb.card", "fractaldb.manifest"]),
    (14, ["fractaldb.dataset"]),
    (15, ["fractaldb.export", "fractaldb.preview", "fractaldb.data", "fractaldb.rebuild", "fractaldb.indexes",
          "fractaldb.report", "fractaldb.forecast"]),
    (16, ["fractaldb.train"]),
    (17, ["fractaldb.experiments"]),
    (18, ["fractaldb.cli"]),
    (19, ["fractaldb"]),  # the package's __init__: the public API re-exports
]
#: Packages whose submodules sit below their ``__init__``: the formats of the index
#: registry (layer 13, beside the card) under the package's face (15).
SUBMODULE_LAYERS = {"fractaldb.indexes": 13}


def family_layer(module: str) -> int | None:
    """The layer of a module inside a family package, by rule: its CPU kernels (``kernels*``)
    3, its CUDA kernels (``kernels*cuda*``) 4, every other module 8, a package's face (its
    ``__init__``) 10.  Between them: ``fractaldb.families.base`` (5) below, the registry (11) above."""
    prefix = "fractaldb.families."
    if not module.startswith(prefix) or module == "fractaldb.families.base":
        return None
    parts = module[len(prefix):].split(".")
    if (ROOT / "fractaldb" / "families").joinpath(*parts, "__init__.py").exists():
        return 10
    leaf = parts[-1]
    if leaf.startswith("kernels"):
        return 4 if "cuda" in leaf else 3
    return 8


def layer_of(module: str) -> int:
    fam = family_layer(module)
    if fam is not None:
        return fam
    for package, layer in SUBMODULE_LAYERS.items():
        if module.startswith(package + "."):
            return layer
    best = None
    for layer, prefixes in LAYERS:
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (layer, len(p))
    if best is None:
        raise KeyError(f"{module} is in no layer of tests/test_layers.py: add it")
    return best[0]


def package_sources(root: Path = ROOT) -> dict:
    """``{module name: source}`` of every module of the package (cli/ installs as fractaldb.cli)."""
    out = {}
    for base, prefix in ((root / "fractaldb", "fractaldb"), (root / "cli", "fractaldb.cli")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix] + parts)] = path.read_text()
    return out


def imports(module: str, source: str, modules) -> set:
    """Package modules that ``module`` imports (relative and absolute, anywhere in the file)."""
    is_pkg = any(m.startswith(module + ".") for m in modules)
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def graph(sources: dict) -> dict:
    return {m: imports(m, s, sources) for m, s in sources.items()}


def violations(sources: dict) -> list:
    """Reach-backs (an import to a higher layer) and cycles, as readable lines."""
    g = graph(sources)
    out = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
           for m, targets in sorted(g.items()) for t in sorted(targets) if layer_of(t) > layer_of(m)]
    # cycles: depth-first search for a back edge
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(g[m]):
            if state.get(t) == 1:
                out.append("cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    return out


def test_every_module_has_a_layer():
    for m in package_sources():
        layer_of(m)


def test_no_reach_back_and_no_cycle():
    assert violations(package_sources()) == []


def test_a_reach_back_is_caught():
    """The check fails on a deliberate violation: the plan importing the CLI."""
    sources = package_sources()
    sources["fractaldb.plan"] += "\n\ndef _bad():\n    from .cli import main\n"
    found = violations(sources)
    assert found[0] == "fractaldb.plan (layer 5) imports fractaldb.cli.main (layer 18)"
    assert all(v.startswith("cycle: ") and "fractaldb.plan" in v for v in found[1:])  # and it closes a loop


def test_a_cycle_is_caught():
    sources = package_sources()
    sources["fractaldb.keys"] += "\nfrom .seeds import generator\n"
    sources["fractaldb.seeds"] += "\nfrom .keys import shard_name\n"
    assert any(v.startswith("cycle: ") and "fractaldb.keys" in v and "fractaldb.seeds" in v
               for v in violations(sources))


def _docstrings(tree) -> set:
    """The ids of the docstring nodes of a module and of its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def family_mentions(module: str, source: str, families) -> list:
    """Where ``source`` names a family in code (docstrings and comments are prose, not code):
    a string constant with a family name as a word (``"perlin"``, ``"fractal.categories=2"``),
    an attribute or import path through ``families.NAME``, or a name or attribute spelled as one."""
    import re

    tree = ast.parse(source)
    docs = _docstrings(tree)
    words = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*")  # "multi-fractal-1k" is one word, "fractal.x" two
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            hits = set(words.findall(node.value)) & set(families)
            found += [f"{module}:{line}: string {node.value[:60]!r} names {h!r}" for h in sorted(hits)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if "families" in parts and set(parts[parts.index("families") + 1:]) & set(families):
                found.append(f"{module}:{line}: imports from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in families:
            found.append(f"{module}:{line}: attribute .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in families:
            found.append(f"{module}:{line}: name {node.id}")
    return found


def generic_modules(sources: dict) -> dict:
    """Every module outside the family packages (the registry and families.base included)."""
    from fractaldb.families import list_families

    inside = tuple(f"fractaldb.families.{f.split('.')[0]}" for f in _family_packages())
    return {m: s for m, s in sources.items() if not any(m == p or m.startswith(p + ".") for p in inside)}


def _family_packages() -> list:
    """The package folders under fractaldb/families/ (each holds one or more families)."""
    base = ROOT / "fractaldb" / "families"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_generic_layers_name_no_family():
    """Only the family packages name a family: every other module, walked with ast."""
    from fractaldb.families import list_families

    sources = package_sources()
    found = [hit for m, s in sorted(generic_modules(sources).items()) for hit in family_mentions(m, s, list_families())]
    assert found == []


def test_the_family_name_check_can_fail():
    from fractaldb.families import list_families

    families = list_families()
    src = 'X = {"key": "perlin.classes=3"}\nfrom .families.fractal import search\nY = fractal3d\n'
    hits = family_mentions("fractaldb.example", src, families)
    assert len(hits) == 3, hits
    assert family_mentions("fractaldb.example", '"""About the perlin family."""\n# perlin\n', families) == []


def test_no_family_package_imports_another():
    """What several families share lives below them (fractaldb.ifs, ...), never in a sibling package."""
    g = graph(package_sources())
    packages = _family_packages()
    bad = []
    for m, targets in sorted(g.items()):
        for pkg in packages:
            own = f"fractaldb.families.{pkg}"
            if m == own or m.startswith(own + "."):
                bad += [f"{m} imports {t}" for t in sorted(targets) if t.startswith("fractaldb.families.")
                        and not (t == own or t.startswith(own + ".")) and t != "fractaldb.families.base"]
    assert bad == []


#: Rooms of a sensible size: no module over this many lines, no function over ``MAX_FUNCTION``
#: (docstring included), in fractaldb/ and cli/.
MAX_MODULE, MAX_FUNCTION = 600, 80


def oversized(sources: dict) -> list:
    out = []
    for m, src in sorted(sources.items()):
        n = len(src.splitlines())
        if n > MAX_MODULE:
            out.append(f"{m}: {n} lines (at most {MAX_MODULE})")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION:
                    out.append(f"{m}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION})")
    return out


def test_rooms_of_a_sensible_size():
    assert oversized(package_sources()) == []


def test_the_size_check_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION))
    assert oversized({"fractaldb.example": f"def f():\n{body}\n"}) == [
        f"fractaldb.example:1 f: {MAX_FUNCTION + 1} lines (at most {MAX_FUNCTION})"]


TABLE_HEAD = "| layer | module | imports (anywhere in the file) |"


def graph_table() -> list:
    """The rows of docs/architecture.md's import table (``python tests/test_layers.py`` prints them)."""
    def short(m):
        return m[len("fractaldb."):] if m.startswith("fractaldb.") else "fractaldb"

    g = graph(package_sources())
    return [f"| {layer_of(m)} | `{short(m)}` | " + (", ".join(f"`{short(t)}`" for t in sorted(g[m])) or "—") + " |"
            for m in sorted(g, key=lambda m: (layer_of(m), m))]


def test_architecture_doc_shows_the_real_graph():
    """docs/architecture.md's import table is the graph of the source, row for row."""
    want = graph_table()
    doc = (ROOT / "docs" / "architecture.md").read_text().splitlines()
    start = doc.index(TABLE_HEAD) + 2
    have = doc[start:start + len(want) + 1]
    assert have[:len(want)] == want, "docs/architecture.md's import table is stale: python tests/test_layers.py --write"
    assert not have[len(want):] or not have[len(want)].startswith("|")


if __name__ == "__main__":  # python tests/test_layers.py [--write]: print (or write into the doc) the table
    import sys

    rows = graph_table()
    if "--write" in sys.argv:
        path = ROOT / "docs" / "architecture.md"
        doc = path.read_text().splitlines()
        start = doc.index(TABLE_HEAD) + 2
        end = start
        while end < len(doc) and doc[end].startswith("|"):
            end += 1
        path.write_text("\n".join(doc[:start] + rows + doc[end:]) + "\n")
    else:
        print("\n".join([TABLE_HEAD, "|---|---|---|"] + rows))
