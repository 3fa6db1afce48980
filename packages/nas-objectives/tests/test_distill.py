"""distill: the frozen teacher, the consistency score (eq. 13-16), teacher building from timm names and
checkpoints, and teacher pre-training in one call (MaskTAS algorithm 1, step 2)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from objectives_helpers import TinyCNN, TinyTokenViT, train

from nas_core import ConfigError, create_objective, load_data
from nas_core.testing import FakeBackbone, fake_images
from nas_objectives import (
    Distill,
    TeacherEncoder,
    TimmFeatures,
    load_teacher,
    pretrain_teacher,
    relation_consistency,
)


def _setup(obj, bb, size):
    obj.setup(bb.feature_info, in_chans=3, img_size=size)
    return obj


def test_teacher_is_frozen_in_eval_mode_and_gets_no_gradient():
    torch.manual_seed(0)
    given = TinyCNN()
    student = TinyCNN()
    obj = _setup(Distill(teacher=given), student, 16)
    teacher = obj.teacher
    assert teacher is not given and all(p.requires_grad for p in given.parameters())  # caller's module untouched
    assert all(not p.requires_grad for p in teacher.parameters())
    obj.train()
    assert not any(m.training for m in teacher.modules())
    assert obj.projector.training and obj.decoder.training
    before = copy.deepcopy(teacher.state_dict())
    x = load_data("digits", img_size=16).images[:16]
    losses = train(obj, student, [x], 5)
    assert all(np.isfinite(losses))
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(m.training for m in teacher.modules())
    for k, v in teacher.state_dict().items():  # BN statistics included
        assert torch.equal(v, before[k]), k
    heads = [obj.projector[0].weight, obj.mask_token]
    assert all(p.grad is not None for p in heads)
    obj.requires_grad_(True)  # even when someone unfreezes it, the teacher runs without autograd
    obj.loss(student, x).backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_relation_consistency_is_lowest_for_identical_tokens():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 10, 8, generator=g)
    same = relation_consistency(z, z)
    for scale in (0.1, 0.5, 2.0):
        other = z + scale * torch.randn(3, 10, 8, generator=g)
        assert torch.all(relation_consistency(other, z) > same)
    # teacher and student widths may differ: only relations are compared
    wide = torch.cat([z, z], dim=-1)
    assert torch.allclose(relation_consistency(wide, z), same, atol=1e-5)
    valid = torch.zeros(3, 10, dtype=torch.bool)
    valid[:, :4] = True
    sub = relation_consistency(z[:, :4], z[:, :4])
    assert torch.allclose(relation_consistency(z, z, valid=valid), sub, atol=1e-5)


@pytest.mark.parametrize("kind", ["cnn", "token_vit"])
def test_consistency_score_is_highest_for_the_teacher_itself_and_drops_with_perturbation(kind):
    torch.manual_seed(0)
    teacher = TinyCNN() if kind == "cnn" else TinyTokenViT()
    teacher.eval()
    obj = _setup(Distill(teacher=teacher), teacher, 16)
    x = load_data("digits", img_size=16).images[:16]
    scores = []
    for sigma in (0.0, 0.05, 0.2, 0.6):
        student = copy.deepcopy(teacher)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in student.parameters():
                p.add_(sigma * p.std().nan_to_num(0.0) * torch.randn(p.shape, generator=gen))
        scores.append(obj.score(student.eval(), x))
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4, scores
    assert obj.score(copy.deepcopy(teacher).eval(), x) == scores[0]


def test_score_is_repeatable_and_caches_the_teacher():
    torch.manual_seed(0)
    obj = _setup(Distill(teacher=FakeBackbone("cnn")), TinyCNN(), 16)
    student = TinyCNN().eval()
    x = fake_images(4, 16, 0)
    calls = []
    obj.teacher.register_forward_hook(lambda *a: calls.append(1))
    a = obj.score(student, x)
    torch.manual_seed(9)
    assert obj.score(student, x) == a
    assert obj.score(TinyCNN().eval(), x) != a
    assert len(calls) == 1  # the frozen teacher ran once for the same images and masks


def test_loss_is_eq_9_to_11():
    torch.manual_seed(0)
    student, teacher = TinyCNN(), FakeBackbone("cnn")
    obj = _setup(Distill(teacher=teacher, beta=0.0), student, 16)
    obj_b = _setup(Distill(teacher=teacher, beta=2.0), student, 16)
    obj_b.load_state_dict(obj.state_dict())
    x = fake_images(4, 16, 0)
    mask, _ = obj.draw_mask(student, x, torch.Generator().manual_seed(0))
    assert mask.flatten(1).sum(1).tolist() == [14] * 4  # round(0.9 * 16) of the 16 patches
    l0 = obj.loss(student, x, mask=mask)
    l2 = obj_b.loss(student, x, mask=mask)
    from nas_objectives import MIM

    mim = _setup(MIM(loss="l2", norm_pix_loss=True), student, 16)
    mim.decoder.load_state_dict(obj.decoder.state_dict())
    assert torch.allclose(l0, mim.loss(student, x, mask=mask))  # beta = 0: masked normalised-pixel L2 only
    assert l2 > l0  # the feature-prediction term adds


def test_a_teacher_by_name_is_pretrained_on_the_run_data_never_silently_random(tmp_path, nas_context):
    data = load_data("digits", img_size=16, limit=128)
    opts = dict(teacher="test_vit", pretrain_steps=20, pretrain_batch_size=32, pretrain_lr=3e-3, teacher_cache=str(tmp_path))
    bare = Distill(**opts)
    with pytest.raises(ConfigError, match="has no weights yet.*nas_core.search.*pretrain_steps=0"):
        _setup(bare, TinyCNN(), 16)  # a strategy that never called prepare() gets a refusal, not a random teacher
    obj = Distill(**opts)
    obj.prepare(data, nas_context)
    report = obj.teacher_report
    assert report["teacher_steps"] == 20 and not report["teacher_cached"]
    assert report["teacher_mim_loss"] < 0.9 * report["teacher_mim_loss_start"]  # it learned
    assert nas_context.epoch_history() == [{"epoch": -1, **report}]  # reported in the run's history
    _setup(obj, TinyCNN(), 16)
    assert isinstance(obj.teacher, TeacherEncoder) and len(obj.teacher.history) == 20
    # the same data, teacher and options load the cached teacher back
    again = Distill(**opts)
    again.prepare(data, nas_context)
    assert again.teacher_report["teacher_cached"] and again.teacher_report["teacher_checkpoint"] == report["teacher_checkpoint"]
    _setup(again, TinyCNN(), 16)
    for k, v in obj.teacher.state_dict().items():
        assert torch.equal(again.teacher.state_dict()[k], v), k
    other = Distill(**opts)  # other data: another teacher
    other.prepare(load_data("digits", img_size=16, limit=96), nas_context)
    assert not other.teacher_report["teacher_cached"]


def test_distill_search_reports_its_teacher(objectives, register_plugin):
    import nas_core
    from nas_core.testing import FakePlugin

    register_plugin(FakePlugin(), "fake")
    res = nas_core.search(space="fake", objective="distill", strategy="fake", data="digits", limit=48, img_size=16,
                          budget=2, progress=False, teacher="test_vit", pretrain_steps=4, pretrain_batch_size=16,
                          teacher_cache="")
    teacher = [h for h in res.history if h.get("phase") == "teacher"]
    assert len(teacher) == 1 and teacher[0]["teacher_steps"] == 4 and teacher[0]["epoch"] == -1


def test_teacher_by_timm_name_and_by_checkpoint(tmp_path):
    obj = _setup(Distill(teacher="test_vit", pretrain_steps=0), TinyCNN(), 16)  # random weights, asked for
    assert isinstance(obj.teacher, TimmFeatures)
    assert obj.teacher.build_kwargs == {"img_size": 16, "patch_size": 4}  # ViTs built for the data
    assert obj.teacher.feature_info.reduction()[-1] == 4
    s = obj.score(TinyCNN().eval(), fake_images(2, 16, 0))
    assert np.isfinite(s)
    # plain timm weights loaded into a named teacher
    src = TimmFeatures("test_vit", {"img_size": 16, "patch_size": 4})
    torch.save({"model": src.model.state_dict()}, tmp_path / "w.pt")
    obj2 = _setup(Distill(teacher="test_vit", teacher_checkpoint=str(tmp_path / "w.pt")), TinyCNN(), 16)
    for k, v in src.state_dict().items():
        assert torch.equal(obj2.teacher.state_dict()[k], v)
    # CNN teachers: pick a stage whose grid is not 1x1
    cnn = _setup(Distill(teacher="test_resnet", teacher_stage=1, pretrain_steps=0), TinyCNN(), 16)
    assert cnn.projector[-1].out_features == cnn.teacher.feature_info.channels()[1]
    with pytest.raises(ConfigError, match="teacher_stage"):
        _setup(Distill(teacher="test_resnet", teacher_stage=9, pretrain_steps=0), TinyCNN(), 16)
    torch.save({"x": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="match"):
        _setup(Distill(teacher="test_vit", teacher_checkpoint=str(tmp_path / "bad.pt")), TinyCNN(), 16)


def test_pretrain_teacher_in_one_call(tmp_path):
    data = load_data("digits", img_size=16, limit=256)
    ckpt = tmp_path / "teacher.pt"
    teacher = pretrain_teacher("test_vit", data, steps=30, batch_size=32, lr=3e-3, checkpoint=ckpt, device="cpu", seed=0)
    assert isinstance(teacher, TeacherEncoder) and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    h = teacher.history
    assert len(h) == 30 and np.mean(h[-6:]) < 0.9 * np.mean(h[:6])
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp*"))
    again = pretrain_teacher("test_vit", data, steps=30, batch_size=32, lr=3e-3, device="cpu", seed=0)
    assert again.history == h  # deterministic for a seed
    loaded = load_teacher(ckpt)
    for k, v in teacher.state_dict().items():
        assert torch.equal(loaded.state_dict()[k].cpu(), v.cpu()), k
    obj = _setup(Distill(teacher=str(ckpt)), TinyCNN(), 16)
    assert isinstance(obj.teacher, TeacherEncoder)
    assert torch.equal(obj.teacher.mask_token, teacher.mask_token)
    assert np.isfinite(obj.score(TinyCNN().eval(), torch.stack([data[i] for i in range(8)])))
    # a module backbone is deep-copied and pre-trained too
    own = TinyCNN()
    t2 = pretrain_teacher(own, data, steps=3, batch_size=32, device="cpu")
    assert t2.backbone is not own and all(p.requires_grad for p in own.parameters())
    with pytest.raises(ConfigError, match="custom module"):
        from nas_objectives import save_teacher

        save_teacher(t2, tmp_path / "own.pt")
        load_teacher(tmp_path / "own.pt")


def test_distill_learns_on_digits(objectives):
    data = load_data("digits", img_size=16)
    batches = [data.images[i : i + 32] for i in range(0, 128, 32)]
    torch.manual_seed(0)
    student = TinyCNN()
    obj = _setup(create_objective("distill", teacher=TinyCNN()), student, 16)
    losses = train(obj, student, batches, 40)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
