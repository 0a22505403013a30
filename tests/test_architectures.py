"""Tests for the experiment-2 architectures of paperlib.core.models: sizes against the standard
models, block counts, outputs, the width multiplier and the Grad-CAM layer."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from paperlib.core.models import MODELS, Bottleneck, MobileNetV1, make_model
from paperlib.core.registry import ARCHITECTURES as ARCHS

SMALL = 0.0625  # width multiplier that keeps every model below 100k parameters


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _on_meta(build):
    """Build a full-size model without allocating or initializing its weights."""
    with torch.device("meta"):
        return build()


# One batch size throughout: each new input shape costs the CPU backend a warm-up.
IMAGES = torch.stack(
    [
        torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)),
        torch.zeros(3, 32, 32),  # the extremes of the pixel range
        torch.ones(3, 32, 32),
    ]
)


def _output_sizes(model: nn.Module, x: torch.Tensor, layers: list[nn.Module]) -> list[tuple]:
    """Spatial size of each layer's output, recorded by hooks that return None."""
    sizes = {}

    def record(index):
        def hook(module, inputs, output):
            sizes[index] = tuple(output.shape[-2:])

        return hook

    handles = [layer.register_forward_hook(record(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return [sizes[i] for i in range(len(layers))]


# --- sizes of the standard models -----------------------------------------------------


def test_resnet50_has_torchvisions_parameter_count_up_to_the_cifar_stem():
    ours = _count(_on_meta(lambda: make_model("resnet50")))
    standard = _count(_on_meta(lambda: torchvision.models.resnet50(num_classes=10)))
    assert abs(ours - standard) / standard < 0.03
    # The only difference is the stem: a 3x3 instead of a 7x7 kernel, 64 filters on 3 channels.
    assert standard - ours == 64 * 3 * (7 * 7 - 3 * 3)


def test_mobilenet_v1_with_imagenets_head_has_the_papers_4_2_million_parameters():
    ours = _count(_on_meta(lambda: MobileNetV1(num_classes=1000)))
    assert abs(ours - 4.2e6) / 4.2e6 < 0.03  # Howard et al. 2017, Table 1: 4.2 million


def test_vgg16_convolutions_have_the_shapes_of_torchvisions_vgg16_bn():
    ours = _on_meta(lambda: make_model("vgg16")).features
    standard = _on_meta(lambda: torchvision.models.vgg16_bn()).features
    assert not list(ours[0].parameters())  # Normalize carries buffers only
    ours_convs = [m for m in ours if isinstance(m, nn.Conv2d)]
    standard_convs = [m for m in standard if isinstance(m, nn.Conv2d)]
    assert [c.weight.shape for c in ours_convs] == [c.weight.shape for c in standard_convs]
    ours_bns = [m.num_features for m in ours if isinstance(m, nn.BatchNorm2d)]
    assert ours_bns == [m.num_features for m in standard if isinstance(m, nn.BatchNorm2d)]
    # Our convolutions drop the bias, which the batch norm after them makes redundant;
    # with the biases added back the counts agree exactly.
    assert all(c.bias is None for c in ours_convs)
    conv_biases = sum(c.out_channels for c in standard_convs)
    assert conv_biases == 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
    assert _count(ours) + conv_biases == _count(standard)


# --- topology -------------------------------------------------------------------------


def test_resnet50_has_16_bottlenecks_in_stages_of_3_4_6_3():
    model = _on_meta(lambda: make_model("resnet50"))
    blocks = [m for m in model.features if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 == sum(isinstance(m, Bottleneck) for m in model.modules())
    # A stage starts where the bottleneck width changes.
    widths = [b.body[0].out_channels for b in blocks]
    stages = [widths.count(w) for w in dict.fromkeys(widths)]
    assert stages == [3, 4, 6, 3]
    assert list(dict.fromkeys(widths)) == [64, 128, 256, 512]
    assert blocks[-1].body[-2].out_channels == 2048


def test_mobilenet_has_13_depthwise_separable_blocks():
    model = _on_meta(lambda: make_model("mobilenet"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    depthwise = [c for c in convs if c.groups == c.in_channels > 1]
    assert len(depthwise) == 13
    assert len(convs) == 1 + 2 * 13  # the full stem conv, then depthwise + pointwise
    assert all(c.kernel_size == (3, 3) for c in depthwise)


def test_vgg16_has_13_convolutions_and_3_linear_layers():
    model = _on_meta(lambda: make_model("vgg16"))
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 13
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5


# --- outputs and the width multiplier -------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_small_models_map_unit_pixels_to_ten_finite_logits(arch):
    torch.manual_seed(0)
    model = make_model(arch, width=SMALL).eval()
    with torch.no_grad():
        logits = model(IMAGES)
        assert logits.shape == (3, 10)
        assert torch.isfinite(logits).all()
        assert make_model(arch, width=SMALL, num_classes=7).eval()(IMAGES).shape == (3, 7)
        # In eval mode an untrained deep net's signal fades (batch norm still has its
        # initial statistics); with batch statistics the logits depend on the image.
        logits = model.train()(IMAGES)
        assert (logits[0] - logits[1]).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_width_scales_the_channels(arch):
    quarter = _on_meta(lambda: make_model(arch, width=0.25))
    half = _on_meta(lambda: make_model(arch, width=0.5))
    assert _count(quarter) < _count(half)
    first_quarter = next(m for m in quarter.modules() if isinstance(m, nn.Conv2d))
    first_half = next(m for m in half.modules() if isinstance(m, nn.Conv2d))
    assert 2 * first_quarter.out_channels == first_half.out_channels


def test_width_never_goes_below_four_channels():
    model = make_model("vgg16", width=0.001)
    assert min(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) == 4


def test_make_model_rejects_an_unknown_architecture_naming_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'resnet18'") as err:
        make_model("resnet18")
    for name in MODELS:
        assert name in str(err.value)


# --- the Grad-CAM layer ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_gradcam_layer_is_the_last_with_4x4_maps(arch):
    torch.manual_seed(0)
    model = make_model(arch, width=SMALL)
    layers = list(model.features)
    assert sum(layer is model.gradcam_layer for layer in layers) == 1
    index = next(i for i, layer in enumerate(layers) if layer is model.gradcam_layer)
    sizes = _output_sizes(model, IMAGES, layers)
    assert sizes[index] == (4, 4)
    # It is the last layer of the feature extractor whose maps are still 4x4.
    assert all(size[0] < 4 for size in sizes[index + 1 :]), sizes[index + 1 :]


def test_vgg16_gradcam_layer_is_the_relu_before_the_fourth_pool():
    model = make_model("vgg16", width=SMALL)
    layers = list(model.features)
    index = next(i for i, layer in enumerate(layers) if layer is model.gradcam_layer)
    assert isinstance(layers[index], nn.ReLU)
    assert isinstance(layers[index + 1], nn.MaxPool2d)
    pools_before = sum(isinstance(layer, nn.MaxPool2d) for layer in layers[:index])
    assert pools_before == 3
