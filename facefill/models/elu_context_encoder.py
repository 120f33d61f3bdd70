"""ELU / max-pool context encoder for masked faces (paper 002).

Han, Jiang & Ju, *GAN-based Algorithm for Efficient Image Inpainting* (2021),
``shared/papers/002_b5aef677ee17bd93.txt``: a context encoder (Pathak et al., 2016) whose nets
are built from **units** of two convolutions, restoring the lower face hidden by a COVID face mask.

Architecture (§2.2, §2.3; every number the paper leaves open is a field of
:class:`EluContextEncoderConfig` and a row of the notebook's deviation log):

* **unit** ``U(c_in → c)``: ``conv3x3 → ELU → conv2x2 → ELU`` (with ``batch_norm``: BN after each
  convolution, before the ELU — the §3.3 proposal). Both convolutions keep the size ("same"
  padding; the even 2×2 kernel is padded like Keras ``padding="same"``: one extra pixel on the
  right and bottom).
* **encoder**: 6 units of widths ``c_1..c_6`` (``c_k = min(width·2^(k−1), max_width)``), a 2×2 max
  pool after units 1–5: ``S → S/32`` (128 → 4). Then "the three channels … reshaped to be stored as
  a latent vector": a linear 1×1 convolution to ``latent_channels`` = 3 maps, flattened:
  ``z ∈ R^{3·(S/32)²}`` (48 numbers at 128 px, 768 at 512).
* **decoder**: 6 units with the encoder's widths in reverse (``c_6..c_1``), "no pooling": a ×2
  nearest-neighbour upsampling before units 2–6 brings ``S/32`` back to ``S``; a 1×1 convolution to
  RGB and ``tanh`` puts the output in the image range [−1, 1].
* **discriminator** ``D``: 6 units like the encoder's (ELU, max pool after all but the last), then a
  fully connected layer to one output with a sigmoid, ``D(x) = σ(ℓ(x))``. We return the logit
  ``ℓ`` and apply the sigmoid inside the loss (``binary_cross_entropy_with_logits`` ≡
  BCE(σ(ℓ)), numerically stable).

The generator sees the occluded face ``x̃ = (1−M)⊙x + M⊙f`` (``M`` = 1 under the face mask,
``f`` = −1: blacked out, §3.3) and outputs a full image ``G(x̃)``; the restored face keeps the known
pixels, ``x̂ = (1−M)⊙x + M⊙G(x̃)``.

Loss, Eq. (1), **unweighted**:

    L_total = L_reconstruction + L_adversarial,
    L_reconstruction = s · mean (G(x̃) − x)²      (L2 over the whole image: "the missing or damaged
                                                    region as well as the context of the image")

The paper never states the units of its "MSE"; its total levels off near 70 (§3.2). ``s`` is the
reading (``loss_reading``, :data:`LOSS_READINGS`): 1 for the literal per-pixel mean on [−1, 1], 127.5²
for a per-pixel mean on the 0–255 scale, the pixel count for a sum over the image. Because Adam is
invariant to the overall loss scale, ``s`` only sets the weight of L_adversarial relative to L_rec.
    L_adversarial    = −mean log D(x̂)              (the generator's non-saturating GAN loss)
    L_D              = −mean [log D(x) + log(1 − D(x̂))]      (:mod:`facefill.adversarial`)

Training (§2.5, §3.2): Adam, learning rate 1e-4 (Keras defaults β = (0.9, 0.999)); per step the
discriminator is updated first, then the generator; batch 64, 20 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..adversarial import InpaintingTask, discriminator_loss, generator_loss  # noqa: F401 (discriminator_loss: Eq. 1's L_D)
from ..errors import ConfigError
from ..face_masks import from_model_input, occlude, template_landmarks

N_UNITS = 6  # units per network (§2.2, §2.3)

#: Readings of Eq. (1)'s unstated loss scale: L_rec = factor · (per-pixel MSE on [-1, 1]). The paper
#: says only "MSE" and that the total loss levels off "around 70" (§3.2); each reading is a guess at
#: the units. Sums are over the paper's 128×128×3 image (so their magnitude compares with its 70
#: at any training size). With L_adv ≈ 0.7…5 the factor sets the weight of the adversarial term.
PAPER_PIXELS = 128 * 128 * 3
LOSS_READINGS = {
    "literal": 1.0,  # per-pixel mean on [-1, 1], Eq. (1) read 1:1
    "pixel_mean_01": 0.25,  # per-pixel mean on [0, 1]
    "pixel_mean_255": 127.5**2,  # per-pixel mean on [0, 255]
    "image_sum_01": PAPER_PIXELS / 4,  # sum over the image on [0, 1]
    "image_sum": float(PAPER_PIXELS),  # sum over the image on [-1, 1]
    # not a reading of Eq. (1): Pathak et al.'s weights λ_rec : λ_adv = 0.999 : 0.001 on the per-pixel mean on
    # [-1, 1], i.e. L_adversarial weighted 16x more than under pixel_mean_255 (the study's adversarial-share arm)
    "pathak_weights": 0.999 / 0.001,
}


#: Weight initialisations. The paper trains with Keras, whose layers start Glorot-uniform with zero
#: biases; PyTorch's default (Kaiming-uniform with a = √5) has a third of that variance for square
#: layers, so through 25 convolutions without BN the signal fades and training sits on the mean face
#: for a random number of steps (the init probe in reports/benchmarks/init_probe.md).
INITS = ("glorot", "torch")


def init_weights(net: nn.Module, scheme: str) -> None:
    """Re-initialise ``net``'s convolutions and linear layers by ``scheme`` ("torch": leave them as built)."""
    if scheme == "torch":
        return
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)  # fans k·k·c_in and k·k·c_out, as Keras computes them
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@dataclass
class EluContextEncoderConfig:
    image_size: int = 128  # input side: 128 (the paper's data); 256 and 512 (its design size) work too
    width: int = 32  # channels of the first unit; unit k has min(width·2^(k-1), max_width)
    max_width: int = 256  # cap of the unit widths
    latent_channels: int = 3  # maps of the latent (S/32)² grid, flattened into z ("the three channels")
    batch_norm: bool = False  # §3.3's proposed improvement: BN after every convolution of G and D
    fill: float = -1.0  # value of the occluded pixels in the generator input (-1: blacked out)
    lr: float = 1e-4  # Adam learning rate of both networks (§2.5)
    beta1: float = 0.9  # Adam β1 (Keras default; the paper gives none)
    beta2: float = 0.999  # Adam β2
    loss_reading: str = "literal"  # how Eq. (1)'s L_reconstruction is scaled: a key of LOSS_READINGS
    init: str = "glorot"  # weight init, a key of INITS: the paper's Keras default (Glorot uniform, zero biases)

    def __post_init__(self):
        if self.loss_reading not in LOSS_READINGS:
            raise ConfigError(f"loss_reading={self.loss_reading!r}: choose one of {sorted(LOSS_READINGS)}.")
        if self.image_size % 2 ** (N_UNITS - 1) or self.image_size < 2 ** (N_UNITS - 1):
            raise ConfigError(f"image_size={self.image_size}: must be a multiple of 32 (five 2x2 max pools), e.g. 128, 256, 512.")
        if self.width < 1 or self.max_width < self.width or self.latent_channels < 1:
            raise ConfigError(f"width={self.width}, max_width={self.max_width}, latent_channels={self.latent_channels}: "
                              "need 1 <= width <= max_width and latent_channels >= 1.")
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r}: choose one of {sorted(INITS)}.")
        if not -1.0 <= self.fill <= 1.0:
            raise ConfigError(f"fill={self.fill}: the occlusion colour must be in the image range [-1, 1].")

    @property
    def widths(self) -> list[int]:
        return [min(self.width * 2**k, self.max_width) for k in range(N_UNITS)]

    @property
    def latent_side(self) -> int:
        return self.image_size // 2 ** (N_UNITS - 1)

    @property
    def latent_dim(self) -> int:
        return self.latent_channels * self.latent_side**2


