"""How many images one pass through a model may take: its maps per image against a memory budget.

An uploaded model that computes one image within memory (the upload trial checks that) can still ask for far
more in the batches the pages use: a reviewer's ``UpSampling2D(50)`` model took 4 GB an image and would need
about 97 GB for a batch of 500. TensorFlow then aborts the whole server with ``std::bad_alloc``, which no
Python code can catch. Every pass is cut to what fits ``PASS_BUDGET_BYTES`` instead; the zoo's models fit
their usual batches whole, so only such models run in smaller ones.
"""

import math

from eipviz.attribution.layers import call_counts, flat_layers

# The zoo's largest passes: sepconv65k's guided gradients keep 2.25 GiB for 256 images, its predictions 1.6 for 500.
PASS_BUDGET_BYTES = 5 * 2**29  # 2.5 GiB
FLOAT_BYTES = 4  # maps are float32 on the CPU; a mixed-precision model's are smaller, so this errs safe


def map_bytes_per_image(model) -> int:
    """Bytes of every map ``model`` computes for one image on its way to its outputs, as float32: what a
    gradient pass keeps for the backward pass, and an upper bound for a forward one (measured: 46 MiB an
    image against 38 estimated for a model upsampling 32x32 by 20, Keras on TensorFlow, CPU)."""
    counts = call_counts(model)
    elements = 0
    for path, layer in flat_layers(model):
        if counts[path] and layer._inbound_nodes:
            outputs = layer._inbound_nodes[0].outputs
            elements += counts[path] * sum(math.prod(int(d or 1) for d in t.shape[1:]) for t in outputs)
    return elements * FLOAT_BYTES


def images_per_pass(model, most: int, kept_copies: int = 1) -> int:
    """At most ``most`` images, fewer when their maps would pass ``PASS_BUDGET_BYTES`` (``images_within``);
    ``kept_copies`` 2 for a gradient pass (each map and its gradient)."""
    return images_within(kept_copies * map_bytes_per_image(model), most)


def images_within(bytes_per_image: int, most: int) -> int:
    """At most ``most`` images, fewer (a power of two, at least 1) when ``bytes_per_image`` each would pass
    ``PASS_BUDGET_BYTES``: for arrays of images a pass is fed from (faithfulness' 17 versions of each image)."""
    fitting = PASS_BUDGET_BYTES // max(1, bytes_per_image)
    if fitting >= most:
        return most
    return 1 << max(0, fitting.bit_length() - 1)  # JAX compiles one shape per batch size: keep to few
