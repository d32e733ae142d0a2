"""The repository's own rules: no import cycles in the package, no experiment notes in library code, no path
hacks, a README that stays a user's page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (at module level or inside functions). Imports between a
    package and its own submodules (an __init__ re-exporting them) are left out: they are not cycles."""
    files = {}
    for f in package.rglob("*.py"):
        parts = f.with_suffix("").relative_to(package.parent).parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {}
    for mod, f in files.items():
        pkg = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.level:
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module
                targets.update([base, *(f"{base}.{a.name}" for a in node.names)])
        graph[mod] = {t for t in targets & files.keys()
                      if t != mod and not t.startswith(mod + ".") and not mod.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..a import f\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"]]


def test_no_import_cycles():
    assert cycles(import_graph(ROOT / "samstream")) == []


def test_library_code_cites_no_experiments():
    pattern = re.compile(r"session ?[0-9]|probes?-session|results/default-model", re.IGNORECASE)
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in (ROOT / "samstream").rglob("*.py")
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_no_sys_path_hacks():
    hack = "sys.path." + "insert"  # spelled in two parts so that this file does not match itself
    hits = [str(f.relative_to(ROOT)) for d in ("tests", "tools", "benchmarks") for f in (ROOT / d).rglob("*.py")
            if hack in f.read_text()]
    assert hits == []


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    text = "\n".join(lines[:20])
    assert "samstream track samstream/assets/demo.mp4" in text
    assert "tools/setup_test_env.sh && .venv/bin/python -m pytest -q" in text


def test_no_test_module_imports_another():
    pattern = re.compile(r"^\s*(from|import)\s+(tests\.)?test_\w+", re.MULTILINE)
    hits = [str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_*.py") if pattern.search(f.read_text())]
    assert hits == []


def _commands(parser, name="samstream"):
    """(command name, parser) of every command that runs: not the groups of sub-commands, like `eval`, but a
    command that runs and has sub-commands too, like `app` (with `app users`, `app export`)."""
    import argparse

    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups or not all(g.required for g in groups):
        yield name, parser
    for group in groups:
        for sub, p in group.choices.items():
            yield from _commands(p, f"{name} {sub}")


def test_cli_reference_names_every_command_and_option():
    from samstream.cli import build_parser

    sections = {}
    for block in (ROOT / "docs" / "cli.md").read_text().split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip()] = body
    missing = []
    for cmd, p in _commands(build_parser()):
        body = sections.get(cmd)
        if body is None:
            missing.append(cmd)
            continue
        missing += [f"{cmd} {o}" for a in p._actions for o in a.option_strings if o.startswith("--") and o not in body]
    assert missing == [], "rerun tools/make_cli_reference.sh"


def test_links_in_readme_and_docs_resolve():
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


# optional extras: the modules that may import them (the rest of the package runs without them). The app's HTTP
# layer is server.py, auth.py and the routes_*.py it includes.
def _http_layer(rel: str) -> bool:
    return rel in ("samstream/app/server.py", "samstream/app/auth.py") or \
        re.fullmatch(r"samstream/app/routes_\w+\.py", rel) is not None


EXTRA_IMPORTS = {"fastapi": _http_layer, "starlette": _http_layer, "uvicorn": lambda rel: rel == "samstream/cli/app.py",
                 "ray": lambda rel: rel.startswith("samstream/batch/") or rel == "samstream/cli/batch.py",
                 "onnxruntime": lambda rel: rel.startswith("samstream/runtime/"),
                 "onnx": lambda rel: rel.startswith("samstream/export/") or rel == "samstream/cli/export.py"}


def test_optional_extras_stay_in_their_modules():
    hits = []
    for f in (ROOT / "samstream").rglob("*.py"):
        rel = str(f.relative_to(ROOT))
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            hits += [f"{rel} imports {n}" for n in names
                     if n.split(".")[0] in EXTRA_IMPORTS and not EXTRA_IMPORTS[n.split(".")[0]](rel)]
    assert hits == []
