"""The calibrated decision (issue 11): p-values checked on synthetic distances with a known null."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from zest_core.errors import ZestError
from zest_core.explain.significance import decide_related, prediction_p_value, rank_p_value

TRIALS = 4000


def _rates(rng, m, shift, alpha, scale=0.2, log_mean=np.log(0.6)):
    """Fraction of trials called related: null log-distances N(log_mean, scale²), suspect shifted by ``shift`` sds."""
    rejected = 0
    for _ in range(TRIALS):
        null = np.exp(rng.normal(log_mean, scale, size=m))
        suspect = float(np.exp(rng.normal(log_mean - shift * scale, scale)))
        rejected += decide_related(suspect, null, alpha=alpha).verdict == "related"
    return rejected / TRIALS


@pytest.mark.parametrize("m, alpha", [(3, 0.05), (5, 0.05), (8, 0.1), (20, 0.01)])
def test_under_a_known_null_the_false_positive_rate_is_alpha(m, alpha):
    rate = _rates(np.random.default_rng(m), m, shift=0.0, alpha=alpha)
    # Exact under the model: the count is Binomial(TRIALS, alpha); allow 4 standard errors.
    assert abs(rate - alpha) <= 4 * np.sqrt(alpha * (1 - alpha) / TRIALS), rate


def test_a_shifted_suspect_is_found():
    rng = np.random.default_rng(1)
    assert _rates(rng, 5, shift=4.0, alpha=0.05) > 0.6
    assert _rates(rng, 20, shift=4.0, alpha=0.05) > 0.9
    # A suspect *farther* than the unrelated models is never called related (one-sided test).
    assert _rates(rng, 5, shift=-2.0, alpha=0.05) < 0.01


def test_prediction_p_value_is_the_textbook_t_prediction_interval():
    null = np.array([0.5, 0.62, 0.58, 0.7, 0.55])
    logs = np.log(null)
    d = 0.3
    by_hand = stats.t.cdf((np.log(d) - logs.mean()) / (logs.std(ddof=1) * np.sqrt(1 + 1 / 5)), df=4)
    assert prediction_p_value(d, null) == pytest.approx(by_hand, rel=1e-12)


def test_rank_p_value_is_exact_and_has_a_floor():
    assert rank_p_value(0.1, [0.5, 0.6, 0.7, 0.8]) == pytest.approx(1 / 5)
    assert rank_p_value(0.65, [0.5, 0.6, 0.7, 0.8]) == pytest.approx(3 / 5)
    # Uniform on {1/(m+1), …, 1} under exchangeability.
    rng = np.random.default_rng(0)
    values = [rank_p_value(*(lambda x: (x[0], x[1:]))(rng.random(5))) for _ in range(3000)]
    assert np.mean(np.array(values) <= 0.2) == pytest.approx(0.2, abs=0.03)


def test_too_few_unrelated_models_is_inconclusive_not_a_guess():
    decision = decide_related(0.01, [0.5, 0.6])
    assert decision.verdict == "inconclusive" and decision.p_value is None
    assert "at least 3" in decision.reason
    assert decide_related(0.01, [0.5, 0.5, 0.5]).verdict == "inconclusive"
    # Agreement on a few images can put unrelated models at distance 0: no log-normal null, no verdict.
    zero = decide_related(0.0, [0.0, 0.1, 0.2])
    assert zero.verdict == "inconclusive" and "distance 0" in zero.reason


def test_bad_arguments_name_the_argument():
    with pytest.raises(ZestError, match="alpha: expected"):
        decide_related(0.1, [0.5, 0.6, 0.7], alpha=1.5)
    with pytest.raises(ZestError, match="null_distances: expected finite distances"):
        decide_related(0.1, [0.5, -0.6, 0.7])
