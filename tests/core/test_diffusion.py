"""The penultimate-layer analysis (lskd.diffusion, lskd.projection; lskd nmt-features: tests/fairseq_adapter/test_nmt_features.py).

The diffusion index is validated on synthetic geometries whose answer is known (issue 15, item 4): 10 classes
in 32-d, five similar pairs 3 sigma apart, isotropic unit-variance baseline. Thresholds (expected values
from the geometry in brackets):
  (a) every class stretched x3 along its axis to its similar class: systematic > 0.7, interval above 0.5
      [log 3 = 1.10, less the small share of that axis that control axes see];
  (b) the same stretch along a direction no centroid difference uses: |systematic| < 0.1, interval covers 0 [0];
  (c) all features scaled x5 and shifted: systematic = 0 to 1e-9 (same samples) [0];
  (d) every class tightened x0.5 / loosened x2: |systematic| < 0.1, interval covers 0, while both widths
      move by log 2 within 0.1 [0];
  (e) the baseline distribution with 12 samples per class: |systematic| < 0.3, interval covers 0 [0];
  (f) each class's centroid pulled 25% of the way towards its similar class: systematic > 0.4, interval
      above 0 [log 2 = 0.69: the pair's distance halves].
"""

import json
import math

import numpy as np
import pytest
import torch

from helpers import run, tool
from scipy import stats

from lskd.diffusion import (
    ClassSamples,
    bootstrap_weights,
    class_moments,
    index_table,
    pair_terms,
    parse_pairs,
    similarity,
)
from lskd.errors import LskdError
from lskd.projection import PCA2, class_axes_pca, project, template_basis

# --- the projection -------------------------------------------------------------------------------------------


def test_template_basis_is_orthonormal_and_spans_the_templates():
    torch.manual_seed(0)
    w, b = torch.randn(5, 4), torch.randn(5)
    q = template_basis(w, b, [0, 2, 4])
    assert q.shape == (5, 3)
    assert torch.allclose(q.T @ q, torch.eye(3, dtype=torch.float64), atol=1e-12)
    templates = torch.cat([w[[0, 2, 4]], b[[0, 2, 4], None]], 1).double()
    assert torch.allclose(templates @ q @ q.T, templates, atol=1e-10)  # nothing of a template is lost


def test_template_basis_refuses_dependent_templates():
    w = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="linearly dependent"):
        template_basis(w, torch.zeros(3), [0, 1, 2])


def test_projection_golden():
    # templates e1, e2, e3 in R^3 (D = 2 plus the bias coordinate): the projection is the
    # feature with a 1 appended, up to the signs QR picks
    w, b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), torch.tensor([0.0, 0.0, 1.0])
    x = torch.tensor([[2.0, -3.0]])
    assert torch.allclose(project(x, template_basis(w, b, [0, 1, 2])).abs(), torch.tensor([[2.0, 3.0, 1.0]], dtype=torch.float64))


def test_pca2_finds_the_long_axis_and_applies_to_other_points():
    t = torch.linspace(-1, 1, 11, dtype=torch.float64)
    x = torch.stack([3 * t, 0.1 * t.flip(0) ** 2, torch.zeros_like(t)], 1) + 5
    pca = PCA2(x)
    assert torch.allclose(pca.components[0], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-6)  # sign fixed
    assert torch.allclose(pca(x)[:, 0], 3 * t, atol=1e-6)
    assert torch.allclose(pca(torch.tensor([[8.0, 0.0, 0.0]], dtype=torch.float64))[0, 0], torch.tensor(3.0, dtype=torch.float64))


def test_panels_are_never_mirrored():
    # the same points with the axes flipped (what an SVD or QR sign choice does) give the same panel
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(40)
    x = torch.tensor([[0.0, 0, 0], [2, 0, 0], [1, 6, 0]], dtype=torch.float64)[labels] + 0.3 * torch.randn(120, 3, generator=g, dtype=torch.float64)
    xy = class_axes_pca(x, labels, [0, 1, 2])(x)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64))
    for flipped in (x @ mirror, -x):
        assert torch.allclose(class_axes_pca(flipped, labels, [0, 1, 2])(flipped), xy, atol=1e-9)
    a, b, c = (xy[labels == k].mean(0) for k in range(3))
    assert c[0] > max(a[0], b[0]) + 4 and b[1] > a[1] + 1.5  # the dissimilar class right, b above a


