import itertools
import math
import random

import pytest

from asr.metrics import word_errors
from asr.rescoring import Candidates, RescoringOptions
from asr.rescoring_grid import CandidateTable

WORDS = "a b c d e".split()


def random_candidates(rng: random.Random, systems: int) -> Candidates:
    n = rng.randint(1, 6)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(0, 4))) for _ in range(n)]
    # Coarse scores, so that equal totals (ties) happen; some systems cannot spell some texts.
    ctc = [[-math.inf if rng.random() < 0.2 else -float(rng.randint(0, 4)) for _ in texts] for _ in range(systems)]
    return Candidates(texts, ctc=ctc, lm=[-float(rng.randint(0, 3)) for _ in texts])


@pytest.mark.parametrize("seed", range(5))
def test_every_grid_point_chooses_as_the_rescorer_does_and_scores_the_same_wer(seed):
    rng = random.Random(seed)
    candidates = [random_candidates(rng, systems=3) for _ in range(40)]
    refs = [" ".join(rng.choices(WORDS, k=rng.randint(0, 4))) for _ in candidates]
    table = CandidateTable(candidates, refs)
    for rest in itertools.product((0.0, 0.5, 1.0), repeat=2):
        for lm_weight, word_score in itertools.product((0.0, 1.0, 2.5), (-1.0, 0.0, 2.0)):
            o = RescoringOptions(weights=(1.0, *rest), lm_weight=lm_weight, word_score=word_score)
            expected = [c.best(o) for c in candidates]
            assert table.choices(o.weights, lm_weight, word_score).tolist() == expected
            wer = word_errors(refs, [c.texts[i] for c, i in zip(candidates, expected)]).rate
            assert table.word_error_rate(o.weights, lm_weight, word_score) == wer


def test_a_candidate_no_system_can_spell_is_chosen_only_when_none_is_left():
    unspellable_first = Candidates(["x", "y"], ctc=[[-1.0, -9.0], [-math.inf, -9.0]], lm=[0.0, 0.0])
    none_spellable = Candidates(["x", "y"], ctc=[[-1.0, -9.0], [-math.inf, -math.inf]], lm=[0.0, 0.0])
    table = CandidateTable([unspellable_first, none_spellable], ["x", "x"])
    assert table.choices((1.0, 1.0), 0.0, 0.0).tolist() == [1, 0]
    assert table.word_error_rate((1.0, 1.0), 0.0, 0.0) == 0.5  # "y" for "x": one error in two words
    none_spellable_ranked = Candidates(["y", "x"], ctc=[[-9.0, -1.0], [-math.inf, -math.inf]], lm=[0.0, 0.0])
    table = CandidateTable([unspellable_first, none_spellable_ranked], ["x", "x"])
    assert table.choices((1.0, 1.0), 0.0, 0.0).tolist() == [1, 0]  # all -inf: the first system's order


def test_a_system_at_weight_0_has_no_say_not_even_a_veto_on_what_it_cannot_spell():
    # A package's system at weight 0 (it only adds candidates) ruled out every word missing from its
    # phone lexicon: "the coach alighted" lost to "the coach a lighted"
    alighted = Candidates(["the coach alighted", "the coach a lighted"], ctc=[[-1.0, -9.0], [-math.inf, -2.0]],
                          lm=[0.0, 0.0])
    assert alighted.best(RescoringOptions(weights=(1.0, 0.0))) == 0
    assert alighted.best(RescoringOptions(weights=(1.0, 0.5))) == 1  # weighed, it cannot score the first
    table = CandidateTable([alighted], ["the coach alighted"])
    assert table.choices((1.0, 0.0), 0.0, 0.0).tolist() == [0] and table.word_error_rate((1.0, 0.0), 0.0, 0.0) == 0
    assert table.choices((1.0, 0.5), 0.0, 0.0).tolist() == [1]


def test_references_and_candidate_lists_must_pair_up():
    with pytest.raises(ValueError, match="2 references but 1 candidate lists"):
        CandidateTable([Candidates(["a"], ctc=[[0.0]], lm=[0.0])], ["a", "b"])
