"""The import graph of the shop's own code (every import, a lazy one in a function included)."""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import each other in a circle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
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

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_imports_itself_through_a_circle() -> None:
    # a lazy import inside a function hides a circle from Python, not from the reader: it counts
    graph = grimp.build_graph("libs", "services", "gateway", "devserver", include_external_packages=False)
    assert _cycles(graph) == []


# wire shapes several parts exchange (not one producer's): an event contract may carry them
SHARED_SHAPES = {"libs.contracts.addresses", "libs.contracts.breakdown"}


def test_each_event_contract_depends_on_nothing_but_the_catalogue_and_shared_shapes() -> None:
    graph = grimp.build_graph("libs", "services", "gateway", "devserver", include_external_packages=False)
    for contract in graph.find_children("libs.contracts"):
        imported = graph.find_modules_directly_imported_by(contract)
        allowed = set() if contract in SHARED_SHAPES else {"libs.common.events.catalogue", *SHARED_SHAPES}
        assert imported <= allowed, (contract, imported)
