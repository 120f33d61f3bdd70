"""DCGAN for 64×64 faces (Radford, Metz & Chintala, ICLR 2016, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks") — the generative prior of
semantic inpainting (Yeh et al., CVPR 2017) and of paper 003 ("Structurally and semantically
coherent deep image inpainting", which trains it on CelebA and searches its latent space).

Architecture (``width`` = ngf = ndf = 64 in the paper, z of ``z_dim`` = 100 dimensions):

* **Generator** ``G``: z ~ U(-1, 1)^100 → a fully-connected layer to a 4×4×(8·width) map (the
  "project and reshape" of Radford et al.; a 4×4 up-convolution of a 1×1 code is the same maths) →
  BatchNorm + ReLU → 4×4 stride-2 transposed convolutions 8w→4w→2w→w (8→16→32 px), each with
  BatchNorm + ReLU → a last transposed convolution w→3 (64 px) with **no** BatchNorm and tanh.
  Radford et al. use ReLU in G; paper 003 says its generator uses LeakyReLU(0.2) everywhere but
  the tanh output (``g_activation="leaky_relu"``, the ``paper`` profile).
* **Discriminator** ``D``: 4×4 stride-2 convolutions 3→w→2w→4w→8w (64→4 px) with LeakyReLU(0.2),
  BatchNorm on all but the *input* layer, then a fully-connected layer on the 4×4×8w map to one
  logit (sigmoid inside the loss).

Training is the standard GAN game (:mod:`facefill.adversarial`) with the non-saturating generator loss::

    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0)        L_G = BCE(D(G(z)), 1) = −log D(G(z))

one D update then one G update per step, Adam (β1 = 0.5). Weights N(0, 0.02), BatchNorm γ
N(1, 0.02) (Radford et al.). Paper 003 says "lr 0.001 as suggested by Radford"; Radford et al.
actually use 2e-4 — we default to Radford's 2e-4 (logged in the notebook's deviation table).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from ..adversarial import AdversarialTask, Step
from ..errors import ConfigError
from .context_encoder import init_dcgan_weights


G_ACTIVATIONS = {"relu": lambda: nn.ReLU(True), "leaky_relu": lambda: nn.LeakyReLU(0.2, True)}


@dataclass
class DCGANConfig:
    image_size: int = 64  # side of the generated faces (a power of two >= 16)
    z_dim: int = 100  # latent dimension; z ~ U(-1, 1)^z_dim
    width: int = 64  # ngf = ndf: channels of the last G layer / first D layer (Radford: 64)
    lr: float = 2e-4  # Adam learning rate of both nets (Radford: 2e-4; thesis text: 1e-3)
    beta1: float = 0.5  # Adam β1 (Radford)
    g_activation: str = "relu"  # hidden activation of G: relu (Radford) | leaky_relu (slope 0.2, paper 003 §3.1)

    def __post_init__(self):
        if self.g_activation not in G_ACTIVATIONS:
            raise ConfigError(f"g_activation={self.g_activation!r}: use one of {sorted(G_ACTIVATIONS)}.")
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"image_size={self.image_size}: use a power of two >= 16 (64 for the paper).")
        if self.z_dim < 1 or self.width < 1:
            raise ConfigError(f"z_dim={self.z_dim}, width={self.width}: both must be >= 1.")

    @property
    def n_up(self) -> int:
        """Number of stride-2 (up-)convolutions between 4 px and ``image_size``."""
        return (self.image_size // 4).bit_length() - 1


def sample_z(n: int, z_dim: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """z ~ U(-1, 1)^(n, z_dim) (Radford et al.; the inpainting search keeps z in this box)."""
    return (torch.rand(n, z_dim, generator=generator) * 2 - 1).to(device)


class Generator(nn.Module):
    """z (N, z_dim) → images (N, 3, S, S) in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.width * 2 ** (cfg.n_up - 1 - i) for i in range(cfg.n_up)]  # 64: 8w, 4w, 2w, w
        self.top = chans[0]
        self.project = nn.Linear(cfg.z_dim, self.top * 16, bias=False)
        self.bn0 = nn.BatchNorm2d(self.top)
        self.act0 = G_ACTIVATIONS[cfg.g_activation]()
        layers: list[nn.Module] = []
        for cin, cout in pairwise(chans):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), G_ACTIVATIONS[cfg.g_activation]()]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1), nn.Tanh()]  # no BatchNorm on the output
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.cfg.z_dim:
            raise ConfigError(f"G expects z of shape (N, {self.cfg.z_dim}), got {tuple(z.shape)}.")
        h = self.project(z).view(z.shape[0], self.top, 4, 4)
        return self.net(self.act0(self.bn0(h)))


class Discriminator(nn.Module):
    """images (N, 3, S, S) → one logit per image."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.width * 2**i for i in range(cfg.n_up)]  # 64: w, 2w, 4w, 8w
        layers: list[nn.Module] = [nn.Conv2d(3, chans[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no BN on the input layer
        for cin, cout in pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 16, 1)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1)).squeeze(1)


class DCGANTask(AdversarialTask):
    """The DCGAN game (:class:`facefill.adversarial.AdversarialTask` without a reconstruction term):
    D on real faces and detached G(z), then G on the non-saturating −log D(G(z)); z ~ U(-1, 1)."""

    def __init__(self, cfg: DCGANConfig, fused_adam: bool | None = None):
        super().__init__(cfg, Generator(cfg), Discriminator(cfg), lr_g=cfg.lr, lr_d=cfg.lr, betas=(cfg.beta1, 0.999),
                         fused_adam=fused_adam)
        self._fixed_z: torch.Tensor | None = None

    def prepare(self, images: torch.Tensor) -> Step:
        if images.shape[-1] != self.cfg.image_size:
            raise ConfigError(f"DCGAN of image_size={self.cfg.image_size} got {images.shape[-1]}-px images; load faces at that size.")
        return Step(real=images, input=sample_z(images.shape[0], self.cfg.z_dim, device=images.device))

    def after_step(self, step: Step, output, d_real, d_fake, logs: dict) -> dict:
        """Also log D(x) and D(G(z)), the mean probabilities before D's update (Radford et al.'s diagnostics)."""
        return {**logs, "d_x": torch.sigmoid(d_real.float()).mean().detach(), "d_g_z": torch.sigmoid(d_fake.float()).mean().detach()}

    def sample(self, images: torch.Tensor, autocast=None) -> torch.Tensor:
        """Real images above two rows of samples from a fixed z (seeded, so grids are comparable)."""
        n = images.shape[0]
        if self._fixed_z is None or self._fixed_z.shape[0] != 2 * n:
            self._fixed_z = sample_z(2 * n, self.cfg.z_dim, torch.Generator().manual_seed(1234))
        return torch.cat([images.float(), self.predict(self._fixed_z.to(images.device), autocast)], 0)