# --- the estimators -------------------------------------------------------------------------------------------


def direct_terms(xc, xd):
    """Q = v'S_c v - tr(Sigma_c^2)^/n_c - tr(S_c S_d)/n_d and |v|^2 - tr(S_c)/n_c - tr(S_d)/n_d, written out."""
    nc, nd = len(xc), len(xd)
    sc, sd, v = np.cov(xc.T), np.cov(xd.T), xd.mean(0) - xc.mean(0)
    tr_sigma2 = (nc - 1) ** 2 / ((nc - 2) * (nc + 1)) * (np.trace(sc @ sc) - np.trace(sc) ** 2 / (nc - 1))
    return v @ sc @ v - tr_sigma2 / nc - np.trace(sc @ sd) / nd, v @ v - np.trace(sc) / nc - np.trace(sd) / nd


def test_resampling_weights_equal_the_resampled_data():
    # the bootstrap works with sample counts in Gram space; it must equal recomputing on the duplicated rows
    rng = np.random.default_rng(0)
    xc, xd = rng.normal(size=(15, 4)) * [1, 2, 0.5, 1], rng.normal(size=(12, 4)) + [3, 1, 0, 0]
    c, d = ClassSamples(xc), ClassSamples(xd)
    wc = np.vstack([np.ones(15), rng.multinomial(15, np.full(15, 1 / 15), size=3)]).astype(float)
    wd = np.vstack([np.ones(12), rng.multinomial(12, np.full(12, 1 / 12), size=3)]).astype(float)
    q, dist2 = pair_terms(c, d, wc, wd, class_moments(c, wc), class_moments(d, wd))
    for b in range(4):
        want = direct_terms(np.repeat(xc, wc[b].astype(int), 0), np.repeat(xd, wd[b].astype(int), 0))
        assert q[b] == pytest.approx(want[0], rel=1e-9) and dist2[b] == pytest.approx(want[1], rel=1e-9)


def test_estimates_are_unbiased_at_small_n():
    # anisotropic Gaussian classes, 8 and 6 samples: the means over many draws hit delta' Sigma_c delta and |delta|^2
    rng = np.random.default_rng(1)
    scale_c, scale_d = np.array([2.0, 1.0, 0.5, 0.5, 3.0]), np.array([1.0, 1.0, 1.0, 2.0, 0.5])
    delta = np.array([2.0, 1.0, 0.0, 0.0, 1.0])
    c, d = ClassSamples(np.zeros((8, 5))), ClassSamples(np.zeros((6, 5)))
    q, dist2 = [], []
    for _ in range(4000):  # the same estimator as the index (weights all one), on fresh draws
        c.__init__(rng.normal(size=(8, 5)) * scale_c)
        d.__init__(delta + rng.normal(size=(6, 5)) * scale_d)
        wc, wd = np.ones((1, 8)), np.ones((1, 6))
        terms = pair_terms(c, d, wc, wd, class_moments(c, wc), class_moments(d, wd))
        q.append(terms[0][0])
        dist2.append(terms[1][0])
    # tolerances: about 3 standard errors of the means (sd 4.7 and 37 per draw); the plug-in estimates are far off
    assert np.mean(dist2) == pytest.approx(delta @ delta, abs=0.25)  # 6.0 (the plug-in |v|^2: 6 + 14.5/8 + 7.25/6 = 9.0)
    assert np.mean(q) == pytest.approx(delta @ (scale_c ** 2 * delta), abs=2.0)  # 26.0 (the plug-in v'S_c v: 39.6)


# --- the index on known geometries (item 4) -------------------------------------------------------------------

