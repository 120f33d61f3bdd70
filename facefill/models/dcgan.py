"""DCGAN for 64×64 faces (Radford, Metz & Chintala, ICLR 2016, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks") — the generative prior of
semantic inpainting (Yeh et al., CVPR 2017) and of paper 003 ("Structurally and semantically
coherent deep image inpainting", which trains it on CelebA and searches its latent space).

Architecture (``width`` = ngf = ndf = 64 in the paper, z of ``z_dim`` = 100 dimensions):

* **Generator** ``G``: z ~ U(-1, 1)^100 → a fully-connected layer to a 4×4×(8·width) map (the
  "project and reshape" of Radford et al.; a 4×4 up-convolution of a 1×1 code is the same maths) →
  BatchNorm + ReLU → 4×4 stride-2 transposed convolutions 8w→4w→2w→w (8→16→32 px), each with
  BatchNorm + ReLU → a last transposed convolution w→3 (64 px) with **no** BatchNorm and tanh.
* **Discriminator** ``D``: 4×4 stride-2 convolutions 3→w→2w→4w→8w (64→4 px) with LeakyReLU(0.2),
  BatchNorm on all but the *input* layer, then a fully-connected layer on the 4×4×8w map to one
  logit (sigmoid inside the loss).

Training is the standard GAN game with the non-saturating generator loss::

    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0)        L_G = BCE(D(G(z)), 1) = −log D(G(z))

one D update then one G update per step, Adam (β1 = 0.5). Weights N(0, 0.02), BatchNorm γ
N(1, 0.02) (Radford et al.). Paper 003 says "lr 0.001 as suggested by Radford"; Radford et al.
actually use 2e-4 — we default to Radford's 2e-4 (logged in the notebook's deviation table).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .context_encoder import init_dcgan_weights


@dataclass
class DCGANConfig:
    image_size: int = 64  # side of the generated faces (a power of two >= 16)
    z_dim: int = 100  # latent dimension; z ~ U(-1, 1)^z_dim
    width: int = 64  # ngf = ndf: channels of the last G layer / first D layer (Radford: 64)
    lr: float = 2e-4  # Adam learning rate of both nets (Radford: 2e-4; thesis text: 1e-3)
    beta1: float = 0.5  # Adam β1 (Radford)

    def __post_init__(self):
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
        layers: list[nn.Module] = []
        for cin, cout in pairwise(chans):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1), nn.Tanh()]  # no BatchNorm on the output
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.cfg.z_dim:
            raise ConfigError(f"G expects z of shape (N, {self.cfg.z_dim}), got {tuple(z.shape)}.")
        h = self.project(z).view(z.shape[0], self.top, 4, 4)
        return self.net(F.relu(self.bn0(h)))


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


def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
    real = F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(d_fake.float(), torch.zeros_like(d_fake, dtype=torch.float32))
    return real + fake, {"d_real": real.detach(), "d_fake": fake.detach(), "d_total": (real + fake).detach()}


def g_loss(d_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Non-saturating generator loss −log D(G(z)) (Goodfellow et al.; Radford et al.)."""
    loss = F.binary_cross_entropy_with_logits(d_fake.float(), torch.ones_like(d_fake, dtype=torch.float32))
    return loss, {"g_adv": loss.detach()}


class DCGANTask:
    """One DCGAN step (D on real and detached fake, then G) for :func:`facefill.train.fit`."""

    def __init__(self, cfg: DCGANConfig, fused_adam: bool | None = None):
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)
        self.modules = {"generator": self.generator, "discriminator": self.discriminator}
        self._fused = fused_adam
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._fixed_z: torch.Tensor | None = None

    def configure(self, device: torch.device) -> None:
        fused = self._fused if self._fused is not None else device.type in ("cpu", "cuda")
        betas = (self.cfg.beta1, 0.999)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=self.cfg.lr, betas=betas, fused=fused),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=self.cfg.lr, betas=betas, fused=fused),
        }

    def training_step(self, images: torch.Tensor, autocast) -> dict[str, torch.Tensor]:
        if images.shape[-1] != self.cfg.image_size:
            raise ConfigError(f"DCGAN of image_size={self.cfg.image_size} got {images.shape[-1]}-px images; load faces at that size.")
        n = images.shape[0]
        z = sample_z(n, self.cfg.z_dim, device=images.device)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        with autocast():
            fake = self.generator(z)
            d_real = self.discriminator(images)
            d_fake = self.discriminator(fake.detach())
        loss_d, logs_d = d_loss(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast():
            d_fake_g = self.discriminator(fake)
        loss_g, logs_g = g_loss(d_fake_g)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {**logs_d, **logs_g, "d_x": torch.sigmoid(d_real.float()).mean().detach(),
                "d_g_z": torch.sigmoid(d_fake.float()).mean().detach()}

    @torch.no_grad()
    def generate(self, z: torch.Tensor, autocast=None) -> torch.Tensor:
        was = self.generator.training
        self.generator.eval()
        try:
            if autocast is None:
                out = self.generator(z)
            else:
                with autocast():
                    out = self.generator(z)
        finally:
            self.generator.train(was)
        return out.float()

    def sample(self, images: torch.Tensor, autocast=None) -> torch.Tensor:
        """Real images above two rows of samples from a fixed z (seeded, so grids are comparable)."""
        n = images.shape[0]
        if self._fixed_z is None or self._fixed_z.shape[0] != 2 * n:
            self._fixed_z = sample_z(2 * n, self.cfg.z_dim, torch.Generator().manual_seed(1234))
        return torch.cat([images.float(), self.generate(self._fixed_z.to(images.device), autocast)], 0)


# --------------------------------------------------------------------------- benchmark

def _bench_case(device, batch_size, variant):
    from ..bench import variant_settings

    if variant == "plain":
        raise NotImplementedError("DCGAN has no separate literal reference form (its layers are Radford's as written)")
    task = DCGANTask(DCGANConfig())
    autocast, fmt = variant_settings(variant, device)
    for m in task.modules.values():
        m.to(device=device, memory_format=fmt)
    task.configure(device)
    x = (torch.rand(batch_size, 3, 64, 64, device=device) * 2 - 1).contiguous(memory_format=fmt)
    return (lambda: task.training_step(x, autocast)), batch_size


try:  # registration is optional for users who import the model without the benchmark
    from ..bench import register

    register("dcgan64")(_bench_case)
except ImportError:  # pragma: no cover
    pass
