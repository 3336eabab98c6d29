"""Self-attention at the lowest resolution (--attention HEADS): a no-op when added, global when trained, exportable."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import load_ckpt, train_args

from sdtrain import export as ex
from sdtrain import train
from sdtrain.model import ContextUnet, ModelConfig, SelfAttention, count_flops, count_params
from sdtrain.teacher import load_teacher


def randomised(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


def test_attention_starts_as_a_no_op_on_a_trained_network():
    cfg = ModelConfig(size=32, widths=(32, 64, 128))
    base = randomised(ContextUnet(cfg))
    attn = ContextUnet(ModelConfig.from_dict({**cfg.to_dict(), "attention": 4}))
    missing, unexpected = attn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(("attn_down.", "attn_mid.", "attn_up.")) for k in missing)
    x, t, ctx = torch.randn(2, 4, 32, 32), torch.tensor([3.0, 400.0]), torch.eye(11)[:2]
    with torch.no_grad():
        assert torch.equal(base(x, t, ctx), attn(x, t, ctx))
    # three blocks at 8x8 positions on the 128-channel level
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in attn.modules() if isinstance(m, SelfAttention)]
    with torch.no_grad():
        attn(x, t, ctx)
    for h in hooks:
        h.remove()
    assert shapes == [(128, 8, 8)] * 3
    # parameters: 3 x (norm 2c + qkv 3c^2+3c + proj c^2+c); FLOPs: the convolutions plus 2 products of n^2 c each
    c, n = 128, 64
    assert count_params(attn) - count_params(base) == 3 * (2 * c + 4 * c * c + 4 * c)
    assert count_flops(attn) - count_flops(base) == 3 * (2 * n * 4 * c * c + 4 * n * n * c)


def test_attention_mixes_positions_across_the_whole_map():
    """A change at one corner of the input reaches the opposite corner through one attention block."""
    block = randomised(SelfAttention(16, 4, 4), std=0.3)
    x = torch.randn(1, 16, 8, 8)
    y = x.clone()
    y[0, :, 0, 0] += 5.0
    with torch.no_grad():
        d = (block(y) - block(x)).abs()
    assert d[0, :, 7, 7].max() > 1e-2  # a 3x3 convolution would need 7 layers to reach it
    # per-sample: rows of a batch do not see each other
    both = torch.cat([x, y])
    with torch.no_grad():
        assert torch.allclose(block(both)[0], block(x)[0], atol=1e-6)


@pytest.mark.parametrize("heads", [-1, 3])
def test_attention_heads_must_divide_the_last_width(heads):
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(size=32, widths=(32, 64, 128), attention=heads).validate()


def test_attention_trains_from_a_run_and_exports(tiny_run, tiny_data, tmp_path):
    out = tmp_path / "a"
    args = ("--attention", "2", "--init-from", str(tiny_run / "checkpoint.pt"), "--warmup", "2")
    assert train.main(train_args(tiny_data, out, 3, *args)) == 0
    assert json.loads((out / "config.json").read_text())["model"]["attention"] == 2
    state = load_ckpt(out / "checkpoint.pt")
    assert state["model"]["attn_mid.proj.weight"].abs().sum() > 0, "the new blocks learned"
    models = tmp_path / "models"
    ex.export(out, models, "tiny-attn", check=True, fp16=False)  # ONNX at batch 3 checked against PyTorch
    import onnx
    ops = {n.op_type for n in onnx.load(str(models / "model.onnx")).graph.node}
    assert {"MatMul", "Softmax"} <= ops and "Attention" not in ops  # plain operators every backend runs
    teacher = load_teacher(models / "model.json")
    assert teacher.model.cfg.attention == 2
    want = state["ema"]
    assert all(torch.equal(teacher.model.state_dict()[k], v) for k, v in want.items())
    # the head count is part of the network: a resumed run cannot change it
    assert train.main(train_args(tiny_data, out, 4, "--resume", "--attention", "2")) == 2
