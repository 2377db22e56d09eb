"""No import circles at run time (issue 16): a module never imports, directly or through
others, a module that imports it back. import-linter's contracts (pyproject) check the
layers between packages; this checks every module against every other, which the layers
cannot (two modules of one package).

Imports under `if TYPE_CHECKING:` run nothing, so they cannot make a partly initialised
module at import time; the first test leaves them out. A circle they close is still two
modules that cannot be read (or moved) one without the other, so syncer/ is also checked
with them in: the shared type goes down a floor (a Protocol, as qualify/sections.py and
store/database.py do). connectors/ is checked at run time only until its own type-only
circles (by_ids <-> connector, the sandbox servers and their controls) are gone.
"""

from __future__ import annotations

import grimp


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_module_imports_itself_back_at_run_time() -> None:
    graph = grimp.build_graph("syncer", "connectors", exclude_type_checking_imports=True,
                              cache_dir=None)
    assert _circles(graph) == []


def test_no_type_only_circle_either() -> None:
    """Imports under TYPE_CHECKING run nothing, but a loop of them still says two modules
    each need the other: the shared type belongs lower (or in a Protocol)."""
    graph = grimp.build_graph("syncer", "connectors", exclude_type_checking_imports=False,
                              cache_dir=None)
    assert _circles(graph) == []


def test_a_circle_is_found() -> None:
    """The check can fail: two modules importing each other are one circle."""
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _circles(graph) == [["pkg.a", "pkg.b"]]