D, PARTNER = 32, [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
EYE = np.eye(D)
# pair k: centre 8 e_k, members 1.5 sigma either side along e_(5+k); then a fixed random rotation
CENTRES = np.array([8 * EYE[k] + s * 1.5 * EYE[5 + k] for k in range(5) for s in (-1, 1)])
ROTATION = np.linalg.qr(np.random.default_rng(123).normal(size=(D, D)))[0]
PAIRS = parse_pairs("0:1,2:3,4:5,6:7,8:9", list(range(10)))


def geometry(n, seed, stretch=None, tight=1.0, pull=0.0):
    g = np.random.default_rng(seed)
    xs = []
    for c in range(10):
        z = g.normal(size=(n, D)) * tight
        if stretch:  # x3 along a unit direction u
            u = CENTRES[PARTNER[c]] - CENTRES[c] if stretch == "similar" else EYE[10 + c]  # e_10.. are unused by centroids
            u = u / np.linalg.norm(u)
            z += 2 * (z @ u)[:, None] * u
        xs.append(CENTRES[c] + pull * (CENTRES[PARTNER[c]] - CENTRES[c]) + z)
    return {"features": torch.tensor(np.concatenate(xs) @ ROTATION.T), "labels": torch.arange(10).repeat_interleave(n)}


@pytest.fixture(scope="module")
def baseline():
    return geometry(150, 0)


def systematic(baseline, other, seed=0):
    results, _ = index_table([("base", [baseline]), ("other", [other])], PAIRS, n_boot=100, confidence=0.95, seed=seed)
    return results["other"]


def covers_zero(v):
    return v["ci"][0] <= 0 <= v["ci"][1]


def test_a_stretch_towards_the_similar_class_is_systematic(baseline):
    s = systematic(baseline, geometry(150, 1, stretch="similar"))["systematic"]
    assert s["value"] > 0.7 and s["ci"][0] > 0.5


def test_b_stretch_along_a_neutral_direction_is_not(baseline):
    s = systematic(baseline, geometry(150, 1, stretch="neutral"))["systematic"]
    assert abs(s["value"]) < 0.1 and covers_zero(s)


def test_c_scaling_all_features_changes_nothing(baseline):
    r = systematic(baseline, {"features": 5 * baseline["features"] + 3, "labels": baseline["labels"]})
    assert r["systematic"]["value"] == pytest.approx(0, abs=1e-9)
    assert r["dL_sim"]["value"] == pytest.approx(0, abs=1e-9) and r["dL_ctl"]["value"] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("tight", [0.5, 2.0])
def test_d_tightening_or_loosening_every_class_is_not_systematic(baseline, tight):
    r = systematic(baseline, geometry(150, 1, tight=tight))
    assert abs(r["systematic"]["value"]) < 0.1 and covers_zero(r["systematic"])
    assert r["dL_sim"]["value"] == pytest.approx(math.log(tight), abs=0.1)  # the widths did move
    assert r["dL_ctl"]["value"] == pytest.approx(math.log(tight), abs=0.1)


def test_e_few_samples_per_class_are_not_biased(baseline):
    s = systematic(baseline, geometry(12, 2))["systematic"]
    assert abs(s["value"]) < 0.3 and covers_zero(s)


def test_f_centroids_pulled_towards_the_similar_class_is_systematic(baseline):
    s = systematic(baseline, geometry(150, 1, pull=0.25))["systematic"]
    assert s["value"] > 0.4 and s["ci"][0] > 0


def test_seed_intervals_are_t_intervals_over_the_models(baseline):
    # systematic of a cell = mean K(cell) - mean K(base) with Welch's interval over the models (seeds); the
    # sampling interval is the bootstrap's alone and no longer widens with the seeds; one model: no seed interval
    stretched, plain = geometry(150, 1, stretch="similar"), geometry(150, 3)
    cells = [("base", [baseline, geometry(150, 4)]), ("one", [stretched]), ("two", [stretched, plain])]
    results, paired = index_table(cells, PAIRS, n_boot=100, confidence=0.95, seed=0)
    assert paired and results["two"]["models"] == 2 and results["one"]["systematic"]["seeds"] is None
    two = results["two"]["systematic"]
    k = [[m["K"] for m in results[c]["per_model"]] for c in ("two", "base")]
    ref = stats.ttest_ind(k[0], k[1], equal_var=False)
    assert two["value"] == pytest.approx(np.mean(k[0]) - np.mean(k[1]))
    assert two["seeds"]["p"] == pytest.approx(ref.pvalue)
    assert [two["seeds"]["low"], two["seeds"]["high"]] == pytest.approx(list(ref.confidence_interval(0.95)))
    assert two["seeds"]["high"] - two["seeds"]["low"] > 5 * (two["ci"][1] - two["ci"][0])  # the seeds disagree


def test_cluster_weights_move_the_tokens_of_a_sentence_together():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2])
    sentences = np.array([5, 5, 5, 7, 7, 9, 9, 9])
    w = bootstrap_weights(rng, labels, [0, 1, 2], 50, clusters=sentences)
    token = np.zeros((50, 8))
    for c in (0, 1, 2):
        token[:, labels == c] = w[c]
    for sid in (5, 7, 9):  # every token of a sentence carries that sentence's draw count
        cols = token[:, sentences == sid]
        assert (cols == cols[:, :1]).all()
    assert (token[:, [0, 3, 5]].sum(1) == 3).all()  # one count per sentence, three sentences drawn per replicate


