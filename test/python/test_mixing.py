"""The two ways the trainer puts sprites of two categories together (sdtrain.mixing)."""
import torch
import torch.nn.functional as F
from sdtrain.mixing import cutmix_layer, paste_layer, put_over


def sprite(h=32, w=32, box=(4, 20, 10, 18)):
    """A transparent canvas with an opaque rectangle of distinct colours at rows box[0]:box[1], cols box[2]:box[3]."""
    x = torch.full((4, h, w), -1.0)
    t, b, l, r = box
    x[:3, t:b, l:r] = torch.linspace(-0.9, 0.9, 3 * (b - t) * (r - l)).view(3, b - t, r - l)
    x[3, t:b, l:r] = 1.0
    return x


def test_paste_puts_the_whole_partner_scaled_to_40_75_percent_somewhere_on_the_canvas():
    partner = torch.stack([sprite(box=(4, 20, 10, 18)), sprite(box=(0, 32, 0, 32)), sprite(box=(30, 32, 1, 3))])
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        layer, box = paste_layer(partner, g)
        for i in range(len(partner)):
            ys, xs = torch.nonzero(layer[i, 3] > 0, as_tuple=True)
            top, left = int(ys.min()), int(xs.min())
            nh, nw = int(ys.max()) + 1 - top, int(xs.max()) + 1 - left
            assert 0.4 * 32 - 1 <= max(nh, nw) <= 0.75 * 32 + 1
            assert box[i].sum() == nh * nw and box[i, top:top + nh, left:left + nw].all()
            # the whole opaque bounding box of the partner, resized (nearest): nothing cut off
            solid = torch.nonzero(partner[i, 3] > 0, as_tuple=True)
            crop = partner[i, :, int(solid[0].min()):int(solid[0].max()) + 1, int(solid[1].min()):int(solid[1].max()) + 1]
            want = F.interpolate(crop[None], size=(nh, nw), mode="nearest")[0]
            assert torch.equal(layer[i, :, top:top + nh, left:left + nw], want)
            assert (layer[i, 3][~box[i]] == -1).all()


def test_put_over_keeps_the_row_outside_the_partners_opaque_pixels_and_reports_its_share():
    base = sprite(box=(8, 24, 8, 24))          # 256 opaque pixels
    partner = sprite(box=(0, 32, 0, 32))
    g = torch.Generator().manual_seed(0)
    for style in (cutmix_layer, paste_layer):
        layer, box = style(partner[None], g)
        out, share = put_over(base[None], layer, box)
        covered = box[0] & (layer[0, 3] > 0)
        assert torch.equal(out[0][:, ~covered], base[:, ~covered])
        assert torch.equal(out[0][:, covered], layer[0][:, covered])
        opaque = int(((base[3] > 0) | covered).sum())
        assert abs(float(share[0]) - int(covered.sum()) / opaque) < 1e-6
    # a transparent partner pixel never cuts a hole in the row
    hollow = partner.clone()
    hollow[3, 10:20, 10:20] = -1
    out, _ = put_over(base[None], hollow[None], torch.ones(1, 32, 32, dtype=torch.bool))
    assert torch.equal(out[0][:, 10:20, 10:20], base[:, 10:20, 10:20])
