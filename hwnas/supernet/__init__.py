"""One-shot NAS: weight-entangled supernets (MLP, Transformer LM) with sandwich training and inherited-weight
subnet search, DARTS with a hardware-cost penalty, and measured ranking fidelity (see docs/supernet.md)."""

from hwnas.supernet.fidelity import ranking_fidelity
from hwnas.supernet.mlp import Arch, ArchSpace, MLPSupernet, arch_space
from hwnas.supernet.train import train_supernet
from hwnas.supernet.transformer import TransformerSupernet, transformer_arch_space

__all__ = ["Arch", "ArchSpace", "MLPSupernet", "TransformerSupernet", "arch_space", "ranking_fidelity",
           "train_supernet", "transformer_arch_space"]
