"""The penultimate-layer analysis (lskd.diffusion, lskd nmt-features): golden values, properties, CLI."""

import json
import math

import pytest
import torch

from helpers import run, tool
from lskd.diffusion import (
    PCA2,
    class_stats,
    diffusion,
    project,
    separation,
    separation_summary,
    similarity,
    template_basis,
)


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


def test_pca2_finds_the_long_axis():
    t = torch.linspace(-1, 1, 11, dtype=torch.float64)
    x = torch.stack([3 * t, 0.1 * t.flip(0) ** 2, torch.zeros_like(t)], 1) + 5
    pca = PCA2(x)
    assert torch.allclose(pca.components[0].abs(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(pca(x)[:, 0].abs(), (3 * t).abs(), atol=1e-6)


def test_separation_golden():
    # class 0 at (+-1, 0) -> centroid (0, 0), RMS spread 1; class 1 at (4, +-2) -> centroid (4, 0), spread 2
    f = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [4.0, 2.0], [4.0, -2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    centroids, spreads = class_stats(f, labels, [0, 1])
    assert spreads == {0: 1.0, 1: 2.0}
    assert separation(centroids, spreads, 0, 1) == pytest.approx(4 / math.sqrt((1 + 4) / 2))


def test_similarity_reads_the_model_mass():
    # samples of class 0 put their spare mass on class 2, of class 1 on class 0, of class 2 on class 1
    logits = torch.tensor([[5.0, 0.0, 3.0], [2.0, 5.0, 0.0], [0.0, 4.0, 5.0]])
    sim = similarity(logits, torch.tensor([0, 1, 2]), [0, 1, 2], n_controls=1)
    assert sim == {0: (2, [1]), 1: (0, [2]), 2: (1, [0])}


def clusters(centres, n=200, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.cat([torch.tensor(c) + spread * torch.randn(n, len(c), generator=g) for c in centres])
    return f, torch.arange(len(centres)).repeat_interleave(n)


SIMILAR = {0: (1, [2, 3]), 1: (0, [2, 3]), 2: (3, [0, 1]), 3: (2, [0, 1])}


def test_index_is_scale_free():
    f, y = clusters([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0]])
    base = separation_summary(f, y, SIMILAR)
    scaled = separation_summary(7.5 * f + 3, y, SIMILAR)
    assert scaled["sep_sim"] == pytest.approx(base["sep_sim"]) and scaled["sep_dis"] == pytest.approx(base["sep_dis"])
    assert diffusion(scaled, base)["systematic"] == pytest.approx(0, abs=1e-6)  # fp32 features


def test_diffusion_towards_similar_classes_is_systematic():
    f, y = clusters([[0.0, 0.0], [2.0, 0.0], [8.0, 8.0], [10.0, 8.0]])
    base = separation_summary(f, y, SIMILAR)
    # each similar pair drifts together (its classes smear into each other), the pairs stay far apart
    smeared, _ = clusters([[0.7, 0.0], [1.3, 0.0], [8.7, 8.0], [9.3, 8.0]])
    d = diffusion(separation_summary(smeared, y, SIMILAR), base)
    assert d["loss_sim"] > 0.5 and abs(d["loss_dis"]) < 0.05 and d["systematic"] > 0.5
    # spreading every class alike (isotropic diffusion) loses separation everywhere: not systematic
    iso, _ = clusters([[0.0, 0.0], [2.0, 0.0], [8.0, 8.0], [10.0, 8.0]], spread=0.6)
    d_iso = diffusion(separation_summary(iso, y, SIMILAR), base)
    assert d_iso["loss_sim"] > 0.3 and d_iso["loss_dis"] > 0.3 and abs(d_iso["systematic"]) < 0.2


def write_features(path, shift=0.0, seed=0):
    centres = [[0.0, 0.0, 1.0], [2.0 - shift, 0.0, 1.0], [0.0, 6.0, 1.0], [2.0, 6.0, 0.0]]
    f, y = clusters(centres, n=50, seed=seed)
    w = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.3], [-1.0, 1.0, -0.3], [1.0, 1.0, 0.5]])
    b = torch.tensor([0.0, 0.1, 0.2, 0.0])
    logits = -torch.cdist(f, torch.tensor(centres)) ** 2  # near classes are the similar ones
    torch.save({"features": f, "labels": y, "logits": logits, "fc_weight": w, "fc_bias": b,
                "classes": ["cat", "lynx", "ship", "car"]}, path)


