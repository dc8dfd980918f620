"""Miners by name: ``create_miner("semi-hard", margin=0.2)``."""

from __future__ import annotations

from iznet.mining.all_triplets import AllTripletsMiner
from iznet.mining.base import Miner, MiningError
from iznet.mining.hard import BatchHardMiner, HardMiner
from iznet.mining.random_hard import RandomHardMiner
from iznet.mining.semihard import SemiHardMiner

__all__ = ["create_miner", "list_miners", "MINERS"]

MINERS: dict[str, type[Miner]] = {
    "all": AllTripletsMiner,
    "hard": HardMiner,
    "semi-hard": SemiHardMiner,
    "random-hard": RandomHardMiner,
    "batch-hard": BatchHardMiner,
}


def list_miners() -> list[str]:
    """Names accepted by :func:`create_miner`."""
    return list(MINERS)


def create_miner(name: str, **kwargs) -> Miner:
    """Build a miner by name ("all", "hard", "semi-hard", "random-hard", "batch-hard"; "_" works as "-").

    Raises:
        MiningError: unknown name, or arguments that miner does not take.

    >>> create_miner("semi-hard", margin=0.2)
    SemiHardMiner(margin=0.2, squared=True, choice='hardest')
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in MINERS:
        raise MiningError(f"unknown miner {name!r}; choose one of: {', '.join(MINERS)}")
    try:
        return MINERS[key](**kwargs)
    except TypeError as e:
        raise MiningError(f"bad arguments for the {key!r} miner {sorted(kwargs)}: {e}") from None
