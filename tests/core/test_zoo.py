"""The morphology zoo and simulate_from_maps: varied, valid truth maps; the toy is simulate_from_maps of its own maps."""

import numpy as np
import pytest

from napari_sushi.core.simulate import (
    SimulationError,
    get_preset,
    remnant_maps,
    simulate_from_maps,
    simulate_remnant,
)
from napari_sushi.core.zoo import ZooCase, simulate_zoo, zoo_cases, zoo_maps


def test_toy_is_simulate_from_maps_of_its_own_maps():
    pre = get_preset("toy")
    rng = np.random.default_rng(0)
    maps = remnant_maps(pre, rng)
    mine = simulate_from_maps(pre, maps, rng)
    toy = simulate_remnant("toy", 0)
    assert np.array_equal(mine.cube.counts, toy.cube.counts)
    assert np.array_equal(mine.expected, toy.expected)


def test_simulate_from_maps_takes_a_users_maps_and_checks_them():
    shape = (12, 10)
    maps = {
        "thermal amplitude": np.full(shape, 50.0),
        "thermal kT": np.full(shape, 2.0),
        "thermal velocity": np.zeros(shape),
        "powerlaw amplitude": np.full(shape, 5.0),
        "powerlaw index": np.full(shape, 2.5),
    }
    sim = simulate_from_maps("toy", maps, seed=3)
    assert sim.cube.counts.shape == (375, 12, 10)
    assert sim.expected.sum() == pytest.approx(55.0 * 120, rel=1e-6)
    assert np.array_equal(simulate_from_maps("toy", maps, seed=3).cube.counts, sim.cube.counts)
    with pytest.raises(SimulationError, match="lack"):
        simulate_from_maps("toy", {k: v for k, v in maps.items() if k != "powerlaw index"})
    with pytest.raises(SimulationError, match="outside the preset's box"):
        simulate_from_maps("toy", {**maps, "thermal kT": np.full(shape, 9.0)})
    with pytest.raises(SimulationError, match="negative"):
        simulate_from_maps("toy", {**maps, "powerlaw amplitude": np.full(shape, -1.0)})
    with pytest.raises(SimulationError, match="one shape"):
        simulate_from_maps("toy", {**maps, "thermal kT": np.full((3, 3), 2.0)})


def test_zoo_maps_are_varied_valid_and_reproducible():
    pre = get_preset("toy")
    kinds = set()
    for seed in range(8):
        maps, k = zoo_maps(seed, (40, 40))
        kinds.add(tuple(k.values()))
        for comp, spec in pre.components.items():
            for q in spec.parameters:
                m = maps[f"{comp} {q.name}"]
                assert np.all(np.isfinite(m)) and m.min() >= q.low and m.max() <= q.high
        tot = maps["thermal amplitude"] + maps["powerlaw amplitude"]
        assert tot.max() == pytest.approx(pre.peak_counts)
        share = maps["powerlaw amplitude"].sum() / tot.sum()
        assert 0.1 < share < 0.5
    assert len(kinds) == 8  # eight seeds, eight different morphology combinations
    a, _ = zoo_maps(5, (40, 40))
    b, _ = zoo_maps(5, (40, 40))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    faint, _ = zoo_maps(5, (40, 40), counts_scale=0.1)
    assert np.allclose(faint["thermal amplitude"], 0.1 * a["thermal amplitude"])


def test_zoo_cases_span_count_levels():
    cases = zoo_cases()
    assert len(cases) >= 12
    assert {c.counts_scale for c in cases} == {0.1, 0.3, 1.0, 3.0}
    sim, kinds = simulate_zoo(ZooCase(2, 0.3, (24, 24)))
    assert sim.cube.counts.shape == (375, 24, 24) and sim.cube.name == "zoo2-0.3x-24x24"
    assert set(kinds) == {"thermal", "synchrotron", "kT", "velocity", "index"}