def test_variable_class_sizes_equal_the_resampled_data():
    # under the cluster bootstrap a class's resampled size differs from n: the estimates must still equal
    # recomputing on the duplicated rows
    rng = np.random.default_rng(2)
    xc, xd = rng.normal(size=(9, 3)) * [1, 2, 0.5], rng.normal(size=(7, 3)) + [3, 1, 0]
    c, d = ClassSamples(xc), ClassSamples(xd)
    wc = np.array([[2, 0, 1, 1, 3, 0, 1, 2, 1], [1, 1, 1, 0, 0, 2, 2, 0, 1]], dtype=float)  # sizes 11 and 8
    wd = np.array([[0, 1, 2, 0, 1, 1, 0], [3, 1, 0, 1, 1, 2, 1]], dtype=float)  # sizes 5 and 9
    q, dist2 = pair_terms(c, d, wc, wd, class_moments(c, wc), class_moments(d, wd))
    for b in range(2):
        want = direct_terms(np.repeat(xc, wc[b].astype(int), 0), np.repeat(xd, wd[b].astype(int), 0))
        assert q[b] == pytest.approx(want[0], rel=1e-9) and dist2[b] == pytest.approx(want[1], rel=1e-9)


# --- similar classes ------------------------------------------------------------------------------------------


def test_similarity_reads_the_model_mass():
    # samples of class 0 put their spare mass on class 2, of class 1 on class 0, of class 2 on class 1
    logits = torch.tensor([[5.0, 0.0, 3.0], [2.0, 5.0, 0.0], [0.0, 4.0, 5.0]])
    sim = similarity(logits, torch.tensor([0, 1, 2]), [0, 1, 2], n_controls=1)
    assert sim == {0: (2, [1]), 1: (0, [2]), 2: (1, [0])}


def test_parse_pairs():
    assert parse_pairs("2:4", [0, 2, 4, 9]) == {2: (4, [0, 9]), 4: (2, [0, 9])}
    for text, message in [("2-4", "expected A:B"), ("2:4,2:9", "two similar classes"), ("2:2", "or itself"),
                          ("2:7", r"class\(es\) \[7\] not among")]:
        with pytest.raises(LskdError, match=message):
            parse_pairs(text, [0, 2, 4, 9])


# --- the command ----------------------------------------------------------------------------------------------


def write_features(path, seed=0, n=30, pull=0.0):
    d = geometry(n, seed, pull=pull)
    f = d["features"].float()
    w = torch.tensor(np.random.default_rng(7).normal(size=(10, D))).float()
    centres = torch.tensor(CENTRES @ ROTATION.T).float()
    logits = -torch.cdist(f, centres) ** 2 / 4  # the partner is the nearest other class: the similar one
    torch.save({"features": f, "labels": d["labels"], "logits": logits, "fc_weight": w, "fc_bias": torch.zeros(10),
                "classes": [f"c{i}" for i in range(10)]}, path)


