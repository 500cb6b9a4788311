"""Parameter links: turn pairs (or groups) of linked parameters into the disjoint groups a fit needs.

``FitSettings.links`` wants each parameter in at most one group (one shared map per group). Users
and the fit dock state links a pair at a time, e.g. thermal.velocity ~ thermal2.velocity and
thermal2.velocity ~ thermal3.velocity; those chain into one group of three.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def merge_links(links: Iterable[Sequence[str]]) -> list[tuple[str, ...]]:
    """Union of overlapping links into disjoint groups sharing one map.

    E.g. [(a, b), (b, c), (d, e)] -> [(a, b, c), (d, e)]. Each group is sorted; groups come in
    the order their first member was first named; a link naming a single parameter adds no group.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for link in links:
        keys = [str(k) for k in link]
        for k in keys:
            find(k)
        for a, b in zip(keys, keys[1:]):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[rb] = ra
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return [tuple(sorted(g)) for g in groups.values() if len(g) > 1]
