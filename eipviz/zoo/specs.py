"""The five documented models as data: what each seed write-up says about them."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParamCounts:
    total: int
    trainable: int
    non_trainable: int


@dataclass(frozen=True)
class ModelSpec:
    """One documented model: architecture builder plus the seed's facts about it."""

    name: str
    title: str
    seed_file: str
    dataset: str
    input_shape: tuple
    builder: str  # its function in eipviz.zoo.architectures, imported only to build: specs need no Keras
    documented_params: ParamCounts
    documented_accuracy: float  # percent
    accuracy_kind: str  # "test" or "best val", as the seed reports it
    documented_epochs: int
    preprocessing: str  # name in eipviz.preprocessing
    cam_layer: str  # deepest conv feature map of at least 5x5
    # Receptive fields the seed annotates by hand, keyed by our layer names.
    documented_rf: dict = field(default_factory=dict)
    notes: str = ""


MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="resnet18",
            title="ResNet18-style (CIFAR-10)",
            seed_file="000_2a4c52d79e90fc9d.txt",
            dataset="cifar10",
            input_shape=(32, 32, 3),
            builder="resnet18_cifar",
            documented_params=ParamCounts(11_192_458, 11_184_650, 7_808),
            documented_accuracy=88.48,
            accuracy_kind="test",
            documented_epochs=50,
            preprocessing="channel_standardize",
            cam_layer="stage2_block2_out",
            notes="Seed gives the layer table and logs; preprocessing is not documented.",
        ),
        ModelSpec(
            name="sepconv59k",
            title="Separable-conv net, 58,965 params (CIFAR-10)",
            seed_file="001_6c6186a36139a017.txt",
            dataset="cifar10",
            input_shape=(32, 32, 3),
            builder="sepconv59k",
            documented_params=ParamCounts(58_965, 57_793, 1_172),
            documented_accuracy=84.41,
            accuracy_kind="test",
            documented_epochs=50,
            preprocessing="channel_standardize",
            cam_layer="sepconv7",
            documented_rf={
                "sepconv1": 3, "sepconv2": 3, "sepconv3": 7, "avgpool1": 8, "sepconv4": 12,
                "sepconv5": 16, "sepconv6": 20, "sepconv7": 24, "avgpool2": 28, "sepconv8": 44,
            },
        ),
        ModelSpec(
            name="mnist14k",
            title="MNIST net, 14,840 params, GAP",
            seed_file="002_1e3501fdb36ceda4.txt",
            dataset="mnist",
            input_shape=(28, 28, 1),
            builder="mnist14k",
            documented_params=ParamCounts(14_840, 14_588, 252),
            documented_accuracy=99.46,
            accuracy_kind="test",
            documented_epochs=20,
            preprocessing="unit_scale",
            cam_layer="class_maps1x1",
            notes="Seed documents counts and description only; the layers are our design.",
        ),
        ModelSpec(
            name="sepconv65k",
            title="Separable-conv net, 65,101 params (CIFAR-10)",
            seed_file="003_d1fcc7d5b33a7793.txt",
            dataset="cifar10",
            input_shape=(32, 32, 3),
            builder="sepconv65k",
            documented_params=ParamCounts(65_101, 63_737, 1_364),
            documented_accuracy=85.58,
            accuracy_kind="best val",
            documented_epochs=50,
            preprocessing="channel_standardize",
            cam_layer="sepconv5",
            documented_rf={
                "sepconv1": 3, "sepconv2": 5, "sepconv3": 7, "maxpool1": 8, "conv1x1": 8,
                "sepconv4": 12, "sepconv5": 16, "maxpool2": 18, "sepconv6": 26, "sepconv7": 34,
            },
        ),
        ModelSpec(
            name="resnet20v1",
            title="ResNet20 v1 + random erasing (CIFAR-10)",
            seed_file="004_87f52f0e225470ae.txt",
            dataset="cifar10",
            input_shape=(32, 32, 3),
            builder="resnet20_v1",
            documented_params=ParamCounts(274_442, 273_066, 1_376),
            documented_accuracy=88.09,
            accuracy_kind="best val",
            documented_epochs=50,
            preprocessing="pixel_mean",
            cam_layer="stage3_block3_out",
        ),
    )
}