class Unit(nn.Module):
    """conv3x3 → [BN] → ELU → conv2x2 ("same", Keras padding) → [BN] → ELU."""

    def __init__(self, cin: int, cout: int, batch_norm: bool = False):
        super().__init__()
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)
        self.bn3 = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 2, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.elu(self.bn3(self.conv3(x)))
        return F.elu(self.bn2(self.conv2(F.pad(x, (0, 1, 0, 1)))))  # Keras "same" for an even kernel


class Encoder(nn.Module):
    """x (N, 3, S, S) → z (N, latent_channels·(S/32)²)."""

    def __init__(self, cfg: EluContextEncoderConfig):
        super().__init__()
        w = cfg.widths
        self.units = nn.ModuleList(Unit(cin, cout, cfg.batch_norm) for cin, cout in zip([3, *w], w))
        self.to_latent = nn.Conv2d(w[-1], cfg.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, unit in enumerate(self.units):
            x = unit(x)
            if i < N_UNITS - 1:
                x = F.max_pool2d(x, 2)
        return torch.flatten(self.to_latent(x), 1)


class Decoder(nn.Module):
    """z → image (N, 3, S, S) in [-1, 1]: units of the encoder's widths reversed, ×2 upsampling between."""

    def __init__(self, cfg: EluContextEncoderConfig):
        super().__init__()
        w = cfg.widths[::-1]
        self.latent_channels, self.side = cfg.latent_channels, cfg.latent_side
        self.units = nn.ModuleList(Unit(cin, cout, cfg.batch_norm) for cin, cout in zip([cfg.latent_channels, *w], w))
        self.to_rgb = nn.Conv2d(w[-1], 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.shape[0], self.latent_channels, self.side, self.side)
        for i, unit in enumerate(self.units):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = unit(x)
        return torch.tanh(self.to_rgb(x))


class Generator(nn.Module):
    def __init__(self, cfg: EluContextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        init_weights(self, cfg.init)

    def forward(self, occluded: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(occluded))


class Discriminator(nn.Module):
    """6 units with max pools after the first five, a fully connected layer → one logit per image."""

    def __init__(self, cfg: EluContextEncoderConfig):
        super().__init__()
        w = cfg.widths
        self.units = nn.ModuleList(Unit(cin, cout, cfg.batch_norm) for cin, cout in zip([3, *w], w))
        self.head = nn.Linear(w[-1] * cfg.latent_side**2, 1)
        init_weights(self, cfg.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, unit in enumerate(self.units):
            x = unit(x)
            if i < N_UNITS - 1:
                x = F.max_pool2d(x, 2)
        return self.head(torch.flatten(x, 1)).squeeze(1)


# --------------------------------------------------------------------------- losses

def reconstruction_loss(output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """L2: mean squared error over all pixels and channels of the whole image."""
    return F.mse_loss(output.float(), images.float())


def generator_losses(output, images, d_fake_logits) -> tuple[torch.Tensor, dict]:
    """Eq. (1): L_total = L_rec + L_adv (unweighted); L_adv = −log D(x̂)."""
    return generator_loss(d_fake_logits, reconstruction_loss(output, images))


# --------------------------------------------------------------------------- training task

class EluContextEncoderTask(InpaintingTask):
    """Eq. (1) trained by the D-then-G step of :class:`facefill.adversarial.AdversarialTask` (§2.5:
    the discriminator first, on real faces vs restored faces x̂; then the generator on L_rec + L_adv).

    Batches are ``(faces, mask images)``: the masks travel as a second uint8 image array (0/255, see
    :func:`facefill.face_masks.as_uint8_images`), so ``fit`` batches and flips them with the faces.
    """

    mask_kinds = ("facemask",)  # trained on face-mask occlusions (facefill.api)

    def __init__(self, cfg: EluContextEncoderConfig, fused_adam: bool | None = None):
        super().__init__(cfg, Generator(cfg), Discriminator(cfg), lr_g=cfg.lr, lr_d=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                         fused_adam=fused_adam)

    def split(self, batch):
        if not isinstance(batch, tuple) or len(batch) != 2:
            raise ConfigError("the masked-face task trains on (faces, mask images): call fit(task, (images, "
                              "face_masks.as_uint8_images(masks)), ...).")
        images, mask_images = batch
        return images, from_model_input(mask_images)

    def drop(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return occlude(images, masks, self.cfg.fill)

    def reconstruction_loss(self, output: torch.Tensor, step) -> torch.Tensor:
        return LOSS_READINGS[self.cfg.loss_reading] * reconstruction_loss(output, step.images)

    def after_step(self, step, output, d_real, d_fake, logs: dict) -> dict:
        return {k: logs[k] for k in ("g_rec", "g_adv", "g_total", "d_total")}  # this paper's log columns


# --------------------------------------------------------------------------- masks without dlib

def template_masks(image_size: int, n: int) -> torch.Tensor:
    """n copies of a surgical mask on the aligned-crop template (no dlib needed): for the benchmark and tests."""
    import numpy as np

    from ..face_masks import mask_polygon, rasterize

    poly = mask_polygon(template_landmarks(image_size, image_size), "surgical", np.random.Generator(np.random.PCG64(0)))
    m = torch.from_numpy(rasterize(poly, image_size, image_size))
    return m.expand(n, 1, image_size, image_size).contiguous()