def test_cli_writes_table_plot_and_json(tmp_path):
    write_features(tmp_path / "t1.pt")
    write_features(tmp_path / "t3.pt", shift=1.0)  # class 1 moves halfway to class 0, its most similar class
    out = tmp_path / "res" / "diff"
    proc = run([tool("lskd"), "diffusion", "--features", f"T1={tmp_path / 't1.pt'}", f"T3={tmp_path / 't3.pt'}",
                "--classes", "0", "1", "2", "--out", out])
    assert "| T1 | " in proc.stdout and "| T3 | " in proc.stdout
    result = json.loads((tmp_path / "res" / "diff.json").read_text())
    assert result["baseline"] == "T1" and result["results"]["T1"]["systematic"] == 0
    # same noise: the 0-1 centroid distance about halves (up to the sample means), the 2-3 one stays
    t1 = result["results"]["T1"]["per_class"]
    s01, s23 = t1["0"]["sep_sim"], t1["2"]["sep_sim"]
    assert result["results"]["T3"]["loss_sim"] == pytest.approx(1 - (s01 / 2 + s23) / (s01 + s23), abs=0.02)
    assert result["results"]["T3"]["systematic"] > 0.2
    assert (tmp_path / "res" / "diff.png").stat().st_size > 5000
    assert (tmp_path / "res" / "diff.md").read_text().startswith("Diffusion index (lskd's own definition")


@pytest.mark.parametrize("edit, message", [
    (lambda p: ["--features", "T1"], "--features 'T1': expected NAME=FILE"),
    (lambda p: ["--features", f"T1={p / 'none.pt'}"], "--features T1="),
    (lambda p: ["--features", f"T1={p / 'bad.pt'}"], "missing logits, fc_weight, fc_bias"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--similar-from", "X"], "--similar-from X: not one of"),
    (lambda p: ["--features", f"T1={p / 't1.pt'}", "--index-classes", "0", "9"], "class 9: not present"),
])
def test_cli_bad_input(tmp_path, edit, message):
    write_features(tmp_path / "t1.pt")
    torch.save({"features": torch.zeros(2, 2), "labels": torch.zeros(2)}, tmp_path / "bad.pt")
    args = edit(tmp_path)
    if "--classes" not in args:
        args += ["--classes", "0", "1", "2"]
    proc = run([tool("lskd"), "diffusion", *args, "--out", tmp_path / "o"], check=False)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_nmt_features_match_the_model(tiny_data, tiny_teacher, tmp_path):
    from fairseq_plugins.nmt_features import extract
    from fairseq_plugins.teacher import TeacherSession

    d = extract(str(tiny_data / "bin"), str(tiny_teacher), "valid", top=5, max_per_word=7)
    assert len(d["classes"]) == 5 and d["features"].size(0) == sum(d["counts"]) and max(d["counts"]) <= 7
    assert d["labels"].bincount(minlength=5).tolist() == d["counts"]
    session = TeacherSession.for_data(str(tiny_data / "bin"), str(tiny_teacher), ["valid"], option="--path")
    task, (model,) = session.task, session.models
    ids = [task.target_dictionary.index(w) for w in d["classes"]]
    assert torch.equal(d["fc_weight"], model.decoder.output_projection.weight[ids].float())
    # the first kept position is the first occurrence of an analysed word in corpus order
    sample = next(iter(session.batches("valid", 4096)))
    with torch.no_grad():
        logits = model(**sample["net_input"])[0]
    target = sample["target"].reshape(-1)
    first = int(torch.isin(target, torch.tensor(ids)).nonzero()[0])
    assert torch.allclose(d["logits"][0], logits.reshape(-1, logits.size(-1))[first, ids], atol=1e-4)


def test_nmt_features_refuses_unknown_words(tiny_data, tiny_teacher, tmp_path):
    proc = run([tool("lskd"), "nmt-features", "--data", tiny_data / "bin", "--path", tiny_teacher, "--words", "zzqx",
                "--out", tmp_path / "f.pt"], check=False)
    assert proc.returncode == 2 and "--words: not in the target dictionary: zzqx" in proc.stderr
    assert not (tmp_path / "f.pt").exists()
