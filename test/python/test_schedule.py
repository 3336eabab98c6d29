"""The DDPM schedule and samplers against the course's own formulas (recomputed inline)."""
from __future__ import annotations

import pytest
import torch

from sdtrain.model import ContextUnet, ModelConfig
from sdtrain.schedule import DDPMSchedule, ScheduleConfig, ddim_timesteps, guided_eps, sample

T, BETA1, BETA2 = 500, 1e-4, 0.02


def course_schedule(timesteps=T, beta1=BETA1, beta2=BETA2, dtype=torch.float64):
    # verbatim from "How Diffusion Models Work" (dtype added so we can compare in float64)
    b_t = (beta2 - beta1) * torch.linspace(0, 1, timesteps + 1, dtype=dtype) + beta1
    a_t = 1 - b_t
    ab_t = torch.cumsum(a_t.log(), dim=0).exp()
    ab_t[0] = 1
    return b_t, a_t, ab_t


def course_denoise_add_noise(x, t, pred_noise, z, b_t, a_t, ab_t):
    # the course's sampling step; it draws z = randn when None, the tests always pass it
    noise = b_t.sqrt()[t] * z
    mean = (x - pred_noise * ((1 - a_t[t]) / (1 - ab_t[t]).sqrt())) / a_t[t].sqrt()
    return mean + noise


