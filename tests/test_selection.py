import pytest
import torch

from raygm.core.selection import herding, kcenter


def brute_force_herding(features: torch.Tensor, k: int) -> list[int]:
    """Welling's greedy step written out: try every unchosen row, keep the one whose
    addition puts the chosen rows' mean nearest the mean of all rows."""
    target, chosen = features.mean(0), []
    for _ in range(k):
        gaps = {i: torch.dist(features[chosen + [i]].mean(0), target).item()
                for i in range(len(features)) if i not in chosen}
        chosen.append(min(gaps, key=gaps.get))
    return chosen


def test_herding_matches_brute_force_greedy():
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    assert herding(features, 10).tolist() == brute_force_herding(features, 10)


def test_herding_mean_is_closer_to_the_class_mean_than_a_random_subset():
    # rows in pairs symmetric about the mean c: herding takes the row nearest c, then its
    # mirror image, so any even number of its rows has exactly the mean c
    g = torch.Generator().manual_seed(1)
    c, v = torch.randn(8, generator=g), torch.randn(20, 8, generator=g)
    features = torch.cat([c + v, c - v])
    for k in (2, 4, 6):
        herded = torch.dist(features[herding(features, k)].mean(0), c).item()
        random = [torch.dist(features[torch.randperm(40, generator=g)[:k]].mean(0), c).item()
                  for _ in range(50)]
        assert herded < 1e-5 and min(random) >= herded and sum(random) / 50 > 0.1


def test_kcenter_picks_the_farthest_points():
    points = torch.tensor([[1.0, 0], [0, 0], [10, 0], [0, 8], [-3, -3], [9, 1]])
    # the row nearest the mean (2.8, 1) first; then (10, 0), 9 away from it; then (0, 8),
    # 8.1 from (1, 0); then (-3, -3), 5 from (1, 0); then (9, 1) and (0, 0)
    assert kcenter(points, 6).tolist() == [0, 2, 3, 4, 5, 1]
    assert kcenter(points, 3).tolist() == [0, 2, 3]


def test_kcenter_starts_where_herding_does_so_one_pick_is_the_same():
    # why results.md's Table 1 shows the same sets for both at 1 image per class
    for seed in range(5):
        features = torch.randn(40, 6, generator=torch.Generator().manual_seed(seed))
        assert kcenter(features, 1).tolist() == herding(features, 1).tolist()
        assert kcenter(features, 3).tolist()[0] == herding(features, 3).tolist()[0]


@pytest.mark.parametrize("select", [herding, kcenter])
def test_no_row_twice_even_among_duplicates(select):
    features = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)).repeat(3, 1)
    picked = select(features, 12).tolist()
    assert len(set(picked)) == 12


@pytest.mark.parametrize("select", [herding, kcenter])
def test_selecting_all_rows_returns_every_index(select):
    features = torch.randn(9, 4, generator=torch.Generator().manual_seed(3))
    assert sorted(select(features, 9).tolist()) == list(range(9))


@pytest.mark.parametrize("select", [herding, kcenter])
@pytest.mark.parametrize("k", [0, 10])
def test_cannot_select_more_rows_than_there_are_or_none(select, k):
    with pytest.raises(ValueError, match=f"cannot select {k} of 9 rows"):
        select(torch.zeros(9, 2), k)
