import pytest

from eipviz.errors import EipvizError
from eipviz.zoo import MODELS, ParamCounts, build_model, get_spec, param_counts

DOCUMENTED = {
    "resnet18": ParamCounts(11_192_458, 11_184_650, 7_808),
    "sepconv59k": ParamCounts(58_965, 57_793, 1_172),
    "mnist14k": ParamCounts(14_840, 14_588, 252),
    "sepconv65k": ParamCounts(65_101, 63_737, 1_364),
    "resnet20v1": ParamCounts(274_442, 273_066, 1_376),
}


@pytest.mark.parametrize("name", DOCUMENTED)
def test_built_model_has_exactly_the_documented_parameter_counts(name):
    model = build_model(name)
    assert model.count_params() == DOCUMENTED[name].total
    assert param_counts(model) == DOCUMENTED[name]
    assert MODELS[name].documented_params == DOCUMENTED[name]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_default_cam_layer_is_the_deepest_conv_map_of_at_least_5x5(name):
    from eipviz.attribution.layers import default_target_layer

    model = build_model(name)
    assert default_target_layer(model) == MODELS[name].cam_layer
    height, width = model.get_layer(MODELS[name].cam_layer).output.shape[1:3]
    assert min(height, width) >= 5


@pytest.mark.parametrize("name", DOCUMENTED)
def test_each_spec_cites_an_existing_seed_file(name):
    from tests.conftest import seed_file

    assert seed_file(MODELS[name].seed_file).is_file()


def test_unknown_model_name_raises_a_clear_error():
    with pytest.raises(EipvizError, match="Choose one of: resnet18"):
        get_spec("resnet50")
