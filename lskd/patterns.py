"""The alpha x T grid of a sweep and what it shows in the paper's terms (docs/PAPER.md, patterns 1-5): one
verdict line per pattern, each decided by lskd/verdicts.py. `lskd report` tabulates the grid and prints these.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lskd.scoring import METRICS
from lskd.verdicts import Summary, Test, contrast, decide, difference, equivalence

Key = Tuple[str, Optional[float], Optional[float]]  # (role, teacher_alpha, temperature)


class Cell(NamedTuple):
    """One table cell: the mean over its runs, their sample std (None for one run), n, the seed ids, and the
    values by teacher seed ({} when the runs do not say, or when the cell was read from a cell CSV)."""
    mean: float
    std: Optional[float]
    n: int
    seeds: List[str]
    by_teacher_seed: Dict[str, List[float]]

    @property
    def summary(self) -> Summary:
        return Summary(self.mean, self.std, self.n)


def grid(agg: Dict[Key, Cell]) -> Tuple[List[float], List[float]]:
    alphas = sorted({k[1] for k in agg if k[1] is not None})
    temps = sorted({k[2] for k in agg if k[0] == "student"})
    return alphas, temps


def _student(agg: Dict[Key, Cell], a: float, t: float) -> Optional[Cell]:
    return agg.get(("student", a, t))


def _teacher_confound(agg: Dict[Key, Cell], a: float, gap: float) -> Optional[str]:
    """With one teacher per alpha: the reason the students' gap cannot be credited to LS, if the teachers'
    own gap (same sign, at least half as large) explains it; None when it does not or cannot be known."""
    t_ls, t_0 = agg.get(("teacher", a, None)), agg.get(("teacher", 0.0, None))
    if t_ls is None or t_0 is None:
        return None
    teacher_gap = t_ls.mean - t_0.mean
    if teacher_gap * gap > 0 and abs(teacher_gap) >= 0.5 * abs(gap):
        return f"the teachers themselves differ by {teacher_gap:+.2f}"
    return None


def _pattern2(agg: Dict[Key, Cell], a: float, digits: int) -> Optional[Test]:
    smooth, plain = _student(agg, a, 1.0), _student(agg, 0.0, 1.0)
    if smooth is None or plain is None:
        return None
    claim = f"Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's), α={a:g}"
    what = f"α={a:g} − α=0"
    if len(smooth.by_teacher_seed) > 1 and len(plain.by_teacher_seed) > 1:  # the unit is the teacher
        per = [Summary.of([Summary.of(v).mean for v in c.by_teacher_seed.values()]) for c in (smooth, plain)]
        note = (f"over teacher seeds: means of each teacher's T=1 students, {per[0].n} and {per[1].n} teachers; "
                f"by teacher seed " + ", ".join(f"{k}: {Summary.of(smooth.by_teacher_seed[k]).mean - Summary.of(v).mean:+.{digits}f}"
                                                for k, v in sorted(plain.by_teacher_seed.items()) if k in smooth.by_teacher_seed))
        return Test(claim, difference(*per), +1, what, note=note, digits=digits)
    iv = difference(smooth.summary, plain.summary)
    gap = smooth.mean - plain.mean
    confound = _teacher_confound(agg, a, gap)
    if iv is not None and confound:
        return Test(claim, iv, +1, what, fixed="confounded with teacher quality",
                    note=f"{confound}, and each alpha has one teacher: the students' {gap:+.{digits}f} follows it",
                    digits=digits)
    note = "" if iv is None else "one teacher per alpha: teacher-seed variation is not in this interval"
    if iv is None:
        note = f"{what} {gap:+.{digits}f}"
    return Test(claim, iv, +1, what, note=note, digits=digits)


def _pattern1(agg: Dict[Key, Cell], a: float, temps: Sequence[float], digits: int) -> Optional[Test]:
    cells = [(t, c) for t in temps if (c := _student(agg, a, t)) is not None]
    if len(cells) < 3:
        return None
    chain = ", ".join(f"T={t:g} {c.mean:.{digits}f}" for t, c in cells)
    (t_lo, lo), (t_hi, hi) = cells[0], cells[-1]
    rising, inside, untold = [], [], []
    for (t1, c1), (t2, c2) in zip(cells, cells[1:]):
        step = difference(c2.summary, c1.summary)
        name = f"T={t1:g}→{t2:g}"
        if step is None:
            untold.append(name)
        elif step.low > 0:
            rising.append(f"{name} rises beyond the noise ({step.estimate:+.{digits}f}, [{step.low:+.{digits}f}, {step.high:+.{digits}f}])")
        elif step.high >= 0:
            inside.append(name)
    notes = [chain]
    if inside:
        notes.append("steps inside the noise: " + ", ".join(inside))
    if untold:
        notes.append("steps with a one-seed cell: " + ", ".join(untold))
    return Test(f"Pattern 1 (the LS teacher's students fall as T rises), α={a:g}", difference(lo.summary, hi.summary),
                +1, f"T={t_lo:g} − T={t_hi:g}", note="; ".join(notes), veto="; ".join(rising), digits=digits)


def _pattern3(agg: Dict[Key, Cell], a: float, modality: str, margin: float, digits: int) -> Optional[Test]:
    cells = [_student(agg, x, t) for x in (a, 0.0) for t in (3.0, 1.0)]
    if any(c is None for c in cells):
        return None
    terms = [(1.0, cells[0].summary), (-1.0, cells[1].summary), (-1.0, cells[2].summary), (1.0, cells[3].summary)]
    drops = f"drops T=1→3: α={a:g} {cells[0].mean - cells[1].mean:+.{digits}f}, α=0 {cells[2].mean - cells[3].mean:+.{digits}f}"
    what = f"(α={a:g} drop) − (α=0 drop)"
    if modality == "vision":
        return Test(f"Pattern 3 (images: the T=1→3 drop is steeper with the LS teacher), α={a:g}", contrast(terms), -1,
                    what, note=drops, digits=digits)
    size = 0.5 * (abs(cells[0].mean - cells[1].mean) + abs(cells[2].mean - cells[3].mean))
    m = margin * size
    return Test(f"Pattern 3 (NMT: the T=1→3 drop is about equal for both teachers), α={a:g}", equivalence(terms, m), 0,
                what, note=f"{drops}; equivalence margin ±{m:.{digits}f} = {margin:g} x the mean drop", digits=digits)


def _pattern4(agg: Dict[Key, Cell], temps: Sequence[float], digits: int) -> List[Test]:
    one = _student(agg, 0.0, 1.0)
    if one is None:
        return []
    return [Test(f"Pattern 4 (with the non-LS teacher a moderate T can help; the paper: CUB yes, ImageNet no), T={t:g}",
                 difference(c.summary, one.summary), None, f"T={t:g} − T=1", words=("helps", "hurts"), digits=digits,
                 note=f"T={t:g} − T=1 {c.mean - one.mean:+.{digits}f}" if min(c.n, one.n) < 2 else "")
            for t in temps if 2 <= t <= 3 and (c := _student(agg, 0.0, t)) is not None]


def modality_of(metric: str) -> str:
    """nmt for the BLEU/chrF keys of lskd.scoring.METRICS, vision for any other (top1, acc1, ...)."""
    return "nmt" if metric in METRICS else "vision"


def patterns(agg: Dict[Key, Cell], metric: str, modality: Optional[str] = None, margin: float = 0.25,
             digits: int = 2) -> List[str]:
    """What the table shows, in the paper's terms (docs/PAPER.md, patterns 1-5), one line each with its
    verdict (lskd/verdicts.py); only the lines the grid has the cells for."""
    modality = modality or modality_of(metric)
    alphas, temps = grid(agg)
    ls = [a for a in alphas if a > 0]
    lines = []
    if 1 in temps:
        ratios = [f"α={a:g} {100 * s.mean / t.mean:.1f}%" for a in alphas
                  if (s := _student(agg, a, 1.0)) is not None and (t := agg.get(("teacher", a, None))) and t.mean]
        if ratios:
            lines.append(f"- T=1 students reach {', '.join(ratios)} of their teacher's {metric} (no test: a description).")
    tests: List[Test] = []
    base = agg.get(("baseline", None, None))
    if base is not None:
        tests += [Test(f"KD at T=1 beats no KD ({base.mean:.{digits}f}, n={base.n}), α={a:g}",
                       difference(c.summary, base.summary), +1, "KD − no KD",
                       note=f"KD − no KD {c.mean - base.mean:+.{digits}f}" if min(c.n, base.n) < 2 else "", digits=digits)
                  for a in alphas if (c := _student(agg, a, 1.0)) is not None]
    tests += [t for a in ls if (t := _pattern1(agg, a, temps, digits)) is not None]
    if 0 in alphas:
        tests += [t for a in ls if (t := _pattern2(agg, a, digits)) is not None]
        tests += [t for a in ls if (t := _pattern3(agg, a, modality, margin, digits)) is not None]
        tests += _pattern4(agg, temps, digits)
    collapse = [(a, one, high) for a in alphas
                if (one := _student(agg, a, 1.0)) is not None and (high := _student(agg, a, 64.0)) is not None]
    if modality == "nmt":
        tests += [Test(f"Pattern 5 (T=64 collapses: below half of T=1), α={a:g}",
                       contrast([(1.0, high.summary), (-0.5, one.summary)]), -1, "T=64 − T=1/2",
                       note=f"{high.mean:.{digits}f} vs {one.mean:.{digits}f}", digits=digits)
                  for a, one, high in collapse]
    lines += decide(tests)
    if collapse and modality != "nmt":
        lines.append("- Pattern 5 (T=64 collapses): **not judged**: the paper states it for NMT only.")
    return lines
