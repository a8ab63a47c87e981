"""The planted bugs of benchmarks/mutation.py still point at code that exists (exactly once)."""

from benchmarks.mutation import MUTATIONS, target_problems


def test_every_mutation_target_exists_once():
    assert len(MUTATIONS) >= 20
    assert target_problems() == []