def test_schedule_matches_course():
    s = DDPMSchedule(ScheduleConfig(T=T, beta_start=BETA1, beta_end=BETA2))
    b_t, a_t, ab_t = course_schedule()
    assert s.betas.shape == (T + 1,)
    torch.testing.assert_close(s.betas, b_t, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(s.alphas, a_t, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(s.alpha_bar, ab_t, rtol=1e-12, atol=1e-15)
    assert s.alpha_bar[0] == 1.0
    # the course's quirk: alpha_bar[1] includes alphas[0]
    assert abs(float(s.alpha_bar[1]) - (1 - BETA1) * (1 - (BETA1 + (BETA2 - BETA1) / T))) < 1e-15
    # and in the course's own float32, to float32 precision
    b32, a32, ab32 = course_schedule(dtype=torch.float32)
    torch.testing.assert_close(s.alpha_bar.float(), ab32, rtol=2e-5, atol=1e-6)


def test_ddpm_step_without_clip_is_course_update():
    s = DDPMSchedule()
    b_t, a_t, ab_t = course_schedule()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, 8, 8, generator=g, dtype=torch.float64) * 1.7
    eps = torch.randn(x.shape, generator=g, dtype=torch.float64)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    for t in [T, 377, 250, 40, 2]:
        ours = s.ddpm_step(x, torch.full((4,), t), eps, z, clip_x0=False)
        ref = course_denoise_add_noise(x, t, eps, z, b_t, a_t, ab_t)
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # the course samples with z = 0 at t == 1: ddpm_step ignores z there
    ours = s.ddpm_step(x, torch.full((4,), 1), eps, z, clip_x0=False)
    ref = course_denoise_add_noise(x, 1, eps, torch.zeros_like(z), b_t, a_t, ab_t)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # a batch of mixed timesteps applies each item's own t
    ts = torch.tensor([500, 1, 73, 2])
    ours = s.ddpm_step(x, ts, eps, z)
    for i, t in enumerate(ts.tolist()):
        zi = z[i] if t > 1 else torch.zeros_like(z[i])
        torch.testing.assert_close(ours[i], course_denoise_add_noise(x[i], t, eps[i], zi, b_t, a_t, ab_t),
                                   rtol=1e-12, atol=1e-12)
    # float32 inputs stay float32 and agree with the float64 course update to float32 precision
    ours32 = s.ddpm_step(x.float(), torch.full((4,), 250), eps.float(), z.float())
    assert ours32.dtype == torch.float32
    torch.testing.assert_close(ours32.double(), course_denoise_add_noise(x, 250, eps, z, b_t, a_t, ab_t),
                               rtol=1e-5, atol=1e-5)


def _in_range_case(s, t, seed=1):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(3, 4, 6, 6, generator=g, dtype=torch.float64) * 1.8 - 0.9  # inside [-1, 1]
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    ab = s.alpha_bar[t]
    x = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    return x, eps, x0


@pytest.mark.parametrize("t,tp", [(500, 480), (250, 230), (21, 1), (20, 0)])
def test_ddim_clip_is_noop_when_x0_in_range(t, tp):
    s = DDPMSchedule()
    x, eps, x0 = _in_range_case(s, t)
    tt, tpp = torch.full((3,), t), torch.full((3,), tp)
    a = s.ddim_step(x, tt, tpp, eps, clip_x0=False)
    b = s.ddim_step(x, tt, tpp, eps, clip_x0=True)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # the DDIM formula itself: sqrt(ab') x0 + sqrt(1 - ab') eps
    abp = s.alpha_bar[tp]
    torch.testing.assert_close(a, abp.sqrt() * x0 + (1 - abp).sqrt() * eps, rtol=1e-9, atol=1e-9)
    # and the same holds for the DDPM step
    torch.testing.assert_close(s.ddpm_step(x, tt, eps, None, clip_x0=True), s.ddpm_step(x, tt, eps, None),
                               rtol=1e-9, atol=1e-9)


def test_clip_changes_the_step_when_x0_out_of_range():
    s = DDPMSchedule()
    x, eps, _ = _in_range_case(s, 100)
    x = x * 3.0  # predicted x0 now far outside [-1, 1]
    tt, tpp = torch.full((3,), 100), torch.full((3,), 0)
    clipped = s.ddim_step(x, tt, tpp, eps, clip_x0=True)
    assert not torch.allclose(clipped, s.ddim_step(x, tt, tpp, eps))
    assert clipped.abs().max() <= 1.0 + 1e-9  # t_prev = 0 returns the (clipped) x0


@pytest.mark.parametrize("T_,n", [(500, 25), (500, 50), (500, 2), (500, 500), (1000, 7), (10, 9), (3, 3)])
def test_ddim_timesteps(T_, n):
    ts = ddim_timesteps(T_, n)
    assert ts[0] == T_ and ts[-1] == 1
    assert all(a > b for a, b in zip(ts, ts[1:])), ts
    assert len(ts) == n  # no collisions for n <= T


def test_ddim_timesteps_edges():
    assert ddim_timesteps(500, 1) == [500]
    for bad in (0, 501):
        with pytest.raises(ValueError):
            ddim_timesteps(500, bad)


def test_guided_eps():
    c, u = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    torch.testing.assert_close(guided_eps(c, u, 3.0), u + 3.0 * (c - u))
    assert guided_eps(c, u, 1.0) is c and guided_eps(c, None, 5.0) is c


def test_schedule_config_errors():
    with pytest.raises(ValueError, match="linear"):
        DDPMSchedule(ScheduleConfig(name="cosine"))
    with pytest.raises(ValueError):
        DDPMSchedule(ScheduleConfig(T=1))


def test_sample_runs_and_is_seeded():
    torch.manual_seed(0)
    model = ContextUnet(ModelConfig(size=8, widths=(8, 16), emb_dim=16, n_context=3)).eval()
    torch.nn.init.normal_(model.conv_out.weight, std=0.05)  # non-zero output
    s = DDPMSchedule(ScheduleConfig(T=12))
    ctx = torch.eye(3)[[0, 1, 2, 1]]
    outs = []
    for sampler, guidance in [("ddpm", 1.0), ("ddim", 2.0), ("ddim", 2.0)]:
        g = torch.Generator().manual_seed(5)
        x = sample(model, s, ctx, 8, 4, sampler=sampler, steps=4, guidance=guidance, generator=g)
        assert x.shape == (4, 4, 8, 8) and x.abs().max() <= 1.0 and torch.isfinite(x).all()
        outs.append(x)
    assert torch.equal(outs[1], outs[2])  # same generator seed, same sprites
    with pytest.raises(ValueError, match="sampler"):
        sample(model, s, ctx, 8, 4, sampler="euler")


def test_ddim_eta_one_at_stride_one_is_the_ddpm_posterior():
    """DDIM with eta = 1 over one step t -> t-1 has the DDPM posterior's mean and the variance
    beta~_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t; eta = 0 adds no noise; the last step none either."""
    s = DDPMSchedule()
    g = torch.Generator().manual_seed(3)
    x, eps = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64), torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    z = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    for t in (300, 40, 2):
        tt, tp = torch.full((3,), t), torch.full((3,), t - 1)
        mean = s.ddim_step(x, tt, tp, eps, eta=1.0, z=torch.zeros_like(z))
        torch.testing.assert_close(mean, s.ddpm_step(x, tt, eps, None), rtol=1e-9, atol=1e-9)
        post_var = (1 - s.alpha_bar[t - 1]) / (1 - s.alpha_bar[t]) * s.betas[t]
        torch.testing.assert_close(s.ddim_sigma(tt, tp, 1.0, x).flatten()[0] ** 2, post_var, rtol=1e-9, atol=1e-12)
        noisy = s.ddim_step(x, tt, tp, eps, eta=1.0, z=z)
        torch.testing.assert_close(noisy - mean, post_var.sqrt() * z, rtol=1e-9, atol=1e-9)
        half = s.ddim_step(x, tt, tp, eps, eta=0.5, z=z) - s.ddim_step(x, tt, tp, eps, eta=0.5, z=torch.zeros_like(z))
        torch.testing.assert_close(half, 0.5 * post_var.sqrt() * z, rtol=1e-9, atol=1e-9)
    tt, t0 = torch.full((3,), 20), torch.zeros(3, dtype=torch.long)
    assert float(s.ddim_sigma(tt, t0, 1.0, x).abs().max()) == 0.0
    with pytest.raises(ValueError, match="needs noise z"):
        s.ddim_step(x, tt, torch.full((3,), 10), eps, eta=1.0)


def test_sample_with_eta_is_seeded_and_differs_from_deterministic_ddim():
    torch.manual_seed(0)
    m = ContextUnet(ModelConfig(size=8, n_context=2, widths=(8, 16), emb_dim=16, groups=4)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    s = DDPMSchedule()
    ctx = torch.eye(2)

    def run(eta, seed=5):
        return sample(m, s, ctx, 8, 4, sampler="ddim", steps=6, eta=eta, generator=torch.Generator().manual_seed(seed))

    a, b = run(1.0), run(1.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, run(0.0)) and not torch.equal(a, run(1.0, seed=6))
