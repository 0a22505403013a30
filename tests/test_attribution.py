"""Attribution maps: they find what the model looks at, and the stability measures."""

import math

import pytest
import torch
import torchvision.transforms.functional as TF
from scipy.stats import rankdata
from torch import nn

from paperlib.core.attribution import (
    average_ranks,
    flat_maps,
    gaussian_blur,
    gradcam_map,
    gradcam_sensitivity,
    informative,
    normalize_map,
    occlusion_map,
    rank_correlation,
    ssd,
    top_k_intersection,
)
from paperlib.core.models import make_model
from paperlib.core.registry import ARCHITECTURES

REGION = (slice(8, 14), slice(18, 24))  # rows, columns the toy model looks at


class RegionModel(nn.Module):
    """Class 0's logit is the mean activation inside REGION; class 1's is a constant.

    Its only convolution (1x1, summing the colour channels) is the Grad-CAM layer.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        nn.init.constant_(self.conv.weight, 1.0)
        self.gradcam_layer = self.conv
        mask = torch.zeros(32, 32)
        mask[REGION] = 1.0
        self.register_buffer("mask", mask / mask.sum())

    def forward(self, x):
        region = (self.conv(x)[:, 0] * self.mask).sum(dim=(1, 2))
        return torch.stack([region, torch.full_like(region, 0.1)], dim=1)


def _images(n=3):
    """Dark images with a bright, textured blob in REGION."""
    torch.manual_seed(0)
    images = torch.rand(n, 3, 32, 32) * 0.2
    images[:, :, REGION[0], REGION[1]] = 0.8 + 0.2 * torch.rand(n, 3, 6, 6)
    return images


def _argmax_location(maps):
    flat = maps.flatten(1).argmax(dim=1)
    return flat // 32, flat % 32


@pytest.mark.parametrize("patch", [2, 4])
def test_occlusion_peaks_where_the_model_looks(patch):
    maps = occlusion_map(RegionModel(), _images(), patch=patch, stride=2)
    assert maps.shape == (3, 32, 32)
    rows, cols = _argmax_location(maps)
    assert ((rows >= 8) & (rows < 14) & (cols >= 18) & (cols < 24)).all()
    # Occluding far from the region changes nothing.
    assert maps[:, 28:, :4].abs().max() < 1e-6


def test_gradcam_peaks_where_the_model_looks():
    maps = gradcam_map(RegionModel(), _images())
    assert maps.shape == (3, 32, 32) and (maps >= 0).all()
    rows, cols = _argmax_location(maps)
    assert ((rows >= 8) & (rows < 14) & (cols >= 18) & (cols < 24)).all()


def test_batched_occlusion_equals_one_image_at_a_time():
    torch.manual_seed(1)
    model = make_model("vgg16", width=0.0625).eval()
    images = torch.rand(4, 3, 32, 32)
    batched = occlusion_map(model, images, patch=4, stride=2, perturbations_per_eval=16)
    single = torch.cat(
        [occlusion_map(model, x[None], patch=4, stride=2, perturbations_per_eval=1) for x in images]
    )
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gradcam_runs_on_every_architecture(arch):
    torch.manual_seed(2)
    maps = gradcam_map(make_model(arch, width=0.0625), torch.rand(2, 3, 32, 32))
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all() and (maps >= 0).all()


def test_ssd_of_a_map_with_itself_is_zero_and_ignores_scale():
    maps = torch.rand(5, 32, 32)
    assert torch.equal(ssd(maps, maps), torch.zeros(5))
    torch.testing.assert_close(ssd(maps, 3 * maps + 2), torch.zeros(5), atol=1e-9, rtol=0)


def test_ssd_value_by_hand():
    a = torch.zeros(1, 2, 2)
    a[0, 0, 0] = 1.0  # normalized: [[1, 0], [0, 0]]
    b = torch.zeros(1, 2, 2)
    b[0, 1, 1] = 5.0  # normalized: [[0, 0], [0, 1]]
    assert ssd(a, b).item() == pytest.approx(2.0)


def test_normalize_map_range_and_constant_map():
    maps = torch.randn(3, 32, 32)
    scaled = normalize_map(maps)
    assert scaled.amin(dim=(1, 2)).tolist() == [0.0] * 3
    torch.testing.assert_close(scaled.amax(dim=(1, 2)), torch.ones(3))
    assert torch.equal(normalize_map(torch.full((1, 4, 4), 7.0)), torch.zeros(1, 4, 4))


def test_blur_with_sigma_to_zero_is_the_identity():
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(gaussian_blur(images, 0.0), images)
    torch.testing.assert_close(gaussian_blur(images, 1e-3), images)
    blurred = gaussian_blur(images, 1.0)
    assert blurred.std() < images.std()  # a real blur smooths
    torch.testing.assert_close(blurred.mean(), images.mean(), atol=5e-3, rtol=0)


@pytest.mark.parametrize("sigma", [0.25, 0.5, 1.0, 2.0])
def test_blur_matches_torchvision(sigma):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    radius = max(1, math.ceil(3 * sigma))
    reference = TF.gaussian_blur(images, kernel_size=2 * radius + 1, sigma=sigma)
    torch.testing.assert_close(gaussian_blur(images, sigma), reference)


def test_average_ranks_match_scipy_rankdata_with_ties():
    generator = torch.Generator().manual_seed(0)
    values = torch.randint(0, 5, (6, 50), generator=generator).double()  # many ties
    values[0] = 3.0  # one constant row: every value shares the middle rank
    values[1] = torch.rand(50, generator=generator, dtype=torch.float64)  # no ties
    expected = torch.from_numpy(rankdata(values.numpy(), axis=1))
    assert torch.equal(average_ranks(values), expected)


def test_rank_correlation_values():
    maps = torch.rand(4, 32, 32)
    torch.testing.assert_close(rank_correlation(maps, 2 * maps + 1), torch.ones(4))
    torch.testing.assert_close(rank_correlation(maps, -maps), -torch.ones(4))


def test_constant_zero_and_noise_maps_are_flat_and_real_maps_are_not():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(1, 8, 8, generator=g)
    maps = torch.cat(
        [
            torch.zeros(1, 8, 8),  # Grad-CAM of a model that predicts one class
            torch.full((1, 8, 8), 3.7),  # constant
            2.0 + 1e-8 * torch.rand(1, 8, 8, generator=g),  # float noise around a constant
            real,
            1e-3 * real,  # small, but a real spread
        ]
    )
    assert flat_maps(maps).tolist() == [True, True, True, False, False]


def test_a_pair_with_a_flat_map_is_left_out_of_ssd_and_rank_correlation():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 8, 8, generator=g)
    b = torch.rand(3, 8, 8, generator=g)
    b[1] = 0.0  # flat: min-max scaling would make its SSD meaningless
    for values in (ssd(a, b), rank_correlation(a, b)):
        kept = informative(values, a, b)
        assert kept.isnan().tolist() == [False, True, False]
        assert torch.equal(kept[[0, 2]], values[[0, 2]])


def test_top_k_intersection_counts_the_shared_top_pixels():
    a = torch.arange(16.0).view(1, 4, 4)  # top 4: pixels 12-15
    b = a.clone()
    b.view(-1)[[12, 13]] = -1.0  # two of them drop out of b's top 4 (now 10, 11, 14, 15)
    assert top_k_intersection(a, a, 4).tolist() == [1.0]
    assert top_k_intersection(a, b, 4).tolist() == [0.5]
    assert top_k_intersection(a, -a, 4).tolist() == [0.0]


def test_gradcam_sensitivity_is_zero_without_noise_and_grows_with_it():
    torch.manual_seed(0)
    model = make_model("vgg16", 0.125).eval()
    images = torch.rand(4, 3, 32, 32)
    target = model(images).argmax(dim=1)
    still = gradcam_sensitivity(model, images, target, radius=0.0, samples=3)
    small = gradcam_sensitivity(model, images, target, radius=0.01, samples=5)
    large = gradcam_sensitivity(model, images, target, radius=0.3, samples=5)
    assert torch.allclose(still, torch.zeros(4), atol=1e-6)
    assert (small > 0).all() and small.mean() < large.mean()
