import numpy as np
import pytest
import torch

from vae.config import ScoreConfig
from vae.losses import gaussian_kl, reconstruction_nll
from vae.model import VAE
from vae.preprocessing import Preprocessor
from vae.scoring import Scorer, mix_terms


@pytest.fixture
def parts():
    torch.manual_seed(0)
    X = (np.random.default_rng(0).normal(size=(64, 5)) * [1, 3, 10, 0.1, 2] + [0, 5, -3, 1, 100]).astype(
        np.float32
    )
    vae = VAE(5, (16, 8), 3, learn_variance=True)
    with torch.no_grad():
        vae.log_sigma2.copy_(torch.linspace(-1, 1, 5))
    return vae.eval(), Preprocessor.fit(X), X


@pytest.mark.parametrize("latent_term", ["typicality", "nll", "kl"])
def test_folded_scaler_scores_like_the_standardized_vae(parts, latent_term):
    vae, pre, X = parts
    scorer = Scorer(vae, pre, ScoreConfig(latent_term=latent_term))
    z = torch.from_numpy(pre.transform(X))
    with torch.no_grad():
        mu, logvar = vae.encode(z)
        expected_recon = reconstruction_nll(z, vae.decode(mu), vae.log_sigma2) - 0.5 * vae.log_sigma2.sum()
        expected_latent = gaussian_kl(mu, logvar).sum(1) if latent_term == "kl" else 0.5 * mu.pow(2).sum(1)
        recon, latent = scorer.raw_components(torch.from_numpy(X))
    torch.testing.assert_close(recon, expected_recon, rtol=1e-4, atol=1e-4)
    if latent_term == "typicality":
        expected_latent = (expected_latent - scorer.latent_center).abs()
    torch.testing.assert_close(latent, expected_latent, rtol=1e-4, atol=1e-5)


def test_typicality_is_two_sided(parts):
    vae, pre, X = parts
    scorer = Scorer(vae, pre, ScoreConfig(latent_term="typicality"))
    scorer.fit_normalization(torch.from_numpy(X))
    mu, _ = scorer.encode(torch.from_numpy(X))
    nll = 0.5 * mu.pow(2).sum(1)
    _, latent = scorer.raw_components(torch.from_numpy(X))
    # the rows with the smallest and the largest latent NLL both deviate more than the median row
    order = nll.argsort()
    assert latent[order[0]] > latent[order[len(order) // 2]] < latent[order[-1]]


def test_normalization_centers_held_out_terms(parts):
    vae, pre, X = parts
    scorer = Scorer(vae, pre, ScoreConfig(transform="none", normalization="zscore"))
    r, z = scorer.fit_normalization(torch.from_numpy(X))
    for term in (r, z):
        assert float(term.mean()) == pytest.approx(0, abs=1e-4)
        assert float(term.std()) == pytest.approx(1, abs=1e-3)


def test_mixing_rules():
    r, z = torch.tensor([4.0]), torch.tensor([1.0])
    assert mix_terms(r, z, 0.25, "sum").item() == pytest.approx(1.75)
    assert mix_terms(r, z, 0.5, "product").item() == pytest.approx(2.0)
