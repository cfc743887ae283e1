"""eipviz: train, compare and explain small CNNs on CIFAR-10 and MNIST."""

from eipviz.errors import EipvizError

__all__ = ["EipvizError"]
__version__ = "0.1.0"
