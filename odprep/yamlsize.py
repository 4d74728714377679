"""How big a YAML document is once its aliases are expanded.

An alias bomb ("billion laughs") is a kilobyte of text whose anchors, each referring to
the one before ten times over, expand to billions of values: walking it, converting it
to text or re-dumping it never ends. Every YAML odprep loads is measured here first, in
time linear in its distinct nodes, and refused past a bound no real config reaches.
"""

from __future__ import annotations

from odprep.errors import OdprepError

MAX_VALUES = 100_000  # a Model Garden experiment holds about a thousand; a data.yaml fewer


def expanded_size(node: object) -> int:
    """Values in the document with every alias written out (each distinct node measured
    once; a node that contains itself counts as too big)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[object, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if not isinstance(current, dict | list):
            continue
        if children_done:
            children = list(current.keys()) + list(current.values()) if isinstance(current, dict) else current
            sizes[key] = min(1 + sum(sizes.get(id(c), 1) for c in children), MAX_VALUES + 1)
            open_nodes.discard(key)
            continue
        if key in sizes:
            continue
        if key in open_nodes:  # an alias inside its own anchor
            return MAX_VALUES + 1
        open_nodes.add(key)
        stack.append((current, True))
        children = list(current.values()) if isinstance(current, dict) else current
        stack.extend((child, False) for child in children if isinstance(child, dict | list)
                     and id(child) not in sizes)
    return sizes.get(id(node), 1)


def refuse_alias_bombs(document: object, source: object) -> None:
    if expanded_size(document) > MAX_VALUES:
        raise OdprepError(source, f"its aliases expand to more than {MAX_VALUES:,} values (an alias "
                          "bomb?), or an alias refers to its own anchor", "Write the values out, or use "
                          "fewer aliases")
