"""Verdicts with their uncertainty: the one place where "seen" is decided (lskd report, lskd diffusion, docs).

A verdict compares cells of a grid through their seed values. Each rule, in one sentence (RULES, printed
under every table that uses them):
- a comparison is a linear contrast of cell means (a difference, a difference of drops, ...) with Welch's t
  interval (95 %; Welch-Satterthwaite degrees of freedom); it reads "seen" only when the test is significant
  in the paper's direction after Holm's correction over every test of the table, "opposite" when it is
  significant the other way, otherwise "not shown", always with its interval;
- a cell with one seed has no spread: any contrast that uses it says "one seed cannot tell";
- an equivalence ("about equal") is "seen" only when two one-sided tests put the contrast inside a stated
  margin (its 90 % interval lies within +-margin), otherwise "not shown".

Why Welch and not a bootstrap of 2-3 seeds: resampling n seeds with replacement shrinks the seed part of the
standard error by sqrt((n-1)/n) (29 % at n = 2) and has no small-sample correction; the t distribution with
Welch's degrees of freedom has both. Why Holm: a table tests about ten contrasts; at 5 % each, one false
"seen" in a table is likely. Holm's step-down keeps the chance of any false "seen" in the table at 5 %
and is never weaker than Bonferroni.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Sequence, Tuple

from scipy import stats

LEVEL = 0.05  # family-wise error of one table's verdicts
RULES = (
    "Comparisons use the seed values of every cell involved: Welch's t interval (95 %) of the contrast, "
    "and \"seen\" only when its test is significant in the paper's direction after Holm's correction over "
    "all tests of the table (family-wise error 5 %), \"opposite\" when significant the other way, else \"not shown\".",
    "A contrast that uses a cell with one seed says \"one seed cannot tell\": one value has no spread.",
    "\"About equal\" is an equivalence claim: \"seen\" only when two one-sided tests put the contrast within "
    "the stated margin (its 90 % interval inside +-margin), else \"not shown\".",
)


class Summary(NamedTuple):
    """One cell: the mean of its seed values, their sample standard deviation (None for one seed), and n."""
    mean: float
    sd: Optional[float]
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        n = len(values)
        if n == 0:
            raise ValueError("a cell needs at least one value")
        mean = math.fsum(values) / n
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
        return cls(mean, sd, n)


class Interval(NamedTuple):
    """A contrast's estimate, its interval, Welch's degrees of freedom and the two-sided p for 'contrast = 0'."""
    estimate: float
    low: float
    high: float
    df: float
    se: float
    p: float


Terms = Sequence[Tuple[float, Summary]]  # (coefficient, cell)


def _se_df(terms: Terms) -> Tuple[float, float]:
    parts = [(c * c * s.sd ** 2 / s.n, s.n - 1) for c, s in terms if c != 0]
    var = math.fsum(v for v, _ in parts)
    denom = math.fsum(v * v / dof for v, dof in parts)
    df = var * var / denom if denom > 0 else float(sum(dof for _, dof in parts))
    return math.sqrt(var), df


def contrast(terms: Terms, confidence: float = 0.95) -> Optional[Interval]:
    """Welch's t interval of sum(c_i * mean_i); None when a cell has one seed (no spread to judge by)."""
    if any(s.n < 2 or s.sd is None for c, s in terms if c != 0):
        return None
    est = math.fsum(c * s.mean for c, s in terms)
    se, df = _se_df(terms)
    if se == 0:  # every cell without spread: any difference is beyond it
        return Interval(est, est, est, df, 0.0, 1.0 if est == 0 else 0.0)
    q = float(stats.t.ppf(0.5 + confidence / 2, df))
    return Interval(est, est - q * se, est + q * se, df, se, float(2 * stats.t.sf(abs(est) / se, df)))


def difference(a: Summary, b: Summary, confidence: float = 0.95) -> Optional[Interval]:
    """Welch's interval of mean(a) - mean(b)."""
    return contrast([(1.0, a), (-1.0, b)], confidence)


def equivalence(terms: Terms, margin: float) -> Optional[Interval]:
    """Two one-sided tests of |contrast| < margin: the 90 % interval, p = the larger one-sided p (None: one seed)."""
    iv = contrast(terms, confidence=0.90)
    if iv is None:
        return None
    if iv.se == 0:
        return iv._replace(p=0.0 if abs(iv.estimate) < margin else 1.0)
    p = max(stats.t.sf((iv.estimate + margin) / iv.se, iv.df), stats.t.sf((margin - iv.estimate) / iv.se, iv.df))
    return iv._replace(p=float(p))


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def fmt_interval(iv: Interval, digits: int = 2, confidence: str = "95 %") -> str:
    return (f"{iv.estimate:+.{digits}f}, {confidence} [{iv.low:+.{digits}f}, {iv.high:+.{digits}f}], "
            f"Welch df {iv.df:.1f}")


@dataclass
class Test:
    """One verdict of a table. `direction` is the sign the paper predicts (+1 / -1), 0 for an equivalence,
    or None for a two-sided observation (words[0] when positive, words[1] when negative)."""
    claim: str
    interval: Optional[Interval]
    direction: Optional[int]
    what: str = ""                   # the contrast in words, e.g. "α=0.1 − α=0"
    note: str = ""                   # appended after the numbers
    veto: str = ""                   # a reason the claim fails whatever the test says (pattern 1's rising step)
    fixed: str = ""                  # a verdict decided without a test ("confounded with teacher quality")
    words: Tuple[str, str] = ("higher", "lower")
    digits: int = 2
    adjusted_p: Optional[float] = field(default=None)

    @property
    def tested(self) -> bool:
        return self.interval is not None and not self.fixed

    def verdict(self) -> str:
        if self.fixed:
            return self.fixed
        if self.interval is None:
            return "one seed cannot tell"
        significant = self.adjusted_p is not None and self.adjusted_p < LEVEL
        if self.direction == 0:
            return "seen" if significant else "not shown"
        if not significant:
            return "not shown"
        positive = self.interval.estimate > 0
        if self.direction is None:
            return self.words[0] if positive else self.words[1]
        agrees = positive == (self.direction > 0)
        if agrees and self.veto:
            return "not seen"
        return "seen" if agrees else "opposite"

    def line(self, family: int) -> str:
        parts = []
        if self.interval is not None:
            conf = "90 %" if self.direction == 0 else "95 %"
            parts.append(f"{self.what + ' ' if self.what else ''}{fmt_interval(self.interval, self.digits, conf)}")
            if self.tested:
                parts.append(f"p {self.interval.p:.3f}, Holm-adjusted over {family} tests {self.adjusted_p:.3f}")
        if self.veto:
            parts.append(self.veto)
        if self.note:
            parts.append(self.note)
        return f"- {self.claim}: **{self.verdict()}**" + (f" ({'; '.join(parts)})" if parts else "") + "."


def decide(tests: Sequence[Test]) -> List[str]:
    """Holm over the tests that have an interval; one line per test, then how many were tested."""
    tested = [t for t in tests if t.tested]
    for t, p in zip(tested, holm([t.interval.p for t in tested])):
        t.adjusted_p = p
    return [t.line(len(tested)) for t in tests]
