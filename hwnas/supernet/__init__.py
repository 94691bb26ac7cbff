"""Weight-entangled MLP supernets: sandwich-rule training, inherited-weight subnets, ranking fidelity."""

from hwnas.supernet.fidelity import ranking_fidelity
from hwnas.supernet.mlp import Arch, ArchSpace, MLPSupernet, arch_space
from hwnas.supernet.train import train_supernet

__all__ = ["Arch", "ArchSpace", "MLPSupernet", "arch_space", "ranking_fidelity", "train_supernet"]
