"""The FLOP counts the cost model rests on, against hand counts."""

import torch

from paperlib.core import accel
from paperlib.core.cost import bf16_peak, forward_flops, gradient_flops


def test_single_layer_model_flops_match_a_hand_count():
    # conv 3 -> 50 channels, 5x5 kernel, 28x28 outputs; linear 39,200 -> 10; 2 FLOPs per MAC
    conv = 2 * 3 * 5 * 5 * 50 * 28 * 28
    linear = 2 * 28 * 28 * 50 * 10
    assert forward_flops("single_layer") == conv + linear
    assert gradient_flops("single_layer") == 3 * (conv + linear)


def test_width_scales_the_flops_of_a_convolutional_network_quadratically():
    # channels on both sides of every convolution scale with the width
    ratio = forward_flops("vgg16", 1.0) / forward_flops("vgg16", 0.5)
    assert 3.5 < ratio < 4.1


def test_depthwise_convolutions_are_counted_with_their_groups():
    # MobileNet's depthwise separable layers make it several times cheaper than VGG-16;
    # counting each depthwise layer as a full convolution would make it dearer
    assert forward_flops("mobilenet") < forward_flops("vgg16") / 5
    assert gradient_flops("mobilenet") == 3 * forward_flops("mobilenet")


def test_gpu_peaks_are_found_by_the_name_torch_reports():
    assert bf16_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert bf16_peak("NVIDIA H200") == 989e12
    assert bf16_peak("Some Unknown GPU") is None


def test_full_precision_switches_autocast_off_and_back():
    cuda = torch.device("cuda")
    assert isinstance(accel.autocast(cuda), torch.autocast)
    with accel.full_precision():
        assert not isinstance(accel.autocast(cuda), torch.autocast)
    assert isinstance(accel.autocast(cuda), torch.autocast)
