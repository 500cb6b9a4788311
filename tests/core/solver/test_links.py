"""merge_links: pairs of linked parameters chain into disjoint groups (one shared map each)."""

from __future__ import annotations

from napari_sushi.core.solver.links import merge_links


def test_chained_pairs_form_one_group_and_separate_pairs_stay_apart():
    pairs = [("b.kT", "a.kT"), ("c.kT", "b.kT"), ("x.v", "y.v")]
    assert merge_links(pairs) == [("a.kT", "b.kT", "c.kT"), ("x.v", "y.v")]


def test_pairs_joining_two_groups_merge_them():
    pairs = [("a", "b"), ("c", "d"), ("d", "b")]
    assert merge_links(pairs) == [("a", "b", "c", "d")]


def test_groups_longer_than_pairs_and_repeats():
    assert merge_links([("a", "b", "c"), ("c", "d"), ("a", "b")]) == [("a", "b", "c", "d")]


def test_self_links_and_single_names_add_nothing():
    assert merge_links([("a", "a"), ("b",)]) == []
    assert merge_links([]) == []
