"""Samplers over a labelled set: exact uniform triplets and pairs, and P×K batches for online mining."""

from iznet.sampling._layout import SamplingError
from iznet.sampling.batches import PKBatchSampler
from iznet.sampling.pairs import UniformPairSampler
from iznet.sampling.triplets import (
    Algorithm2TripletSampler,
    UniformTripletSampler,
    count_triplets,
    enumerate_triplets,
    exact_distribution,
)

__all__ = [
    "SamplingError",
    "PKBatchSampler",
    "UniformPairSampler",
    "UniformTripletSampler",
    "Algorithm2TripletSampler",
    "count_triplets",
    "enumerate_triplets",
    "exact_distribution",
]
