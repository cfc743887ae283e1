"""Which shipped model the explanation pages open on: the first of ``shipped_models()``."""

import json

from eipviz.weights import read_manifest, shipped_models
from eipviz.zoo import MODELS


def test_the_pages_open_on_the_smallest_cifar10_model_and_list_mnist_last():
    assert shipped_models() == ["sepconv59k", "sepconv65k", "resnet20v1", "resnet18", "mnist14k"]


def test_the_order_follows_dataset_then_size_whatever_the_manifest_order(weights_dir):
    weights_dir.mkdir()
    (weights_dir / "manifest.json").write_text(json.dumps({name: {} for name in
                                                           ["mnist14k", "resnet18", "resnet20v1", "sepconv59k"]}))
    assert list(read_manifest()) == ["mnist14k", "resnet18", "resnet20v1", "sepconv59k"]
    assert shipped_models() == ["sepconv59k", "resnet20v1", "resnet18", "mnist14k"]
    sizes = [MODELS[name].documented_params.total for name in shipped_models()[:3]]
    assert sizes == sorted(sizes)