def test_cli_writes_table_plot_and_json(tmp_path):
    write_features(tmp_path / "t1.pt")
    write_features(tmp_path / "t3a.pt", seed=1, pull=0.25)
    write_features(tmp_path / "t3b.pt", seed=2, pull=0.25)
    write_features(tmp_path / "ref.pt", seed=9)
    out = tmp_path / "res" / "diff"
    proc = run([tool("lskd"), "diffusion", "--features", f"T1={tmp_path / 't1.pt'}",
                f"T3={tmp_path / 't3a.pt'},{tmp_path / 't3b.pt'}", "--similar-from", tmp_path / "ref.pt",
                "--classes", "0", "1", "2", "--bootstrap", "50", "--out", out])
    assert "| T1 | 1 | " in proc.stdout and "| T3 | 2 | " in proc.stdout
    result = json.loads((tmp_path / "res" / "diff.json").read_text())
    assert result["baseline"] == "T1" and result["results"]["T1"]["systematic"]["value"] == 0
    assert result["reference"]["kind"] == "model" and result["reference"]["file"] == str(tmp_path / "ref.pt")
    assert result["pairs"]["0"]["similar"] == 1 and result["pairs"]["3"]["similar"] == 2 and result["paired"]
    t3 = result["results"]["T3"]
    assert t3["models"] == 2 and len(t3["per_model"]) == 2 and t3["systematic"]["ci"][0] > 0
    assert (tmp_path / "res" / "diff.png").stat().st_size > 5000
    md = (tmp_path / "res" / "diff.md").read_text()
    assert md.startswith("Diffusion index (lskd's definition") and str(tmp_path / "ref.pt") in md and "0 (c0) -> 1 (c1)" in md


