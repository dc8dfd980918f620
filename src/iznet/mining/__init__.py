"""Online miners: pick (anchor, positive, negative) index triplets inside a batch of embeddings."""

from iznet.mining.all_triplets import AllTripletsMiner
from iznet.mining.base import IndexTriplets, Miner, MiningError
from iznet.mining.factory import MINERS, create_miner, list_miners
from iznet.mining.hard import BatchHardMiner, HardMiner
from iznet.mining.random_hard import RandomHardMiner
from iznet.mining.semihard import SemiHardMiner

__all__ = [
    "Miner",
    "MiningError",
    "IndexTriplets",
    "AllTripletsMiner",
    "HardMiner",
    "SemiHardMiner",
    "RandomHardMiner",
    "BatchHardMiner",
    "MINERS",
    "create_miner",
    "list_miners",
]
