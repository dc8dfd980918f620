"""Embedding networks: FaceNet's NN1 and NN2 family, InceptionV3, behind one registry.

>>> from iznet.models import create_model, list_models, preprocess
>>> list_models("nn4*")
['nn4', 'nn4_small']
"""

from iznet.models.registry import (create_model, list_models, load_weights, model_info, model_layers,
                                  register_model)
from iznet.models.base import EmbeddingNet
from iznet.models.flops import block_summary, count_flops, count_params, flops_by_module
from iznet.models.layers import ConvBNReLU, L2Pool2d, Maxout, local_response_norm
from iznet.models.preprocess import preprocess

# Importing the model modules registers their builders.
from iznet.models.nn1 import NN1
from iznet.models.nn2 import NN2, InceptionModule, InceptionSpec
from iznet.models.inception import InceptionV3Embedder, load_torchvision_inception

__all__ = [
    "block_summary",
    "ConvBNReLU",
    "EmbeddingNet",
    "InceptionModule",
    "InceptionSpec",
    "InceptionV3Embedder",
    "L2Pool2d",
    "Maxout",
    "NN1",
    "NN2",
    "count_flops",
    "count_params",
    "create_model",
    "flops_by_module",
    "list_models",
    "load_torchvision_inception",
    "load_weights",
    "local_response_norm",
    "model_info",
    "model_layers",
    "preprocess",
    "register_model",
]