def lskd_in_process(args, capsys):
    """`lskd ARGS` in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from lskd.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_user_pairs(tmp_path, capsys):
    write_features(tmp_path / "t1.pt")
    code, stdout, _ = lskd_in_process(["diffusion", "--features", f"T1={tmp_path / 't1.pt'}", "--similar-pairs", "0:1,2:3",
                                       "--classes", "0", "1", "2", "--bootstrap", "20", "--out", tmp_path / "o"], capsys)
    result = json.loads((tmp_path / "o.json").read_text())
    assert code == 0 and result["reference"] == {"kind": "pairs", "pairs": "0:1,2:3"} and "user pairs 0:1,2:3" in stdout
    assert sorted(result["pairs"]) == ["0", "1", "2", "3"] and result["pairs"]["0"]["controls"] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert result["too_few_samples"] == [] and result["index_classes"] == list(range(10))


def test_cli_leaves_out_classes_with_too_few_samples(tmp_path, capsys):
    write_features(tmp_path / "t1.pt")
    d = torch.load(tmp_path / "t1.pt")
    keep = (d["labels"] != 9) | (torch.arange(len(d["labels"])) % 30 < 9)  # class 9: 9 samples
    torch.save({k: v[keep] if torch.is_tensor(v) and v.size(0) == len(keep) else v for k, v in d.items()}, tmp_path / "t1.pt")
    code, _, err = lskd_in_process(["diffusion", "--features", f"T1={tmp_path / 't1.pt'}", "--similar-pairs", "0:1",
                                    "--classes", "0", "1", "2", "--bootstrap", "20", "--out", tmp_path / "o"], capsys)
    result = json.loads((tmp_path / "o.json").read_text())
    assert code == 0, err
    assert result["too_few_samples"] == [9] and 9 not in result["index_classes"] and 9 not in result["pairs"]["0"]["controls"]


def test_two_references_and_the_comparison_of_two_tables(tmp_path, capsys):
    for name, seed, pull in (("a_t1", 0, 0.0), ("a_t1b", 1, 0.0), ("a_t3", 2, 0.25), ("a_t3b", 3, 0.25),
                             ("b_t1", 4, 0.0), ("b_t1b", 5, 0.0), ("b_t3", 6, 0.0), ("b_t3b", 7, 0.02), ("ref", 9, 0.0)):
        write_features(tmp_path / f"{name}.pt", seed=seed, n=150, pull=pull)
    for fam in ("a", "b"):
        code, out, err = lskd_in_process(
            ["diffusion", "--features", f"T1={tmp_path / f'{fam}_t1.pt'},{tmp_path / f'{fam}_t1b.pt'}",
             f"T3={tmp_path / f'{fam}_t3.pt'},{tmp_path / f'{fam}_t3b.pt'}", "--similar-from", str(tmp_path / "ref.pt"),
             str(tmp_path / "a_t1.pt"), "--classes", "0", "1", "2", "--bootstrap", "20", "--out", tmp_path / fam], capsys)
        assert code == 0, err
    result = json.loads((tmp_path / "a.json").read_text())
    assert [r["reference"]["file"] for r in result["references"]] == [str(tmp_path / "ref.pt"), str(tmp_path / "a_t1.pt")]
    assert "Reference sensitivity (ref.pt / a_t1.pt): the verdicts are the same under every reference." in out or \
        "the verdicts change for" in out
    md = (tmp_path / "a.md").read_text()
    assert md.count("| T3 | 2 | ") == 2 and "systematic diffusion, T3 vs T1: **positive**" in md
    code, out, err = lskd_in_process(["diffusion", "--compare", f"pulled={tmp_path / 'a.json'}",
                                      f"plain={tmp_path / 'b.json'}", "--out", tmp_path / "cmp"], capsys)
    assert code == 0, err
    assert "T3: systematic diffusion with pulled: **positive**" in out
    assert "T3: systematic diffusion with plain: **not shown**" in out
    assert "T3: pulled − plain: **larger with pulled**" in out and out.count("Similar classes from") == 2
    assert json.loads((tmp_path / "cmp.json").read_text())["baseline"] == "T1"
    code, _, err = lskd_in_process(["diffusion", "--compare", f"x={tmp_path / 'a.json'}", f"x={tmp_path / 'b.json'}",
                                    "--out", tmp_path / "c2"], capsys)
    assert code == 2 and "the two names must differ" in err
    (tmp_path / "other.json").write_text('{"results": {}}')
    for spec, message in ((f"y={tmp_path / 'none.json'}", "no such file"),
                          (f"y={tmp_path / 'other.json'}", "not the JSON of `lskd diffusion`"),
                          (str(tmp_path / "b.json"), "expected NAME=PREFIX.json")):
        code, _, err = lskd_in_process(["diffusion", "--compare", f"x={tmp_path / 'a.json'}", spec, "--out",
                                        tmp_path / "c3"], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c3.md").exists()
    # tables made with other references (or another number of them) are not compared
    swapped = json.loads((tmp_path / "b.json").read_text())
    swapped["references"] = swapped["references"][::-1]
    (tmp_path / "swapped.json").write_text(json.dumps(swapped))
    one = dict(swapped, references=swapped["references"][:1])
    (tmp_path / "one.json").write_text(json.dumps(one))
    for other, message in (("swapped.json", "the tables use other similar classes"),
                           ("one.json", "or number of references (2 vs 1)")):
        code, _, err = lskd_in_process(["diffusion", "--compare", f"x={tmp_path / 'a.json'}", f"y={tmp_path / other}",
                                        "--out", tmp_path / "c4"], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c4.md").exists()


def test_help_defines_the_index(capsys):
    with pytest.raises(SystemExit):
        lskd_in_process(["diffusion", "--help"], capsys)
    out = capsys.readouterr().out
    for words in ["SYSTEMATIC DIFFUSION = dL_sim - dL_ctl", "MIN_PER_CLASS = 10", "tr(S_c)/n_c", "bootstrap",
                  "--similar-pairs", "cluster bootstrap", "Welch's t against the baseline", "--compare"]:
        assert words in out


@pytest.mark.parametrize("edit, message", [
    (lambda p: ["--features", "T1"], "--features 'T1': expected NAME=FILE"),
    (lambda p: ["--features", f"T1={p / 'none.pt'}"], "--features T1="),
    (lambda p: ["--features", f"T1={p / 'bad.pt'}"], "missing logits, fc_weight, fc_bias"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--similar-from", "X"], "--similar-from X: neither"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--index-classes", "0", "1", "10"], "class 10: fewer than 10"),
    (lambda p: ["--features", f"T1={p / 'few.pt'}", "--index-classes", "0", "1", "2"], "class 0: fewer than 10"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--similar-pairs", "0:1,0:2"], "two similar classes"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--bootstrap", "3"], "--bootstrap must be >= 10"),
])
def test_cli_bad_input(tmp_path, edit, message, capsys):
    write_features(tmp_path / "t1.pt")
    write_features(tmp_path / "few.pt", n=9)
    torch.save({"features": torch.zeros(2, 2), "labels": torch.zeros(2)}, tmp_path / "bad.pt")
    code, _, err = lskd_in_process(["diffusion", *edit(tmp_path), "--classes", "0", "1", "2", "--out", tmp_path / "o"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()
